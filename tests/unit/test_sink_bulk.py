"""The Elasticsearch writer's handling of bulk answers, item by item, against a scripted stand-in for the
client (the real node is in tests/integration): a version conflict on an alert is success (a newer or equal
emission is stored), 429/5xx items are retried alone, other refusals are returned for dlq.sinks, an answer
that does not account for every document or a lost connection is an outage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import pytest
from confluent_kafka import Message
from elastic_transport import ApiResponseMeta, ConnectionError, HttpHeaders, NodeConfig
from elasticsearch import ApiError

from tapewatch.backoff import Backoff
from tapewatch.bench.sink import synthetic_alert
from tapewatch.records import Alert, Score
from tapewatch.settings import Settings
from tapewatch.sinks.consumer import Item, SinkUnavailableError
from tapewatch.sinks.elastic import ElasticsearchWriter
from tapewatch.topics import ALERTS, SCORES

Answer = Callable[[int, str], tuple[int, dict[str, Any] | None]]  # (attempt, _id) → (status, error)


@dataclass
class ScriptedBulk:
    """Answers each document of a bulk body by ``answer``; records what was sent."""

    answer: Answer
    drop_last_item: bool = False
    sent: list[list[dict[str, Any]]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)

    def bulk(self, operations: bytes, filter_path: str) -> Any:
        lines = [orjson.loads(line) for line in operations.splitlines()]
        metas = [line["index"] for line in lines[0::2]]
        self.sent.append(metas)
        items = []
        for meta in metas:
            self.attempts[meta["_id"]] = attempt = self.attempts.get(meta["_id"], 0) + 1
            status, error = self.answer(attempt, meta["_id"])
            items.append({"index": {"status": status, **({"error": error} if error else {})}})
        if self.drop_last_item:
            items.pop()
        return type("Answer", (), {"body": {"items": items}})()

    def close(self) -> None:
        pass


def make_writer(bulk: Any, chunk_size: int = 3) -> ElasticsearchWriter:
    writer = ElasticsearchWriter(Settings(), backoff=Backoff(base_s=0.001, cap_s=0.002), chunk_size=chunk_size)
    writer.es = bulk
    return writer


def items(count: int) -> list[Item]:
    message = cast(Message, object())  # only carried into rejections
    return [Item(ALERTS, synthetic_alert(i, 1_700_000_000_000 + i), message) for i in range(count)]


CONFLICT = {"type": "version_conflict_engine_exception", "reason": "current version is higher"}
MAPPING = {"type": "document_parsing_exception", "reason": "failed to parse field"}


def test_every_item_checked_conflicts_are_success_429_retried_refusals_returned() -> None:
    batch = items(8)
    alerts = [cast(Alert, item.record) for item in batch]
    conflict, refused, busy = alerts[1], alerts[4], alerts[6]

    def answer(attempt: int, doc_id: str) -> tuple[int, dict[str, Any] | None]:
        if doc_id == conflict.alert_id:
            return 409, CONFLICT
        if doc_id == refused.alert_id:
            return 400, MAPPING
        if doc_id == busy.alert_id and attempt < 3:
            return 429, {"type": "es_rejected_execution_exception", "reason": "queue full"}
        return 201, None

    bulk = ScriptedBulk(answer)
    writer = make_writer(bulk)
    rejected = writer.write(batch)
    writer.close()
    assert [r.reason for r in rejected] == [
        "elasticsearch refused the document (400): document_parsing_exception: failed to parse field"
    ]
    assert writer.superseded == 1
    assert [len(metas) for metas in bulk.sent] == [3, 3, 2, 1, 1]  # chunks of 3, then the busy item alone, twice
    assert bulk.attempts[busy.alert_id] == 3
    first = bulk.sent[0][0]
    assert first["version"] == alerts[0].emission and first["version_type"] == "external"


def test_a_conflict_on_an_unversioned_document_is_a_refusal() -> None:
    score = Score(symbol="S", venue="sim", ts=1, model_version="k", cluster=0, distance=0.1, score=0.2)
    bulk = ScriptedBulk(lambda attempt, doc_id: (409, CONFLICT))
    writer = make_writer(bulk)
    rejected = writer.write([Item(SCORES, score, cast(Message, object()))])
    assert len(rejected) == 1 and "(409)" in rejected[0].reason and writer.superseded == 0
    assert "version" not in bulk.sent[0][0]


def test_still_busy_after_every_attempt_is_an_outage() -> None:
    writer = make_writer(ScriptedBulk(lambda attempt, doc_id: (503, {"type": "unavailable_shards_exception"})))
    with pytest.raises(SinkUnavailableError, match="still 429/5xx"):
        writer.write(items(2))


def test_an_answer_missing_items_is_an_outage_not_a_success() -> None:
    writer = make_writer(ScriptedBulk(lambda attempt, doc_id: (201, None), drop_last_item=True))
    with pytest.raises(SinkUnavailableError, match="2 bulk answers for 3 documents"):
        writer.write(items(3))


@dataclass
class FailingBulk:
    error: Exception
    calls: int = 0

    def bulk(self, operations: bytes, filter_path: str) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise self.error
        count = len(operations.splitlines()) // 2
        return type("Answer", (), {"body": {"items": [{"index": {"status": 201}}] * count}})()

    def close(self) -> None:
        pass


def test_a_lost_connection_is_an_outage() -> None:
    writer = make_writer(FailingBulk(ConnectionError("connection refused")))
    with pytest.raises(SinkUnavailableError, match="elasticsearch: Connection error"):
        writer.write(items(2))


def test_a_whole_request_refused_with_429_is_retried() -> None:
    meta = ApiResponseMeta(429, "1.1", HttpHeaders(), 0.0, NodeConfig("http", "localhost", 9200))
    error = ApiError("busy", meta, {"error": {"type": "es_rejected_execution_exception", "reason": "full"}})
    bulk = FailingBulk(error)
    writer = make_writer(bulk)
    assert writer.write(items(2)) == [] and bulk.calls == 2
