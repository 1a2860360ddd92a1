"""The drop copy's detectors against what they must find and what they must leave alone: spoofing cycles by one
account (not a market maker's two-sided quotes, not a large order that fills, not large orders of different
accounts), wash prints between one owner's or one group's accounts (not an owner's occasional cross, not a print
between strangers), and their states."""

from __future__ import annotations

import itertools
import json

import pytest

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.orders.firm_spoofing import FirmSpoofing, FirmSpoofingParams
from tapewatch.detectors.orders.firm_wash import FirmWash, FirmWashParams
from tapewatch.detectors.orders.placements import PublicPlacements
from tapewatch.detectors.orders.usual_size import UsualSize
from tapewatch.records import ExecutionReport, OrderBookEvent

_ids = itertools.count()


def report(
    ts: int,
    exec_type: str,
    order_id: str,
    side: str,
    qty: float,
    account: str = "A1",
    filled: float = 0.0,
    price: float = 10.0,
) -> ExecutionReport:
    return ExecutionReport(
        symbol="X",
        venue="v",
        ts=ts,
        exec_id=f"e{next(_ids)}",
        order_id=order_id,
        tenant="acme",
        account=account,
        owner=None,
        exec_type=exec_type,
        side=side,
        price=price,
        quantity=qty,
        last_qty=filled,
        last_price=price if filled else None,
        cum_qty=filled,
        leaves_qty=0.0 if exec_type in ("canceled",) else max(qty - filled, 0.0),
    )


def warmed(params: FirmSpoofingParams | None = None) -> FirmSpoofing:
    detector = FirmSpoofing(params or FirmSpoofingParams(warmup_orders=10))
    for n in range(40):
        detector.on_execution(report(n, "new", f"w{n}", "BUY" if n % 2 else "SELL", 100.0, account=f"N{n % 7}"))
    return detector


def spoof_cycle(detector: FirmSpoofing, t: int, n: int, account: str = "A1", big: float = 3_000.0) -> list[Hit]:
    """A large bid, a small offer meanwhile, the bid cancelled three seconds later."""
    return [
        *detector.on_execution(report(t, "new", f"{account}-big{n}", "BUY", big, account)),
        *detector.on_execution(report(t + 500, "new", f"{account}-small{n}", "SELL", 100.0, account)),
        *detector.on_execution(report(t + 3_000, "canceled", f"{account}-big{n}", "BUY", big, account)),
    ]


def test_two_cycles_of_one_account_are_a_hit_naming_it_and_its_orders() -> None:
    detector = warmed()
    assert spoof_cycle(detector, 10_000, 0) == []
    [hit] = spoof_cycle(detector, 40_000, 1)
    assert hit.evidence["account"] == "A1" and hit.evidence["order_ids"] == "A1-big0;A1-big1"
    assert hit.window_start == 10_000 and hit.evidence["cycles"] == 2 and hit.evidence["opposite_filled"] == 0
    assert 0.7 <= hit.score < 0.85


def test_cycles_of_different_accounts_or_far_apart_are_not_one_spoofer() -> None:
    detector = warmed()
    assert spoof_cycle(detector, 10_000, 0, account="A1") == []
    assert spoof_cycle(detector, 40_000, 1, account="A2") == []
    assert spoof_cycle(detector, 10_000 + 700_000, 2, account="A1") == []  # past the ten-minute window


def test_a_market_makers_two_sided_quotes_pulled_are_not_spoofing() -> None:
    detector = warmed()
    for n in range(4):
        t = 10_000 + 20_000 * n
        hits = [
            *detector.on_execution(report(t, "new", f"bid{n}", "BUY", 3_000.0, "MM")),
            *detector.on_execution(report(t, "new", f"ask{n}", "SELL", 3_000.0, "MM")),
            *detector.on_execution(report(t + 100, "new", f"small{n}", "SELL", 100.0, "MM")),
            *detector.on_execution(report(t + 5_000, "canceled", f"bid{n}", "BUY", 3_000.0, "MM")),
            *detector.on_execution(report(t + 5_000, "canceled", f"ask{n}", "SELL", 3_000.0, "MM")),
        ]
        assert hits == []


def test_a_large_order_that_fills_or_rests_long_is_not_a_cycle() -> None:
    detector = warmed()
    for n in range(3):
        t = 10_000 + 30_000 * n
        detector.on_execution(report(t, "new", f"big{n}", "BUY", 3_000.0))
        detector.on_execution(report(t + 500, "new", f"small{n}", "SELL", 100.0))
        detector.on_execution(report(t + 1_000, "trade", f"big{n}", "BUY", 3_000.0, filled=2_900.0))
        assert detector.on_execution(report(t + 2_000, "canceled", f"big{n}", "BUY", 3_000.0)) == []
    slow = warmed(FirmSpoofingParams(warmup_orders=10, max_life_ms=60_000))
    for n in range(3):
        t = 10_000 + 100_000 * n
        slow.on_execution(report(t, "new", f"big{n}", "BUY", 3_000.0))
        slow.on_execution(report(t + 500, "new", f"small{n}", "SELL", 100.0))
        assert slow.on_execution(report(t + 90_000, "canceled", f"big{n}", "BUY", 3_000.0)) == []


