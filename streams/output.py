"""The stream worker's one producer: every output, dead letter and changelog entry, and the wait for their acks.

Sends are fire-and-forget into librdkafka's queue (no per-record future); :meth:`Outputs.flush` then waits
until the broker acknowledged everything sent so far and raises if any delivery failed. The worker flushes
after a batch's outputs (before the state that says they were produced) and after its state (before the
offsets that say it was applied), which is what makes a crash replay rather than lose.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

from confluent_kafka import KafkaError, Message, Producer

from tapewatch.errors import TapewatchError
from tapewatch.kafka import client_config
from tapewatch.settings import Settings

Headers = Sequence[tuple[str, bytes]]

#: how long a flush may wait for acknowledgements before the worker gives up (and exits without committing)
FLUSH_TIMEOUT_S: Final = 120.0


class DeliveryError(TapewatchError):
    """Kafka refused or timed out a write: the batch must not be committed."""


class Outputs:
    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self._failed: list[str] = []
        self._producer = Producer(
            client_config(
                settings,
                **{
                    "enable.idempotence": True,
                    "acks": "all",
                    "compression.type": "lz4",
                    "linger.ms": 5,
                    "batch.size": 1_000_000,
                    "queue.buffering.max.messages": 1_000_000,
                    "queue.buffering.max.kbytes": 512 * 1024,
                    "delivery.timeout.ms": 60_000,
                    "delivery.report.only.error": True,
                    "on_delivery": self._on_delivery,
                    **overrides,
                },
            )
        )
        self._produce = self._producer.produce
        self.sent = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failed.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")

    def send(self, topic: str, key: bytes | None, value: bytes, partition: int, headers: Headers | None = None) -> None:
        """Queue one record for ``topic``'s ``partition``; waits for room when librdkafka's queue is full."""
        while True:
            try:
                if headers is None:
                    self._produce(topic, value, key, partition)
                else:
                    self._produce(topic, value, key, partition, headers=list(headers))
                break
            except BufferError:
                self._producer.poll(0.05)  # back-pressure: let librdkafka drain, then retry
        self.sent += 1

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Until every record sent so far is acknowledged; :class:`DeliveryError` if any failed or timed out."""
        deadline = time.monotonic() + timeout_s
        left = self._producer.flush(timeout_s)
        while left and time.monotonic() < deadline:
            left = self._producer.flush(max(0.0, deadline - time.monotonic()))
        if self._failed:
            failed, self._failed = self._failed, []
            raise DeliveryError(f"{len(failed)} write(s) failed, first: {failed[0]}")
        if left:
            raise DeliveryError(f"{left} write(s) not acknowledged within {timeout_s:.0f} s")

    def poll(self) -> None:
        """Serve delivery callbacks without waiting."""
        self._producer.poll(0)
