"""The book's sides in their plainest form, the reference the fast ones are held equal to: prices in a
:class:`~sortedcontainers.SortedList`, ranks and the top read off it directly."""

from __future__ import annotations

from itertools import islice
from typing import ClassVar

from sortedcontainers import SortedList

from tapewatch.detectors.orders.book import BID, SIZE_DECIMALS, BookSide, OrderBook, PriceLevel, RestingOrder


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
    """The book on the reference sides."""

    side_type: ClassVar[type[BookSide]] = SortedBookSide
