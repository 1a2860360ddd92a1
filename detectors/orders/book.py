"""One symbol's book built from its market-by-order events: price-time queues, and each resting order's lifecycle.

Each side keeps its prices in a plain sorted list (found by bisection in O(log levels); adding or dropping a price
moves the prices after it, a short memmove for the tens a side holds) and, per price, its orders in time priority (a
dict keeps insertion order; removing one is O(1)); an order id finds its order in O(1). Memory is the resting orders:
an order is forgotten the moment it leaves the book, when what it did goes out as a :class:`Departure` (placed when
and how large, against what level, filled, modified, cancelled, and how much rested ahead of it when it left).

The venue's sequence is checked by its stated policy (``contiguous``: each event numbered one after the last;
``increasing``: numbers only rise; ``none``: the feed has none). An event numbered at or before the last is refused
(a duplicate or out of order). A gap, or an order id the book does not hold on a contiguous feed, means events were
lost: the book is **stale until resync** (a ``clear`` and the adds of a new image), and what is derived from it
says so. Refused events leave the book as it was and are reported with their reason, never raised.

>>> from tapewatch.records import OrderBookEvent
>>> book = OrderBook()
>>> e = lambda seq, action, **kw: OrderBookEvent(symbol="X", venue="v", ts=1_000 + seq, sequence=seq,
...                                              action=action, **kw)
>>> _ = book.on_order(e(1, "add", order_id="a", side="BUY", price=10.0, size=5.0))
>>> _ = book.on_order(e(2, "add", order_id="b", side="BUY", price=10.0, size=3.0))
>>> book.top(BID, 5)
[(10.0, 8.0)]
>>> step = book.on_order(e(3, "cancel", order_id="b"))
>>> step.departed.reason, step.departed.queue_ahead, step.departed.age_ms
('cancelled', 5.0, 1)
>>> book.on_order(e(4, "fill", order_id="zz", size=1.0)).anomaly
<Anomaly.UNKNOWN_ORDER: 'unknown order id'>
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Final, Literal

from mypy_extensions import mypyc_attr

from tapewatch.feeds import ORDER_SEQUENCES, OrderSequence
from tapewatch.records import ADD, BUY_SIDE, CANCEL, CLEAR, FILL, TRADE, OrderBookEvent, OrderSide

BID: Final = 1
ASK: Final = -1
DepartureReason = Literal["filled", "cancelled", "cleared"]
#: a level's size is a running sum: rounded to the record contract's smallest size so that it never drifts off the sum
#: of its orders (0.1 + 0.2 − 0.3 is 5.6e-17, not 0)
SIZE_DECIMALS: Final = 9


#: a fill or cancel within this share of what rests takes all of it: decimal sizes (a crypto venue's 1e-8 BTC) taken
#: piece by piece in floating point leave a remainder of about 1e-16 of the order where the venue left none, and a
#: remainder that never goes would rest at its price for ever (a taker's limit past the touch: a book crossed for good)
SIZE_TOLERANCE: Final = 1e-9


class Anomaly(StrEnum):
    """What was wrong with an event; :attr:`refused` ones left the book untouched."""

    REPLAYED = "sequence at or before the last"
    GAP = "sequence gap: the book is stale until resync"
    UNKNOWN_ORDER = "unknown order id"
    DUPLICATE_ORDER = "order id already resting"
    OVERFILL = "fill larger than what rests"

    @property
    def refused(self) -> bool:
        return self in (Anomaly.REPLAYED, Anomaly.UNKNOWN_ORDER, Anomaly.DUPLICATE_ORDER)


@dataclass(slots=True)
class RestingOrder:
    """A resting order and what happened to it so far."""

    order_id: str
    side: int
    price: float
    size: float
    placed_ts: int
    placed_size: float
    #: what rested at its price ahead of it when it took its place in the queue
    ahead: float
    #: how many better prices its side had when it was placed (0: it set or joined the touch), and the best then
    touch_gap: int
    best_then: float | None
    #: part of a book image (a subscription's first or a resync): it was resting before the feed saw it
    snapshot: bool
    filled: float = 0.0
    fills: int = 0
    modifications: int = 0
    cancelled: float = 0.0


@dataclass(frozen=True, slots=True)
class Departure:
    """An order that left the book, and how: filled, cancelled, or cleared with the book."""

    order: RestingOrder
    ts: int
    reason: DepartureReason
    #: what rested ahead of it at its price when it left (FIFO)
    queue_ahead: float

    @property
    def age_ms(self) -> int:
        return self.ts - self.order.placed_ts


@dataclass(slots=True)
class Step:
    """What one event did: refused or flagged (``anomaly``), an order that left, a trade, a change in the top."""

    anomaly: Anomaly | None = None
    departed: Departure | None = None
    #: (price, size, aggressor side: +1 buy, -1 sell, None when the venue does not say)
    trade: tuple[float, float, int | None] | None = None
    top_changed: bool = False


@dataclass(slots=True)
class PriceLevel:
    size: float = 0.0
    orders: dict[str, RestingOrder] = field(default_factory=dict)


#: compiled by mypyc (``make compiled``), a class Python code subclasses must say so: the reference book
#: (``tests/order_book_reference.py``) subclasses the side and the book
@mypyc_attr(allow_interpreted_subclasses=True)
class BookSide:
    """One side's levels: prices sorted ascending in a plain list (best last for bids, first for asks), found by
    bisection. A side holds tens of prices, so inserting or dropping one is a short memmove, cheaper than a balanced
    structure's bookkeeping."""

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[float, PriceLevel] = {}
        self.prices: list[float] = []

    def best(self) -> float | None:
        prices = self.prices
        if not prices:
            return None
        return prices[-1] if self.sign == BID else prices[0]

    def rank(self, price: float) -> int:
        """How many prices of this side are better than ``price``."""
        if self.sign == BID:
            return len(self.prices) - bisect_right(self.prices, price)
        return bisect_left(self.prices, price)

    def top(self, depth: int) -> list[tuple[float, float]]:
        levels = self.levels
        prices = self.prices[: -depth - 1 : -1] if self.sign == BID else self.prices[:depth]
        return [(p, levels[p].size) for p in prices]

    def depth_sizes(self, depth: int) -> list[float]:
        """The sizes of :meth:`top`, best first, without their prices (what a visible depth adds up)."""
        levels = self.levels
        prices = self.prices[: -depth - 1 : -1] if self.sign == BID else self.prices[:depth]
        return [levels[p].size for p in prices]

    def join(self, order: RestingOrder) -> None:
        """Put ``order`` at the back of its price's queue."""
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = PriceLevel()
            insort(self.prices, order.price)
        order.ahead = level.size
        level.size = round(level.size + order.size, SIZE_DECIMALS)
        level.orders[order.order_id] = order

    def take(self, order: RestingOrder, size: float) -> None:
        """Take ``size`` off ``order`` (all of it leaves the queue)."""
        level = self.levels[order.price]
        order.size -= size
        if order.size <= 0:
            order.size = 0.0
            del level.orders[order.order_id]
        # max(0.0, left) written out: it runs for every fill and cancel, and the builtin's call costs more than the
        # comparison (the same value, 0.0 for a negative zero too)
        left = round(level.size - size, SIZE_DECIMALS) if level.orders else 0.0
        level.size = left if left > 0.0 else 0.0
        if not level.orders:
            del self.levels[order.price]
            del self.prices[bisect_left(self.prices, order.price)]

    def ahead_of(self, order: RestingOrder) -> float:
        """What rests ahead of ``order`` in its queue."""
        ahead = 0.0
        for other in self.levels[order.price].orders.values():
            if other is order:
                return ahead
            ahead += other.size
        return ahead


