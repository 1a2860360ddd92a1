"""What every stream stage shares: its outputs, dead letters and the bookkeeping of what it made durable.

A stage works in two steps, driven by :class:`streams.app.StreamApp`:

1. per batch, :meth:`Stage.process` decodes the messages, applies them to the live per-symbol state and queues
   the outputs (and dead letters) on the worker's producer;
2. per checkpoint (every ``TAPEWATCH_STREAM_CHECKPOINT_INTERVAL_MS``), once the producer has flushed (every
   output acknowledged by Kafka), :meth:`Stage.write_state` writes the state of every symbol touched since the
   last checkpoint to the stage's changelog table.

Only after that state is acknowledged too does the worker commit the offsets. A crash replays everything since
the last commit against the state of the last checkpoint; stages skip what their stored per-symbol offsets say
was already applied (see :mod:`streams.market`), so a replay never counts a record twice, and the outputs it
sends again are the same records (downstream writes are idempotent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import Message

from streams.metrics import StreamMetrics
from tapewatch.deadletter import DeadLetter
from tapewatch.kafka_producer import KafkaProducer

log = logging.getLogger(__name__)


class Stage(Protocol):
    stage: str
    sources: tuple[str, ...]

    def process(self, messages: Sequence[Message]) -> None: ...

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
        for kind, event_ms in emitted:
            histogram.labels(self.agent, kind).observe(max(0.0, (now_ms - event_ms) / 1000.0))
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
