"""The paper-trading worker: the tape and the signals of every partition, in one event-time order, through
the paper executor (:mod:`tapewatch.execution.executor`), to ``orders``, ``fills`` and ``portfolio``.

One worker owns a set of accounts, and an account's limits span symbols, so the worker reads **every**
partition of md.books, md.quotes, signals.actions and signals.forecasts (assigned, not balanced by a group: two
workers of one name would trade twice) and merges them by event time (:mod:`tapewatch.execution.merge`).

Nothing lost, nothing doubled, the same result after a crash: per checkpoint the outputs are flushed
(acknowledged) first, then one changelog record holds the executor's whole state *and* where each partition
resumes (the first record not yet applied). A restart — after ``kill -9`` too — reads that record and resumes
there, so it applies exactly the records after the state and, the executor being deterministic, sends again
exactly the records it sent after the checkpoint (same ids: the sinks store them once). The group's committed
offsets (the same positions) only show the lag.

Decisions are applied once by event identity: the checkpoint also holds, per signal (``dqn`` or a forecaster's
model) and symbol, the event time of the newest decision applied, and a decision at or before it is skipped
(counted as ``repeated``). The stream worker sends an action or a forecast again after its own crash or a
rebalance; traded again it would place another order (a new client order id) or be dead-lettered as late.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from types import FrameType
from typing import Final, Literal

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, Message, TopicPartition

from tapewatch.deadletter import DeadLetter
from tapewatch.execution.accounts import DQN_SIGNAL, AccountConfig
from tapewatch.execution.executor import InputRefusedError, PaperExecutor
from tapewatch.execution.grid import VenueRules
from tapewatch.execution.merge import NEVER, EventMerge
from tapewatch.kafka import cluster_metadata, consumer_config, create_missing_topics, new_topic
from tapewatch.kafka_producer import KafkaProducer
from tapewatch.records import Action, Book, Forecast, Quote, Record, RecordError
from tapewatch.settings import Settings
from tapewatch.streams.state import ChangelogTable
from tapewatch.topics import ACTIONS, BOOKS, DLQ_STREAMS, FILLS, FORECASTS, ORDERS, PORTFOLIO, QUOTES

STAGE: Final = "trade:paper"
STATE_KEY: Final = b"state"
#: the whole state is one record: room for thousands of symbols' books and orders
STATE_MAX_BYTES: Final = 16 * 1024 * 1024
#: a partition at its end and silent for this long no longer holds back the others (beyond the max skew)
QUIET_AFTER_S: Final = 10.0
BATCH_MAX: Final = 5000
log = logging.getLogger(__name__)


@dataclass(slots=True)
class Poison:
    """A message that could not be decoded: dead-lettered in its place in the merged order."""

    reason: str
    field: str | None


@dataclass(slots=True)
class Received:
    """A message as the merge queues it: the record (or why not) and its original bytes, for a dead letter."""

    item: Record | Poison
    raw: bytes
    key: bytes | None


@dataclass(slots=True)
class TradeCounters:
    events_in: int = 0
    applied: int = 0
    dead_letters: int = 0
    #: decisions skipped: one of the same signal, symbol and event time (or a later one) was applied already
    repeated: int = 0
    #: seconds spent in polls that brought nothing (waiting for input), of ``run_s`` in all
    waited_s: float = 0.0
    run_s: float = 0.0
    #: records sent per kind: order, fill, portfolio
    out: Counter[str] = field(default_factory=Counter)


def state_topic(settings: Settings, name: str) -> str:
    return settings.topic(f"tapewatch-trade-{name}-state")


class TradeWorker:
    """``run`` until ``stop`` (or until idle, for a finished session)."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        accounts: Sequence[AccountConfig],
        rules: VenueRules,
        *,
        max_skew_ms: int = 60_000,
        start: Literal["earliest", "latest"] = "earliest",
    ) -> None:
        self.settings, self.name, self.start = settings, name, start
        self.group = settings.topic(f"tapewatch-trade-{name}")
        topics = (BOOKS, QUOTES, ACTIONS, FORECASTS)
        self.sources = tuple(settings.topic(t.name) for t in topics)
        contracts: tuple[type[Record], ...] = (Book, Quote, Action, Forecast)
        self.contracts = {settings.topic(t.name): c for t, c in zip(topics, contracts, strict=True)}
        self.outputs = {kind: settings.topic(t.name) for kind, t in (("order", ORDERS), ("fill", FILLS),
                                                                       ("portfolio", PORTFOLIO))}  # fmt: skip
        self.producer = KafkaProducer(
            settings,
            DLQ_STREAMS,
            **{"linger.ms": 5, "delivery.timeout.ms": 60_000, "message.max.bytes": STATE_MAX_BYTES},
        )
        self.table = ChangelogTable("trade-state", state_topic(settings, name), self.producer)
        self.executor = PaperExecutor(accounts, rules, settings.venues.feeds())
        ranks = {t: i for i, t in enumerate(self.sources)}
        self.merge: EventMerge[Received] = EventMerge(max_skew_ms, ranks, QUIET_AFTER_S)
        #: "signal|symbol" → event time of the newest decision applied (kept with the executor's state)
        self.decided: dict[str, int] = {}
        self.counters = TradeCounters()
        self.checkpoint_interval_s = settings.stream.checkpoint_interval_ms / 1000.0
        self._stopping = False
        self._last_read = time.monotonic()

    # -- set-up ------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """The state topic (compacted, large records allowed); the sources must exist."""
        config = {"cleanup.policy": "compact", "max.message.bytes": str(STATE_MAX_BYTES)}
        create_missing_topics(self.settings, [new_topic(self.settings, self.table.topic, config)],
                              required=[*self.sources, *self.outputs.values()])  # fmt: skip

    def _recover(self) -> list[TopicPartition]:
        """The state of the last checkpoint, and where every partition resumes."""
        self.table.recover(self.settings, [0])
        saved = self.table.get(STATE_KEY, 0)
        if saved is not None:
            self.executor.load_state(saved["executor"])
            self.decided = {str(key): int(ts) for key, ts in saved.get("decided", {}).items()}
            log.info("paper trader %s: resuming from the checkpoint at event time %d", self.name, self.executor.now)
        resume: dict[str, list[int]] = {} if saved is None else saved["positions"]
        metadata = cluster_metadata(self.settings).topics
        pairs = [(t, p) for t in self.sources for p in sorted(metadata[t].partitions)]
        self.merge.assign(pairs, resume)
        fallback = OFFSET_BEGINNING if self.start == "earliest" else OFFSET_END
        return [TopicPartition(t, p, resume[f"{t}:{p}"][0] if f"{t}:{p}" in resume else fallback) for t, p in pairs]

    # -- the loop ----------------------------------------------------------------------------------------
    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self._stopping = True

    def run(self, *, until_idle_s: float | None = None, install_signals: bool = True) -> TradeCounters:
        """Trade until :meth:`stop`, or until every source has been at its end for ``until_idle_s``."""
        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        consumer = Consumer(consumer_config(self.settings, **{
            "group.id": self.group, "enable.auto.commit": False, "enable.partition.eof": True,
            "max.partition.fetch.bytes": 512 * 1024, "fetch.wait.max.ms": 20, "queued.min.messages": 50_000,
        }))  # fmt: skip
        started = time.perf_counter()
        try:
            consumer.assign(self._recover())
            last_checkpoint = time.monotonic()
            while not self._stopping:
                polled = time.perf_counter()
                messages = consumer.consume(num_messages=BATCH_MAX, timeout=0.2)
                if not messages:
                    self.counters.waited_s += time.perf_counter() - polled
                self._read(messages)
                # at most a batch per turn: checkpoints come between, however much the merge has ready
                self._apply(islice(self.merge.release(now=time.monotonic()), BATCH_MAX))
                if time.monotonic() - last_checkpoint >= self.checkpoint_interval_s:
                    self._checkpoint(consumer)
                    last_checkpoint = time.monotonic()
                if until_idle_s is not None and self._idle_for() >= until_idle_s:
                    if self.merge.pending():
                        self._apply(islice(self.merge.release(flush=True), BATCH_MAX))
                        continue  # a finished session: nothing else is coming
                    break
            self._checkpoint(consumer)
        finally:
            consumer.close()
        self.counters.run_s = time.perf_counter() - started
        counters = {**asdict(self.counters), "out": dict(self.counters.out)}
        log.info("paper trader %s stopping: %s", self.name, counters)
        return self.counters

    def _idle_for(self) -> float:
        return time.monotonic() - self._last_read if self.merge.idle() else 0.0

    def _read(self, messages: list[Message]) -> None:
        for message in messages:
            topic, partition = message.topic() or "", message.partition() or 0
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self.merge.reached_end(topic, partition)
                    continue
                if error.fatal():
                    raise KafkaException(error)
                log.warning("consumer: %s", error.str())
                continue
            self._last_read = time.monotonic()
            self.counters.events_in += 1
            item = self._decode(topic, message)
            ts = item.ts if isinstance(item, Quote | Book | Action | Forecast) else NEVER
            received = Received(item, message.value() or b"", message.key())
            self.merge.add(topic, partition, message.offset() or 0, ts, received, self._last_read)

    def _decode(self, topic: str, message: Message) -> Record | Poison:
        raw, key = message.value(), message.key()
        try:
            if not raw:
                raise RecordError(self.contracts[topic].record_name, "empty payload")
            record = self.contracts[topic].from_json(raw)
        except RecordError as exc:
            return Poison(str(exc), exc.field)
        if key != record.key():
            return Poison(f"{record.record_name}: message key {key!r} is not the symbol", "symbol")
        return record

    def _apply(self, released: Iterator[tuple[str, int, int, Received]]) -> None:
        for topic, partition, offset, received in released:
            item = received.item
            if isinstance(item, Poison):
                self._dead_letter(topic, partition, offset, received, item.reason, item.field)
                continue
            assert isinstance(item, Quote | Book | Action | Forecast)
            if isinstance(item, Action | Forecast) and self._decided_before(item):
                self.counters.repeated += 1
                continue
            try:
                out = self.executor.apply(item)
            except InputRefusedError as exc:
                self._dead_letter(topic, partition, offset, received, exc.reason, exc.field)
                continue
            except Exception as exc:  # a bug must not stop every account: that input is dead-lettered, loudly
                log.exception("paper trader: applying %s[%d]@%d failed", topic, partition, offset)
                self._dead_letter(topic, partition, offset, received, f"executor error: {exc!r}", None)
                continue
            self.counters.applied += 1
            for record in out:
                self.counters.out[record.record_name] += 1
                self.producer.produce(self.outputs[record.record_name], record.key(), record.to_json())
        self.producer.poll()

    def _decided_before(self, record: Action | Forecast) -> bool:
        """Whether this signal's decision for the symbol at this event time (or a later one) was applied; if
        not, it is now (refused or not: a copy of a refused one is skipped too)."""
        key = f"{DQN_SIGNAL if isinstance(record, Action) else record.model}|{record.symbol}"
        newest = self.decided.get(key)
        if newest is not None and record.ts <= newest:
            return True
        self.decided[key] = record.ts
        return False

    def _dead_letter(
        self, topic: str, partition: int, offset: int, received: Received, reason: str, field: str | None
    ) -> None:
        """The input's original bytes to the dead-letter topic, with the reason in the headers."""
        self.counters.dead_letters += 1
        letter = DeadLetter(stage=STAGE, reason=reason, field=field, topic=topic, partition=partition, offset=offset)
        self.producer.dead_letter(received.raw, letter, received.key, partition)

    def _checkpoint(self, consumer: Consumer) -> None:
        """Outputs acknowledged, then the state with the resume positions, then the offsets (lag only)."""
        self.producer.flush()
        positions = self.merge.positions()
        state = {"executor": self.executor.to_state(), "positions": positions, "decided": dict(self.decided)}
        self.table.write(0, STATE_KEY, state)
        self.producer.flush()
        offsets = [TopicPartition(t, int(p), o) for t, p, o in _split(positions) if o >= 0]
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=True)
            except KafkaException as exc:
                log.warning("offset commit failed (lag display only): %s", exc)


def _split(positions: dict[str, list[int]]) -> list[tuple[str, str, int]]:
    out = []
    for source, (offset, _) in positions.items():
        topic, _, partition = source.rpartition(":")
        out.append((topic, partition, offset))
    return out
