"""The ``stream:orders`` stage: md.orders → each symbol's book built from its orders, and the level-2 feed it implies;
orders.firm (a firm's drop copy) → alerts of spoofing and wash trades by account.

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

For a venue whose profile says its market-by-order feed comes (``market_by_order``), the public feed also goes through
:class:`~tapewatch.detectors.orders.public_spoofing.PublicSpoofing`: spoofing from the orders alone, whoever placed
them, raised as public alerts whose ids are scoped ``feed:orders`` (so they never merge with the level-2 path's). It
reads the level-2 feed's book (the events the feed's book takes are the ones it is told of), which is kept once.

The drop copy goes to the symbol's :class:`~tapewatch.detectors.orders.firm_desk.FirmDesk`, which judges each
firm's reports, against that firm's own accounts only, once the venue's public feed is past them (for a venue whose
profile says ``market_by_order``) with the public depth their orders were placed against, and raises alerts that
name the account and belong to the firm's tenant (``Alert.tenant``; to ``alerts``, where only the stores and the
tenant's own subscribers read them).

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
from tapewatch.detectors.orders.firm_desk import NO_REFERENCE, FirmDesk, ReferenceOf
from tapewatch.detectors.orders.firm_detector import FirmDetectorParams
from tapewatch.detectors.orders.firm_messages import fresh_state as fresh_messages
from tapewatch.detectors.orders.firm_ring import fresh_state as fresh_ring
from tapewatch.detectors.orders.level2 import Derived, Level2Feed
from tapewatch.detectors.orders.params import Level2Params
from tapewatch.detectors.orders.public_tape import PublicTape
from tapewatch.detectors.orders.public_wash import fresh_state as fresh_wash
from tapewatch.detectors.orders.symbol_orders import PublicWatch, apply_record
from tapewatch.feeds import FeedProfile, FeedProfiles
from tapewatch.records import Alert, Book, ExecutionReport, OrderBookEvent, Quote, RecordError
from tapewatch.state_versions import StateVersions
from tapewatch.streams.stage import StageBase, decode_keyed

STAGE: Final = "stream:orders"
AGENT: Final = "orders"


def _public_watch_afresh(state: Mapping[str, Any]) -> dict[str, Any]:
    """Format 2 → 3: the public feed's spoofing detector, which a format-2 entry did not have; 3 → 4: its state
    keeps each cycle's size, the symbol's orders placed per minute and the large placements not yet learnt, which a
    format-3 one did not. Either way it starts afresh (its alert policy too: a new detector's hits are new)."""
    return {**state, "public": None}


def _public_watch_on_the_feeds_book(state: Mapping[str, Any]) -> dict[str, Any]:
    """Format 4 → 5: the public feed's spoofing detector reads the level-2 feed's book, kept once in the entry, and
    no longer one of its own. Both books took the same events, so they are the same one, unless the detector was
    started afresh on a symbol whose book was not empty (by the step to format 3 or 4): it then reads the whole book
    from here on."""
    public = state["public"]
    if public is None:
        return dict(state)
    detector = {name: part for name, part in public["detector"].items() if name != "book"}
    return {**state, "public": {**public, "detector": detector}}


def _public_tape_afresh(state: Mapping[str, Any]) -> dict[str, Any]:
    """Format 5 → 6: the firms read the symbol's public trades (kept once) for the pumps and closes their accounts
    drive, which a format-5 entry did not keep: the tape and each firm's owner flows start afresh (the tape's
    volatility is known again after its warm-up)."""
    firms = state["firms"]
    tenants = {tenant: {**firm, "ramp": {}} for tenant, firm in firms["firms"].items()}
    tape = PublicTape(keep_ms=0).to_state()
    return {**state, "firms": {**firms, "tape": tape, "firms": tenants}}


def _messages_afresh(state: Mapping[str, Any]) -> dict[str, Any]:
    """Format 6 → 7: each tenant's detector keeps its quote-stuffing detector's state (each account's recent messages
    and executions, its history), which a format-6 entry did not have: it starts afresh, as on an account never
    seen (its alert policy goes on: a new kind has no episode in it yet)."""
    firms = state["firms"]
    tenants = {tenant: {**firm, "messages": fresh_messages()} for tenant, firm in firms["firms"].items()}
    return {**state, "firms": {**firms, "firms": tenants}}


def _messages_by_owner(state: Mapping[str, Any]) -> dict[str, Any]:
    """Format 7 → 8: each tenant's quote-stuffing detector also counts each owner's and group's messages, and names
    the account of every recent message: an account's recent messages are its own, and the owners start afresh."""
    firms = state["firms"]
    tenants = {tenant: {**firm, "messages": _owned(firm["messages"])} for tenant, firm in firms["firms"].items()}
    return {**state, "firms": {**firms, "firms": tenants}}


def _owned(messages: Mapping[str, Any]) -> dict[str, Any]:
    accounts = {
        name: {**traffic, "recent": [[*row, name] for row in traffic["recent"]]}
        for name, traffic in messages["accounts"].items()
    }
    return {**messages, "accounts": accounts, "owned": {}}


def _public_watch_pulls(state: Mapping[str, Any]) -> dict[str, Any]:
    """Format 8 → 9: the public feed's spoofing detector keeps the other side's best price when each large order
    rested, the pulls whose millisecond is not over and the touch after the last event, which a format-8 entry did
    not: its resting large orders go on without that price (none of them is judged to have fled the price), and its
    pulls were all past their millisecond."""
    public = state["public"]
    if public is None:
        return dict(state)
    detector = public["detector"]
    large = {order_id: [*row, None] for order_id, row in detector["large"].items()}
    detector = {**detector, "large": large, "pulling": [], "touch": [None, None]}
    return {**state, "public": {**public, "detector": detector}}


def _public_wash_afresh(state: Mapping[str, Any]) -> dict[str, Any]:
    """Format 9 → 10: the public feed's wash detector, which a format-9 entry did not have: it starts afresh on the
    entry's book (its baseline learns again, and it raises nothing before its warm-up)."""
    public = state["public"]
    if public is None:
        return dict(state)
    return {**state, "public": {**public, "wash": fresh_wash()}}


def _rings_afresh(state: Mapping[str, Any]) -> dict[str, Any]:
    """Format 10 → 11: each tenant's detector keeps its collusive-ring detector's state (each account's executions
    and its prints with the firm's other accounts in the window), which a format-10 entry did not have: it starts
    afresh, as on accounts never seen."""
    firms = state["firms"]
    tenants = {tenant: {**firm, "ring": fresh_ring()} for tenant, firm in firms["firms"].items()}
    return {**state, "firms": {**firms, "firms": tenants}}


#: the formats of a symbol's entry: format 2 keeps the public placements once and each tenant's drop copy apart,
#: format 3 the public feed's spoofing detector too, format 4 that detector's rate by size and per order placed,
#: format 5 that detector on the feed's book (not a copy of its own), format 6 the public trades the firms read,
#: format 7 each tenant's quote-stuffing detector, format 8 its owners' messages too, format 9 the public detector's
#: pulls until their millisecond is over (where the price went), format 10 the public feed's wash detector, format 11
#: each tenant's collusive-ring detector; format 1 (one firm, no tenant) is not read, since its reports name no
#: tenant to give them to
ORDERS_STATE: Final = StateVersions(
    "orders state",
    key="format",
    first=2,
    steps=(
        _public_watch_afresh,
        _public_watch_afresh,
        _public_watch_on_the_feeds_book,
        _public_tape_afresh,
        _messages_afresh,
        _messages_by_owner,
        _public_watch_pulls,
        _public_wash_afresh,
        _rings_afresh,
    ),
)
STATE_FORMAT: Final = ORDERS_STATE.current

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OrdersCounters:
    """Totals since the worker started (the log's periodic summary; Prometheus has the same and more)."""

    events_in: int = 0
    quotes_out: int = 0
    books_out: int = 0
    alerts_out: int = 0
    dead_letters: int = 0
    gaps: int = 0
    replayed: int = 0
    batches: int = 0


@dataclass(slots=True)
class OrdersState:
    """What the stage keeps for one symbol, live."""

    feed: Level2Feed
    firms: FirmDesk
    #: for a venue whose market-by-order feed comes: spoofing from it alone
    public: PublicWatch | None
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
class OrdersStage(StageBase[OrdersState, OrderBookEvent | ExecutionReport]):
    """Turns batches of md.orders and orders.firm messages into books, derived trades and books, alerts, dead letters
    and table updates."""

    orders_topic: str
    firm_topic: str
    quotes_topic: str
    books_topic: str
    alerts_topic: str
    #: venue → what its feed carries (how it numbers its orders, whether its level-2 comes from them)
    feeds: Callable[[str], FeedProfile] = field(default_factory=FeedProfiles)
    level2: Level2Params = field(default_factory=Level2Params)
    firm_params: FirmDetectorParams = field(default_factory=FirmDetectorParams)
    #: each tenant's reference data (accounts' beneficial owners and linked groups: the worker's account table)
    reference: ReferenceOf = NO_REFERENCE
    #: a symbol's reports waiting for the public feed, at most (the next ones are held back, unread: the entry
    #: stays small when the drop copy is read far ahead of the public feed, in a catch-up)
    max_pending: int = 200
    counters: OrdersCounters = field(default_factory=OrdersCounters, kw_only=True)
    stage: str = STAGE
    sources: tuple[str, ...] = field(init=False)

    #: drop-copy messages held back, in the order they came, and their partitions
    _held: list[Message] = field(default_factory=list, init=False, repr=False)
    _held_at: set[int] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self.sources = (self.orders_topic, self.firm_topic)

    # -- holding the drop copy back ----------------------------------------------------------------------
    def process(self, messages: Sequence[Message]) -> None:
        """The held messages first, then the batch; then the held ones again (the batch's public events may have
        let the waiting reports through)."""
        reports = sum(1 for message in messages if message.topic() == self.firm_topic)
        for kind, count in (("orders", len(messages) - reports), ("firm", reports)):
            if count:  # each message counted once, when read (a held one is taken later)
                self.io.metrics.records_in.labels(AGENT, kind).inc(count)
        self.counters.batches += 1
        held, self._held, self._held_at = self._held, [], set()
        super().process([*held, *messages])
        if self._held and len(self._held) < len(held) + len(messages):
            again, self._held, self._held_at = self._held, [], set()
            super().process(again)

    def held(self) -> set[tuple[str, int]]:
        return {(self.firm_topic, message.partition() or 0) for message in self._held}

    def forget(self) -> None:
        super().forget()
        self._held, self._held_at = [], set()  # not applied, not committed: read again from the committed offsets

    def _one(self, message: Message) -> int:
        if message.topic() == self.firm_topic and self._must_hold(message):
            self._held.append(message)
            self._held_at.add(message.partition() or 0)
            return 0
        return StageBase._one(self, message)  # what super() finds, found once (this runs per event)

    def _must_hold(self, message: Message) -> bool:
        """A report waits unread behind an earlier held one of its partition, or while its symbol's reports waiting
        for the public feed are at :attr:`max_pending`."""
        if (message.partition() or 0) in self._held_at:
            return True
        key, partition = message.key() or b"", message.partition() or 0
        state = self._touched.get(key) or self._live.get(key)
        if state is None:  # not read since the last recovery: load it, as taking the message would
            if self.table.get(key, partition) is None:
                return False
            try:
                record = self._decode(message)
            except RecordError:
                return False  # taken, and dead-lettered
            state = self._touched[key] = self._load(record, key, partition)
        return state.firms.pending_reports() >= self.max_pending

    def _decode(self, message: Message) -> OrderBookEvent | ExecutionReport:
        if message.topic() == self.firm_topic:
            return decode_keyed(ExecutionReport, message.value(), message.key())
        return decode_keyed(OrderBookEvent, message.value(), message.key())

    def _admit(self, message: Message, record: OrderBookEvent | ExecutionReport) -> bool:
        problem = self.feeds(record.venue).implausible(record)
        if problem is not None:
            self._dead_letter(message, problem[1], problem[0], "implausible")
        return problem is None

    def _apply(
        self, message: Message, record: OrderBookEvent | ExecutionReport, key: bytes, state: OrdersState
    ) -> None:
        """Apply the record and send what it released; a refused event is dead-lettered, a report sent again (its
        exec_id judged already) is too, a record the state cannot take is too, and the symbol's state is rebuilt as
        it was before it."""
        # an event's exact type first: isinstance on a record contract costs several times as much
        if type(record) is not OrderBookEvent and isinstance(record, ExecutionReport) and state.firms.duplicate(record):
            self._dead_letter(message, "duplicate: a report of this exec_id was judged already", "exec_id", "duplicate")
            return
        try:
            applied = apply_record(state.feed, state.firms, state.public, record)  # what _update does
        except Exception as exc:  # isolate the record, whatever went wrong
            log.exception("%s %s: record could not be applied, dead-lettered", self.stage, record.symbol)
            self._rebuild(key, state, record)
            self._dead_letter(message, f"could not be applied: {type(exc).__name__}: {exc}", None, "error")
            return
        journal = self._journal.get(key)
        if journal is None:
            self._journal[key] = [record]
        else:
            journal.append(record)
        derived, alerts = applied.derived, applied.alerts
        if derived is not None and derived.step.anomaly is not None:
            assert isinstance(record, OrderBookEvent)
            self._flag(message, record, derived.step.anomaly)
        if derived is not None and derived.records and self.feeds(record.venue).level2 == "orders":
            for out in derived.records:
                self._send_derived(key, out, state.partition)
        for alert in alerts:
            self._send("alerts", self.alerts_topic, key, alert.to_json(), state.partition, alert.ts)
            self.counters.alerts_out += 1

    def _update(
        self, state: OrdersState, record: OrderBookEvent | ExecutionReport
    ) -> tuple[Derived | None, list[Alert]]:
        """Apply one record to the symbol's state: (what the book released, the firms' and the public feed's alerts).
        Sends nothing."""
        applied = apply_record(state.feed, state.firms, state.public, record)
        return applied.derived, applied.alerts

    def _flag(self, message: Message, record: OrderBookEvent, anomaly: Anomaly) -> None:
        self.io.metrics.order_anomalies.labels(AGENT, anomaly.name.lower()).inc()
        if anomaly.refused:
            self._dead_letter(message, f"refused by the book: {anomaly.value}", "sequence", "order")
            return
        if anomaly is Anomaly.GAP:
            self.counters.gaps += 1
        log.warning("%s %s seq %d: %s", self.stage, record.symbol, record.sequence, anomaly.value)

    def _send_derived(self, key: bytes, record: Quote | Book, partition: int) -> None:
        if type(record) is Book:  # the exact type: isinstance on a record contract costs several times as much
            self._send("books", self.books_topic, key, record.to_json(), partition, record.ts)
            self.counters.books_out += 1
        else:
            self._send("quotes", self.quotes_topic, key, record.to_json(), partition, record.ts)
            self.counters.quotes_out += 1

    def _rebuild(self, key: bytes, state: OrdersState, record: OrderBookEvent | ExecutionReport) -> None:
        """Put the symbol's state back to what it was before ``record`` failed: its stored state, then the records
        applied since (what they released was sent already: nothing is sent again)."""
        fresh = self._load(record, key, state.partition)
        for applied in self._journal.get(key, []):
            self._update(fresh, applied)
        state.feed, state.firms, state.public = fresh.feed, fresh.firms, fresh.public

    # -- state -------------------------------------------------------------------------------------------
    def _load(self, record: OrderBookEvent | ExecutionReport, key: bytes, partition: int) -> OrdersState:
        profile = self.feeds(record.venue)
        symbol, venue, params, public = record.symbol, record.venue, self.firm_params, profile.market_by_order
        stored: Mapping[str, Any] | None = self.table.get(key, partition)
        if stored is None:
            feed = Level2Feed(symbol, venue, profile.order_sequence, self.level2)
            watch = PublicWatch.new(symbol, venue, feed.book) if public else None
            desk = FirmDesk(symbol, venue, params, self.reference, public, ms_to_close=profile.ms_to_close)
            return OrdersState(feed, desk, watch, {}, partition)
        stored = ORDERS_STATE.upgrade(stored, of=symbol)
        feed = Level2Feed.from_state(stored["feed"], symbol, venue, profile.order_sequence, self.level2)
        firms = FirmDesk.from_state(
            stored["firms"], symbol, venue, params, self.reference, public, ms_to_close=profile.ms_to_close
        )
        offsets = {topic: int(offset) for topic, offset in stored["offsets"].items()}
        watch = None if not public else PublicWatch.new(symbol, venue, feed.book)
        if public and stored["public"] is not None:
            watch = PublicWatch.from_state(stored["public"], feed.book)
        return OrdersState(feed, firms, watch, offsets, int(stored["partition"]))

    def _store(self, key: bytes, state: OrdersState) -> None:
        entry = {
            "format": STATE_FORMAT,
            "feed": state.feed.to_state(),
            "firms": state.firms.to_state(),
            "public": None if state.public is None else state.public.to_state(),
            "offsets": state.offsets,
            "partition": state.partition,
        }
        self.table.write(state.partition, key, entry)
