"""What every stream stage shares: its outputs, dead letters and the bookkeeping of what it made durable.

A stage (a :class:`StageBase`) works in two steps, driven by :class:`tapewatch.streams.app.StreamApp`:

1. per batch, :meth:`Stage.process` decodes the messages, applies them to the live per-symbol state and queues
   the outputs (and dead letters) on the worker's producer;
2. per checkpoint (every ``TAPEWATCH_STREAM_CHECKPOINT_INTERVAL_MS``), once the producer has flushed (every
   output acknowledged by Kafka), :meth:`Stage.write_state` writes the state of every symbol touched since the
   last checkpoint to the stage's changelog table.

Only after that state is acknowledged too does the worker commit the offsets. A crash replays everything since
the last commit against the state of the last checkpoint; stages skip what their stored per-symbol offsets say
was already applied (see :mod:`tapewatch.streams.market`), so a replay never counts a record twice, and the outputs it
sends again are the same records (downstream writes are idempotent). A stage that reads another stage's output
also skips by event identity (:meth:`StageBase._seen`): what the other stage sends again after its own crash
arrives at new offsets.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from confluent_kafka import Message

from tapewatch.deadletter import DeadLetter
from tapewatch.kafka_producer import KafkaProducer
from tapewatch.records import Record, RecordError
from tapewatch.streams.metrics import StreamMetrics
from tapewatch.streams.state import ChangelogTable

log = logging.getLogger(__name__)


class Stage(Protocol):
    stage: str
    sources: tuple[str, ...]

    def process(self, messages: Sequence[Message]) -> None: ...

    def processed(self) -> dict[tuple[str, int], int]:
        """(topic, partition) → the highest offset processed since the last checkpoint (every one below it too)."""
        ...

    def held(self) -> set[tuple[str, int]]:
        """The partitions whose next messages the stage holds back, unprocessed, until it can take them."""
        ...

    def write_state(self) -> None: ...

    def forget(self) -> None: ...

    def discard(self) -> None: ...


@dataclass
class StageIO:
    """A stage's producer (the worker's, with its dead-letter topic), metrics and what this process made durable."""

    stage: str  # "stream:market" — the DLQ headers' stage
    agent: str  # "market" — the metrics' agent label
    producer: KafkaProducer
    metrics: StreamMetrics
    #: (topic, partition) → highest offset whose effects this process made durable
    done: dict[tuple[str, int], int] = field(default_factory=dict)

    def observe_batch(self, emitted: list[tuple[str, int]], started: float) -> None:
        """Metrics of a processed batch: event-to-emit latency of its outputs (then forgets them) and the time
        it took since ``started`` (``time.perf_counter()``)."""
        now_ms = time.time() * 1000.0
        histogram = self.metrics.event_to_emit
        of_kind = {kind: histogram.labels(self.agent, kind) for kind in {kind for kind, _ in emitted}}
        for kind, event_ms in emitted:
            of_kind[kind].observe(max(0.0, (now_ms - event_ms) / 1000.0))
        emitted.clear()
        self.metrics.batch_seconds.labels(self.agent).observe(time.perf_counter() - started)

    def send(self, topic: str, key: bytes, value: bytes, partition: int) -> None:
        self.producer.produce(topic, key, value, partition)

    def dead_letter(self, message: Message, reason: str, field: str | None, kind: str) -> None:
        """The message's original bytes to the DLQ with the reason in headers. ``kind`` is the metrics' reason
        label (``late``, ``invalid``, ``key``, ``model``)."""
        topic, partition, offset = message.topic(), message.partition() or 0, message.offset()
        letter = DeadLetter(
            stage=self.stage, reason=reason, field=field, topic=topic, partition=partition, offset=offset
        )
        self.metrics.dead_letters.labels(self.agent, kind).inc()
        log.debug("dead letter %s[%d]@%s: %s", topic, partition, offset, reason)
        self.producer.dead_letter(message.value() or b"", letter, message.key(), partition)


class StageState(Protocol):
    """What :class:`StageBase` needs of a stage's per-symbol state: where it lives and what it has applied."""

    partition: int
    #: applied since it was last written to the table
    dirty: bool

    def applied(self, topic: str, partition: int, offset: int) -> bool:
        """Whether the record at ``offset`` is already in this state (a replay after a crash)."""
        ...

    def mark_applied(self, topic: str, partition: int, offset: int) -> None:
        """The record at ``offset`` is in this state now (whether it applied or was dead-lettered)."""
        ...


class StageCounts(Protocol):
    """The counters :class:`StageBase` keeps; a stage's own counters add theirs."""

    events_in: int
    dead_letters: int
    replayed: int


StateT = TypeVar("StateT", bound=StageState)
RecordT = TypeVar("RecordT", bound=Record)


def decode_keyed(contract: type[RecordT], raw: bytes | None, key: bytes | None) -> RecordT:
    """``raw`` decoded by the record contract; its message key must be its symbol (what co-partitions topics)."""
    if not raw:
        raise RecordError(contract.record_name, "empty payload")
    record = contract.from_json(raw)
    if key is None:
        raise RecordError(record.record_name, "message without a key: the key must be the symbol", "symbol")
    if key != record.key():
        raise RecordError(record.record_name, f"message key {key!r} is not the symbol", "symbol")
    return record


