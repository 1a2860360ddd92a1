"""Publishing records to Kafka: the one producer every source uses.

Idempotence on and ``acks=all``: a retried batch is never written twice. librdkafka batches and compresses
(lz4) in its own thread; ``publish`` only enqueues, so the per-record cost in Python is one JSON encode.
Only failed deliveries are reported (``delivery.report.only.error``): a Python callback per acknowledged
record would cost a third of the per-record budget, and "delivered" is simply sent − queued − failed.
A record the broker finally refused is an error the caller sees at ``flush``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from tapewatch.deadletter import DeadLetter
from tapewatch.errors import TapewatchError
from tapewatch.kafka import client_config
from tapewatch.records import Record
from tapewatch.settings import Settings
from tapewatch.topics import Topic

log = logging.getLogger(__name__)
Headers = list[tuple[str, str | bytes | None]]


@dataclass(slots=True)
class PublishCounters:
    sent: int = 0
    failed: int = 0
    dead_lettered: int = 0
    last_error: str | None = None


class Publisher:
    """Records → Kafka topics of the registry (names prefixed per settings), keyed by symbol."""

    def __init__(self, settings: Settings, dead_letter_topic: Topic, **overrides: Any) -> None:
        self.settings = settings
        self.counters = PublishCounters()
        self._dlq = settings.topic(dead_letter_topic.name)
        self._dlq_max_bytes = settings.dlq_max_bytes
        self._names: dict[str, str] = {}
        conf = client_config(
            settings,
            **{
                "enable.idempotence": True,
                # the Java clients' partitioner: one symbol, one partition, whoever writes.
                "partitioner": "murmur2_random",
                "acks": "all",
                "compression.type": "lz4",
                "linger.ms": 20,
                "batch.size": 1_000_000,
                "queue.buffering.max.messages": 1_000_000,
                "queue.buffering.max.kbytes": 512 * 1024,
                "delivery.timeout.ms": 120_000,
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery,
                **overrides,
            },
        )
        self._producer = Producer(conf)
        self._produce = self._producer.produce

    @property
    def delivered(self) -> int:
        """Acknowledged by the broker so far."""
        return self.counters.sent - len(self._producer) - self.counters.failed

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.counters.failed += 1
            self.counters.last_error = f"{msg.topic()}: {err.str()}"
            log.error("delivery failed", extra={"fields": {"topic": msg.topic(), "error": err.str()}})

    def _topic_name(self, topic: Topic) -> str:
        name = self._names.get(topic.name)
        if name is None:
            name = self._names[topic.name] = self.settings.topic(topic.name)
        return name

    def publish(self, topic: Topic, record: Record) -> None:
        name = self._names.get(topic.name) or self._topic_name(topic)
        try:
            self._produce(name, record.to_json(), record.key())
        except BufferError:
            self.send(topic, record.key(), record.to_json())  # the slow path waits for room
            return
        self.counters.sent += 1

    def send(self, topic: Topic, key: bytes | None, value: bytes, headers: Headers | None = None) -> None:
        name = self._topic_name(topic)
        while True:
            try:
                self._produce(name, value, key, headers=headers)
                break
            except BufferError:
                # Local queue full: let librdkafka drain (and serve callbacks), then retry. Back-pressure, not loss.
                self._producer.poll(0.05)
        self.counters.sent += 1

    def dead_letter(self, raw: bytes, letter: DeadLetter, key: bytes | None = None) -> None:
        """The original bytes, untouched, to the dead-letter topic with the reason in headers."""
        value, short_key, fitted = letter.fit(raw, key, self._dlq_max_bytes)
        headers: Headers = list(fitted)
        self._produce(self._dlq, value, short_key, headers=headers)
        self.counters.sent += 1
        self.counters.dead_lettered += 1

    def poll(self) -> None:
        self._producer.poll(0)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until everything enqueued is acknowledged; raise if any record was finally refused."""
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise TapewatchError(f"kafka: {remaining} record(s) not acknowledged within {timeout_s:.0f} s")
        if self.counters.failed:
            raise TapewatchError(f"kafka: {self.counters.failed} record(s) failed: {self.counters.last_error}")

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