def test_an_order_no_larger_than_usual_or_small_against_the_book_is_not_large() -> None:
    detector = warmed()
    for n in range(3):
        assert spoof_cycle(detector, 10_000 + 20_000 * n, n, big=300.0) == []
    thin = {f"A1-big{n}": 0.05 for n in range(3)}  # 5 % of the side's visible depth: a deep book
    deep = FirmSpoofing(FirmSpoofingParams(warmup_orders=10), thin.get)
    for n in range(40):
        deep.on_execution(report(n, "new", f"w{n}", "BUY", 100.0, account="N"))
    for n in range(3):
        assert spoof_cycle(deep, 10_000 + 20_000 * n, n) == []


def test_the_spoofing_state_round_trips() -> None:
    detector = warmed()
    spoof_cycle(detector, 10_000, 0)
    detector.on_execution(report(35_000, "new", "A1-big1", "BUY", 3_000.0))
    restored = FirmSpoofing.from_state(json.loads(json.dumps(detector.to_state())), detector.params)
    for d in (detector, restored):
        d.on_execution(report(35_500, "new", "A1-small1", "SELL", 100.0))
    assert detector.on_execution(report(38_000, "canceled", "A1-big1", "BUY", 3_000.0)) == restored.on_execution(
        report(38_000, "canceled", "A1-big1", "BUY", 3_000.0)
    )
    assert detector.to_state() == restored.to_state()


# --- wash -------------------------------------------------------------------------------------------------------
OWNERS = {"A1": "O1", "A2": "O1", "B1": "O2", "C1": "O3", "C2": "O4"}
GROUPS = {"C1": "G1", "C2": "G1"}


def print_between(detector: FirmWash, ts: int, buyer: str, seller: str, qty: float = 500.0) -> list[Hit]:
    return [
        *detector.on_execution(report(ts, "trade", f"b{ts}", "BUY", qty, buyer, filled=qty)),
        *detector.on_execution(report(ts + 3, "trade", f"s{ts}", "SELL", qty, seller, filled=qty)),
    ]


@pytest.mark.parametrize(("first", "second"), [("A1", "A2"), ("C1", "C2")], ids=["one owner", "linked group"])
def test_repeated_prints_between_one_owners_or_groups_accounts_are_wash(first: str, second: str) -> None:
    detector = FirmWash(FirmWashParams(), OWNERS, GROUPS)
    hits = [h for n in range(3) for h in print_between(detector, 10_000 * (n + 1), first, second)]
    [hit] = hits
    assert hit.evidence["accounts"] == f"{first};{second}" and hit.evidence["prints"] == 3
    assert hit.evidence["self_share"] == 1.0


def test_prints_with_strangers_are_not_wash() -> None:
    detector = FirmWash(FirmWashParams(), OWNERS, GROUPS)
    assert [h for n in range(5) for h in print_between(detector, 10_000 * (n + 1), "A1", "B1")] == []


def test_an_owner_who_trades_mostly_with_others_crossing_now_and_then_is_not_wash() -> None:
    detector = FirmWash(FirmWashParams(), OWNERS, GROUPS)
    hits: list[Hit] = []
    for n in range(4):
        t = 100_000 * (n + 1)
        hits += print_between(detector, t, "A1", "A2", qty=100.0)  # the accident
        for k in range(5):  # its ordinary business, with the market
            hits += detector.on_execution(report(t + 1_000 + k * 5_000, "trade", f"x{t}{k}", "BUY", 300.0, "A1", 300.0))
    assert hits == []


def test_the_wash_state_round_trips() -> None:
    detector = FirmWash(FirmWashParams(), OWNERS, GROUPS)
    print_between(detector, 10_000, "A1", "A2")
    detector.on_execution(report(20_000, "trade", "b2", "BUY", 500.0, "A1", filled=500.0))
    restored = FirmWash.from_state(json.loads(json.dumps(detector.to_state())), detector.params, OWNERS, GROUPS)
    for d in (detector, restored):
        d.on_execution(report(20_003, "trade", "s2", "SELL", 500.0, "A2", filled=500.0))
    nxt = [print_between(d, 30_000, "A1", "A2") for d in (detector, restored)]
    assert nxt[0] == nxt[1] and len(nxt[0]) == 1
    assert detector.to_state() == restored.to_state()


def test_the_usual_size_follows_the_recent_orders_and_round_trips() -> None:
    usual = UsualSize(half_life=100)
    for _ in range(1_000):
        usual.observe(100.0)
    for _ in range(1_000):
        usual.observe(1_000.0)
    median = usual.quantile(0.5)
    assert median is not None and 900 < median < 1_100
    restored = UsualSize.from_state(json.loads(json.dumps(usual.to_state())), half_life=100)
    assert restored.quantile(0.5) == median and restored.count() == 2_000
    with pytest.raises(ValueError, match="half_life"):
        UsualSize(0)


def test_without_a_public_feed_to_wait_for_no_placement_is_kept() -> None:
    """Its reports are judged as they come, so a placement read first would count and one read later would not:
    none is kept, and each order's depth is unknown whichever stream came first."""
    add = OrderBookEvent(
        symbol="X", venue="v", ts=1_000, sequence=1, action="add", order_id="o1", side="BUY", price=10.0, size=5.0
    )
    public, unwaited = PublicPlacements(60_000), PublicPlacements(60_000, public=False)
    for placements in (public, unwaited):
        placements.on_order(add, depth=20.0)
    assert public.share("o1", by_ts=1_000) == 0.25 and unwaited.share("o1", by_ts=1_000) is None
