"""The book's sides in their plainest form, the reference the fast ones are held equal to: prices in a
:class:`~sortedcontainers.SortedList`, ranks and the top read off it directly; and the book's sequence check and
visible depth as first written (a method each, the depth summed over the top's levels), which the fast book reads in
line, and its dispatch of an event and its fill as first written (the enum's members, ``min``), which the fast book
writes with module constants and a comparison."""

from __future__ import annotations

from itertools import islice
from typing import ClassVar

from sortedcontainers import SortedList

from tapewatch.detectors.orders.book import (
    ASK,
    BID,
    SIZE_DECIMALS,
    SIZE_TOLERANCE,
    Anomaly,
    BookSide,
    Departure,
    OrderBook,
    PriceLevel,
    RestingOrder,
    Step,
)
from tapewatch.records import BookAction, OrderBookEvent, OrderSide


class SortedBookSide(BookSide):
    """One side's levels, its prices in a sorted list."""

    def __init__(self, sign: int) -> None:
        super().__init__(sign)
        self.sorted: SortedList[float] = SortedList()

    def best(self) -> float | None:
        if not self.sorted:
            return None
        return self.sorted[-1] if self.sign == BID else self.sorted[0]

    def rank(self, price: float) -> int:
        if self.sign == BID:
            return len(self.sorted) - self.sorted.bisect_right(price)
        return int(self.sorted.bisect_left(price))

    def top(self, depth: int) -> list[tuple[float, float]]:
        prices = islice(reversed(self.sorted), depth) if self.sign == BID else islice(self.sorted, depth)
        return [(p, self.levels[p].size) for p in prices]

    def depth_sizes(self, depth: int) -> list[float]:
        return [size for _, size in self.top(depth)]

    def join(self, order: RestingOrder) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = PriceLevel()
            self.sorted.add(order.price)
        order.ahead = level.size
        level.size = round(level.size + order.size, SIZE_DECIMALS)
        level.orders[order.order_id] = order

    def take(self, order: RestingOrder, size: float) -> None:
        level = self.levels[order.price]
        order.size -= size
        if order.size <= 0:
            order.size = 0.0
            del level.orders[order.order_id]
        level.size = max(0.0, round(level.size - size, SIZE_DECIMALS)) if level.orders else 0.0
        if not level.orders:
            del self.levels[order.price]
            self.sorted.remove(order.price)


class ReferenceBook(OrderBook):
    """The book on the reference sides, its sequence checked and its depth read as first written."""

    side_type: ClassVar[type[BookSide]] = SortedBookSide

    def visible_depth(self, side: OrderSide | None, depth: int | None = None) -> float:
        if side is None:
            return 0.0
        return sum(size for _, size in self.top(BID if side is OrderSide.BUY else ASK, depth))

    def on_order(self, event: OrderBookEvent) -> Step:
        sequenced = self._sequenced(event.sequence)
        if sequenced is Anomaly.REPLAYED:
            return Step(anomaly=sequenced)
        step = self._apply(event)
        if step.anomaly is Anomaly.UNKNOWN_ORDER and self.sequence == "contiguous":
            self.stale = True
        if sequenced is Anomaly.GAP and step.anomaly is None:
            step.anomaly = sequenced
        if self.sequence != "none":  # numbered in turn, even if refused: the next one is not a gap
            self.last_sequence = event.sequence
        return step

    def _sequenced(self, sequence: int) -> Anomaly | None:
        last = self.last_sequence
        if self.sequence == "none" or last is None:
            return None
        if sequence <= last:
            return Anomaly.REPLAYED
        if self.sequence == "contiguous" and sequence > last + 1:
            self.stale = True
            return Anomaly.GAP
        return None

    def _apply(self, event: OrderBookEvent) -> Step:
        action = event.action
        if action is BookAction.TRADE:
            aggressor = None if event.side is None else (BID if event.side is OrderSide.BUY else ASK)
            return Step(trade=(event.price or 0.0, event.size, aggressor))
        if action is BookAction.CLEAR:
            self.clear()
            return Step(top_changed=True)
        order_id = event.order_id or ""
        if action is BookAction.ADD:
            if order_id in self.orders:
                return Step(anomaly=Anomaly.DUPLICATE_ORDER)
            sign = BID if event.side is OrderSide.BUY else ASK
            return self._add(order_id, sign, event.price or 0.0, event.size, event.ts, event.snapshot)
        order = self.orders.get(order_id)
        if order is None:
            return Step(anomaly=Anomaly.UNKNOWN_ORDER)
        if action is BookAction.CANCEL:
            return self._cancel(order, event.size, event.ts)
        if action is BookAction.FILL:
            return self._fill(order, event.size, event.ts)
        return self._modify(order, event.price or order.price, event.size)

    def _fill(self, order: RestingOrder, size: float, ts: int) -> Step:
        book_side = self.bids if order.side == BID else self.asks
        top_changed = book_side.rank(order.price) < self.depth
        anomaly = Anomaly.OVERFILL if size > order.size * (1 + SIZE_TOLERANCE) else None
        size = min(size, order.size)
        order.filled += size
        order.fills += 1
        if size < order.size * (1 - SIZE_TOLERANCE):
            book_side.take(order, size)
            return Step(anomaly=anomaly, top_changed=top_changed)
        ahead = book_side.ahead_of(order)
        book_side.take(order, order.size)
        del self.orders[order.order_id]
        return Step(anomaly=anomaly, departed=Departure(order, ts, "filled", ahead), top_changed=top_changed)
