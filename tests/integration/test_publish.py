"""A producer writes Quote records to the real Kafka; a consumer reads exactly those back."""

from __future__ import annotations

import uuid

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from tapewatch.deadletter import DeadLetter
from tapewatch.kafka import consumer_config
from tapewatch.producers.publisher import Publisher
from tapewatch.records import Quote
from tapewatch.settings import Settings
from tapewatch.topics import DLQ_PRODUCERS, QUOTES
from tests.kafka_reader import read_topic

pytestmark = pytest.mark.integration


def test_quotes_round_trip_through_kafka(settings: Settings) -> None:
    symbols = [f"S{i}" for i in range(7)]
    sent = [
        Quote(symbol=symbols[i % 7], venue="test", ts=1_700_000_000_000 + i, price=100.0 + i % 13, size=1000.0, seq=i)
        for i in range(5000)
    ]
    with Publisher(settings, DLQ_PRODUCERS) as publisher:
        for quote in sent:
            publisher.publish(QUOTES, quote)
    assert publisher.delivered == len(sent)
    received = read_topic(settings, settings.topic(QUOTES.name), len(sent))
    decoded = [Quote.from_json(r.value) for r in received]
    assert sorted(decoded, key=lambda q: q.seq) == sent
    assert all(r.key == Quote.from_json(r.value).symbol.encode() for r in received)


def test_same_symbol_lands_on_one_partition_in_order(settings: Settings) -> None:
    with Publisher(settings, DLQ_PRODUCERS) as publisher:
        for i in range(200):
            publisher.publish(QUOTES, Quote(symbol="ORDERED", venue="test", ts=i, price=1.0, size=1.0, seq=i))
    consumer = Consumer(
        consumer_config(
            settings,
            **{"group.id": f"t-{uuid.uuid4()}", "enable.auto.commit": False, "auto.offset.reset": "earliest"},
        )
    )
    name = settings.topic(QUOTES.name)
    seen: dict[int, list[int]] = {}
    for partition in range(settings.kafka.topic_partitions):
        consumer.assign([TopicPartition(name, partition, 0)])
        while batch := consumer.consume(num_messages=10_000, timeout=2.0):
            for msg in batch:
                if msg.key() == b"ORDERED":
                    seen.setdefault(partition, []).append(orjson.loads(msg.value() or b"")["seq"])
    consumer.close()
    assert len(seen) == 1
    assert next(iter(seen.values())) == list(range(200))


def test_dead_letter_keeps_bytes_and_reason(settings: Settings) -> None:
    raw = b'{"symbol": "X", "ts": "soon"}'
    with Publisher(settings, DLQ_PRODUCERS) as publisher:
        publisher.dead_letter(
            raw,
            DeadLetter(stage="producer:test", reason="ts: not an integer", field="ts", source="unit-test"),
            key=b"X",
        )
    assert publisher.counters.dead_lettered == 1
    [(key, value, headers, _)] = read_topic(settings, settings.topic(DLQ_PRODUCERS.name), 1)
    assert key == b"X" and value == raw
    letter = DeadLetter.from_headers(headers)
    assert letter == DeadLetter(stage="producer:test", reason="ts: not an integer", field="ts", source="unit-test")
