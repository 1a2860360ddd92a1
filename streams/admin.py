"""Topics a stream worker needs, checked and created before the worker joins its group."""

from __future__ import annotations

from collections.abc import Iterable

from tapewatch.kafka import create_missing_topics, new_topic
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
