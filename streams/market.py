"""The ``stream:market`` stage: md.quotes (+ md.books) → bars, bar features and fast order-flow features.

Per symbol, one state entry in a changelog-backed table (:mod:`streams.state`) holds everything the stage knows: the bar
builder (:mod:`detectors.bars`), the bar-feature state (:mod:`detectors.features`), the fast order-flow state
(:mod:`detectors.flow`) and, per source topic, the offset of the last record applied. Outputs:

* closed bars → ``md.bars.1m``;
* the features of each closed bar → ``features.1m`` (cadence ``1m``, ``ts`` = the bar's end);
* the fast features of each closed chunk → ``features.1m`` (cadence ``fast``, ``ts`` = the chunk's end);
* bad or late records → ``dlq.streams``, the original bytes with the reason in headers.

Every output is keyed by symbol and sent to the partition its input came from, so all topics stay
co-partitioned whatever partitioner the producers used.

One batch at a time (driven by :class:`streams.app.StreamApp`):

1. decode each payload with the record contracts; a payload that does not decode, or whose key is not its
   symbol, goes to the DLQ;
2. apply it to the symbol's state, queueing the outputs; a record later than the grace of a part (bars or
   flow) is counted and dead-lettered with the part named — the other part still applies it if it is on time
   for it (each part's definition, and its batch twin, drops its own late records);
3. the worker waits until Kafka acknowledged every output;
4. only then :meth:`MarketStage.write_state` writes the new state of each touched symbol to the table (its
   changelog), with the offsets;
5. only once that is acknowledged too does the worker commit the batch's offsets.

A crash before 5 replays the batch (at least once). Records at or below a symbol's stored offset for their
topic were applied before the crash and are skipped, so a replay never counts a trade twice; it may re-send
outputs that were delivered just before the crash (same key and content: downstream writes are idempotent).

Live state objects are cached between batches (decoding the JSON state per batch would cost more than the
features themselves); the cache is dropped whenever partitions are assigned or revoked, so a rebalance always
resumes from the table, recovered from the changelog.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import Message

from detectors.bars import DEFAULT_GRACE_MS, BarBuilder, LateQuoteError
from detectors.features import FEATURE_SET_VERSION, FeatureState
from detectors.flow import FlowChunk, FlowConfig, FlowState, LateRecordError
from streams.stage import StageIO
from streams.state import ChangelogTable
from tapewatch.feeds import FeedProfile, FeedProfiles
from tapewatch.records import Bar, Book, Cadence, Features, Quote, Record, RecordError

STAGE: Final = "stream:market"
AGENT: Final = "market"
STATE_FORMAT: Final = 3

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StageCounters:
    """Totals since the worker started (the log's periodic summary; Prometheus has the same and more)."""

    events_in: int = 0
    bars_out: int = 0
    features_out: int = 0
    flow_out: int = 0
    dead_letters: int = 0
    late: int = 0
    replayed: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class SymbolState:
    """Everything the stage keeps for one symbol, live."""

    bars: BarBuilder
    features: FeatureState
    flow: FlowState
    #: source topic → (partition, offset) of the last record applied from it
    offsets: dict[str, tuple[int, int]]
    partition: int
    #: the serialised feature state, reused while no bar closes (it changes only then)
    features_state: dict[str, Any] | None = None
    dirty: bool = False

    def applied(self, topic: str, partition: int, offset: int) -> bool:
        last = self.offsets.get(topic)
        return last is not None and last[0] == partition and offset <= last[1]


@dataclass
class MarketStage:
    """Turns batches of md.quotes / md.books messages into bars, features, dead letters and table updates."""

    quotes_topic: str
    books_topic: str
    bars_topic: str
    features_topic: str
    io: StageIO
    table: ChangelogTable
    #: venue → what its feed carries (whether the order-flow chunks wait for books)
    feeds: Callable[[str], FeedProfile] = field(default_factory=FeedProfiles)
    grace_ms: int = DEFAULT_GRACE_MS
    flow_config: FlowConfig = field(default_factory=FlowConfig)
    counters: StageCounters = field(default_factory=StageCounters)
    stage: str = STAGE
    sources: tuple[str, ...] = field(init=False)
    _live: dict[bytes, SymbolState] = field(default_factory=dict, init=False, repr=False)
    # applied since the last checkpoint: process() fills these, write_state() settles them
    _touched: dict[bytes, SymbolState] = field(default_factory=dict, init=False, repr=False)
    _sent: Counter[str] = field(default_factory=Counter, init=False, repr=False)
    _emitted: list[tuple[str, int]] = field(default_factory=list, init=False, repr=False)
    _done: dict[tuple[str, int], int] = field(default_factory=dict, init=False, repr=False)
    _started: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.sources = (self.quotes_topic, self.books_topic)

    def discard(self) -> None:
        """Forget what was applied since the last :meth:`write_state` (the partitions were lost)."""
        self._touched, self._sent, self._emitted, self._done = {}, Counter(), [], {}
        self._live.clear()

    def forget(self) -> None:
        """Drop the live cache (partitions moved): the next batch reloads from the recovered table."""
        self._live.clear()

    def process(self, messages: Sequence[Message]) -> None:
        """Apply one batch and queue its outputs; :meth:`write_state` follows once they are acknowledged."""
        self._started = time.perf_counter()
        touched, sent, emitted, done = self._touched, self._sent, self._emitted, self._done
        already_applied = 0
        io = self.io
        metrics = io.metrics
        consumed = {"quotes": 0, "books": 0}
        for message in messages:
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None and partition is not None and offset is not None
            source = (topic, partition)
            done[source] = max(offset, done.get(source, -1))
            self.counters.events_in += 1
            books = topic == self.books_topic
            consumed["books" if books else "quotes"] += 1
            key = message.key()
            try:
                record = self._decode(message.value(), key, books)
            except RecordError as exc:
                reason = "key" if exc.field == "symbol" and "key" in exc.reason else "invalid"
                self._dead_letter(message, str(exc), exc.field, reason, sent)
                continue

            assert key is not None
            state = touched.get(key) or self._live.get(key)
            if state is None:
                state = self._load(record.symbol, record.venue, key, partition)
            touched[key] = state
            if state.applied(topic, partition, offset):
                already_applied += 1  # applied before a crash: do not count it twice
                continue
            late: list[str] = []
            chunks: list[FlowChunk] = []
            if isinstance(record, Quote):
                try:
                    closed = state.bars.update(record)
                except LateQuoteError as exc:
                    late.append(f"bars: {exc}")
                    metrics.late.labels(AGENT, "bars").inc()
                    closed = []
                for bar in closed:
                    self._send_bar(bar, key, partition)
                    self._send_features(state, bar, key, partition)
                    sent["bars"] += 1
                    sent["features"] += 1
                    emitted.append(("bars", bar.end))
                    emitted.append(("features", bar.end))
                try:
                    chunks = state.flow.update_quote(record)
                except LateRecordError as exc:
                    late.append(f"flow: {exc}")
                    metrics.late.labels(AGENT, "flow").inc()
            else:
                assert isinstance(record, Book)
                try:
                    chunks = state.flow.update_book(record)
                except LateRecordError as exc:
                    late.append(f"flow: {exc}")
                    metrics.late.labels(AGENT, "flow").inc()
            for chunk in chunks:
                self._send_flow(chunk, record.venue, key, partition)
                sent["flow"] += 1
                emitted.append(("flow", chunk.ts))
            if late:
                # Counted and dead-lettered, never dropped silently; a part it was on time for applied it.
                self.counters.late += 1
                reason = "late record (" + "; ".join(late) + ")"
                self._dead_letter(message, reason, "ts", "late", sent)
            state.offsets[topic] = (partition, offset)
            state.partition = partition
            state.dirty = True

        for kind, count in consumed.items():
            if count:
                metrics.records_in.labels(AGENT, kind).inc(count)
        self.counters.batches += 1
        io.observe_batch(self._emitted, self._started)
        if already_applied:
            self.counters.replayed += already_applied
            metrics.replayed.labels(AGENT).inc(already_applied)
            log.info("replay: skipped %d record(s) already applied to the state", already_applied)

    def write_state(self) -> None:
        """The batch's outputs are acknowledged: count them, and write each touched symbol's new state."""
        metrics = self.io.metrics
        for kind, count in self._sent.items():
            metrics.records_out.labels(AGENT, kind).inc(count)
        for key, state in self._touched.items():
            if state.dirty:
                self._store(key, state)
            self._live[key] = state
        self.io.done.update(self._done)
        self._touched, self._sent, self._done = {}, Counter(), {}

    # -- steps -------------------------------------------------------------------------------------------
    def _decode(self, raw: bytes | None, key: bytes | None, books: bool) -> Record:
        contract: type[Record] = Book if books else Quote
        if not raw:
            raise RecordError(contract.record_name, "empty payload")
        record = contract.from_json(raw)
        if key is None:
            raise RecordError(record.record_name, "message without a key: the key must be the symbol", "symbol")
        if key != record.key():
            raise RecordError(record.record_name, f"message key {key!r} is not the symbol", "symbol")
        return record

    def _send_bar(self, bar: Bar, key: bytes, partition: int) -> None:
        self.counters.bars_out += 1
        self.io.send(self.bars_topic, key, bar.to_json(), partition)

    def _send_features(self, state: SymbolState, bar: Bar, key: bytes, partition: int) -> None:
        values = state.features.update(bar)
        state.features_state = None  # changed: serialise again at the end of the batch
        record = Features(
            symbol=bar.symbol,
            venue=bar.venue,
            ts=bar.end,
            values=values,
            version=FEATURE_SET_VERSION,
            cadence=Cadence.BAR_1M,
        )
        self.counters.features_out += 1
        self.io.send(self.features_topic, key, record.to_json(), partition)

    def _send_flow(self, chunk: FlowChunk, venue: str, key: bytes, partition: int) -> None:
        self.counters.flow_out += 1
        self.io.send(self.features_topic, key, chunk.to_features(venue).to_json(), partition)

    def _dead_letter(self, message: Message, reason: str, field: str | None, kind: str, sent: Counter[str]) -> None:
        self.counters.dead_letters += 1
        sent["dlq"] += 1
        self.io.dead_letter(message, reason, field, kind)

    # -- state -------------------------------------------------------------------------------------------
    def _load(self, symbol: str, venue: str, key: bytes, partition: int) -> SymbolState:
        stored = self.table.get(key, partition)
        books = self.feeds(venue).books
        if stored is None:
            flow = FlowState(symbol, self.flow_config, books=books)
            return SymbolState(BarBuilder(symbol, self.grace_ms), FeatureState(), flow, {}, partition)
        if stored.get("format") != STATE_FORMAT:
            raise ValueError(f"market state of {symbol!r} has unknown format {stored.get('format')!r}")
        try:
            flow = FlowState.from_state(stored["flow"], self.flow_config, books=books)
        except ValueError as exc:
            # An upgrade changed the order-flow feature set: its windows cannot be carried over. Start them
            # afresh (the z-scores warm up again) rather than refuse the symbol; bars and bar features continue.
            log.warning("order-flow state of %s not restored, starting afresh: %s", symbol, exc)
            flow = FlowState(symbol, self.flow_config, books=books)
        return SymbolState(
            bars=BarBuilder.from_state(stored["bars"], self.grace_ms),
            features=FeatureState.from_state(stored["features"]),
            flow=flow,
            offsets={topic: (int(p), int(o)) for topic, (p, o) in stored["offsets"].items()},
            partition=int(stored["partition"]),
            features_state=stored["features"],
        )

    def _store(self, key: bytes, state: SymbolState) -> None:
        if state.features_state is None:
            state.features_state = state.features.to_state()
        entry = {
            "format": STATE_FORMAT,
            "bars": state.bars.to_state(),
            "features": state.features_state,
            "flow": state.flow.to_state(),
            "offsets": {topic: list(po) for topic, po in state.offsets.items()},
            "partition": state.partition,
        }
        self.table.write(state.partition, key, entry)
        state.dirty = False
