"""Elasticsearch index/search round trip on the real node; the same _id twice stores one document."""

from __future__ import annotations

import uuid

import pytest

from tapewatch.settings import Settings
from tapewatch.sinks.search import es_client, index_name

pytestmark = pytest.mark.integration


def test_index_and_search_round_trip(services: Settings) -> None:
    es = es_client(services)
    index = f"{services.es.index_prefix}-test-{uuid.uuid4().hex[:8]}"
    try:
        es.indices.create(
            index=index,
            mappings={
                "properties": {
                    "symbol": {"type": "keyword"},
                    "@timestamp": {"type": "date"},
                    "score": {"type": "float"},
                }
            },
        )
        for _ in range(2):  # at-least-once: the same document written twice
            es.index(
                index=index, id="alert-1", document={"symbol": "2330", "@timestamp": 1_700_000_000_000, "score": 0.93}
            )
        es.index(index=index, id="alert-2", document={"symbol": "2317", "@timestamp": 1_700_000_060_000, "score": 0.2})
        es.indices.refresh(index=index)
        hits = es.search(index=index, query={"term": {"symbol": "2330"}})["hits"]
        assert hits["total"]["value"] == 1
        assert hits["hits"][0]["_id"] == "alert-1"
        assert hits["hits"][0]["_source"]["score"] == 0.93
        assert es.count(index=index)["count"] == 2
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
        es.close()


def test_monthly_index_from_record_time(services: Settings) -> None:
    assert index_name(services, "alerts", 1_700_000_000_000) == f"{services.es.index_prefix}-alerts-2023.11"
