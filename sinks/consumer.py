"""The one consumer loop every sink runs: Kafka → decode → durable write → commit.

At-least-once with idempotent writes, so a crash, an outage or a replay neither loses nor duplicates:

1. ``consume(batch_size)`` a batch (auto-commit off; librdkafka's prefetch queue is bounded, and at most
   two batches are in hand — one being written, the next being decoded — so memory stays bounded whatever
   the lag).
2. Decode every message through the record contracts; what fails goes to ``dlq.sinks`` with the reason in
   :mod:`tapewatch.deadletter` headers, its original bytes untouched.
3. Write the batch with the sink's :class:`Writer`. When the store is unavailable (it raises
   :class:`SinkUnavailableError`) every assigned partition is paused and the write retried with exponential
   back-off and jitter; the consumer keeps polling meanwhile (a paused consumer fetches nothing but stays in
   its group), and resumes once the write succeeded. Records the store refuses for good go to ``dlq.sinks``.
4. Wait until the dead letters are acknowledged by the broker, then commit the batch's offsets synchronously.

Offsets are committed only after both the store's commit and the DLQ acknowledgement, so a ``kill -9``
anywhere replays at most the two batches in hand, which the idempotent writes absorb. On a rebalance the
write in flight is settled and committed inside the revocation callback; messages of revoked partitions
that were not written (an outage in progress) are dropped, for their new owner re-reads them.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import NamedTuple, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import ValidationError

from tapewatch.backoff import Backoff
from tapewatch.deadletter import DeadLetter
from tapewatch.errors import TapewatchError
from tapewatch.kafka import consumer_config
from tapewatch.kafka_producer import KafkaProducer
from tapewatch.records import Record, RecordError
from tapewatch.settings import Settings
from tapewatch.topics import BY_NAME, DLQ_SINKS, Topic

log = logging.getLogger(__name__)


class SinkUnavailableError(Exception):
    """The store cannot take writes now (down, overloaded, timing out); the whole batch is retried later."""


class Item(NamedTuple):
    """One consumed message: its registry topic and, for record topics, the decoded record.

    A named tuple, not a frozen dataclass: one is made per message, and a frozen dataclass's ``__init__``
    (``object.__setattr__`` per field) cost several per cent of a sink's time."""

    topic: Topic
    record: Record | None  # None on dead-letter topics: their value is raw bytes by contract
    message: Message


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message the sink will not store, and why (it goes to dlq.sinks)."""

    item_message: Message
    reason: str
    field: str | None = None


class Writer(Protocol):
    """A store: ``prepare`` once (schema, templates), then ``write`` batches durably or raise SinkUnavailableError."""

    name: str

    def prepare(self) -> None: ...

    def write(self, items: Sequence[Item]) -> list[Rejected]:
        """Store ``items`` durably (idempotently); return the ones refused for good. Raise SinkUnavailableError when
        the store cannot take the batch now: it will be retried whole, so partial progress must be idempotent."""
        ...

    def close(self) -> None: ...


@dataclass(slots=True)
class SinkCounters:
    consumed: int = 0
    written: int = 0
    dead_lettered: int = 0
    batches: int = 0
    commits: int = 0
    outages: int = 0
    retries: int = 0
    first_record_at: float | None = None  # time.monotonic() when the first record arrived
    reasons: dict[str, int] = field(default_factory=dict)

    def count_reason(self, reason: str) -> None:
        key = reason[:120]
        self.reasons[key] = self.reasons.get(key, 0) + 1


def decode(record_type: type[Record], raw: bytes | None) -> Record:
    """``raw`` decoded by the record contract, as :meth:`Record.from_json` does, in one step.

    pydantic parses the JSON bytes straight into the model (the same strict schema and validators), about
    twice as fast as ``orjson.loads`` then ``model_validate``, which was the largest cost of a sink. What this
    path refuses is decoded again by ``from_json``, so a rejection carries the contract's own reason and field.
    """
    if raw is not None:
        try:
            # The model's own validator, as model_validate_json calls it, minus that wrapper's Python frame.
            record: Record = record_type.__pydantic_validator__.validate_json(raw)
            return record
        except ValidationError:
            pass
        return record_type.from_json(raw)
    raise RecordError(record_type.record_name, "empty message (tombstone)")


def resolve_topics(names: Sequence[str]) -> list[Topic]:
    """Registry topics by their (unprefixed) names; one clear error for an unknown one."""
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise TapewatchError(f"sink: unknown topic(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    reference = [name for name in names if BY_NAME[name].compacted]
    if reference:
        raise TapewatchError(f"sink: {', '.join(reference)} is reference data, read by the workers, not stored")
    return [BY_NAME[name] for name in names]


def _record_contract(topic: Topic) -> type[Record] | None:
    """``topic``'s record contract, refused when it is not a record's (reference data is read by the workers)."""
    contract = topic.record
    if contract is not None and not issubclass(contract, Record):
        raise TapewatchError(f"sink: {topic.name} carries {contract.record_name}, not records a sink stores")
    return contract


def group_id(settings: Settings, sink: str) -> str:
    # The topic prefix isolates environments on one cluster; consumer groups follow it.
    return f"{settings.kafka.topic_prefix}tapewatch-sink-{sink}"


@dataclass(slots=True)
class Batch:
    """Consumed messages on their way to the store: offsets to commit, items to write, rejections to dead-letter."""

    messages: list[Message] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    write: Future[list[Rejected]] | None = None  # the write in the worker thread, until settled
    outcome: list[Rejected] | None = None  # what the store refused, once the batch is written
    failure: SinkUnavailableError | None = None

    def write_done(self) -> bool:
        return self.write is None or self.write.done()

    def drop_partitions(self, revoked: set[tuple[str, int]]) -> None:
        def kept(message: Message) -> bool:
            return (message.topic(), message.partition()) not in revoked

        self.messages = [m for m in self.messages if kept(m)]
        self.items = [i for i in self.items if kept(i.message)]
        self.rejected = [r for r in self.rejected if kept(r.item_message)]


class SinkRunner:
    """Runs one :class:`Writer` over ``topics`` as a member of a consumer group until stopped.

    One batch is written (in a worker thread) while the next is consumed and decoded: at most two batches
    are in memory, and the store's round trips overlap with decoding. Batches are settled and committed in
    consumption order. A consume waits at most ``poll_timeout_s`` for a full batch: over a backlog batches fill at
    once, and on a live feed a record waits at most 20 ms before its write, a wait the alert → searchable latency
    includes (``tapewatch bench sinks``).
    """

    def __init__(
        self,
        settings: Settings,
        writer: Writer,
        topics: Sequence[Topic],
        *,
        group: str | None = None,
        instance_id: str | None = None,
        batch_size: int = 5000,
        poll_timeout_s: float = 0.02,
        backoff: Backoff | None = None,
        session_timeout_ms: int = 10_000,
    ) -> None:
        if not topics:
            raise TapewatchError(f"sink {writer.name}: no topics to read")
        self.settings = settings
        self.writer = writer
        self.topics = list(topics)
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.backoff = backoff or Backoff()
        self.counters = SinkCounters()
        #: set once the group has given this member partitions (a health check, or a test, can wait for it)
        self.assigned = threading.Event()
        self.stop_event = threading.Event()
        self._by_name = {settings.topic(topic.name): topic for topic in self.topics}
        #: each topic's record contract (None: raw bytes, a dead-letter topic); a sink stores records only
        self._contracts = {name: _record_contract(topic) for name, topic in self._by_name.items()}
        self._current = Batch()  # being consumed and decoded
        self._inflight: Batch | None = None  # being written
        self._paused = False
        self._assigned_at = 0.0  # monotonic time of the last assignment: a batch job's idle time counts from it
        self._on_batch: Callable[[SinkCounters], None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sink-{writer.name}")
        conf = {
            "group.id": group or group_id(settings, writer.name),
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # Short sessions: a crashed member's partitions move on within seconds, not the default 45 s.
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(500, session_timeout_ms // 5),
            # Bounds librdkafka's prefetch, i.e. the records in memory besides the two batches.
            "queued.max.messages.kbytes": 32 * 1024,
            "client.id": f"tapewatch-sink-{writer.name}",
        }
        if instance_id:
            # Static membership: a restarted member with the same id takes its partitions back at once.
            conf["group.instance.id"] = instance_id
        self._consumer = Consumer(consumer_config(settings, **conf))
        self._dlq = KafkaProducer(settings, DLQ_SINKS)
        self._stage = f"sink:{writer.name}"

    # -- lifecycle ----------------------------------------------------------------------------------
    def stop(self) -> None:
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("sink %s: signal %d, finishing the batch in flight", self.writer.name, signum)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(
        self, *, exit_when_idle_s: float | None = None, on_batch: Callable[[SinkCounters], None] | None = None
    ) -> SinkCounters:
        """Consume until :meth:`stop` (or ``exit_when_idle_s`` seconds without a record, for batch jobs)."""
        self._on_batch = on_batch
        self._prepare_store()
        self._consumer.subscribe(
            list(self._by_name), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )
        idle_since = time.monotonic()
        try:
            while not self.stop_event.is_set():
                self._take(self._consumer.consume(num_messages=self.batch_size, timeout=self.poll_timeout_s))
                if self._inflight is not None and (self._current.messages or self._inflight.write_done()):
                    if not self._settle(self._inflight):
                        break
                    self._inflight = None
                if self._current.messages and self._inflight is None:
                    self._submit()
                    idle_since = time.monotonic()
                elif (
                    self._inflight is None
                    and exit_when_idle_s is not None
                    and time.monotonic() - max(idle_since, self._assigned_at) >= exit_when_idle_s
                ):
                    if not self._behind():
                        break
                    idle_since = time.monotonic()  # records are there but not fetched yet: not idle
            # Stopping: what is already being written is finished and committed; the rest is re-read later.
            if self._inflight is not None:
                self._settle(self._inflight, retry=False)
        finally:
            self._inflight = None
            self._pool.shutdown(wait=True)
            self._consumer.close()  # leaves the group at once; uncommitted work is re-read by the next owner
            self.writer.close()
        return self.counters

    def _prepare_store(self) -> None:
        attempt = 0
        while True:
            try:
                self.writer.prepare()
                return
            except SinkUnavailableError as exc:
                attempt += 1
                delay = self.backoff.delay(attempt)
                log.warning("sink %s: store not ready (%s); retrying in %.1f s", self.writer.name, exc, delay)
                if self.stop_event.wait(delay):
                    raise TapewatchError(f"sink {self.writer.name}: stopped before the store was ready") from None

    # -- rebalances ---------------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("sink %s: assigned %s", self.writer.name, _describe(partitions))
        self._assigned_at = time.monotonic()
        if partitions:
            self.assigned.set()

    def _behind(self) -> bool:
        """Whether an assigned partition holds records this member has not read yet: on a busy machine the first
        fetch of a partition can come seconds after the others, so a quiet poll is not the end of the backlog."""
        assignment = self._consumer.assignment()
        if not assignment:
            return False
        timeout = self.settings.local.service_timeout_s
        positions = self._consumer.position(assignment)
        committed = {(tp.topic, tp.partition): tp.offset for tp in self._consumer.committed(assignment, timeout)}
        for tp in positions:
            low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            start = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), -1)
            if max(start, low) < high:
                return True
        return False

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Commit what is durable: a write in flight that succeeds is settled now, while we still own its
        # partitions. What was never written (being consumed, or waiting out an outage) is forgotten for the
        # revoked partitions: their next owner reads it again from the committed offsets.
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        inflight = self._inflight
        if inflight is not None:
            if inflight.write is not None and self._settle(inflight, retry=False):
                self._inflight = None
            else:
                inflight.drop_partitions(revoked)
        self._current.drop_partitions(revoked)
        log.info("sink %s: revoked %s", self.writer.name, _describe(partitions))

    # -- batches ------------------------------------------------------------------------------------
    def _take(self, messages: list[Message]) -> None:
        """Decode ``messages`` into the current batch; undecodable ones become rejections."""
        arrived = time.monotonic()
        batch = self._current
        by_name, contracts = self._by_name, self._contracts
        kept, items, rejected = batch.messages.append, batch.items.append, batch.rejected.append
        consumed = 0
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("sink %s: consume error: %s", self.writer.name, error.str())
                continue
            kept(message)
            consumed += 1
            topic = by_name.get(message.topic() or "")
            if topic is None:  # cannot happen: we subscribe to these names only
                continue
            contract = contracts[message.topic() or ""]
            if contract is None:
                items(Item(topic, None, message))
                continue
            try:
                items(Item(topic, decode(contract, message.value()), message))
            except RecordError as exc:
                rejected(Rejected(message, str(exc), exc.field))
        if consumed:
            self.counters.consumed += consumed
            if self.counters.first_record_at is None:
                self.counters.first_record_at = arrived

    def _submit(self) -> None:
        batch, self._current = self._current, Batch()
        if batch.items:
            batch.write = self._pool.submit(self.writer.write, batch.items)
        else:
            batch.outcome = []
        self._inflight = batch

    def _settle(self, batch: Batch, *, retry: bool = True) -> bool:
        """Wait for ``batch``'s write (riding out an outage when ``retry``), dead-letter, commit. False when it
        is not written (stopped during an outage, or ``retry`` off and the store unavailable)."""
        if batch.write is not None:
            future, batch.write = batch.write, None
            try:
                batch.outcome = future.result()
            except SinkUnavailableError as exc:
                batch.failure = exc
        if batch.outcome is None:
            if not retry:
                return False
            outcome = self._write_durably(batch, batch.failure or SinkUnavailableError("not written yet"))
            if outcome is None:
                return False
            batch.outcome = outcome
        batch.rejected.extend(batch.outcome)
        self.counters.written += len(batch.items) - len(batch.outcome)
        self.counters.batches += 1
        self._dead_letter_and_commit(batch)
        if self._on_batch is not None:
            self._on_batch(self.counters)
        return True

    def _write_durably(self, batch: Batch, first: SinkUnavailableError) -> list[Rejected] | None:
        """Retry ``batch`` until the store takes it, consumption paused meanwhile. None when stopped first."""
        attempt, error = 0, first
        while True:
            attempt += 1
            self.counters.retries += 1
            if not self._paused:
                self.counters.outages += 1
                log.warning("sink %s: store unavailable (%s); pausing consumption", self.writer.name, error)
            self._pause()
            delay = self.backoff.delay(attempt)
            log.info("sink %s: retry %d in %.1f s", self.writer.name, attempt, delay)
            # Polling while paused keeps our group membership (max.poll.interval.ms) and serves rebalances;
            # only partitions assigned during the wait can deliver, and they go to the next batch.
            self._take(self._consumer.consume(num_messages=self.batch_size, timeout=delay))
            if self.stop_event.is_set():
                return None
            try:
                refused = self.writer.write(batch.items) if batch.items else []
            except SinkUnavailableError as exc:
                error = exc
                continue
            self._consumer.resume(self._consumer.assignment())
            self._paused = False
            log.info("sink %s: store back after %d retries; resuming", self.writer.name, attempt)
            return refused

    def _pause(self) -> None:
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(assignment)
        self._paused = True

    def _dead_letter_and_commit(self, batch: Batch) -> None:
        if batch.rejected:
            for rejected in batch.rejected:
                message = rejected.item_message
                letter = DeadLetter(
                    stage=self._stage,
                    reason=rejected.reason,
                    field=rejected.field,
                    topic=message.topic(),
                    partition=message.partition(),
                    offset=message.offset(),
                )
                self._dlq.dead_letter(message.value() or b"", letter, message.key())
                self.counters.dead_lettered += 1
                self.counters.count_reason(rejected.reason)
            # The dead letters must be on the broker before the offsets that skip their originals are committed.
            self._dlq.flush(timeout_s=120.0)
        self._commit(batch.messages)

    def _commit(self, messages: Sequence[Message]) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            key = (message.topic() or "", message.partition() or 0)
            next_offsets[key] = max(next_offsets.get(key, 0), (message.offset() or 0) + 1)
        owned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items() if (t, p) in owned]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
            self.counters.commits += 1
        except KafkaException as exc:
            # A rebalance raced the commit: the new owner re-reads these records and the writes are idempotent.
            log.warning("sink %s: commit failed (%s); records will be re-read", self.writer.name, exc.args[0])


def _describe(partitions: Sequence[TopicPartition]) -> str:
    """Each topic once with its partitions: ``alerts[0,1,2,3], md.books[1]``.

    >>> _describe([TopicPartition("alerts", 1), TopicPartition("md.books", 0), TopicPartition("alerts", 0)])
    'alerts[0,1], md.books[0]'
    """
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return ", ".join(f"{topic}[{','.join(map(str, sorted(p)))}]" for topic, p in sorted(by_topic.items())) or "nothing"
