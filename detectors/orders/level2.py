"""The level-2 feed a market-by-order feed implies: its trades (``md.quotes``' records) and its five-level books
(``md.books``' records), so every detector of the trade-and-book path runs on a market-by-order feed unchanged.

A trade goes out as it prints, with its aggressor side and the touch before it, numbered one after the other
(``Quote.seq``: 1, 2, …). A book goes out when its top ``depth`` levels changed, once the events of that millisecond
are all in (a market order's fills share one), and at most every ``book_ms`` (a depth stream's cadence): stamped at
the change, or at the first moment the cadence allowed, so each book's time is later than the last one's. A reader
that has applied a trade or book therefore knows the same one sent again by its number or time.
While the book is stale (events were lost, :mod:`tapewatch.detectors.orders.book`), no book goes out: the next one is
that of the resynced book.

>>> from tapewatch.records import OrderBookEvent
>>> feed = Level2Feed("X", "v")
>>> e = lambda ts, action, **kw: OrderBookEvent(symbol="X", venue="v", ts=ts, sequence=ts, action=action, **kw)
>>> feed.on_order(e(1, "add", order_id="a", side="SELL", price=10.5, size=4.0)).records
[]
>>> [type(r).__name__ for r in feed.on_order(e(2, "trade", side="BUY", price=10.5, size=1.0)).records]
['Book', 'Quote']
>>> feed.flush()
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from tapewatch.detectors.orders.book import BID, OrderBook, Step
from tapewatch.detectors.orders.params import Level2Params
from tapewatch.feeds import OrderSequence
from tapewatch.records import MAX_SIZE, Book, OrderBookEvent, Quote, Side

#: the aggressor's sides as module constants (a member read off its enum class is slow: see ``tapewatch.records.ADD``)
BUYER: Final = Side.BUY
SELLER: Final = Side.SELL


@dataclass(slots=True)
class Derived:
    """What one market-by-order event gave: the book's step, and the level-2 records it released."""

    step: Step
    records: list[Quote | Book]


class Level2Feed:
    """One symbol's market-by-order events in, its trades and books out (verb ``on_order``)."""

    def __init__(
        self,
        symbol: str,
        venue: str,
        sequence: OrderSequence = "none",
        params: Level2Params | None = None,
        book: OrderBook | None = None,
    ) -> None:
        self.symbol, self.venue = symbol, venue
        self.params = params or Level2Params()
        self.book = book or OrderBook(sequence, self.params.depth)
        self.changed_at: int | None = None
        self.next_book = 0
        self.prints = 0

    def on_order(self, event: OrderBookEvent) -> Derived:
        """The event's trade, after the held-back book if the event's time releases it; an event the book refuses
        releases nothing (a duplicate's or a stray's time says nothing about the feed's)."""
        pending = None  # the held-back book, as it is before the event (what _due says, read in line)
        changed_at, book = self.changed_at, self.book
        if changed_at is not None and not book.stale:
            next_book = self.next_book
            stamp = changed_at if changed_at >= next_book else next_book  # max(), without its call
            if stamp < event.ts:
                pending = self._book(stamp)
        step = book.on_order(event)
        if step.anomaly is not None and step.anomaly.refused:
            return Derived(step, [])
        records: list[Quote | Book] = []
        if pending is not None:
            self.changed_at, self.next_book = None, pending.ts + self.params.book_ms
            records.append(pending)
        if step.top_changed and self.changed_at is None:
            self.changed_at = event.ts
        if step.trade is not None:
            records.append(self._quote(event, step.trade))
        return Derived(step, records)

    def flush(self) -> list[Quote | Book]:
        """The book still held back at the end of the input."""
        if self.changed_at is None or self.book.stale:
            return []
        book = self._book(max(self.changed_at, self.next_book))
        self.changed_at, self.next_book = None, book.ts + self.params.book_ms
        return [book]

    def _due(self, now: int) -> int | None:
        """The held-back book's time, if its millisecond is over and the cadence allows it before ``now``."""
        changed_at = self.changed_at
        if changed_at is None or self.book.stale:
            return None
        stamp = max(changed_at, self.next_book)
        return stamp if stamp < now else None

    def _book(self, stamp: int) -> Book:
        """The book's top now, stamped ``stamp``. Its prices are validated events' and in order, its sizes sums of
        theirs: only a level summing past the contract's bound can break it, and then the contract refuses the book."""
        depth = self.book.depth
        bids, asks = self.book.bids.top(depth), self.book.asks.top(depth)
        if _beyond(bids) or _beyond(asks):
            return Book(symbol=self.symbol, venue=self.venue, ts=stamp, bids=bids, asks=asks)
        return Book.trusted(symbol=self.symbol, venue=self.venue, ts=stamp, bids=bids, asks=asks)

    def _quote(self, event: OrderBookEvent, trade: tuple[float, float, int | None]) -> Quote:
        price, size, aggressor = trade
        self.prints += 1
        best_bid, best_ask = self.book.bids.best(), self.book.asks.best()
        side = None if aggressor is None else (BUYER if aggressor == BID else SELLER)
        # every value is a validated event's, or a price of the book's (one of theirs)
        return Quote.trusted(
            symbol=self.symbol,
            venue=self.venue,
            ts=event.ts,
            price=price,
            size=size,
            bid=best_bid,
            ask=best_ask,
            side=side,
            seq=self.prints,
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "book": self.book.to_state(),
            "changed_at": self.changed_at,
            "next_book": self.next_book,
            "prints": self.prints,
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        symbol: str,
        venue: str,
        sequence: OrderSequence = "none",
        params: Level2Params | None = None,
    ) -> Level2Feed:
        params = params or Level2Params()
        feed = cls(symbol, venue, params=params, book=OrderBook.from_state(state["book"], sequence, params.depth))
        feed.changed_at, feed.next_book, feed.prints = state["changed_at"], state["next_book"], state["prints"]
        return feed


def _beyond(levels: list[tuple[float, float]]) -> bool:
    """Whether a level's size is past the record contract's bound."""
    return any(size > MAX_SIZE for _, size in levels)
