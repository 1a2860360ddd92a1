"""Poison for the sinks, on the real services: text PostgreSQL cannot store, keywords Lucene cannot index,
payloads too large for a dead letter. No record stops a sink; every record ends stored or dead-lettered."""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator

import orjson
import pytest
from elasticsearch import Elasticsearch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tapewatch import deadletter
from tapewatch.bench.sink import synthetic_alert
from tapewatch.infra.kafka import ensure_topics
from tapewatch.producers.publisher import Publisher
from tapewatch.records import Alert, RecordError
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.sinks.consumer import SinkRunner, resolve_topics
from tapewatch.sinks.elastic import ElasticsearchWriter, delete_everything, index_pattern
from tapewatch.sinks.postgres import PostgresWriter
from tapewatch.sinks.search import es_client
from tapewatch.topics import ALERTS, DLQ_SINKS
from tests.kafka_reader import read_topic

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
BIG = 1_000_000  # characters: a message far beyond any keyword Lucene indexes


@pytest.fixture
def es(settings: Settings) -> Iterator[tuple[Settings, Elasticsearch]]:
    isolated = settings.updated(es={"index_prefix": f"twtest{uuid.uuid4().hex[:8]}"})
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
        assert len(letter.value) <= settings.kafka.dlq_max_bytes
        assert deadletter.DeadLetter.from_headers(letter.headers).reason
    # each alert is searchable, or (if the node still refused it) a dead letter that fits, with a reason
    for alert in alerts:
        assert alert.alert_id in ids or hashlib.sha256(alert.to_json()).hexdigest() in refused
    assert alerts[2].alert_id in ids, "the 1 MB message is kept in _source, its keyword not indexed"
    assert runner.counters.batches >= 1


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=40),
    st.just("\x00"),
    st.just("M" * 40_000),
)


def adversarial_alerts(draw: st.DrawFn) -> list[bytes]:
    """Alert payloads: valid ones with hostile text, fields set to hostile values, and cut or flipped JSON."""
    count = draw(st.integers(min_value=20, max_value=60))
    out = []
    for i in range(count):
        base = orjson.loads(synthetic_alert(10_000 + i, T0 + i).to_json())
        field = draw(st.sampled_from(sorted(base)))
        value = draw(SCALARS | st.dictionaries(st.text(max_size=5), SCALARS, max_size=3))
        raw = json.dumps({**base, field: value}).encode()
        how = draw(st.integers(min_value=0, max_value=3))
        if how == 1:
            raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
        elif how == 2:
            raw = json.dumps({**base, "message": draw(st.text(max_size=60)) + "\x00"}).encode()
        out.append(raw)
    return out


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_adversarial_alerts_end_stored_or_dead_lettered_in_both_sinks(
    pg: Settings, es: tuple[Settings, Elasticsearch], data: st.DataObject
) -> None:
    """Whatever the payload, the sinks keep running and account for it: a valid alert is stored (PostgreSQL)
    or searchable (Elasticsearch), anything else is a dead letter with a reason."""
    payloads = data.draw(st.composite(adversarial_alerts)())
    run_id = uuid.uuid4().hex[:8]
    es_settings, client = es
    stores = pg.updated(
        kafka={"topic_prefix": f"{pg.kafka.topic_prefix}{run_id}."}, es={"index_prefix": es_settings.es.index_prefix}
    )

    ensure_topics(stores)
    with Publisher(stores, DLQ_SINKS, **{"message.max.bytes": 2_000_000}) as publisher:
        for raw in payloads:
            publisher.send(ALERTS, b"k", raw)
    valid: dict[str, bytes] = {}
    for raw in payloads:
        with contextlib.suppress(RecordError):
            valid[Alert.from_json(raw).alert_id] = raw
    for writer in (PostgresWriter(stores), ElasticsearchWriter(stores)):
        SinkRunner(stores, writer, resolve_topics([ALERTS.name]), group=f"g-{run_id}-{writer.name}").run(
            exit_when_idle_s=3.0
        )
    invalid = [raw for raw in payloads if raw not in valid.values()]
    # every invalid payload is dead-lettered by both sinks: wait for those, then a little more
    letters = read_topic(stores, stores.topic(DLQ_SINKS.name), 2 * len(invalid), timeout_s=60, linger_s=2)
    dead = Counter(_original_sha(m.value, m.headers) for m in letters)
    engine = db.make_engine(pg)
    try:
        with engine.connect() as conn:
            stored = {r.alert_id for r in conn.execute(select(db.alerts.c.alert_id)).all()}
    finally:
        engine.dispose()
    client.indices.refresh(index=index_pattern(stores, "alerts"), ignore_unavailable=True)
    hits = client.search(index=index_pattern(stores, "alerts"), size=1000, source_includes=["tapewatch.alert_id"],
                         ignore_unavailable=True)["hits"]["hits"]  # fmt: skip
    searchable = {h["_source"]["tapewatch"]["alert_id"] for h in hits}
    for alert_id, raw in valid.items():
        assert alert_id in stored, f"valid alert not in PostgreSQL: {raw[:200]!r}"
        assert alert_id in searchable or dead[hashlib.sha256(raw).hexdigest()] > 0, raw[:200]
    for raw in invalid:
        assert dead[hashlib.sha256(raw).hexdigest()] >= 2, f"not dead-lettered by both sinks: {raw[:200]!r}"


def _original_sha(value: bytes, headers: list[tuple[str, bytes]]) -> str:
    original = dict(headers).get(deadletter.ORIGINAL_SHA256)
    return original.decode() if original else hashlib.sha256(value).hexdigest()
