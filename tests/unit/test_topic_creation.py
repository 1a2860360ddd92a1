"""Topic creation, as the registry (``tapewatch topics create``) and the stream worker's changelogs use it:
create what is missing, refuse a topic with another partition count, never create anything then."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

import tapewatch.kafka
from tapewatch.errors import TapewatchError
from tapewatch.infra.kafka import ensure_topics
from tapewatch.settings import KafkaSettings, Settings
from tapewatch.streams.admin import prepare_topics
from tapewatch.topics import ALL_TOPICS


@dataclass
class FakeAdmin:
    """The broker's topics (name → partition count); records what it was asked to create."""

    partitions: dict[str, int]
    created: list[NewTopic] = field(default_factory=list)
    raced: set[str] = field(default_factory=set)  # created meanwhile by another process

    def list_topics(self, timeout: float) -> SimpleNamespace:
        topics = {name: SimpleNamespace(partitions=dict.fromkeys(range(n))) for name, n in self.partitions.items()}
        return SimpleNamespace(topics=topics)

    def create_topics(self, topics: list[NewTopic], request_timeout: float) -> dict[str, Future[None]]:
        self.created.extend(topics)
        self.partitions.update({topic.topic: topic.num_partitions for topic in topics})  # raced ones exist too
        futures: dict[str, Future[None]] = {}
        for topic in topics:
            future: Future[None] = Future()
            futures[topic.topic] = future
            if topic.topic in self.raced:
                future.set_exception(KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS, "exists")))
            else:
                future.set_result(None)
        return futures


@pytest.fixture
def settings() -> Settings:
    return Settings(kafka=KafkaSettings(topic_partitions=6, topic_prefix="t."))


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> FakeAdmin:
    fake = FakeAdmin({})
    monkeypatch.setattr(tapewatch.kafka, "admin_client", lambda settings: fake)
    monkeypatch.setattr(tapewatch.kafka, "ensure_reachable", lambda settings: None)  # no broker: the fake answers
    return fake


def test_registry_topics_missing_are_created_with_their_retention(settings: Settings, admin: FakeAdmin) -> None:
    admin.partitions = {"t.md.quotes": 6}
    admin.raced = {"t.alerts"}
    created = ensure_topics(settings)
    assert "t.md.quotes" not in created
    assert created == [settings.topic(t.name) for t in ALL_TOPICS if t.name != "md.quotes"]
    alerts = next(t for t in admin.created if t.topic == "t.alerts")
    assert (alerts.num_partitions, alerts.replication_factor) == (6, -1)
    assert alerts.config == {"retention.ms": str(90 * 24 * 3600 * 1000), "compression.type": "producer"}


def test_a_topic_with_another_partition_count_fails_before_anything_is_created(
    settings: Settings, admin: FakeAdmin
) -> None:
    admin.partitions = {"t.md.books": 3}
    with pytest.raises(TapewatchError, match=r"t\.md\.books \(3\) do not have 6 partitions"):
        ensure_topics(settings)
    assert admin.created == []


def test_changelogs_are_compacted_and_need_the_registry(settings: Settings, admin: FakeAdmin) -> None:
    admin.partitions = {"t.md.quotes": 6, "t.log-a": 6}
    assert prepare_topics(settings, ["t.md.quotes"], ["t.log-a", "t.log-b"]) == ["t.log-b"]
    assert [(t.topic, t.num_partitions, t.config) for t in admin.created] == [
        ("t.log-b", 6, {"cleanup.policy": "compact"})
    ]
    with pytest.raises(TapewatchError, match=r"t\.md\.books missing .*tapewatch topics create"):
        prepare_topics(settings, ["t.md.quotes", "t.md.books"], ["t.log-c"])
    admin.partitions["t.log-c"] = 2
    with pytest.raises(TapewatchError, match=r"t\.log-c \(2\) do not have 6 partitions"):
        prepare_topics(settings, ["t.md.quotes"], ["t.log-c"])
    assert len(admin.created) == 1
