"""Elasticsearch sink on the real node: monthly indices from the record's own time, _id = alert_id, a replay
overwrites instead of duplicating, every bulk item checked (a refused document goes to dlq.sinks)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from tapewatch import deadletter
from tapewatch.bench.sink import synthetic_alert
from tapewatch.producers.publisher import Publisher
from tapewatch.records import ExecutionReport, Forecast, Score
from tapewatch.settings import Settings
from tapewatch.sinks.consumer import SinkRunner, resolve_topics
from tapewatch.sinks.defaults import ELASTICSEARCH_TOPICS
from tapewatch.sinks.elastic import ElasticsearchWriter, delete_everything, index_pattern, template_name
from tapewatch.sinks.search import es_client, index_name
from tapewatch.topics import ALERTS, DLQ_SINKS, FIRM_ORDERS, FORECASTS, SCORES
from tests.kafka_reader import read_topic

pytestmark = pytest.mark.integration

NOV_30 = 1_701_302_400_000  # 2023-11-30T00:00Z: alerts below straddle the month boundary


@pytest.fixture
def es_settings(settings: Settings) -> Iterator[tuple[Settings, Elasticsearch]]:
    isolated = settings.updated(es={"index_prefix": f"twtest{uuid.uuid4().hex[:8]}"})
    es = es_client(isolated)
    yield isolated, es
    delete_everything(es, isolated)
    es.close()


def run_sink(settings: Settings, group: str | None = None) -> tuple[SinkRunner, ElasticsearchWriter]:
    writer = ElasticsearchWriter(settings)
    runner = SinkRunner(settings, writer, resolve_topics(ELASTICSEARCH_TOPICS), group=group, batch_size=1000)
    runner.run(exit_when_idle_s=4.0)
    return runner, writer


def test_alerts_and_scores_indexed_once_by_month(es_settings: tuple[Settings, Elasticsearch]) -> None:
    settings, es = es_settings
    alerts = [synthetic_alert(i, NOV_30 + i * 60_000) for i in range(2000)]  # ~33 h: November and December
    scores = [
        Score(symbol=f"S{i % 5}", venue="sim", ts=NOV_30 + i * 1000, model_version="k1", cluster=i % 3,
              distance=0.5, score=0.25, top_features=[("ret", 0.3)])
        for i in range(300)
    ]  # fmt: skip
    forecasts = [
        Forecast(symbol=f"S{i % 5}", venue="sim", ts=NOV_30 + i * 60_000, model="cnn", model_version="c1", horizon=14,
                 target="class", prediction=0.1, confidence=0.6, probabilities={"down": 0.3, "flat": 0.1, "up": 0.6})
        for i in range(100)
    ]  # fmt: skip
    # An index created beforehand with a conflicting mapping makes Elasticsearch refuse one document (400).
    refused = synthetic_alert(99_999, 1_600_000_000_000).model_copy(update={"symbol": "NOT-A-NUMBER"})
    es.indices.create(
        index=index_name(settings, "alerts", refused.ts),
        mappings={"properties": {"tapewatch": {"properties": {"symbol": {"type": "long"}}}}},
    )
    with Publisher(settings, DLQ_SINKS) as publisher:
        for alert in [*alerts, refused]:
            publisher.publish(ALERTS, alert)
        for score in scores:
            publisher.publish(SCORES, score)
        for forecast in forecasts:
            publisher.publish(FORECASTS, forecast)

    runner, writer = run_sink(settings)
    assert runner.counters.written == 2000 + 300 + 100 and writer.superseded == 0
    assert runner.counters.dead_lettered == 1
    es.indices.refresh(index=f"{settings.es.index_prefix}-*")
    months = {index_name(settings, "alerts", a.ts) for a in alerts}
    assert months == {f"{settings.es.index_prefix}-alerts-2023.11", f"{settings.es.index_prefix}-alerts-2023.12"}
    for month in months:
        expected = sum(1 for a in alerts if index_name(settings, "alerts", a.ts) == month)
        assert es.count(index=month)["count"] == expected
    assert es.count(index=index_pattern(settings, "scores"))["count"] == 300
    assert es.count(index=index_pattern(settings, "forecasts"))["count"] == 100
    assert es.indices.exists_index_template(name=template_name(settings, "alerts"))
    mapping = es.indices.get_mapping(index=sorted(months)[0])
    properties = next(iter(mapping.body.values()))["mappings"]["properties"]
    assert properties["tapewatch"]["properties"]["symbol"]["type"] == "keyword"
    assert properties["event"]["properties"]["risk_score"]["type"] == "float"

    doc = es.get(index=index_name(settings, "alerts", alerts[5].ts), id=alerts[5].alert_id)
    assert doc["_source"]["event"]["id"] == alerts[5].alert_id
    assert doc["_source"]["tapewatch"]["evidence"] == alerts[5].evidence

    (letter,) = read_topic(settings, settings.topic(DLQ_SINKS.name), expected=1)
    header = deadletter.DeadLetter.from_headers(letter.headers)
    assert header.stage == "sink:elasticsearch" and "(400)" in header.reason
    assert letter.value == refused.to_json()

    # A replay under another group writes the same ids: no document twice. Alerts carry their ts as external
    # version, so the replayed (equal) emissions are refused with 409 (counted as superseded, not as errors) and
    # the stored documents stay as they were; scores and forecasts are overwritten.
    replay, replay_writer = run_sink(settings, group=f"replay-{uuid.uuid4().hex[:6]}")
    assert replay.counters.written == 2000 + 300 + 100 and replay.counters.dead_lettered == 1
    assert replay_writer.superseded == 2000
    es.indices.refresh(index=f"{settings.es.index_prefix}-*")
    assert es.count(index=index_pattern(settings, "alerts"))["count"] == 2000
    assert es.count(index=index_pattern(settings, "scores"))["count"] == 300
    assert es.count(index=index_pattern(settings, "forecasts"))["count"] == 100
    again = es.get(index=index_name(settings, "alerts", alerts[5].ts), id=alerts[5].alert_id)
    assert again["_version"] == alerts[5].emission and again["_source"] == doc["_source"]


def test_a_tenants_alerts_go_to_its_own_index_only(es_settings: tuple[Settings, Elasticsearch]) -> None:
    """A firm's alerts (``tenant`` set: they name its accounts) land in ``<prefix>-tenant-alerts-<tenant>-<month>``,
    under that tenant's template (the alerts' mapping); the shared alerts pattern and another tenant's never find
    them."""
    settings, es = es_settings
    public = [synthetic_alert(i, NOV_30 + i * 1_000) for i in range(3)]
    firms = [
        alert.model_copy(update={"tenant": tenant, "alert_id": f"{tenant}-{alert.alert_id}"})
        for tenant in ("acme", "acme_2")
        for alert in public
    ]
    with Publisher(settings, DLQ_SINKS) as publisher:
        for alert in [*public, *firms]:
            publisher.publish(ALERTS, alert)
    runner, _ = run_sink(settings)
    assert runner.counters.written == 9 and runner.counters.dead_lettered == 0
    es.indices.refresh(index=f"{settings.es.index_prefix}-*")

    def found(pattern: str) -> set[str]:
        hits = es.search(index=pattern, size=100, source_includes=["tapewatch.alert_id"])["hits"]["hits"]
        return {hit["_source"]["tapewatch"]["alert_id"] for hit in hits}

    assert found(index_pattern(settings, "alerts")) == {a.alert_id for a in public}
    for tenant in ("acme", "acme_2"):
        own = index_pattern(settings, f"tenant-alerts-{tenant}")
        assert found(own) == {a.alert_id for a in firms if a.tenant == tenant}
    index = f"{settings.es.index_prefix}-tenant-alerts-acme-2023.11"
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["properties"]["tapewatch"]["properties"]["tenant"] == {"type": "keyword", "ignore_above": 8191}


def test_a_firms_drop_copy_is_searchable_in_its_own_index_only(es_settings: tuple[Settings, Elasticsearch]) -> None:
    settings, es = es_settings
    reports = [
        ExecutionReport(symbol="S1", venue="sim", ts=NOV_30 + i, exec_id=f"E{i % 2}", order_id=f"O{i}",
                        tenant=("acme", "bravo")[i // 2], account=f"A{i}", exec_type="new", side="BUY", price=10.0,
                        quantity=100.0, leaves_qty=100.0)
        for i in range(4)
    ]  # fmt: skip
    with Publisher(settings, DLQ_SINKS) as publisher:
        for report in reports:
            publisher.publish(FIRM_ORDERS, report)
    runner, _ = run_sink(settings)
    assert runner.counters.written == 4 and runner.counters.dead_lettered == 0
    es.indices.refresh(index=f"{settings.es.index_prefix}-*")
    for tenant in ("acme", "bravo"):
        found = es.search(index=index_pattern(settings, f"tenant-executions-{tenant}"), size=10)["hits"]["hits"]
        accounts = {hit["_source"]["tapewatch"]["account"] for hit in found}
        assert accounts == {r.account for r in reports if r.tenant == tenant}
    assert es.count(index=f"{settings.es.index_prefix}-executions-*", allow_no_indices=True)["count"] == 0
