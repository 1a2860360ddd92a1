"""Collusive rings from the drop copy: accounts the reference data does not tie, trading among themselves with flat
positions, against the look-alikes — one owner's accounts (the wash detector's), a buyer who keeps meeting one
seller, clients who meet now and then while trading with the market, and clients who are most of a thin symbol."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.orders.firm_ring import FirmRing, FirmRingParams, fresh_state
from tapewatch.detectors.orders.public_tape import PublicTape
from tapewatch.records import ExecutionReport

OWNERS = {"A1": "O1", "A2": "O1", "B1": "O2", "C1": "O3", "D1": "O4", "X1": "O5"}
START = 2_000_000


def execution(ts: int, account: str, side: str, qty: float, order_id: str, price: float = 10.0) -> ExecutionReport:
    return ExecutionReport(
        symbol="X", venue="v", ts=ts, exec_id=f"{order_id}-t", order_id=order_id, tenant="acme", account=account,
        exec_type="trade", side=side, price=price, quantity=qty, last_qty=qty, last_price=price, cum_qty=qty,
    )  # fmt: skip


def cross(ring: FirmRing, ts: int, buyer: str, seller: str, qty: float = 500.0) -> list[Hit]:
    return [
        *ring.on_execution(execution(ts, buyer, "BUY", qty, f"b{ts}")),
        *ring.on_execution(execution(ts + 2, seller, "SELL", qty, f"s{ts}")),
    ]


def busy_tape(volume_per_5s: float = 20_000.0) -> PublicTape:
    tape = PublicTape(keep_ms=3_600_000)
    for ts in range(0, START + 1_200_000, 5_000):
        tape.on_order_values(ts, 10.0, volume_per_5s)
    return tape


def rounds(ring: FirmRing, pairs: list[tuple[str, str]], every_ms: int = 20_000) -> list[Hit]:
    return [hit for n, (buyer, seller) in enumerate(pairs) for hit in cross(ring, START + every_ms * n, buyer, seller)]


def test_two_strangers_turning_volume_over_between_them_are_a_ring() -> None:
    ring = FirmRing(FirmRingParams(), OWNERS, {}, busy_tape())
    hits = rounds(ring, [("B1", "C1"), ("C1", "B1")] * 4)
    assert hits, "eight prints back and forth between two owners' accounts"
    first = hits[0]
    assert first.evidence["accounts"] == "B1;C1" and first.evidence["owners"] == 2
    assert first.evidence["prints"] == 6 and first.evidence["ring_share"] == 1.0
    assert first.evidence["net_share"] == 0.0 and first.evidence["chance"] is not None
    assert float(first.evidence["chance"]) < 1e-6
    assert first.window_start == START and len(str(first.evidence["order_ids"]).split(";")) == 6


def test_three_accounts_passing_the_position_round_are_one_ring() -> None:
    ring = FirmRing(FirmRingParams(), OWNERS, {}, busy_tape())
    hits = rounds(ring, [("B1", "C1"), ("C1", "D1"), ("D1", "B1")] * 3)
    assert hits and hits[-1].evidence["accounts"] == "B1;C1;D1" and hits[-1].evidence["owners"] == 3


def test_one_owners_accounts_are_left_to_the_wash_detector() -> None:
    ring = FirmRing(FirmRingParams(), OWNERS, {}, busy_tape())
    assert rounds(ring, [("A1", "A2"), ("A2", "A1")] * 5) == []


def test_accounts_the_firm_links_are_left_to_the_wash_detector() -> None:
    ring = FirmRing(FirmRingParams(), OWNERS, {"B1": "G1", "C1": "G1"}, busy_tape())
    assert rounds(ring, [("B1", "C1"), ("C1", "B1")] * 5) == []


def test_a_buyer_who_keeps_meeting_one_seller_is_not_a_ring() -> None:
    """Not flat: the buyer accumulates what the seller sells."""
    ring = FirmRing(FirmRingParams(), OWNERS, {}, busy_tape())
    assert rounds(ring, [("B1", "C1")] * 10) == []


def test_clients_who_meet_now_and_then_while_trading_with_the_market_are_not_a_ring() -> None:
    ring = FirmRing(FirmRingParams(), OWNERS, {}, busy_tape())
    hits: list[Hit] = []
    for n in range(10):
        t = START + 30_000 * n
        hits += cross(ring, t, "B1" if n % 2 else "C1", "C1" if n % 2 else "B1")
        for account in ("B1", "C1"):  # their ordinary business, both ways, with others
            hits += ring.on_execution(execution(t + 5_000, account, "BUY", 400.0, f"m{account}{n}", price=10.01))
            hits += ring.on_execution(execution(t + 9_000, account, "SELL", 400.0, f"n{account}{n}", price=10.02))
    assert hits == []


def half_with_each_other(ring: FirmRing) -> list[Hit]:
    """Two clients meeting ten times, each also trading eight times with others, both ways."""
    hits: list[Hit] = []
    for n in range(10):
        t = START + 20_000 * n
        hits += cross(ring, t, "B1" if n % 2 else "C1", "C1" if n % 2 else "B1")
        if n < 8:  # with strangers, at prices and times of their own
            for k, account in enumerate(("B1", "C1")):
                side = "BUY" if (n + k) % 2 else "SELL"
                at = t + 5_000 + 4_000 * k
                hits += ring.on_execution(execution(at, account, side, 500.0, f"m{account}{n}", price=10.01 + 0.02 * k))
    return hits


def test_two_clients_that_are_most_of_a_thin_symbol_meet_by_chance() -> None:
    """The same trades: half with each other, half with others. In a busy symbol that is no chance; where the two
    are most of what trades, each meets the other about that often whatever they are."""
    assert half_with_each_other(FirmRing(FirmRingParams(), OWNERS, {}, busy_tape()))
    assert half_with_each_other(FirmRing(FirmRingParams(), OWNERS, {}, busy_tape(volume_per_5s=400.0))) == []


@pytest.mark.parametrize(
    "prints", [[("B1", "C1"), ("C1", "B1")] * 4, [("B1", "C1"), ("C1", "D1"), ("D1", "B1")] * 3], ids=["two", "three"]
)
def test_a_ring_that_is_most_of_a_thin_symbol_is_still_a_ring(prints: list[tuple[str, str]]) -> None:
    """The ring's prints are not counted as its members' ordinary business: accounts that meet nobody else are a
    ring however much of the symbol they are (in a ring of three, two members' prints with each other too)."""
    thin = FirmRing(FirmRingParams(), OWNERS, {}, busy_tape(volume_per_5s=150.0))
    assert rounds(thin, prints)


def test_a_client_met_once_by_chance_stays_out_of_the_ring() -> None:
    ring = FirmRing(FirmRingParams(), OWNERS, {}, busy_tape())
    hits = cross(ring, START - 10_000, "X1", "B1", qty=300.0)
    for n in range(20):
        hits += ring.on_execution(execution(START + 1_000 * n, "X1", "BUY" if n % 2 else "SELL", 300.0, f"x{n}", 9.9))
    hits += rounds(ring, [("B1", "C1"), ("C1", "B1")] * 4)
    assert hits and {hit.evidence["accounts"] for hit in hits} == {"B1;C1"}


def test_prints_older_than_the_window_do_not_count() -> None:
    ring = FirmRing(FirmRingParams(window_ms=60_000), OWNERS, {}, busy_tape())
    assert rounds(ring, [("B1", "C1"), ("C1", "B1")] * 4, every_ms=30_000) == []


def test_the_state_round_trips_and_forgets_what_left_the_window() -> None:
    ring = FirmRing(FirmRingParams(), OWNERS, {}, busy_tape())
    rounds(ring, [("B1", "C1"), ("C1", "B1")] * 2)
    restored = FirmRing.from_state(json.loads(json.dumps(ring.to_state())), ring.params, OWNERS, {}, ring.tape)
    assert restored.to_state() == ring.to_state()
    later = [rounds(r, [("C1", "B1"), ("B1", "C1")] * 2) for r in (ring, restored)]
    assert later[0] == later[1] and later[0]
    ring.on_execution(execution(START + 10_000_000, "D1", "BUY", 100.0, "late"))
    state = ring.to_state()
    assert set(state["executions"]) == {"D1"} and state["links"] == []
    assert fresh_state() == FirmRing().to_state()


def test_its_parameters_are_validated() -> None:
    with pytest.raises(ValidationError):
        FirmRingParams(min_prints=1)
    with pytest.raises(ValidationError):
        FirmRingParams(flat_share=1.0)
    with pytest.raises(ValidationError):
        FirmRingParams(unknown=1)  # type: ignore[call-arg]
