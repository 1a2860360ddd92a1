"""The ``stream:market`` stage: md.quotes (+ md.books) → bars, bar features and fast order-flow features.

Per symbol, one state entry in a changelog-backed table (:mod:`tapewatch.streams.state`) holds everything the stage
knows: the bar builder (:mod:`tapewatch.detectors.bars`), the bar-feature state (:mod:`tapewatch.detectors.features`),
the fast order-flow state (:mod:`tapewatch.detectors.flow`) and, per source topic, the offset of the last record
applied. Outputs:

* closed bars → ``md.bars.1m``;
* the features of each closed bar → ``features.1m`` (cadence ``1m``, ``ts`` = the bar's end);
* the fast features of each closed chunk → ``features.1m`` (cadence ``fast``, ``ts`` = the chunk's end);
* of a venue whose quotes are its trades one by one, the statistical wash tests over each closed window (a
  venue-local day) of the symbol's trade sizes → ``venue.indicators`` (:mod:`tapewatch.detectors.venue_wash`: a
  few counter increments per trade, kept in the symbol's state like the rest);
* bad or late records → ``dlq.streams``, the original bytes with the reason in headers.

Every output is keyed by symbol and sent to the partition its input came from, so all topics stay
co-partitioned whatever partitioner the producers used.

One batch at a time (driven by :class:`tapewatch.streams.app.StreamApp`):

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from confluent_kafka import Message

from tapewatch.detectors.bars import DEFAULT_GRACE_MS, BarBuilder, LateQuoteError
from tapewatch.detectors.features import FEATURE_SET_VERSION, FeatureState
from tapewatch.detectors.flow import FlowChunk, FlowConfig, FlowState, LateRecordError
from tapewatch.detectors.venue_wash import VenueWash, VenueWashParams
from tapewatch.feeds import FeedProfile, FeedProfiles
from tapewatch.records import Bar, Book, Cadence, Features, Quote
from tapewatch.streams.market_versions import MARKET_STATE
from tapewatch.streams.stage import StageBase, decode_keyed

STAGE: Final = "stream:market"
AGENT: Final = "market"
STATE_FORMAT: Final = MARKET_STATE.current
#: the table entry of a partition's event-time clock (a symbol never starts with NUL: the contract's pattern)
CLOCK_KEY: Final = b"\x00partition-clock"
#: (topic, value, metrics kind, event time) of one output
_Output = tuple[str, bytes, str, int]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MarketCounters:
    """Totals since the worker started (the log's periodic summary; Prometheus has the same and more)."""

    events_in: int = 0
    bars_out: int = 0
    features_out: int = 0
    flow_out: int = 0
    indicators_out: int = 0
    dead_letters: int = 0
    late: int = 0
    replayed: int = 0
    batches: int = 0


@dataclass(slots=True)
class MarketState:
    """Everything the stage keeps for one symbol, live."""

    bars: BarBuilder
    features: FeatureState
    flow: FlowState
    #: source topic → (partition, offset) of the last record applied from it
    offsets: dict[str, tuple[int, int]]
    partition: int
    #: the serialised feature state, reused while no bar closes (it changes only then)
    features_state: dict[str, Any] | None = None
    #: of a venue whose level-2 is derived from its orders: the newest trade's number (``quotes``) and book's time
    #: (``books``) applied, which a record sent again after the orders stage's crash does not pass
    derived: dict[str, int] = field(default_factory=dict)
    #: the wash tests' open window (None: the venue's quotes are not its trades one by one, or no indicators topic)
    wash: VenueWash | None = None
    dirty: bool = False

    def applied(self, topic: str, partition: int, offset: int) -> bool:
        last = self.offsets.get(topic)
        return last is not None and last[0] == partition and offset <= last[1]

    def mark_applied(self, topic: str, partition: int, offset: int) -> None:
        self.offsets[topic] = (partition, offset)
        self.partition = partition
        self.dirty = True


@dataclass
class MarketStage(StageBase[MarketState, Quote | Book]):
    """Turns batches of md.quotes / md.books messages into bars, features, dead letters and table updates."""

    quotes_topic: str
    books_topic: str
    bars_topic: str
    features_topic: str
    #: venue → what its feed carries (whether the order-flow chunks wait for books)
    feeds: Callable[[str], FeedProfile] = field(default_factory=FeedProfiles)
    #: a record this far ahead of its partition's event time is implausible (TAPEWATCH_STREAM_MAX_SKEW_MS)
    max_skew_ms: int = 14 * 86_400_000
    grace_ms: int = DEFAULT_GRACE_MS
    flow_config: FlowConfig = field(default_factory=FlowConfig)
    #: where the wash tests' indicators go; None: the tests are not run
    indicators_topic: str | None = None
    #: the wash tests' window and levels (each venue's windows start at its own midnight)
    wash_params: VenueWashParams = field(default_factory=VenueWashParams)
    counters: MarketCounters = field(default_factory=MarketCounters, kw_only=True)
    stage: str = STAGE
    sources: tuple[str, ...] = field(init=False)
    #: partition → {"quotes"|"books": newest ts applied}: the reference of the skew check
    _clocks: dict[int, dict[str, int]] = field(default_factory=dict, init=False, repr=False)
    _clocks_dirty: set[int] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self.sources = (self.quotes_topic, self.books_topic)

    def forget(self) -> None:
        super().forget()
        self._clocks.clear()

    def _clear_checkpoint(self) -> None:
        super()._clear_checkpoint()
        self._clocks_dirty = set()

    def _after_batch(self, messages: Sequence[Message]) -> None:
        books = sum(1 for message in messages if message.topic() == self.books_topic)
        for kind, count in (("quotes", len(messages) - books), ("books", books)):
            if count:
                self.io.metrics.records_in.labels(AGENT, kind).inc(count)
        self.counters.batches += 1

    def _seen(self, record: Quote | Book, state: MarketState) -> bool:
        """A derived trade or book at or before the newest one applied: sent again by the orders stage."""
        if self.feeds(record.venue).level2 != "orders":
            return False
        if isinstance(record, Book):
            return record.ts <= state.derived.get("books", -1)
        return record.seq <= state.derived.get("quotes", 0)

    def _decode(self, message: Message) -> Quote | Book:
        contract: type[Quote] | type[Book] = Book if message.topic() == self.books_topic else Quote
        return decode_keyed(contract, message.value(), message.key())

    def _admit(self, message: Message, record: Quote | Book) -> bool:
        problem = self.feeds(record.venue).implausible(record)
        if problem is not None:
            self._dead_letter(message, problem[1], problem[0], "implausible")
        return problem is None

    def _apply(self, message: Message, record: Quote | Book, key: bytes, state: MarketState) -> None:
        """Apply the record unless it is implausibly far ahead of its partition's event time."""
        partition = message.partition()
        assert partition is not None  # checked when the message was received
        if self.feeds(record.venue).level2 == "orders":  # applied or dead-lettered: sent again, it is skipped
            if isinstance(record, Book):
                state.derived["books"] = record.ts
            else:
                state.derived["quotes"] = record.seq
        clock = self._clock(partition)
        stream = "books" if isinstance(record, Book) else "quotes"
        ahead = record.ts - clock.get(stream, record.ts)
        if ahead > self.max_skew_ms:
            self._dead_letter(
                message,
                f"implausible: ts {record.ts} is {ahead} ms ahead of the partition's {stream} "
                f"(more than TAPEWATCH_STREAM_MAX_SKEW_MS={self.max_skew_ms})",
                "ts",
                "implausible",
            )
            return
        self._apply_isolated(message, record, key, state)
        if record.ts > clock.get(stream, -1):
            clock[stream] = record.ts
            self._clocks_dirty.add(partition)

    def _apply_isolated(self, message: Message, record: Quote | Book, key: bytes, state: MarketState) -> None:
        """Apply ``record`` and send what it closed; a record the state cannot take is dead-lettered with the
        exception, and the symbol's state is rebuilt as it was before it (its last stored state, then every
        record applied since, from the journal), so one bad record never stops or corrupts surveillance."""
        try:
            outputs, late = self._update(state, record, key)
        except Exception as exc:  # isolate the record, whatever went wrong
            log.exception("%s %s: record could not be applied, dead-lettered", self.stage, record.symbol)
            self._rebuild(key, state, record)
            self._dead_letter(message, f"could not be applied: {type(exc).__name__}: {exc}", None, "error")
            return
        self._journal.setdefault(key, []).append(record)
        counters = self.counters
        for topic, value, kind, event_ms in outputs:
            self._send(kind, topic, key, value, state.partition, event_ms)
            if kind == "bars":
                counters.bars_out += 1
            elif kind == "features":
                counters.features_out += 1
            elif kind == "indicators":
                counters.indicators_out += 1
            else:
                counters.flow_out += 1
        if late:
            # Counted and dead-lettered, never dropped silently; a part it was on time for applied it.
            self.counters.late += 1
            self._dead_letter(message, "late record (" + "; ".join(late) + ")", "ts", "late")

    def _update(self, state: MarketState, record: Quote | Book, key: bytes) -> tuple[list[_Output], list[str]]:
        """Update the symbol's state with one record: (outputs to send, late parts). Sends nothing."""
        metrics = self.io.metrics
        outputs: list[_Output] = []
        late: list[str] = []
        chunks: list[FlowChunk] = []
        if isinstance(record, Quote):
            try:
                closed = state.bars.on_quote(record)
            except LateQuoteError as exc:
                late.append(f"bars: {exc}")
                metrics.late.labels(AGENT, "bars").inc()
                closed = []
            for bar in closed:
                outputs.append((self.bars_topic, bar.to_json(), "bars", bar.end))
                outputs.append((self.features_topic, self._bar_features(state, bar), "features", bar.end))
            if state.wash is not None and record.price is not None and self.indicators_topic is not None:
                indicator = state.wash.on_quote(record)
                if indicator is not None:
                    outputs.append((self.indicators_topic, indicator.to_json(), "indicators", indicator.ts))
        try:
            chunks = state.flow.on_quote(record) if isinstance(record, Quote) else state.flow.on_book(record)
        except LateRecordError as exc:
            late.append(f"flow: {exc}")
            metrics.late.labels(AGENT, "flow").inc()
        for chunk in chunks:
            outputs.append((self.features_topic, chunk.to_features(record.venue).to_json(), "flow", chunk.ts))
        return outputs, late

    def _rebuild(self, key: bytes, state: MarketState, record: Quote | Book) -> None:
        """Put the symbol's state back to what it was before ``record`` failed: its stored state, then the
        records applied since (their outputs were sent already: nothing is sent again)."""
        fresh = self._load(record, key, state.partition)
        for applied in self._journal.get(key, []):
            self._update(fresh, applied, key)
        state.bars, state.features, state.flow, state.wash = fresh.bars, fresh.features, fresh.flow, fresh.wash
        state.features_state = None

    def _clock(self, partition: int) -> dict[str, int]:
        """The partition's event time per source stream (newest ts applied), from the table on first use."""
        clock = self._clocks.get(partition)
        if clock is None:
            stored = self.table.get(CLOCK_KEY, partition)
            clock = self._clocks[partition] = {k: int(v) for k, v in (stored or {}).get("clock", {}).items()}
        return clock

    def _store_touched(self) -> None:
        super()._store_touched()
        for partition in self._clocks_dirty:
            self.table.write(partition, CLOCK_KEY, {"format": STATE_FORMAT, "clock": self._clocks[partition]})

    # -- steps -------------------------------------------------------------------------------------------
    def _bar_features(self, state: MarketState, bar: Bar) -> bytes:
        values = state.features.on_bar(bar)
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

    # -- state -------------------------------------------------------------------------------------------
    def _load(self, record: Quote | Book, key: bytes, partition: int) -> MarketState:
        symbol = record.symbol
        stored: Mapping[str, Any] | None = self.table.get(key, partition)
        profile = self.feeds(record.venue)
        books, prints = profile.books, profile.prints
        if stored is None:
            flow = FlowState(symbol, self.flow_config, books=books, prints=prints)
            wash = self._wash(record, None)
            return MarketState(BarBuilder(symbol, self.grace_ms), FeatureState(), flow, {}, partition, wash=wash)
        stored = MARKET_STATE.upgrade(stored, of=symbol)
        try:
            flow = FlowState.from_state(stored["flow"], self.flow_config, books=books, prints=prints)
        except ValueError as exc:
            # An upgrade changed the order-flow feature set: its windows cannot be carried over. Start them
            # afresh (the z-scores warm up again) rather than refuse the symbol; bars and bar features continue.
            log.warning("order-flow state of %s not restored, starting afresh: %s", symbol, exc)
            flow = FlowState(symbol, self.flow_config, books=books, prints=prints)
        return MarketState(
            bars=BarBuilder.from_state(stored["bars"], self.grace_ms),
            features=FeatureState.from_state(stored["features"]),
            flow=flow,
            offsets={topic: (int(p), int(o)) for topic, (p, o) in stored["offsets"].items()},
            partition=int(stored["partition"]),
            features_state=stored["features"],
            derived={stream: int(mark) for stream, mark in stored["derived"].items()},
            wash=self._wash(record, stored["wash"]),
        )

    def _wash(self, record: Quote | Book, stored: Mapping[str, Any] | None) -> VenueWash | None:
        """The symbol's wash tests, from ``stored`` when the entry has them; None where they do not run (no topic,
        or a venue whose quotes are not one trade each)."""
        profile = self.feeds(record.venue)
        if self.indicators_topic is None or profile.prints != "trades":
            return None
        params = replace(self.wash_params, utc_offset_min=profile.utc_offset_min)
        if stored is None:
            return VenueWash(record.symbol, record.venue, params)
        return VenueWash.from_state(stored, record.symbol, record.venue, params)

    def _store(self, key: bytes, state: MarketState) -> None:
        if state.features_state is None:
            state.features_state = state.features.to_state()
        entry = {
            "format": STATE_FORMAT,
            "bars": state.bars.to_state(),
            "features": state.features_state,
            "flow": state.flow.to_state(),
            "offsets": {topic: list(po) for topic, po in state.offsets.items()},
            "partition": state.partition,
            "derived": state.derived,
            "wash": None if state.wash is None else state.wash.to_state(),
        }
        self.table.write(state.partition, key, entry)
