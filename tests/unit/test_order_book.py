"""The book built from market-by-order events: the same levels as a plain re-aggregation of the resting orders after
any sequence of events (valid or not), time priority, the venue's sequence policies, and its state."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.orders.book import ASK, BID, Anomaly, OrderBook
from tapewatch.detectors.orders.level2 import Level2Feed
from tapewatch.detectors.orders.params import Level2Params
from tapewatch.records import Book, OrderBookEvent, Quote


def event(seq: int, action: str, ts: int | None = None, **fields: Any) -> OrderBookEvent:
    return OrderBookEvent(
        symbol="X", venue="v", ts=1_000 + seq if ts is None else ts, sequence=seq, action=action, **fields
    )


def add(seq: int, oid: str, side: str, price: float, size: float, **kw: Any) -> OrderBookEvent:
    return event(seq, "add", order_id=oid, side=side, price=price, size=size, **kw)


# --- the book against a plain model ------------------------------------------------------------------------------
ORDER_IDS = st.sampled_from([f"o{i}" for i in range(12)])
PRICES = st.sampled_from([9.8, 9.9, 10.0, 10.1, 10.2, 10.3, 10.4])
SIZES = st.sampled_from([0.1, 0.2, 0.3, 1.0, 2.5, 7.0])
ACTIONS = st.one_of(
    st.tuples(st.just("add"), ORDER_IDS, st.sampled_from(["BUY", "SELL"]), PRICES, SIZES),
    st.tuples(st.just("cancel"), ORDER_IDS, st.none(), st.none(), st.sampled_from([0.0, 0.1, 1.0, 100.0])),
    st.tuples(st.just("fill"), ORDER_IDS, st.none(), st.none(), SIZES),
    st.tuples(st.just("modify"), ORDER_IDS, st.sampled_from(["BUY", "SELL"]), PRICES, SIZES),
    st.tuples(st.just("trade"), st.none(), st.sampled_from(["BUY", "SELL", None]), PRICES, SIZES),
    st.tuples(st.just("clear"), st.none(), st.none(), st.none(), st.just(0.0)),
)


def to_event(seq: int, spec: tuple[str, str | None, str | None, float | None, float]) -> OrderBookEvent:
    action, oid, side, price, size = spec
    return event(seq, action, order_id=oid, side=side, price=price, size=size)


def replay_plainly(events: list[OrderBookEvent]) -> dict[str, tuple[int, float, float]]:
    """order id → (side, price, size): what rests, by the rules in their plainest form."""
    resting: dict[str, tuple[int, float, float]] = {}
    for e in events:
        oid = e.order_id or ""
        if e.action == "clear":
            resting.clear()
        elif e.action == "add" and oid not in resting:
            resting[oid] = (BID if e.side == "BUY" else ASK, e.price or 0.0, e.size)
        elif e.action in ("cancel", "fill") and oid in resting:
            sign, price, size = resting[oid]
            left = 0.0 if e.action == "cancel" and (e.size == 0 or e.size >= size) else size - e.size
            if left > 1e-9:
                resting[oid] = (sign, price, left)
            else:
                del resting[oid]
        elif e.action == "modify" and oid in resting:
            resting[oid] = (resting[oid][0], e.price or 0.0, e.size)
    return resting


def levels(resting: dict[str, tuple[int, float, float]], sign: int) -> list[tuple[float, float]]:
    sums: dict[float, float] = {}
    for side, price, size in resting.values():
        if side == sign:
            sums[price] = sums.get(price, 0.0) + size
    return sorted(sums.items(), reverse=sign == BID)


def assert_same_levels(book: OrderBook, resting: dict[str, tuple[int, float, float]]) -> None:
    for sign in (BID, ASK):
        got = book.top(sign, 100)
        want = levels(resting, sign)
        assert [p for p, _ in got] == [p for p, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-9)
    assert set(book.orders) == set(resting)


@settings(max_examples=150, deadline=None)
@given(st.lists(ACTIONS, max_size=80))
def test_the_book_holds_what_a_plain_replay_holds(specs: list[Any]) -> None:
    events = [to_event(i, spec) for i, spec in enumerate(specs, start=1)]
    book = OrderBook()
    for e in events:
        book.on_order(e)
    assert_same_levels(book, replay_plainly(events))
    assert all(level.orders and level.size > 0 for side in (book.bids, book.asks) for level in side.levels.values())


@settings(max_examples=100, deadline=None)
@given(st.lists(ACTIONS, max_size=60), st.integers(min_value=0, max_value=60))
def test_a_book_restored_from_its_state_goes_on_as_the_original(specs: list[Any], cut: int) -> None:
    events = [to_event(i, spec) for i, spec in enumerate(specs, start=1)]
    original = OrderBook("increasing")
    for e in events[:cut]:
        original.on_order(e)
    restored = OrderBook.from_state(original.to_state(), "increasing")
    for e in events[cut:]:
        a, b = original.on_order(e), restored.on_order(e)
        assert (a.anomaly, a.trade, a.top_changed) == (b.anomaly, b.trade, b.top_changed)
        assert (a.departed is None) == (b.departed is None)
        if a.departed and b.departed:
            assert (a.departed.queue_ahead, a.departed.reason) == (b.departed.queue_ahead, b.departed.reason)
    assert original.to_state() == restored.to_state()


# --- time priority and lifecycles ---------------------------------------------------------------------------------
def test_orders_queue_in_time_and_a_cancel_says_what_rested_ahead() -> None:
    book = OrderBook()
    book.on_order(add(1, "a", "SELL", 10.0, 2.0))
    book.on_order(add(2, "b", "SELL", 10.0, 3.0))
    book.on_order(add(3, "c", "SELL", 10.0, 4.0))
    assert book.orders["c"].ahead == 5.0
    book.on_order(event(4, "fill", order_id="a", size=2.0))
    gone = book.on_order(event(5, "cancel", order_id="c", ts=9_000)).departed
    assert gone is not None and gone.reason == "cancelled"
    assert (gone.queue_ahead, gone.age_ms, gone.order.placed_size) == (3.0, 9_000 - 1_003, 4.0)


def test_a_smaller_size_keeps_the_place_and_a_new_price_loses_it() -> None:
    book = OrderBook()
    for seq, oid in enumerate("abc", start=1):
        book.on_order(add(seq, oid, "BUY", 10.0, 5.0))
    book.on_order(event(4, "modify", order_id="a", side="BUY", price=10.0, size=1.0))
    assert list(book.bids.levels[10.0].orders) == ["a", "b", "c"]
    book.on_order(event(5, "modify", order_id="a", side="BUY", price=10.0, size=6.0))
    assert list(book.bids.levels[10.0].orders) == ["b", "c", "a"]
    book.on_order(event(6, "modify", order_id="b", side="BUY", price=10.1, size=5.0))
    assert book.top(BID) == [(10.1, 5.0), (10.0, 11.0)]
    assert book.orders["b"].modifications == 1 and book.orders["a"].modifications == 2


def test_a_fill_that_empties_an_order_is_its_departure_and_an_overfill_is_flagged() -> None:
    book = OrderBook()
    book.on_order(add(1, "a", "BUY", 10.0, 5.0))
    partial = book.on_order(event(2, "fill", order_id="a", size=2.0))
    assert partial.departed is None and book.top(BID) == [(10.0, 3.0)]
    last = book.on_order(event(3, "fill", order_id="a", size=4.0))
    assert last.anomaly is Anomaly.OVERFILL and not last.anomaly.refused
    assert last.departed is not None and last.departed.reason == "filled"
    assert (last.departed.order.filled, last.departed.order.fills) == (5.0, 2)
    assert book.top(BID) == [] and not book.orders


def test_an_order_taken_in_decimal_pieces_leaves_no_floating_point_remainder() -> None:
    """A Bitstamp taker's remaining volumes (BTC, 1e-8 units): its 18 fills, each what the venue said it lost,
    add up to the order in decimals but not in floating point; the last one takes it all, and nothing rests at the
    taker's limit, past the touch, for ever."""
    volumes = [1.62064586, 1.49964586, 1.4358044, 1.3758044, 1.3008044, 1.23696379, 1.18696379, 0.86777605,
               0.71777605, 0.64777605, 0.64636575, 0.55890085, 0.55752344, 0.23834719, 0.16834719, 0.10834719,
               0.09557723, 0.09464181, 0.0]  # fmt: skip
    pieces = [round(before - after, 8) for before, after in pairwise(volumes)]
    remainder = volumes[0]
    for piece in pieces:
        remainder -= piece
    assert remainder != 0.0, "the pieces must leave a floating-point remainder, or this tests nothing"
    book = OrderBook()
    book.on_order(add(1, "taker", "BUY", 79_116.0, volumes[0]))
    steps = [book.on_order(event(2 + i, "fill", order_id="taker", size=piece)) for i, piece in enumerate(pieces)]
    assert all(step.anomaly is None for step in steps)
    assert steps[-1].departed is not None and steps[-1].departed.reason == "filled"
    assert book.top(BID) == [] and not book.orders


