"""Topics a stream worker needs, checked and created before the worker joins its group."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from tapewatch.errors import TapewatchError
from tapewatch.kafka import admin_client, cluster_metadata, create_topics
from tapewatch.settings import Settings


def prepare_topics(
    settings: Settings, registry: Iterable[str], changelogs: Iterable[str], timeout_s: float = 30.0
) -> list[str]:
    """Fail clearly when a registry topic is missing or mis-partitioned; create missing changelog topics.

    Changelogs get the registry's partition count (a table is co-partitioned with its source topic),
    ``cleanup.policy=compact`` and the broker's default replication factor. Returns the topics created.
    """
    admin = admin_client(settings)
    existing = cluster_metadata(settings, admin).topics
    wanted = settings.topic_partitions
    missing = [name for name in registry if name not in existing]
    if missing:
        raise TapewatchError(
            f"kafka: topic(s) {', '.join(missing)} missing at {settings.kafka_bootstrap}; run `tapewatch topics create`"
        )
    changelogs = list(changelogs)
    wrong = [
        f"{name} ({len(existing[name].partitions)})"
        for name in [*registry, *changelogs]
        if name in existing and len(existing[name].partitions) != wanted
    ]
    if wrong:
        raise TapewatchError(
            f"kafka: topic(s) {', '.join(wrong)} do not have {wanted} partitions; co-partitioning needs them equal"
        )
    new = [
        NewTopic(name, num_partitions=wanted, replication_factor=-1, config={"cleanup.policy": "compact"})
        for name in changelogs
        if name not in existing
    ]
    return create_topics(admin, new, timeout_s)


@contextlib.contextmanager
def private_topics(settings: Settings, prefix: str) -> Iterator[Settings]:
    """Settings on fresh registry topics behind ``prefix`` (benchmarks); on exit, those topics and the stream
    workers' changelogs on them are deleted."""
    from infra.kafka import ensure_topics
    from streams.app import app_id

    isolated = settings.model_copy(update={"topic_prefix": prefix})
    created = ensure_topics(isolated)
    try:
        yield isolated
    finally:
        admin = admin_client(isolated)
        internal = [t for t in admin.list_topics(timeout=30).topics if t.startswith(app_id(isolated))]
        for future in admin.delete_topics([*created, *internal], operation_timeout=60).values():
            with contextlib.suppress(KafkaException):
                future.result()
