"""Elasticsearch client construction from settings (the client's major equals the server's: 8)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from elasticsearch import Elasticsearch
from elasticsearch.serializer import OrjsonSerializer

from tapewatch.settings import Settings


def es_client(settings: Settings, request_timeout: float = 30.0) -> Elasticsearch:
    auth: dict[str, object] = {}
    if settings.es.api_key:
        auth["api_key"] = settings.es.api_key.get_secret_value()
    elif settings.es.username and settings.es.password:
        auth["basic_auth"] = (settings.es.username, settings.es.password.get_secret_value())
    if settings.es.ca_certs:
        auth["ca_certs"] = str(settings.es.ca_certs)
    return Elasticsearch(
        settings.es.url,
        request_timeout=request_timeout,
        retry_on_timeout=True,
        max_retries=3,
        # orjson: the bulk helpers serialise every action and document; the standard json module costs a
        # quarter of the sink's time per document.
        serializer=OrjsonSerializer(),
        **auth,  # type: ignore[arg-type]
    )


def index_name(settings: Settings, family: str, ts_ms: int) -> str:
    """Monthly indices chosen from the record's own time: tapewatch-alerts-2026.11."""
    return f"{settings.es.index_prefix}-{family}-{_month_of_day(ts_ms // 86_400_000)}"


@functools.lru_cache(maxsize=1024)
def _month_of_day(day: int) -> str:
    # Formatting a date per document cost a fifth of the Elasticsearch sink's time; records come in time
    # order, so a few days cover a whole batch.
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y.%m")
