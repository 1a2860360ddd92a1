"""Reading Elasticsearch while a sink writes: a daily index the sink has just created answers 503 until its shard
has started (seen on clean-clone runs with a core busy). That means "nothing searchable yet", never a pass."""

from __future__ import annotations

from elasticsearch import ApiError


def shard_starting(error: ApiError) -> bool:
    """Whether ``error`` is the 503 of an index whose shard has not started yet (any other error is a failure)."""
    return error.meta.status == 503
