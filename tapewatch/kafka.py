"""confluent-kafka client construction: one place for security settings, logging and timeouts."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from typing import Any, Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic

from tapewatch.errors import TapewatchError
from tapewatch.logs import LIBRDKAFKA
from tapewatch.settings import Settings

#: consumers: how long librdkafka (≥ 2.1.1) postpones the next fetch once a partition's prefetch queue passed its
#: bound. The 1,000 ms default lets a consumer that drains its queue faster than that wait on an empty one
#: (librdkafka #2879, #4284: raw consume of md.quotes + md.books here ran 133–140k rec/s at the default, 237k at
#: 100 ms).
FETCH_QUEUE_BACKOFF_MS: Final = 100


def client_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {
        **settings.kafka.client_config(),
        "logger": LIBRDKAFKA,
        "reconnect.backoff.ms": 250,
        "reconnect.backoff.max.ms": 5000,
        "socket.connection.setup.timeout.ms": 5000,
        **overrides,
    }


def consumer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """:func:`client_config` for a consumer: every consumer of ours (stream worker, changelog recovery, sinks,
    ``alerts tail``, the dashboard, the benchmarks' references) fetches again :data:`FETCH_QUEUE_BACKOFF_MS`
    after its prefetch queue filled, not librdkafka's 1,000 ms."""
    return client_config(settings, **{"fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS, **overrides})


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(client_config(settings))


def ensure_reachable(settings: Settings) -> None:
    """One clear error at once when no bootstrap server takes a TCP connection (nothing listens there, the host is
    unknown): librdkafka would retry for the whole service timeout and then report only a timeout."""
    failures = []
    for host, port in settings.kafka.hosts():
        try:
            with socket.create_connection((host, port), timeout=settings.local.service_timeout_s):
                return
        except OSError as exc:
            failures.append(f"{host}:{port}: {exc.strerror or exc}")
    raise TapewatchError(
        f"kafka: unreachable at {settings.kafka.bootstrap} ({'; '.join(failures)}); "
        "start it with `tapewatch infra up` or point TAPEWATCH_KAFKA_BOOTSTRAP at your brokers"
    )


def cluster_metadata(settings: Settings, admin: AdminClient | None = None) -> ClusterMetadata:
    """Broker metadata, or one clear error within the service timeout."""
    ensure_reachable(settings)
    try:
        return (admin or admin_client(settings)).list_topics(timeout=settings.local.service_timeout_s)
    except KafkaException as exc:
        raise TapewatchError(f"kafka: unreachable at {settings.kafka.bootstrap}: {exc.args[0].str()}") from None


def create_topics(admin: AdminClient, topics: list[NewTopic], timeout_s: float = 30.0) -> list[str]:
    """Create ``topics``; one that another process created meanwhile is fine. Returns the names asked for."""
    if not topics:
        return []
    for name, future in admin.create_topics(topics, request_timeout=timeout_s).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != exc.args[0].TOPIC_ALREADY_EXISTS:
                raise TapewatchError(f"kafka: could not create topic {name}: {exc.args[0].str()}") from None
    return [topic.topic for topic in topics]


def new_topic(settings: Settings, name: str, config: dict[str, str]) -> NewTopic:
    """A topic with the configured partition count (every topic is co-partitioned with every other) and the
    broker's default replication factor."""
    return NewTopic(name, num_partitions=settings.kafka.topic_partitions, replication_factor=-1, config=config)


def create_missing_topics(
    settings: Settings, wanted: Sequence[NewTopic], *, required: Sequence[str] = (), timeout_s: float = 30.0
) -> list[str]:
    """Create the ``wanted`` topics that do not exist yet; returns the ones created.

    Fails clearly, before creating anything, when a ``required`` topic (made by someone else) is missing, or
    when a topic of either list exists with another partition count than the configured one: co-partitioning
    needs them equal.
    """
    admin = admin_client(settings)
    existing = cluster_metadata(settings, admin).topics
    _refuse_missing(settings, required, existing)
    partitions = settings.kafka.topic_partitions
    wrong = [
        f"{name} ({len(existing[name].partitions)})"
        for name in [*required, *(topic.topic for topic in wanted)]
        if name in existing and len(existing[name].partitions) != partitions
    ]
    if wrong:
        raise TapewatchError(
            f"kafka: topic(s) {', '.join(wrong)} do not have {partitions} partitions; co-partitioning needs them equal"
        )
    created = create_topics(admin, [topic for topic in wanted if topic.topic not in existing], timeout_s)
    _wait_until_visible(settings, admin, created, timeout_s)
    return created


def _wait_until_visible(settings: Settings, admin: AdminClient, names: Sequence[str], timeout_s: float) -> None:
    """Until the broker's metadata lists ``names``: a topic the controller created reaches the brokers' metadata a
    moment later, and a producer that checks its topics in that moment would find them missing."""
    deadline = time.monotonic() + timeout_s
    while names and time.monotonic() < deadline:
        topics = cluster_metadata(settings, admin).topics
        if all(name in topics and topics[name].partitions for name in names):
            return
        time.sleep(0.1)


def require_topics(settings: Settings, names: Sequence[str], grace_s: float = 2.0) -> None:
    """One clear error, naming the command that creates them, when any of the topics ``names`` does not exist (a
    producer would otherwise fail every delivery until its timeout). A topic created elsewhere a moment ago gets
    ``grace_s`` to reach the broker's metadata."""
    existing = cluster_metadata(settings).topics
    if any(name not in existing for name in names):
        time.sleep(grace_s)
        existing = cluster_metadata(settings).topics
    _refuse_missing(settings, names, existing)


def _refuse_missing(settings: Settings, names: Sequence[str], existing: dict[str, Any]) -> None:
    missing = [name for name in names if name not in existing]
    if missing:
        raise TapewatchError(
            f"kafka: topic(s) {', '.join(missing)} missing at {settings.kafka.bootstrap}; run `tapewatch topics create`"
            " (with the same TAPEWATCH_TOPIC_PREFIX)"
        )
