"""The paper trader's pure core: fills never better than the tape, same inputs → same outputs (also across a
state round trip and any Kafka interleaving), refusals with reasons, risk limits, costs."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.execution.accounts import AccountConfig, parse_accounts
from tapewatch.execution.executor import InputRefusedError, PaperExecutor
from tapewatch.execution.grid import VenueRules
from tapewatch.execution.merge import EventMerge
from tapewatch.feeds import FeedProfiles
from tapewatch.records import Action, Book, Fill, Order, OrderEvent, Portfolio, Quote, Record

#: 2026-11-26 09:00 Asia/Taipei
T0 = 1_764_118_800_000
Event = Quote | Book | Action


def _executor(**fields: object) -> PaperExecutor:
    account = AccountConfig.model_validate({"name": "a", "signal": "dqn", **fields})
    return PaperExecutor([account], VenueRules(), FeedProfiles())


def _book(ts: int, mid_ticks: int, size: float = 2000.0, symbol: str = "2330") -> Book:
    bid = 100.0 + 0.5 * mid_ticks
    return Book(symbol=symbol, venue="sim", ts=ts, bids=[(bid, size), (bid - 0.5, size)], asks=[(bid + 0.5, size)])


def _trade(ts: int, price: float, size: float, symbol: str = "2330") -> Quote:
    return Quote(symbol=symbol, venue="sim", ts=ts, price=price, size=size)


def _action(ts: int, position: int, symbol: str = "2330") -> Action:
    return Action(symbol=symbol, venue="sim", ts=ts, action="HOLD", q_values={}, position=position, model_version="v")


def _session(seed: int, minutes: int = 20) -> list[Event]:
    """A random walk on the TWSE grid: a book every 3 s, prints around it, a decision every minute."""
    rng = random.Random(seed)
    events: list[Event] = []
    level = 0
    for second in range(0, minutes * 60, 3):
        ts = T0 + second * 1000
        level += rng.choice((-1, 0, 0, 1))
        events.append(_book(ts, level, rng.choice((500.0, 2000.0, 8000.0))))
        for k in range(rng.randint(0, 3)):
            price = 100.0 + 0.5 * (level + rng.choice((-1, 0, 1)))
            events.append(_trade(ts + 500 + k, price, float(rng.choice((100, 1000, 3000)))))
        if second % 60 == 0 and second:
            events.append(_action(ts + 999, rng.choice((0, 1, 1))))
    return events


def _run(executor: PaperExecutor, events: Sequence[Event]) -> list[Record]:
    out: list[Record] = []
    for event in events:
        with contextlib.suppress(InputRefusedError):
            out += executor.apply(event)
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), pricing=st.sampled_from(["join", "cross", "mid"]))
def test_fills_are_never_better_than_the_tape_allowed(seed: int, pricing: str) -> None:
    events = _session(seed)
    out = _run(_executor(pricing=pricing, ttl_ms=30_000), events)
    placed = {o.client_order_id: o for o in out if isinstance(o, Order) and o.event == OrderEvent.PLACED}
    prints = [e for e in events if isinstance(e, Quote) and e.size > 0]
    fills = [f for f in out if isinstance(f, Fill)]
    for fill in fills:
        order = placed[fill.client_order_id]
        assert fill.ts > order.ts
        # at the price of a print that reached the order's limit: never a price the tape did not print
        assert fill.price == fill.tape_price
        assert fill.price <= order.price if fill.side == "BUY" else fill.price >= order.price
        assert any(p.ts == fill.ts and p.price == fill.tape_price for p in prints)
    for order_id, order in placed.items():
        reach = [
            p
            for p in prints
            if p.price is not None
            and p.ts > order.ts
            and (p.price <= order.price if order.side == "BUY" else p.price >= order.price)
        ]
        filled = sum(f.quantity for f in fills if f.client_order_id == order_id)
        assert filled <= order.quantity + 1e-9
        assert filled <= sum(p.size for p in reach) + 1e-9  # never more than the tape traded at or through it
    for ts in {f.ts for f in fills}:
        same = sum(f.quantity for f in fills if f.ts == ts)
        assert same <= sum(p.size for p in prints if p.ts == ts) + 1e-9


def test_a_session_trades_and_books_costs() -> None:
    out = _run(_executor(), _session(7, minutes=30))
    fills = [f for f in out if isinstance(f, Fill)]
    assert fills, "a 30-minute session with decisions every minute fills something"
    for fill in fills:
        expected_fee = fill.price * fill.quantity * 0.001425
        assert fill.fee == pytest.approx(expected_fee)
        assert fill.tax == 0.0 if fill.side == "BUY" else fill.tax > 0
    last = [p for p in out if isinstance(p, Portfolio)][-1]
    assert last.fees == pytest.approx(sum(f.fee for f in fills))
    assert last.equity == pytest.approx(last.cash + last.gross_exposure)  # long only: gross = value held


@pytest.mark.parametrize("cut", [1, 97, 400, 811])
def test_a_restored_state_continues_exactly_as_the_uninterrupted_run(cut: int) -> None:
    events = _session(3, minutes=25)
    whole = [r.to_json() for r in _run(_executor(), events)]
    first = _executor()
    head = _run(first, events[:cut])
    restored = _executor()
    restored.load_state(orjson.loads(orjson.dumps(first.to_state())))
    tail = _run(restored, events[cut:])
    assert [r.to_json() for r in head + tail] == whole


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_the_merge_order_does_not_depend_on_how_kafka_interleaves(seed: int) -> None:
    rng = random.Random(seed)
    sources = {(topic, p): sorted(rng.sample(range(0, 500), 30)) for topic in ("q", "s") for p in (0, 1)}

    def merged(chunks: int) -> list[tuple[str, int, int]]:
        merge: EventMerge[int] = EventMerge(max_skew_ms=10_000, ranks={"q": 0, "s": 1})
        merge.assign(sources)
        cursor = dict.fromkeys(sources, 0)
        out: list[tuple[str, int, int]] = []
        while any(cursor[s] < len(sources[s]) for s in sources):
            source = rng.choice([s for s in sources if cursor[s] < len(sources[s])])
            for _ in range(rng.randint(1, chunks)):
                if cursor[source] < len(sources[source]):
                    merge.add(*source, cursor[source], sources[source][cursor[source]], 0)
                    cursor[source] += 1
            out += [(t, p, o) for t, p, o, _ in merge.release()]
        out += [(t, p, o) for t, p, o, _ in merge.release(flush=True)]
        return out

    assert merged(1) == merged(7) == merged(25)


def test_bad_decisions_are_refused_with_a_reason() -> None:
    executor = _executor()
    with pytest.raises(InputRefusedError, match="unknown symbol"):
        executor.apply(_action(T0, 1))
    executor.apply(_trade(T0 + 1, 100.0, 1000.0))
    with pytest.raises(InputRefusedError, match="missing book"):
        executor.apply(_action(T0 + 2, 1))
    executor.apply(_book(T0 + 3, 0))
    with pytest.raises(InputRefusedError, match="absurd position"):
        executor.apply(_action(T0 + 4, 10**9))
    binance = Action(
        symbol="BTCUSDT", venue="binance", ts=T0 + 5, action="BUY", q_values={}, position=1, model_version="v"
    )
    executor.apply(Book(symbol="BTCUSDT", venue="binance", ts=T0 + 5, bids=[(90000.0, 1.0)], asks=[(90001.0, 1.0)]))
    with pytest.raises(InputRefusedError, match="no tick size"):
        executor.apply(binance)
    after_close = T0 + (4 * 60 + 31) * 60_000  # 13:31 Taipei
    executor.apply(_book(after_close - 1, 0))
    with pytest.raises(InputRefusedError, match="after the close"):
        executor.apply(_action(after_close, 1))
    with pytest.raises(InputRefusedError, match="late"):
        executor.apply(_action(T0 + 10, 1))
    rules = VenueRules.from_exchange_info("binance", {"BTCUSDT": {"tick": "0.01", "step": "0.00001"}})
    assert rules("binance", "BTCUSDT") is not None and rules("binance", "ETHUSDT") is None


def test_the_kill_switch_halts_buying_and_goes_flat() -> None:
    executor = _executor(max_daily_loss=20_000.0, pricing="cross")
    executor.apply(_book(T0, 0))
    out = executor.apply(_action(T0 + 1, 1)) + executor.apply(_trade(T0 + 2000, 100.5, 50_000.0))
    assert executor.ledgers["a"].held("2330") > 0
    out = executor.apply(_book(T0 + 3000, -20)) + executor.apply(_trade(T0 + 3001, 90.0, 100.0))
    assert executor.ledgers["a"].halted
    assert any(isinstance(r, Portfolio) and r.reason == "halt" for r in out)
    assert any(isinstance(r, Order) and r.event == OrderEvent.PLACED and r.side == "SELL" for r in out)
    executor.apply(_trade(T0 + 4000, 90.0, 50_000.0))  # the flattening sell fills at the bid
    assert executor.ledgers["a"].held("2330") == 0
    rejected = executor.apply(_action(T0 + 120_000, 1))
    assert [r.reason for r in rejected if isinstance(r, Order)] == ["kill switch: the day's loss limit was hit"]


def test_intraday_accounts_go_flat_before_the_close_and_limits_hold() -> None:
    executor = _executor(pricing="cross", max_gross=150_000.0)
    close_window = T0 + (4 * 60 + 25) * 60_000  # 13:25 Taipei
    executor.apply(_book(close_window - 120_000, 0))
    out = executor.apply(_action(close_window - 119_000, 1))
    placed = [r for r in out if isinstance(r, Order)]
    assert placed and placed[0].quantity * placed[0].price <= 150_000.0  # the gross limit cut the unit
    executor.apply(_trade(close_window - 100_000, 100.5, 100_000.0))
    held = executor.ledgers["a"].held("2330")
    assert held > 0
    out = executor.apply(_book(close_window + 1, 0))
    sells = [r for r in out if isinstance(r, Order) and r.side == "SELL" and r.event == OrderEvent.PLACED]
    assert sells and sells[0].quantity == held and sells[0].price == 100.0  # crossing to the bid


def test_accounts_parse_and_refuse_clearly() -> None:
    assert [a.name for a in parse_accounts('[{"name": "x", "signal": "cnn", "band": 0.2}]')] == ["x"]
    with pytest.raises(ValueError, match="pricing"):
        parse_accounts('[{"name": "x", "signal": "dqn", "pricing": "best"}]')
    with pytest.raises(ValueError, match="unique"):
        parse_accounts('[{"name": "x", "signal": "dqn"}, {"name": "x", "signal": "lstm"}]')


def test_silent_partitions_hold_back_the_others_only_as_far_as_they_should() -> None:
    merge: EventMerge[str] = EventMerge(max_skew_ms=60_000, ranks={"q": 0, "s": 1}, quiet_after_s=10.0)
    merge.assign([("q", 0), ("s", 0), ("s", 1)])
    for offset, ts in enumerate(range(0, 300_000, 1000)):
        merge.add("q", 0, offset, ts, f"q@{ts}", now=100.0)
    for source in (("q", 0), ("s", 0), ("s", 1)):
        merge.reached_end(*source)
    # every signal partition silent, heard from never: the quotes go no further than the skew behind the newest
    assert merge.watermark(now=100.0) == 299_000 - 60_000
    merge.add("s", 0, 0, 120_000, "s@120000", now=105.0)
    merge.reached_end("s", 0)
    assert merge.watermark(now=106.0) == 120_000  # a partition heard from 1 s ago holds the others at its time
    # quiet for longer: partition 1 (never spoke) and 0 go as far as their topic, then the skew bound
    assert merge.watermark(now=200.0) == 299_000 - 60_000
    merge.add("s", 0, 1, 290_000, "s@290000", now=200.0)
    merge.reached_end("s", 0)
    assert merge.watermark(now=220.0) == 290_000  # partition 1 keeps up with its topic, not the skew bound


def test_a_quiet_partition_that_has_spoken_is_waited_for_until_the_skew_bound() -> None:
    """A stream worker catching up a backlog closed partition 0's bars two minutes ahead of partition 1's, and
    partition 1 then said nothing for longer than the quiet time: its next bar close must still be in time."""
    merge: EventMerge[str] = EventMerge(max_skew_ms=600_000, ranks={"q": 0, "s": 1}, quiet_after_s=10.0)
    merge.assign([("q", 0), ("s", 0), ("s", 1)])
    for offset, ts in enumerate(range(0, 300_000, 1000)):
        merge.add("q", 0, offset, ts, f"q@{ts}", now=100.0)
    merge.add("s", 1, 0, 120_000, "s1@120000", now=100.0)
    merge.add("s", 0, 0, 240_000, "s0@240000", now=100.0)
    for source in (("q", 0), ("s", 0), ("s", 1)):
        merge.reached_end(*source)
    released = [item for *_, item in merge.release(now=130.0)]  # partition 1 quiet for 30 s
    assert merge.watermark(now=130.0) == 120_000 and released[-1] == "q@119000"
    merge.add("s", 1, 1, 180_000, "s1@180000", now=131.0)  # its next bar close: nothing newer was released
    assert [item for *_, item in merge.release(now=131.0)][:2] == ["q@120000", "s1@120000"]
    merge.reached_end("s", 1)
    assert merge.watermark(now=1000.0) == 180_000  # still its own time: 299,000 - 600,000 is further back


def test_a_unit_worth_less_than_a_lot_is_rejected_with_the_reason() -> None:
    executor = _executor(unit_value=50_000.0)  # 1,000 shares at 100 cost 100,000
    executor.apply(_book(T0, 0))
    out = executor.apply(_action(T0 + 1, 1))
    assert [(r.event, r.reason) for r in out if isinstance(r, Order)] == [
        (OrderEvent.REJECTED, "one unit (50,000) buys less than a lot of 1000 at 100.25")
    ]