def test_placement_records_its_distance_from_the_touch() -> None:
    book = OrderBook()
    book.on_order(add(1, "a", "BUY", 10.0, 1.0))
    book.on_order(add(2, "b", "BUY", 9.9, 1.0))
    book.on_order(add(3, "c", "BUY", 9.7, 1.0))
    book.on_order(add(4, "d", "BUY", 10.1, 1.0))
    assert [(book.orders[o].touch_gap, book.orders[o].best_then) for o in "abcd"] == [
        (0, None),
        (1, 10.0),
        (2, 10.0),
        (0, 10.0),
    ]


# --- the venue's sequence -----------------------------------------------------------------------------------------
def test_contiguous_feed_goes_stale_on_a_gap_until_a_clear_and_refuses_replays() -> None:
    book = OrderBook("contiguous")
    assert book.on_order(add(1, "a", "BUY", 10.0, 1.0)).anomaly is None
    assert book.on_order(add(1, "a2", "BUY", 10.0, 1.0)).anomaly is Anomaly.REPLAYED
    assert "a2" not in book.orders
    gap = book.on_order(add(5, "b", "BUY", 10.0, 1.0))
    assert gap.anomaly is Anomaly.GAP and book.stale and "b" in book.orders
    assert book.on_order(event(6, "clear")).anomaly is None and not book.stale
    assert book.on_order(add(7, "c", "BUY", 10.0, 1.0, snapshot=True)).anomaly is None
    assert list(book.orders) == ["c"] and book.orders["c"].snapshot


