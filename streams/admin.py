"""Topics a stream worker needs, checked and created before the worker joins its group."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from confluent_kafka import KafkaException

from tapewatch.kafka import admin_client, create_missing_topics, new_topic
from tapewatch.settings import Settings


def prepare_topics(
    settings: Settings, registry: Iterable[str], changelogs: Iterable[str], timeout_s: float = 30.0
) -> list[str]:
    """Fail clearly when a registry topic is missing or mis-partitioned; create missing changelog topics.

    Changelogs get the registry's partition count (a table is co-partitioned with its source topic),
    ``cleanup.policy=compact`` and the broker's default replication factor. Returns the topics created.
    """
    wanted = [new_topic(settings, name, {"cleanup.policy": "compact"}) for name in changelogs]
    return create_missing_topics(settings, wanted, required=list(registry), timeout_s=timeout_s)


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
