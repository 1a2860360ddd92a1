"""Topic registry: every Kafka topic tapewatch reads or writes, with its record and purpose.

All topics have the same partition count and the records' topics are keyed by symbol, so any two of them can be
joined (co-partitioned); reference data (``ref.accounts``) is read whole by every worker instead. Dead-letter topics
carry the original bytes unchanged as the value and the reason in headers (see :mod:`tapewatch.deadletter`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tapewatch.records import (
    AccountRef,
    Action,
    Alert,
    Bar,
    Book,
    Contract,
    Episode,
    ExecutionReport,
    Features,
    Fill,
    Forecast,
    NewsItem,
    NewsSignal,
    Order,
    OrderBookEvent,
    Portfolio,
    Quote,
    Score,
    VenueIndicator,
)

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    record: type[Contract] | None
    doc: str
    retention_ms: int = 7 * DAY_MS
    #: compacted (the newest message per key kept, whatever its age): reference data
    compacted: bool = False

    @property
    def is_dead_letter(self) -> bool:
        return self.name.startswith("dlq.")


QUOTES = Topic("md.quotes", Quote, "Quotes and trades from every source (producers/)")
BOOKS = Topic("md.books", Book, "5-level order books from every source (producers/)")
MARKET_BY_ORDER = Topic(
    "md.orders", OrderBookEvent, "Market-by-order events: every add, modify, cancel, trade and fill (producers/)"
)
FIRM_ORDERS = Topic(
    "orders.firm",
    ExecutionReport,
    "A firm's own orders and executions with their accounts, from its drop copy (producers/)",
    retention_ms=90 * DAY_MS,
)
ACCOUNTS = Topic(
    "ref.accounts",
    AccountRef,
    "Each tenant's accounts: beneficial owner and linked group, keyed <tenant>/<account> (tapewatch accounts load)",
    compacted=True,
)
BARS = Topic("md.bars.1m", Bar, "1-minute event-time bars (streams/)")
FEATURES = Topic("features.1m", Features, "Bar features (cadence 1m) and fast order-flow features (cadence fast)")
SCORES = Topic("scores.manipulation", Score, "K-means manipulation score per symbol and feature update")
ALERTS = Topic("alerts", Alert, "Explained, deduplicated manipulation alerts", retention_ms=90 * DAY_MS)
ACTIONS = Topic("signals.actions", Action, "Double-DQN action per symbol and bar")
FORECASTS = Topic("signals.forecasts", Forecast, "Each forecasting model's forecast per symbol and bar")
ORDERS = Topic("orders", Order, "Paper orders: every event of every order (trade/)", retention_ms=90 * DAY_MS)
FILLS = Topic("fills", Fill, "Paper fills against the tape (trade/)", retention_ms=90 * DAY_MS)
PORTFOLIO = Topic("portfolio", Portfolio, "Paper accounts after each fill and mark (trade/)", retention_ms=90 * DAY_MS)
NEWS_ITEMS = Topic("news.items", NewsItem, "News items, one record per item and symbol it concerns (producers/news/)")
NEWS_SIGNALS = Topic(
    "signals.news",
    NewsSignal,
    "Each scored news item with its symbol's news indicator (streams/)",
    retention_ms=90 * DAY_MS,
)
VENUE_INDICATORS = Topic(
    "venue.indicators",
    VenueIndicator,
    "The statistical wash tests over each day of a symbol's trade sizes: a venue-level indicator (streams/)",
    retention_ms=90 * DAY_MS,
)
TRUTH = Topic("truth", Episode, "Ground truth of episodes injected by the simulator", retention_ms=90 * DAY_MS)
DLQ_PRODUCERS = Topic("dlq.producers", None, "Source payloads that could not be parsed", retention_ms=30 * DAY_MS)
DLQ_STREAMS = Topic(
    "dlq.streams", None, "Malformed or too-late records met by the stream workers", retention_ms=30 * DAY_MS
)
DLQ_SINKS = Topic("dlq.sinks", None, "Records the sinks could not validate or store", retention_ms=30 * DAY_MS)

ALL_TOPICS: tuple[Topic, ...] = (
    QUOTES,
    BOOKS,
    MARKET_BY_ORDER,
    FIRM_ORDERS,
    ACCOUNTS,
    BARS,
    FEATURES,
    SCORES,
    ALERTS,
    ACTIONS,
    FORECASTS,
    ORDERS,
    FILLS,
    PORTFOLIO,
    NEWS_ITEMS,
    NEWS_SIGNALS,
    VENUE_INDICATORS,
    TRUTH,
    DLQ_PRODUCERS,
    DLQ_STREAMS,
    DLQ_SINKS,
)
BY_NAME: dict[str, Topic] = {t.name: t for t in ALL_TOPICS}
