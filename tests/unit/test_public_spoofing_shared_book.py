"""The public spoofing detector on a book another applies the events to (the stream's level-2 feed, which refuses
events numbered out of turn) against the detector on its own book, told only of the events that feed took: the same
hits and the same state, event for event."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.orders.level2 import Level2Feed
from tapewatch.detectors.orders.params import PublicSpoofingParams
from tapewatch.detectors.orders.public_spoofing import PublicSpoofing
from tapewatch.records import OrderBookEvent

#: every cycle counts at once: hits come from a handful of events
EAGER = PublicSpoofingParams(
    warmup_orders=0, min_cycles=1, size_multiple=1.5, rare_quantile=0.5, depth_share=0.1, surprise=0.999, pair_ms=0
)
ORDER_IDS = st.sampled_from([f"o{i}" for i in range(8)])
SIDES = st.sampled_from(["BUY", "SELL"])
PRICES = st.sampled_from([9.9, 10.0, 10.1, 10.2])
SIZES = st.sampled_from([1.0, 2.0, 40.0, 300.0])
SPECS = st.tuples(
    st.integers(0, 3),  # how far the sequence moves: 0 is out of turn, 2 or more a gap
    st.integers(0, 2_000),
    st.one_of(
        st.tuples(st.just("add"), ORDER_IDS, SIDES, PRICES, SIZES),
        st.tuples(st.just("cancel"), ORDER_IDS, st.none(), st.none(), st.sampled_from([0.0, 1.0, 500.0])),
        st.tuples(st.just("fill"), ORDER_IDS, st.none(), st.none(), SIZES),
        st.tuples(st.just("modify"), ORDER_IDS, SIDES, PRICES, SIZES),
        st.tuples(st.just("trade"), st.none(), st.sampled_from(["BUY", "SELL", None]), PRICES, SIZES),
        st.tuples(st.just("clear"), st.none(), st.none(), st.none(), st.just(0.0)),
    ),
)


#: a large order placed at the touch, the other side trading, the order pulled: a cycle
CYCLES = st.tuples(ORDER_IDS, SIDES, st.integers(1, 500)).map(
    lambda c: [
        (1, c[2], ("add", c[0], c[1], 10.0 if c[1] == "BUY" else 10.1, 300.0)),
        (1, c[2], ("trade", None, "SELL" if c[1] == "BUY" else "BUY", 10.0, 1.0)),
        (1, c[2], ("cancel", c[0], None, None, 0.0)),
    ]
)
EVENTS = st.lists(SPECS.map(lambda spec: [spec]) | CYCLES, max_size=60).map(lambda runs: [s for r in runs for s in r])


@settings(max_examples=400, deadline=None)
@given(EVENTS)
def test_on_the_feeds_book_as_on_its_own(specs: list[tuple[int, int, tuple[Any, ...]]]) -> None:
    feed = Level2Feed("X", "v", "contiguous")
    shared, own = PublicSpoofing(EAGER, book=feed.book), PublicSpoofing(EAGER)
    sequence, ts = 0, 0
    for step_by, wait, (action, oid, side, price, size) in specs:
        sequence, ts = sequence + step_by, ts + wait
        event = OrderBookEvent(
            symbol="X",
            venue="v",
            ts=ts,
            sequence=sequence,
            action=action,
            order_id=oid,
            side=side,
            price=price,
            size=size,
        )
        before = shared.before(event)
        step = feed.on_order(event).step
        if step.anomaly is not None and step.anomaly.refused:
            continue
        assert shared.after_book(event, step, before) == own.on_order(event)
        assert shared.to_state() == {name: part for name, part in own.to_state().items() if name != "book"}
    assert shared.flush() == own.flush()
