"""The one Kafka producer every writer uses: the sources (through :class:`tapewatch.producers.publisher.Publisher`), the
stream worker (outputs, changelogs, dead letters), the sinks (dead letters) and the console (the accounts).

Idempotence on and ``acks=all``: a retried batch is never written twice. librdkafka batches and compresses
(lz4) in its own thread; a send only enqueues, so the per-record cost in Python is the caller's encoding.
Only failed deliveries are reported (``delivery.report.only.error``): a Python callback per acknowledged
record would cost a third of a source's per-record budget, and "delivered" is simply sent − queued − failed.

:meth:`KafkaProducer.flush` waits until the broker acknowledged everything sent so far and raises
:class:`DeliveryError` if any record was finally refused or timed out. Callers flush before they commit the
offsets (or report the success) that say the records were written, which is what makes a crash replay rather
than lose.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Final, Self

from confluent_kafka import KafkaError, Message, Producer

from tapewatch.deadletter import DeadLetter
from tapewatch.errors import TapewatchError
from tapewatch.kafka import client_config
from tapewatch.settings import Settings
from tapewatch.topics import Topic

log = logging.getLogger(__name__)
Headers = list[tuple[str, str | bytes | None]]

#: let the partitioner choose (by key): librdkafka's RD_KAFKA_PARTITION_UA, confluent-kafka's default
ANY_PARTITION: Final = -1
#: how long a flush may wait for acknowledgements before it gives up (and the caller commits nothing)
FLUSH_TIMEOUT_S: Final = 120.0


class DeliveryError(TapewatchError):
    """Kafka refused or timed out a write: what it covers must not be committed."""


@dataclass(slots=True)
class ProducerCounters:
    sent: int = 0  # handed to librdkafka
    failed: int = 0  # finally refused by the broker, or timed out
    dead_lettered: int = 0


class KafkaProducer:
    """An idempotent producer with one dead-letter topic; :meth:`flush` is the only wait for the broker."""

    def __init__(self, settings: Settings, dead_letter_topic: Topic, **overrides: Any) -> None:
        self.counters = ProducerCounters()
        self._dlq = settings.topic(dead_letter_topic.name)
        self._dlq_max_bytes = settings.kafka.dlq_max_bytes
        #: failures since the last flush, and the first of them (the likeliest cause of the others)
        self._failed_since_flush = 0
        self._first_failure = ""
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
        if err is None:
            return
        self.counters.failed += 1
        if err.code() == KafkaError._PURGE_QUEUE:
            # dropped on purpose by purge_queued, after a flush that already failed: not a failure of a later flush
            # (its report may be served by that flush's poll, not by purge_queued's)
            return
        if not self._failed_since_flush:
            partition = msg.partition()
            where = f"{msg.topic()}[{partition}]" if partition is not None and partition >= 0 else msg.topic()
            self._first_failure = f"{where}: {err.str()}"
        self._failed_since_flush += 1
        log.error("delivery failed", extra={"fields": {"topic": msg.topic(), "error": err.str()}})

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int = ANY_PARTITION,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record for ``topic`` (a full name; ``value`` None is a tombstone); waits for room while
        librdkafka's queue is full."""
        while True:
            try:
                self._produce(topic, value, key, partition, headers=headers)
                break
            except BufferError:
                # Local queue full: let librdkafka drain (and serve callbacks), then retry. Back-pressure, not loss.
                self._producer.poll(0.05)
        self.counters.sent += 1

    def dead_letter(
        self, raw: bytes, letter: DeadLetter, key: bytes | None = None, partition: int = ANY_PARTITION
    ) -> None:
        """The original bytes, untouched unless too large to send, to the dead-letter topic; the reason in headers."""
        value, short_key, fitted = letter.fit(raw, key, self._dlq_max_bytes)
        headers: Headers = list(fitted)
        self.produce(self._dlq, short_key, value, partition, headers)
        self.counters.dead_lettered += 1

    def poll(self) -> None:
        """Serve delivery callbacks without waiting."""
        self._producer.poll(0)

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Until every record sent so far is acknowledged; :class:`DeliveryError` if any failed or timed out."""
        deadline = time.monotonic() + timeout_s
        left = self._producer.flush(timeout_s)
        while left and time.monotonic() < deadline:
            left = self._producer.flush(max(0.0, deadline - time.monotonic()))
        if self._failed_since_flush:
            failed, self._failed_since_flush = self._failed_since_flush, 0
            raise DeliveryError(f"kafka: {failed} write(s) failed, first: {self._first_failure}")
        if left:
            raise DeliveryError(f"kafka: {left} write(s) not acknowledged within {timeout_s:.0f} s")

    def purge_queued(self) -> None:
        """Drop what librdkafka still holds unsent (after a failed flush: none of it may reach the broker later).
        What is already on its way to the broker is left to its acknowledgement, and keeps its place: the
        producer is idempotent, so a record sent afterwards to the same partition lands after it."""
        self._producer.purge(in_queue=True, in_flight=False)
        self._producer.poll(0)  # the purged records' delivery reports, served now or by the next poll or flush …
        self._failed_since_flush = 0  # … are not the next flush's failures: the failed flush reported them

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
