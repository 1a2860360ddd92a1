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
from tapewatch.records import Bar, Book, Cadence, Features, Quote, RecordError

STAGE: Final = "stream:market"
AGENT: Final = "market"
STATE_FORMAT: Final = 3
#: the table entry of a partition's event-time clock (a symbol never starts with NUL: the contract's pattern)
CLOCK_KEY: Final = b"\x00partition-clock"
#: (topic, value, metrics kind, event time) of one output
_Output = tuple[str, bytes, str, int]

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
    #: a record this far ahead of its partition's event time is implausible (TAPEWATCH_STREAM_MAX_SKEW_MS)
    max_skew_ms: int = 14 * 86_400_000
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
    #: records applied per symbol since its state was last stored: replayed to rebuild it after a failure
    _journal: dict[bytes, list[Quote | Book]] = field(default_factory=dict, init=False, repr=False)
    #: partition → {"quotes"|"books": newest ts applied}: the reference of the skew check
    _clocks: dict[int, dict[str, int]] = field(default_factory=dict, init=False, repr=False)
    _clocks_dirty: set[int] = field(default_factory=set, init=False, repr=False)
    _started: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.sources = (self.quotes_topic, self.books_topic)

    def discard(self) -> None:
        """Forget what was applied since the last :meth:`write_state` (the partitions were lost)."""
        self._touched, self._sent, self._emitted, self._done = {}, Counter(), [], {}
        self._journal, self._clocks_dirty = {}, set()
        self._live.clear()
        self._clocks.clear()

    def forget(self) -> None:
        """Drop the live cache (partitions moved): the next batch reloads from the recovered table."""
        self._live.clear()
        self._clocks.clear()

    def process(self, messages: Sequence[Message]) -> None:
        """Apply one batch and queue its outputs; :meth:`write_state` follows once they are acknowledged."""
        self._started = time.perf_counter()
        consumed = {"quotes": 0, "books": 0}
        replayed = 0
        for message in messages:
            books = message.topic() == self.books_topic
            consumed["books" if books else "quotes"] += 1
            replayed += self._one(message, books)
        metrics = self.io.metrics
        for kind, count in consumed.items():
            if count:
                metrics.records_in.labels(AGENT, kind).inc(count)
        self.counters.batches += 1
        self.io.observe_batch(self._emitted, self._started)
        if replayed:
            self.counters.replayed += replayed
            metrics.replayed.labels(AGENT).inc(replayed)
            log.info("replay: skipped %d record(s) already applied to the state", replayed)

    def _one(self, message: Message, books: bool) -> int:
        """Apply one message (1 if it was applied before a crash and skipped). Whatever it holds, it ends as
        outputs, a dead letter or a skip: no record can stop the stage."""
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None
        self._done[(topic, partition)] = max(offset, self._done.get((topic, partition), -1))
        self.counters.events_in += 1
        key = message.key()
        try:
            record = self._decode(message.value(), key, books)
        except RecordError as exc:
            reason = "key" if exc.field == "symbol" and "key" in exc.reason else "invalid"
            self._dead_letter(message, str(exc), exc.field, reason)
            return 0
        assert key is not None
        problem = self.feeds(record.venue).implausible(record)
        if problem is not None:
            self._dead_letter(message, problem[1], problem[0], "implausible")
            return 0
        state = self._touched.get(key) or self._live.get(key) or self._load(record.symbol, record.venue, key, partition)
        self._touched[key] = state
        if state.applied(topic, partition, offset):
            return 1  # applied before a crash: do not count it twice
        clock = self._clock(partition)
        stream = "books" if books else "quotes"
        ahead = record.ts - clock.get(stream, record.ts)
        if ahead > self.max_skew_ms:
            self._dead_letter(
                message,
                f"implausible: ts {record.ts} is {ahead} ms ahead of the partition's {stream} "
                f"(more than TAPEWATCH_STREAM_MAX_SKEW_MS={self.max_skew_ms})",
                "ts",
                "implausible",
            )
        else:
            self._apply_isolated(message, record, key, state)
            if record.ts > clock.get(stream, -1):
                clock[stream] = record.ts
                self._clocks_dirty.add(partition)
        state.offsets[topic] = (partition, offset)
        state.partition = partition
        state.dirty = True
        return 0

    def _apply_isolated(self, message: Message, record: Quote | Book, key: bytes, state: SymbolState) -> None:
        """Apply ``record`` and send what it closed; a record the state cannot take is dead-lettered with the
        exception, and the symbol's state is rebuilt as it was before it (its last stored state, then every
        record applied since, from the journal), so one bad record never stops or corrupts surveillance."""
        try:
            outputs, late = self._apply(state, record, key)
        except Exception as exc:  # isolate the record, whatever went wrong
            log.exception("%s %s: record could not be applied, dead-lettered", self.stage, record.symbol)
            self._rebuild(key, state, record.venue)
            self._dead_letter(message, f"could not be applied: {type(exc).__name__}: {exc}", None, "error")
            return
        self._journal.setdefault(key, []).append(record)
        counters = self.counters
        for topic, value, kind, event_ms in outputs:
            self.io.send(topic, key, value, state.partition)
            self._sent[kind] += 1
            self._emitted.append((kind, event_ms))
            if kind == "bars":
                counters.bars_out += 1
            elif kind == "features":
                counters.features_out += 1
            else:
                counters.flow_out += 1
        if late:
            # Counted and dead-lettered, never dropped silently; a part it was on time for applied it.
            self.counters.late += 1
            self._dead_letter(message, "late record (" + "; ".join(late) + ")", "ts", "late")

    def _apply(self, state: SymbolState, record: Quote | Book, key: bytes) -> tuple[list[_Output], list[str]]:
        """Update the symbol's state with one record: (outputs to send, late parts). Sends nothing."""
        metrics = self.io.metrics
        outputs: list[_Output] = []
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
                outputs.append((self.bars_topic, bar.to_json(), "bars", bar.end))
                outputs.append((self.features_topic, self._bar_features(state, bar), "features", bar.end))
        try:
            chunks = state.flow.update_quote(record) if isinstance(record, Quote) else state.flow.update_book(record)
        except LateRecordError as exc:
            late.append(f"flow: {exc}")
            metrics.late.labels(AGENT, "flow").inc()
        for chunk in chunks:
            outputs.append((self.features_topic, chunk.to_features(record.venue).to_json(), "flow", chunk.ts))
        return outputs, late

    def _rebuild(self, key: bytes, state: SymbolState, venue: str) -> None:
        """Put the symbol's state back to what it was before the record that failed: its stored state, then the
        records applied since (their outputs were sent already: nothing is sent again)."""
        fresh = self._load(state.bars.symbol, venue, key, state.partition)
        for record in self._journal.get(key, []):
            self._apply(fresh, record, key)
        state.bars, state.features, state.flow = fresh.bars, fresh.features, fresh.flow
        state.features_state = None

    def _clock(self, partition: int) -> dict[str, int]:
        """The partition's event time per source stream (newest ts applied), from the table on first use."""
        clock = self._clocks.get(partition)
        if clock is None:
            stored = self.table.get(CLOCK_KEY, partition)
            clock = self._clocks[partition] = {k: int(v) for k, v in (stored or {}).get("clock", {}).items()}
        return clock

    def write_state(self) -> None:
        """The batch's outputs are acknowledged: count them, and write each touched symbol's new state."""
        metrics = self.io.metrics
        for kind, count in self._sent.items():
            metrics.records_out.labels(AGENT, kind).inc(count)
        for key, state in self._touched.items():
            if state.dirty:
                self._store(key, state)
            self._live[key] = state
        for partition in self._clocks_dirty:
            self.table.write(partition, CLOCK_KEY, {"format": STATE_FORMAT, "clock": self._clocks[partition]})
        self.io.done.update(self._done)
        self._touched, self._sent, self._done, self._journal, self._clocks_dirty = {}, Counter(), {}, {}, set()

    # -- steps -------------------------------------------------------------------------------------------
    def _decode(self, raw: bytes | None, key: bytes | None, books: bool) -> Quote | Book:
        contract: type[Quote] | type[Book] = Book if books else Quote
        if not raw:
            raise RecordError(contract.record_name, "empty payload")
        record = contract.from_json(raw)
        if key is None:
            raise RecordError(record.record_name, "message without a key: the key must be the symbol", "symbol")
        if key != record.key():
            raise RecordError(record.record_name, f"message key {key!r} is not the symbol", "symbol")
        return record

    def _bar_features(self, state: SymbolState, bar: Bar) -> bytes:
        values = state.features.update(bar)
        state.features_state = None  # changed: serialise again at the checkpoint
        record = Features(
            symbol=bar.symbol,
            venue=bar.venue,
            ts=bar.end,
            values=values,
            version=FEATURE_SET_VERSION,
            cadence=Cadence.BAR_1M,
        )
        return record.to_json()

    def _dead_letter(self, message: Message, reason: str, field: str | None, kind: str) -> None:
        self.counters.dead_letters += 1
        self._sent["dlq"] += 1
        self.io.dead_letter(message, reason, field, kind)

    # -- state -------------------------------------------------------------------------------------------
    def _load(self, symbol: str, venue: str, key: bytes, partition: int) -> SymbolState:
        stored = self.table.get(key, partition)
        profile = self.feeds(venue)
        books, prints = profile.books, profile.prints
        if stored is None:
            flow = FlowState(symbol, self.flow_config, books=books, prints=prints)
            return SymbolState(BarBuilder(symbol, self.grace_ms), FeatureState(), flow, {}, partition)
        if stored.get("format") != STATE_FORMAT:
            raise ValueError(f"market state of {symbol!r} has unknown format {stored.get('format')!r}")
        try:
            flow = FlowState.from_state(stored["flow"], self.flow_config, books=books, prints=prints)
        except ValueError as exc:
            # An upgrade changed the order-flow feature set: its windows cannot be carried over. Start them
            # afresh (the z-scores warm up again) rather than refuse the symbol; bars and bar features continue.
            log.warning("order-flow state of %s not restored, starting afresh: %s", symbol, exc)
            flow = FlowState(symbol, self.flow_config, books=books, prints=prints)
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
