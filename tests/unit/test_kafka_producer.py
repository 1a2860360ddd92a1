"""The one producer's contract without a broker: back-pressure instead of loss, dead letters that fit, and a flush
that reports every failed delivery once (the caller then commits nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError

from tapewatch import deadletter
from tapewatch.deadletter import DeadLetter
from tapewatch.kafka_producer import ANY_PARTITION, DeliveryError, KafkaProducer
from tapewatch.settings import KafkaSettings, Settings
from tapewatch.topics import DLQ_STREAMS


class FakeError:
    def code(self) -> int:
        return int(KafkaError.NOT_ENOUGH_REPLICAS)

    def str(self) -> str:
        return "Broker: Not enough in-sync replicas"


class FakeMessage:
    def topic(self) -> str:
        return "p.md.bars.1m"

    def partition(self) -> int:
        return 2


@pytest.fixture
def producer() -> Iterator[tuple[KafkaProducer, list[tuple[Any, ...]]]]:
    settings = Settings(kafka=KafkaSettings(bootstrap="127.0.0.1:1", topic_prefix="p.", dlq_max_bytes=1_024))
    made = KafkaProducer(settings, DLQ_STREAMS)
    sent: list[tuple[Any, ...]] = []
    full = [True]  # the first attempt finds librdkafka's queue full

    def produce(topic: str, value: bytes, key: bytes | None, partition: int, headers: Any = None) -> None:
        if full[0]:
            full[0] = False
            raise BufferError("queue full")
        sent.append((topic, value, key, partition, headers))

    made._produce = produce  # type: ignore[assignment]
    yield made, sent


def test_a_full_queue_is_waited_out_not_dropped(producer: tuple[KafkaProducer, list[tuple[Any, ...]]]) -> None:
    kafka, sent = producer
    kafka.produce("p.md.bars.1m", b"K", b"v", 3)
    assert sent == [("p.md.bars.1m", b"v", b"K", 3, None)]
    assert kafka.counters.sent == 1


def test_dead_letters_go_to_the_prefixed_topic_cut_to_fit(
    producer: tuple[KafkaProducer, list[tuple[Any, ...]]],
) -> None:
    kafka, sent = producer
    kafka.dead_letter(b"x" * 1_500, DeadLetter(stage="stream:market", reason="bad"), b"K")
    ((topic, value, key, partition, headers),) = sent
    assert (topic, value, key, partition) == ("p.dlq.streams", b"x" * 1_024, b"K", ANY_PARTITION)
    assert DeadLetter.from_headers(headers).reason == "bad"
    assert dict(headers)[deadletter.ORIGINAL_BYTES] == b"1500"
    assert kafka.counters.dead_lettered == 1


def test_flush_raises_once_for_the_failures_since_the_last_flush(
    producer: tuple[KafkaProducer, list[tuple[Any, ...]]],
) -> None:
    kafka, _ = producer
    kafka.flush(1.0)  # nothing failed
    for _ in range(3):
        kafka._on_delivery(FakeError(), FakeMessage())  # type: ignore[arg-type]
    with pytest.raises(DeliveryError, match=r"3 write\(s\) failed, first: p\.md\.bars\.1m\[2\]: Broker: Not enough"):
        kafka.flush(1.0)
    kafka.flush(1.0)
    assert kafka.counters.failed == 3


def test_a_purge_drops_what_is_queued_and_leaves_the_next_flush_clean() -> None:
    """librdkafka's own queue (no broker listens): after a flush gave up, the purge leaves nothing that could reach
    the broker later, and the purged records are counted failed without failing the next flush."""
    settings = Settings(kafka=KafkaSettings(bootstrap="127.0.0.1:1", topic_prefix="p."))
    kafka = KafkaProducer(settings, DLQ_STREAMS)
    kafka.produce("p.ref.accounts", b"t/A1", b"{}")
    with pytest.raises(DeliveryError, match="not acknowledged"):
        kafka.flush(0.0)
    kafka.purge_queued()
    kafka.flush(0.0)
    assert (kafka.counters.sent, kafka.counters.failed, kafka.delivered) == (1, 1, 0)