@dataclass
class StageBase(ABC, Generic[StateT, RecordT]):
    """The bookkeeping every stage shares: per message, decode or dead-letter it, find its symbol's state (this
    checkpoint's, the live cache's or the table's) and skip it if that state already holds it; per checkpoint,
    write the touched states and hand over what became durable. A stage supplies how to decode, load, apply
    and store."""

    io: StageIO = field(kw_only=True)
    table: ChangelogTable = field(kw_only=True)
    #: the stage's own counters (a stage declares them again, with their type and default)
    counters: StageCounts = field(kw_only=True)
    _live: dict[bytes, StateT] = field(default_factory=dict, init=False, repr=False)
    # applied since the last checkpoint: process() fills these, write_state() settles them
    _touched: dict[bytes, StateT] = field(default_factory=dict, init=False, repr=False)
    _sent: Counter[str] = field(default_factory=Counter, init=False, repr=False)
    _emitted: list[tuple[str, int]] = field(default_factory=list, init=False, repr=False)
    _done: dict[tuple[str, int], int] = field(default_factory=dict, init=False, repr=False)
    #: records applied per symbol since its state was last stored: replayed to rebuild it after a failure
    _journal: dict[bytes, list[RecordT]] = field(default_factory=dict, init=False, repr=False)
    _started: float = field(default=0.0, init=False, repr=False)

    # -- what a stage supplies ---------------------------------------------------------------------------
    @abstractmethod
    def _decode(self, message: Message) -> RecordT:
        """The message's record; :class:`RecordError` when the contract or the key refuses it."""

    @abstractmethod
    def _load(self, record: RecordT, key: bytes, partition: int) -> StateT:
        """The symbol's state from the table (a fresh one when it has none)."""

    @abstractmethod
    def _apply(self, message: Message, record: RecordT, key: bytes, state: StateT) -> None:
        """Apply ``record`` to ``state`` and queue its outputs (or dead-letter it)."""

    @abstractmethod
    def _store(self, key: bytes, state: StateT) -> None:
        """Write ``state`` to the table."""

    def _admit(self, message: Message, record: RecordT) -> bool:
        """Whether ``record`` may reach its symbol's state; a stage that refuses one dead-letters it."""
        return True

    def _seen(self, record: RecordT, state: StateT) -> bool:
        """Whether ``state`` already holds ``record`` by its event identity, whatever its offset: a record
        another stage sent again after a crash or a rebalance, or a producer's retry, lands at a new offset."""
        return False

    def _after_batch(self, messages: Sequence[Message]) -> None:
        """Work on the batch as a whole, once every message is applied."""

    # -- per batch ---------------------------------------------------------------------------------------
    def process(self, messages: Sequence[Message]) -> None:
        """Apply one batch and queue its outputs; :meth:`write_state` follows once they are acknowledged."""
        self._started = time.perf_counter()
        replayed = 0
        for message in messages:
            replayed += self._one(message)
        self._after_batch(messages)
        self.io.observe_batch(self._emitted, self._started)
        if replayed:
            self.counters.replayed += replayed
            self.io.metrics.replayed.labels(self.io.agent).inc(replayed)
            log.info("replay: skipped %d %s record(s) already applied to the state", replayed, self.io.agent)

    def processed(self) -> dict[tuple[str, int], int]:
        return dict(self._done)

    def held(self) -> set[tuple[str, int]]:
        return set()

    def _one(self, message: Message) -> int:
        """Apply one message (1 if it was applied before a crash and skipped). Whatever it holds, it ends as
        outputs, a dead letter or a skip: no record can stop the stage."""
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None
        source, done = (topic, partition), self._done
        if offset > done.get(source, -1):
            done[source] = offset
        self.counters.events_in += 1
        try:
            record = self._decode(message)
        except RecordError as exc:
            kind = "key" if exc.field == "symbol" and "key" in exc.reason else "invalid"
            self._dead_letter(message, str(exc), exc.field, kind)
            return 0
        if not self._admit(message, record):
            return 0
        key = message.key()
        assert key is not None  # the decoding checked it is the symbol
        state = self._touched.get(key)
        if state is None:
            state = self._touched[key] = self._live.get(key) or self._load(record, key, partition)
        if state.applied(topic, partition, offset) or self._seen(record, state):
            return 1  # applied before (a replay, or the same event sent again): do not count it twice
        self._apply(message, record, key, state)
        state.mark_applied(topic, partition, offset)
        return 0

    def _send(self, kind: str, topic: str, key: bytes, value: bytes, partition: int, event_ms: int | None) -> None:
        """Queue one output; ``event_ms`` (the event time it stands for) feeds the event-to-emit latency."""
        self.io.send(topic, key, value, partition)
        self._sent[kind] += 1
        if event_ms is not None:
            self._emitted.append((kind, event_ms))

    def _dead_letter(self, message: Message, reason: str, field: str | None, kind: str) -> None:
        self.counters.dead_letters += 1
        self._sent["dlq"] += 1
        self.io.dead_letter(message, reason, field, kind)

    # -- per checkpoint ----------------------------------------------------------------------------------
    def write_state(self) -> None:
        """The batch's outputs are acknowledged: count them, and write each touched symbol's new state."""
        for kind, count in self._sent.items():
            self.io.metrics.records_out.labels(self.io.agent, kind).inc(count)
        self._store_touched()
        self.io.done.update(self._done)
        self._clear_checkpoint()

    def _store_touched(self) -> None:
        for key, state in self._touched.items():
            if state.dirty:
                self._store(key, state)
                state.dirty = False
            self._live[key] = state

    def _clear_checkpoint(self) -> None:
        """Forget what was applied since the last checkpoint (written now, or lost with the partitions)."""
        self._touched, self._sent, self._done, self._journal = {}, Counter(), {}, {}

    def discard(self) -> None:
        """Forget what was applied since the last :meth:`write_state` (the partitions were lost)."""
        self._clear_checkpoint()
        self._emitted = []
        self.forget()

    def forget(self) -> None:
        """Drop the live cache (partitions moved): the next batch reloads from the recovered table."""
        self._live.clear()
