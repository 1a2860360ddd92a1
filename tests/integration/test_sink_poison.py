"""Poison for the sinks, on the real services: text PostgreSQL cannot store, keywords Lucene cannot index,
payloads too large for a dead letter. No record stops a sink; every record ends stored or dead-lettered."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch
from sqlalchemy import select

from producers.publisher import Publisher
from sinks import db
from sinks.bench import synthetic_alert
from sinks.consumer import SinkRunner, resolve_topics
from sinks.elastic import ElasticsearchWriter, delete_everything, index_pattern
from sinks.postgres import PostgresWriter
from sinks.search import es_client
from tapewatch import deadletter
from tapewatch.records import Alert
from tapewatch.settings import Settings
from tapewatch.topics import ALERTS, DLQ_SINKS
from tests.kafka_reader import read_topic

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
BIG = 1_000_000  # characters: a message far beyond any keyword Lucene indexes


@pytest.fixture
def pg(settings: Settings) -> Iterator[Settings]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    db.create_schema(settings, schema)
    yield db.in_schema(settings, schema)
    db.drop_schema(settings, schema)


@pytest.fixture
def es(settings: Settings) -> Iterator[tuple[Settings, Elasticsearch]]:
    isolated = settings.model_copy(update={"es_index_prefix": f"twtest{uuid.uuid4().hex[:8]}"})
    client = es_client(isolated)
    yield isolated, client
    delete_everything(client, isolated)
    client.close()


def poisoned_alerts() -> list[Alert]:
    """Valid alerts by the contract whose text a store may refuse, between ordinary ones."""
    nul = synthetic_alert(1, T0 + 1000).model_copy(
        update={"message": "spoof\x00ing", "evidence": {"note\x00key": "a\x00b", "x": 1.0}}
    )
    huge = synthetic_alert(2, T0 + 2000).model_copy(update={"message": "M" * BIG})
    return [synthetic_alert(0, T0), nul, huge, synthetic_alert(3, T0 + 3000)]


def publish(settings: Settings, alerts: list[Alert]) -> None:
    with Publisher(settings, DLQ_SINKS, **{"message.max.bytes": 2_000_000}) as publisher:
        for alert in alerts:
            publisher.publish(ALERTS, alert)


def run(settings: Settings, writer: PostgresWriter | ElasticsearchWriter) -> SinkRunner:
    runner = SinkRunner(settings, writer, resolve_topics([ALERTS.name]), batch_size=1000)
    runner.run(exit_when_idle_s=4.0)
    return runner


def test_postgres_stores_text_it_cannot_hold_cleaned_and_keeps_going(pg: Settings) -> None:
    alerts = poisoned_alerts()
    publish(pg, alerts)
    runner = run(pg, PostgresWriter(pg))
    engine = db.make_engine(pg)
    try:
        with engine.connect() as conn:
            rows = {r.alert_id: r for r in conn.execute(select(db.alerts)).all()}
    finally:
        engine.dispose()
    assert set(rows) == {a.alert_id for a in alerts}, "every alert is stored, the poisoned ones included"
    cleaned = rows[alerts[1].alert_id]
    assert cleaned.message == "spoof\ufffding"
    assert cleaned.evidence["note\ufffdkey"] == "a\ufffdb"
    assert len(rows[alerts[2].alert_id].message) == BIG
    assert runner.counters.dead_lettered == 0


def test_elasticsearch_keeps_an_alert_whose_keyword_is_too_long(es: tuple[Settings, Elasticsearch]) -> None:
    settings, client = es
    alerts = poisoned_alerts()
    publish(settings, alerts)
    runner = run(settings, ElasticsearchWriter(settings))
    client.indices.refresh(index=index_pattern(settings, "alerts"))
    found = client.search(index=index_pattern(settings, "alerts"), size=10, source_includes=["tapewatch.alert_id"])
    ids = {hit["_source"]["tapewatch"]["alert_id"] for hit in found["hits"]["hits"]}
    letters = read_topic(settings, settings.topic(DLQ_SINKS.name), 0, timeout_s=2, linger_s=1)
    refused = {hashlib.sha256(m.value).hexdigest() for m in letters}
    for letter in letters:
        assert len(letter.value) <= settings.dlq_max_bytes
        assert deadletter.DeadLetter.from_headers(letter.headers).reason
    # each alert is searchable, or (if the node still refused it) a dead letter that fits, with a reason
    for alert in alerts:
        assert alert.alert_id in ids or hashlib.sha256(alert.to_json()).hexdigest() in refused
    assert alerts[2].alert_id in ids, "the 1 MB message is kept in _source, its keyword not indexed"
    assert runner.counters.batches >= 1
