"""Publishing records to the registry's topics: the producer every source uses.

The Kafka side (idempotence, batching, delivery reports, dead letters, the flush that reports failures) is
:class:`tapewatch.kafka_producer.KafkaProducer`; this adds the registry: topic names prefixed per settings, and
records keyed by symbol. ``publish`` is the sources' hot path: one JSON encode and librdkafka's enqueue.
"""

from __future__ import annotations

from typing import Any

from tapewatch.kafka_producer import Headers, KafkaProducer
from tapewatch.records import Contract
from tapewatch.settings import Settings
from tapewatch.topics import Topic


class Publisher(KafkaProducer):
    """Records → Kafka topics of the registry (names prefixed per settings), each under its own key (a market record's
    symbol)."""

    def __init__(self, settings: Settings, dead_letter_topic: Topic, **overrides: Any) -> None:
        super().__init__(settings, dead_letter_topic, **overrides)
        self.settings = settings
        self._names: dict[str, str] = {}

    def _topic_name(self, topic: Topic) -> str:
        name = self._names.get(topic.name)
        if name is None:
            name = self._names[topic.name] = self.settings.topic(topic.name)
        return name

    def publish(self, topic: Topic, record: Contract) -> None:
        name = self._names.get(topic.name) or self._topic_name(topic)
        try:
            self._produce(name, record.to_json(), record.key())
        except BufferError:
            self.send(topic, record.key(), record.to_json())  # the slow path waits for room
            return
        self.counters.sent += 1

    def send(self, topic: Topic, key: bytes | None, value: bytes, headers: Headers | None = None) -> None:
        self.produce(self._names.get(topic.name) or self._topic_name(topic), key, value, headers=headers)