@mypyc_attr(allow_interpreted_subclasses=True)
class OrderBook:
    """One symbol's book from its market-by-order events (verb ``on_order``); ``depth`` is how many levels a
    derived book shows, which decides when the top changed."""

    #: how a side keeps its levels
    side_type: ClassVar[type[BookSide]] = BookSide

    def __init__(self, sequence: OrderSequence = "none", depth: int = 5) -> None:
        if sequence not in ORDER_SEQUENCES:
            raise ValueError(f"sequence policy {sequence!r}: one of {', '.join(ORDER_SEQUENCES)}")
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.sequence, self.depth = sequence, depth
        self.bids, self.asks = self.side_type(BID), self.side_type(ASK)
        self.orders: dict[str, RestingOrder] = {}
        self.last_sequence: int | None = None
        self.stale = False

    def side(self, sign: int) -> BookSide:
        return self.bids if sign == BID else self.asks

    def top(self, sign: int, depth: int | None = None) -> list[tuple[float, float]]:
        return self.side(sign).top(self.depth if depth is None else depth)

    def visible_depth(self, side: OrderSide | None, depth: int | None = None) -> float:
        """What rests on ``side`` over ``depth`` levels (the book's depth by default; 0 for no side)."""
        if side is None:
            return 0.0
        book_side = self.bids if side is BUY_SIDE else self.asks
        # the same sizes added in the same order as over top(): the same float
        return sum(book_side.depth_sizes(self.depth if depth is None else depth))

    def on_order(self, event: OrderBookEvent) -> Step:
        policy = self.sequence
        if policy == "none":
            return self._apply(event)
        # the venue's numbering, checked here rather than in a method of its own: it runs for every event
        sequence, last, gap = event.sequence, self.last_sequence, False
        if last is not None:
            if sequence <= last:
                return Step(anomaly=Anomaly.REPLAYED)
            if policy == "contiguous" and sequence > last + 1:
                self.stale = gap = True
        step = self._apply(event)
        if step.anomaly is not None:
            if step.anomaly is Anomaly.UNKNOWN_ORDER and policy == "contiguous":
                self.stale = True
        elif gap:
            step.anomaly = Anomaly.GAP
        self.last_sequence = sequence  # numbered in turn, even if refused: the next one is not a gap
        return step

    def _apply(self, event: OrderBookEvent) -> Step:
        action = event.action
        if action is TRADE:
            aggressor = None if event.side is None else (BID if event.side is BUY_SIDE else ASK)
            return Step(trade=(event.price or 0.0, event.size, aggressor))
        if action is CLEAR:
            self.clear()
            return Step(top_changed=True)
        order_id = event.order_id or ""
        if action is ADD:
            if order_id in self.orders:
                return Step(anomaly=Anomaly.DUPLICATE_ORDER)
            sign = BID if event.side is BUY_SIDE else ASK
            return self._add(order_id, sign, event.price or 0.0, event.size, event.ts, event.snapshot)
        order = self.orders.get(order_id)
        if order is None:
            return Step(anomaly=Anomaly.UNKNOWN_ORDER)
        if action is CANCEL:
            return self._cancel(order, event.size, event.ts)
        if action is FILL:
            return self._fill(order, event.size, event.ts)
        return self._modify(order, event.price or order.price, event.size)

    def _add(self, order_id: str, sign: int, price: float, size: float, ts: int, snapshot: bool) -> Step:
        book_side = self.bids if sign == BID else self.asks
        rank = book_side.rank(price)
        order = RestingOrder(order_id, sign, price, size, ts, size, 0.0, rank, book_side.best(), snapshot)
        book_side.join(order)
        self.orders[order_id] = order
        return Step(top_changed=rank < self.depth)

    def _cancel(self, order: RestingOrder, size: float, ts: int) -> Step:
        book_side = self.bids if order.side == BID else self.asks
        top_changed = book_side.rank(order.price) < self.depth
        if 0 < size < order.size * (1 - SIZE_TOLERANCE):
            book_side.take(order, size)
            order.cancelled += size
            return Step(top_changed=top_changed)
        ahead = book_side.ahead_of(order)
        order.cancelled += order.size
        book_side.take(order, order.size)
        del self.orders[order.order_id]
        return Step(departed=Departure(order, ts, "cancelled", ahead), top_changed=top_changed)

    def _fill(self, order: RestingOrder, size: float, ts: int) -> Step:
        book_side = self.bids if order.side == BID else self.asks
        top_changed = book_side.rank(order.price) < self.depth
        anomaly = Anomaly.OVERFILL if size > order.size * (1 + SIZE_TOLERANCE) else None
        size = order.size if order.size < size else size  # min(size, order.size), without the builtin's call
        order.filled += size
        order.fills += 1
        if size < order.size * (1 - SIZE_TOLERANCE):
            book_side.take(order, size)
            return Step(anomaly=anomaly, top_changed=top_changed)
        ahead = book_side.ahead_of(order)
        book_side.take(order, order.size)
        del self.orders[order.order_id]
        return Step(anomaly=anomaly, departed=Departure(order, ts, "filled", ahead), top_changed=top_changed)

    def _modify(self, order: RestingOrder, price: float, size: float) -> Step:
        """A new price or a larger size sends the order to the back of its (new) queue; a smaller size keeps its
        place (the priority rule of the venues that publish market-by-order feeds)."""
        book_side = self.bids if order.side == BID else self.asks
        top_changed = book_side.rank(order.price) < self.depth or book_side.rank(price) < self.depth
        order.modifications += 1
        if price == order.price and size <= order.size:
            book_side.take(order, order.size - size)
            return Step(top_changed=top_changed)
        book_side.take(order, order.size)
        order.price, order.size = price, size
        book_side.join(order)
        self.orders[order.order_id] = self.orders.pop(order.order_id)  # time priority: now the newest
        return Step(top_changed=top_changed)

    def clear(self) -> None:
        """Empty the book; a resync's image follows, so the book is no longer stale."""
        self.bids, self.asks = self.side_type(BID), self.side_type(ASK)
        self.orders.clear()
        self.stale = False

    # --- state --------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The resting orders in time priority, with their lifecycles so far."""
        return {
            "last_sequence": self.last_sequence,
            "stale": self.stale,
            "orders": [
                [
                    o.order_id,
                    o.side,
                    o.price,
                    o.size,
                    o.placed_ts,
                    o.placed_size,
                    o.ahead,
                    o.touch_gap,
                    o.best_then,
                    o.snapshot,
                    o.filled,
                    o.fills,
                    o.modifications,
                    o.cancelled,
                ]
                for o in self.orders.values()
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], sequence: OrderSequence = "none", depth: int = 5) -> OrderBook:
        book = cls(sequence, depth)
        for row in state["orders"]:
            oid, sign, price, size, placed_ts, placed_size, ahead, gap, best, snap, filled, fills, mods, cancelled = row
            order = RestingOrder(
                oid, sign, price, size, placed_ts, placed_size, 0.0, gap, best, snap, filled, fills, mods, cancelled
            )
            book.side(sign).join(order)
            order.ahead = ahead
            book.orders[oid] = order
        book.last_sequence, book.stale = state["last_sequence"], state["stale"]
        return book
