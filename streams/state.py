"""Per-symbol stage state in a compacted Kafka changelog topic, held in memory for the assigned partitions.

A stage's state is a mapping symbol → JSON object. Every entry lives on the partition of the symbol's source
records (the changelog is co-partitioned with them), so a worker that is assigned partition ``p`` of the source
topics recovers exactly the entries it needs by reading partition ``p`` of the changelog from the beginning to
its end. Writes go through the worker's producer; the worker awaits their acknowledgement before it commits the
source offsets (see :mod:`tapewatch.streams.app`), so the changelog is never behind what a committed offset implies.

``cleanup.policy=compact`` keeps the newest entry per key; until the broker has compacted, a recovery reads the
older entries too and the newest wins (the same order as they were written, one partition).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from tapewatch.errors import TapewatchError
from tapewatch.kafka import consumer_config
from tapewatch.kafka_producer import KafkaProducer
from tapewatch.settings import Settings

log = logging.getLogger(__name__)

#: errors of a topic whose leaders are still being elected (created a moment ago)
_ELECTING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,  # the client's metadata does not list it yet
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)
#: how long a recovery may wait for the changelog's watermarks or its next messages
RECOVERY_TIMEOUT_S = 120.0


class ChangelogTable:
    """The entries of the assigned partitions; ``write`` sends an entry to the changelog and keeps it."""

    def __init__(self, name: str, topic: str, producer: KafkaProducer) -> None:
        self.name = name
        self.topic = topic
        self._producer = producer
        self._entries: dict[int, dict[bytes, dict[str, Any]]] = {}

    def get(self, key: bytes, partition: int) -> dict[str, Any] | None:
        entries = self._entries.get(partition)
        return None if entries is None else entries.get(key)

    def write(self, partition: int, key: bytes, entry: dict[str, Any]) -> None:
        self._producer.produce(self.topic, key, orjson.dumps(entry), partition)
        self._entries.setdefault(partition, {})[key] = entry

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._entries.values())

    def drop(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._entries.pop(partition, None)

    def recover(self, settings: Settings, partitions: Iterable[int]) -> int:
        """Replace the entries of ``partitions`` by the changelog's (read to its end); the entries read."""
        wanted = sorted(set(partitions))
        for partition in wanted:
            self._entries[partition] = {}
        if not wanted:
            return 0
        started = time.monotonic()
        consumer = Consumer(
            consumer_config(
                settings,
                **{
                    "group.id": f"{self.topic}-recovery-{uuid.uuid4().hex[:8]}",  # never commits: assign only
                    "enable.auto.commit": False,
                    "enable.partition.eof": False,
                },
            )
        )
        try:
            read = self._read_to_end(consumer, wanted)
        finally:
            consumer.close()
        log.info(
            "recovered %s partition(s) %s: %d changelog record(s), %d entries, %.2f s",
            self.name,
            wanted,
            read,
            sum(len(self._entries[p]) for p in wanted),
            time.monotonic() - started,
        )
        return read

    def _read_to_end(self, consumer: Consumer, partitions: list[int]) -> int:
        """Read ``partitions`` of the changelog from the beginning to their end as of now; the records read."""
        ends: dict[int, int] = {}
        for partition in partitions:
            low, high = watermarks(consumer, TopicPartition(self.topic, partition))
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in ends])
        read = 0
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        while ends:
            if time.monotonic() > deadline:
                raise TapewatchError(f"recovering {self.topic} timed out; partitions left: {sorted(ends)}")
            read += self._load(consumer.consume(num_messages=10_000, timeout=1.0))
            # the position, not the last offset seen: compaction and control records leave offset gaps
            for position in consumer.position([TopicPartition(self.topic, p) for p in ends]):
                if position.offset >= ends[position.partition]:
                    del ends[position.partition]
                    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        return read

    def _load(self, messages: list[Message]) -> int:
        """Changelog records into the entries, the newest per key winning (a tombstone deletes); the records read."""
        read = 0
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            source, key = message.partition(), message.key()
            if source is None or key is None:
                continue
            value = message.value()
            entries = self._entries[source]
            if value is None:
                entries.pop(key, None)  # a tombstone
            else:
                entries[key] = orjson.loads(value)
            read += 1
        return read


def watermarks(consumer: Consumer, partition: TopicPartition) -> tuple[int, int]:
    """The partition's watermarks, waiting out a leader election (a changelog created a moment ago)."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=10.0)
            return int(low), int(high)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if not (error.retriable() or error.code() in _ELECTING) or time.monotonic() > deadline:
                raise
            log.info("waiting for %s[%d]: %s", partition.topic, partition.partition, error.str())
            time.sleep(0.5)
