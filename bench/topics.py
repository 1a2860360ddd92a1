"""Fresh topics for a benchmark run: the registry's topics behind a private prefix, deleted afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from confluent_kafka import KafkaException

from tapewatch.infra.kafka import ensure_topics
from tapewatch.kafka import admin_client
from tapewatch.settings import Settings


@contextlib.contextmanager
def private_topics(settings: Settings, prefix: str) -> Iterator[Settings]:
    """Settings on fresh registry topics behind ``prefix`` (benchmarks); on exit, those topics and the stream
    workers' changelogs on them are deleted."""
    from tapewatch.streams.app import app_id

    isolated = settings.updated(kafka={"topic_prefix": prefix})
    created = ensure_topics(isolated)
    try:
        yield isolated
    finally:
        admin = admin_client(isolated)
        internal = [t for t in admin.list_topics(timeout=30).topics if t.startswith(app_id(isolated))]
        for future in admin.delete_topics([*created, *internal], operation_timeout=60).values():
            with contextlib.suppress(KafkaException):
                future.result()
