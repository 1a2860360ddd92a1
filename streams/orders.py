"""The ``stream:orders`` stage: md.orders → each symbol's book built from its orders, and the level-2 feed it implies.

Per symbol, one entry in a changelog-backed table holds the symbol's :class:`Level2Feed` (its
:class:`~tapewatch.detectors.orders.book.OrderBook`: every resting order, the venue's last sequence, whether the book
is stale) and the offset of the last record applied. For a venue whose feed profile says its level-2 comes from its
orders (``level2 = "orders"``), the trades and five-level books the book implies go to md.quotes and md.books, keyed
by symbol and on the partition the order came from, where the market stage reads them as any venue's: every detector
of the trade-and-book path runs on a market-by-order feed unchanged.

What the book refuses (an event numbered at or before the last, an unknown order id, an order id already resting)
is dead-lettered with the book's reason and leaves the book as it was; a sequence gap or an overfill is applied,
counted (``tapewatch_stream_order_anomalies``) and logged: after a gap the book is stale until the venue resyncs it,
and no book goes out meanwhile.

A crash replays the orders since the last commit against the state of the last checkpoint and sends the same trades
and books again (the same records: the feed numbers its trades and times its books from its state); the market stage
knows them by that number and time (:meth:`tapewatch.streams.market.MarketStage._seen`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import Message

from tapewatch.detectors.orders.book import Anomaly
from tapewatch.detectors.orders.level2 import Level2Feed, Level2Params
from tapewatch.feeds import FeedProfile, FeedProfiles
from tapewatch.records import Book, OrderBookEvent, Quote
from tapewatch.state_versions import StateVersions
from tapewatch.streams.stage import StageBase, decode_keyed

STAGE: Final = "stream:orders"
AGENT: Final = "orders"
#: the formats of a symbol's entry (read at its current one only: no steps yet)
ORDERS_STATE: Final = StateVersions("orders state", key="format")
STATE_FORMAT: Final = ORDERS_STATE.current

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OrdersCounters:
    """Totals since the worker started (the log's periodic summary; Prometheus has the same and more)."""

    events_in: int = 0
    quotes_out: int = 0
    books_out: int = 0
    dead_letters: int = 0
    gaps: int = 0
    replayed: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class OrdersState:
    """What the stage keeps for one symbol, live."""

    feed: Level2Feed
    #: source topic → offset of the last record applied from it (on ``partition``)
    offsets: dict[str, int]
    partition: int
    dirty: bool = False

    def applied(self, topic: str, partition: int, offset: int) -> bool:
        return partition == self.partition and offset <= self.offsets.get(topic, -1)

    def mark_applied(self, topic: str, partition: int, offset: int) -> None:
        self.partition, self.dirty = partition, True
        self.offsets[topic] = offset


@dataclass
class OrdersStage(StageBase[OrdersState, OrderBookEvent]):
    """Turns batches of md.orders messages into books, derived trades and books, dead letters and table updates."""

    orders_topic: str
    quotes_topic: str
    books_topic: str
    #: venue → what its feed carries (how it numbers its orders, whether its level-2 comes from them)
    feeds: Callable[[str], FeedProfile] = field(default_factory=FeedProfiles)
    level2: Level2Params = field(default_factory=Level2Params)
    counters: OrdersCounters = field(default_factory=OrdersCounters, kw_only=True)
    stage: str = STAGE
    sources: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.sources = (self.orders_topic,)

    def _after_batch(self, messages: Sequence[Message]) -> None:
        self.io.metrics.records_in.labels(AGENT, "orders").inc(len(messages))
        self.counters.batches += 1

    def _decode(self, message: Message) -> OrderBookEvent:
        return decode_keyed(OrderBookEvent, message.value(), message.key())

    def _admit(self, message: Message, record: OrderBookEvent) -> bool:
        problem = self.feeds(record.venue).implausible(record)
        if problem is not None:
            self._dead_letter(message, problem[1], problem[0], "implausible")
        return problem is None

    def _apply(self, message: Message, record: OrderBookEvent, key: bytes, state: OrdersState) -> None:
        """Apply the event to the symbol's book and send what it released; a refused event is dead-lettered, an
        event the book cannot take is too, and the book is rebuilt as it was before it."""
        try:
            derived = state.feed.on_order(record)
        except Exception as exc:  # isolate the record, whatever went wrong
            log.exception("%s %s: order event could not be applied, dead-lettered", self.stage, record.symbol)
            state.feed = self._rebuilt(key, state.partition, record)
            self._dead_letter(message, f"could not be applied: {type(exc).__name__}: {exc}", None, "error")
            return
        self._journal.setdefault(key, []).append(record)
        anomaly = derived.step.anomaly
        if anomaly is not None:
            self._flag(message, record, anomaly)
        if self.feeds(record.venue).level2 != "orders":
            return
        for out in derived.records:
            self._send_derived(key, out, state.partition)

    def _flag(self, message: Message, record: OrderBookEvent, anomaly: Anomaly) -> None:
        self.io.metrics.order_anomalies.labels(AGENT, anomaly.name.lower()).inc()
        if anomaly.refused:
            self._dead_letter(message, f"refused by the book: {anomaly.value}", "sequence", "order")
            return
        if anomaly is Anomaly.GAP:
            self.counters.gaps += 1
        log.warning("%s %s seq %d: %s", self.stage, record.symbol, record.sequence, anomaly.value)

    def _send_derived(self, key: bytes, record: Quote | Book, partition: int) -> None:
        if isinstance(record, Book):
            self._send("books", self.books_topic, key, record.to_json(), partition, record.ts)
            self.counters.books_out += 1
        else:
            self._send("quotes", self.quotes_topic, key, record.to_json(), partition, record.ts)
            self.counters.quotes_out += 1

    def _rebuilt(self, key: bytes, partition: int, record: OrderBookEvent) -> Level2Feed:
        """The symbol's feed as it was before ``record``: its stored state, then the events applied since (what
        they released was sent already: nothing is sent again)."""
        fresh = self._load(record, key, partition).feed
        for applied in self._journal.get(key, []):
            fresh.on_order(applied)
        return fresh

    # -- state -------------------------------------------------------------------------------------------
    def _load(self, record: OrderBookEvent, key: bytes, partition: int) -> OrdersState:
        profile = self.feeds(record.venue)
        stored: Mapping[str, Any] | None = self.table.get(key, partition)
        if stored is None:
            feed = Level2Feed(record.symbol, record.venue, profile.order_sequence, self.level2)
            return OrdersState(feed, {}, partition)
        stored = ORDERS_STATE.upgrade(stored, of=record.symbol)
        feed = Level2Feed.from_state(stored["feed"], record.symbol, record.venue, profile.order_sequence, self.level2)
        offsets = {topic: int(offset) for topic, offset in stored["offsets"].items()}
        return OrdersState(feed, offsets, int(stored["partition"]))

    def _store(self, key: bytes, state: OrdersState) -> None:
        entry = {
            "format": STATE_FORMAT,
            "feed": state.feed.to_state(),
            "offsets": state.offsets,
            "partition": state.partition,
        }
        self.table.write(state.partition, key, entry)