def test_an_unknown_order_on_a_contiguous_feed_means_lost_events() -> None:
    contiguous, unnumbered = OrderBook("contiguous"), OrderBook("none")
    for book in (contiguous, unnumbered):
        step = book.on_order(event(1, "cancel", order_id="ghost"))
        assert step.anomaly is Anomaly.UNKNOWN_ORDER and step.anomaly.refused
    assert contiguous.stale and not unnumbered.stale
    # refused, it was still the event numbered 1: number 2 is next in turn, so it is no gap, and its duplicate is
    # refused as one sent again
    assert contiguous.on_order(add(2, "a", "BUY", 10.0, 1.0)).anomaly is None
    assert contiguous.on_order(add(2, "a", "BUY", 10.0, 1.0)).anomaly is Anomaly.REPLAYED


def test_increasing_feed_allows_gaps_but_not_going_back() -> None:
    book = OrderBook("increasing")
    book.on_order(add(10, "a", "BUY", 10.0, 1.0))
    assert book.on_order(add(20, "b", "BUY", 10.0, 1.0)).anomaly is None
    assert book.on_order(add(15, "c", "BUY", 10.0, 1.0)).anomaly is Anomaly.REPLAYED
    assert not book.stale and set(book.orders) == {"a", "b"}


def test_a_duplicate_add_is_refused_and_changes_nothing() -> None:
    book = OrderBook()
    book.on_order(add(1, "a", "BUY", 10.0, 1.0))
    assert book.on_order(add(2, "a", "SELL", 11.0, 9.0)).anomaly is Anomaly.DUPLICATE_ORDER
    assert book.top(BID) == [(10.0, 1.0)] and book.top(ASK) == []


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="sequence policy"):
        OrderBook("sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="depth"):
        OrderBook(depth=0)


# --- the level-2 feed derived from it -----------------------------------------------------------------------------
def test_books_go_out_after_their_millisecond_and_at_most_every_book_ms() -> None:
    feed = Level2Feed("X", "v", params=Level2Params(book_ms=100))
    out: list[Quote | Book] = []
    for seq, ts in enumerate([1_000, 1_000, 1_050, 1_120, 1_400], start=1):
        out += feed.on_order(add(seq, f"o{seq}", "BUY", 10.0 + seq / 100, 1.0, ts=ts)).records
    out += feed.flush()
    books = [r for r in out if isinstance(r, Book)]
    # 1,050's change waits for the cadence (1,100); 1,120's too (1,200); 1,400's goes out at the end of the input
    assert [b.ts for b in books] == [1_000, 1_100, 1_200, 1_400]
    assert [len(b.bids) for b in books] == [2, 3, 4, 5]
    assert books[0].bids == [(10.02, 1.0), (10.01, 1.0)]


def test_a_trade_goes_out_with_its_side_and_the_touch_and_a_stale_book_stays_in() -> None:
    feed = Level2Feed("X", "v", sequence="contiguous", params=Level2Params(book_ms=1))
    feed.on_order(add(1, "b", "BUY", 9.9, 2.0))
    feed.on_order(add(2, "a", "SELL", 10.0, 2.0))
    trade = [
        r for r in feed.on_order(event(3, "trade", side="BUY", price=10.0, size=1.0)).records if isinstance(r, Quote)
    ]
    assert [(q.price, q.size, q.side, q.bid, q.ask) for q in trade] == [(10.0, 1.0, "B", 9.9, 10.0)]
    feed.on_order(event(4, "fill", order_id="a", size=1.0))
    feed.on_order(add(9, "c", "SELL", 10.1, 1.0))  # events 5-8 lost
    assert feed.book.stale
    assert not [r for r in feed.on_order(add(10, "d", "SELL", 10.2, 1.0)).records if isinstance(r, Book)]
    assert feed.flush() == []
    feed.on_order(event(11, "clear"))
    feed.on_order(add(12, "e", "BUY", 9.8, 1.0, snapshot=True))
    resynced = feed.flush()
    assert len(resynced) == 1 and isinstance(resynced[0], Book)
    assert (resynced[0].bids, resynced[0].asks) == ([(9.8, 1.0)], [])
