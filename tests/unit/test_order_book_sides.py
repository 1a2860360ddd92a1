"""The book's fast sides (a plain sorted list, bisection) against the reference ones (a SortedList), and its sequence
check and visible depth against their first form: the same step, the same levels, the same depth and the same state
after every event of any sequence, valid or not, numbered in turn or not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.orders.book import ASK, BID, OrderBook
from tapewatch.records import OrderSide
from tests.order_book_reference import ReferenceBook
from tests.unit.test_order_book import ACTIONS, to_event

#: many prices, so that levels open and close far from the touch as well as at it
WIDE_PRICES = st.integers(min_value=950, max_value=1_050).map(lambda cents: cents / 100)
WIDE_ACTIONS = st.one_of(
    ACTIONS,
    st.tuples(
        st.just("add"),
        st.sampled_from([f"w{i}" for i in range(40)]),
        st.sampled_from(["BUY", "SELL"]),
        WIDE_PRICES,
        st.sampled_from([1.0, 3.0, 0.5]),
    ),
    st.tuples(st.just("cancel"), st.sampled_from([f"w{i}" for i in range(40)]), st.none(), st.none(), st.just(0.0)),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(WIDE_ACTIONS, max_size=150),
    st.sampled_from(["none", "contiguous", "increasing"]),
    st.integers(1, 5),
    st.lists(st.integers(-2, 3), max_size=150),
)
def test_fast_sides_step_for_step_as_the_reference(
    specs: list[tuple[str, str | None, str | None, float | None, float]],
    sequence: str,
    depth: int,
    skips: list[int],
) -> None:
    fast, reference = OrderBook(sequence, depth), ReferenceBook(sequence, depth)  # type: ignore[arg-type]
    seq = 0
    for i, spec in enumerate(specs):
        seq = max(0, seq + 1 + (skips[i] if i < len(skips) else 0))  # gaps, replays and repeats too
        e = to_event(seq, spec)
        assert fast.on_order(e) == reference.on_order(e)
        assert (fast.stale, fast.last_sequence) == (reference.stale, reference.last_sequence)
        for shown in (OrderSide.BUY, OrderSide.SELL, None):
            assert fast.visible_depth(shown) == reference.visible_depth(shown)
            assert fast.visible_depth(shown, 3) == reference.visible_depth(shown, 3)
        for sign in (BID, ASK):
            side, reference_side = fast.side(sign), reference.side(sign)
            assert side.best() == reference_side.best()
            assert side.top(depth) == reference_side.top(depth)
            assert [side.rank(p / 100) for p in range(950, 1_051, 7)] == [
                reference_side.rank(p / 100) for p in range(950, 1_051, 7)
            ]
        assert fast.to_state() == reference.to_state()
