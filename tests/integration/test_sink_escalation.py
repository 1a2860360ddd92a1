"""An alert that escalates is re-emitted under the same alert_id (later ts, critical, a wider window); one raised
before news about its onset arrived is re-emitted at the same ts with that news. Through the real PostgreSQL and
Elasticsearch sinks, both stores keep the newest emission exactly once, whatever the order of arrival: the
escalation (or the news) after the original, or the original replayed after it; within one batch or across runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from elasticsearch.helpers import scan
from sqlalchemy import select

from tapewatch.bench.sink import synthetic_alert, synthetic_escalation
from tapewatch.detectors.news.context import NewsContext
from tapewatch.producers.publisher import Publisher
from tapewatch.records import Alert, NewsRef
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.sinks.consumer import SinkRunner, Writer
from tapewatch.sinks.elastic import ElasticsearchWriter, delete_everything, index_pattern
from tapewatch.sinks.postgres import PostgresWriter
from tapewatch.sinks.search import es_client
from tapewatch.topics import ALERTS, DLQ_SINKS
from tests.postgres_times import datetime_to_ms

pytestmark = pytest.mark.integration


@pytest.fixture
def stores_settings(settings: Settings) -> Iterator[Settings]:
    """Settings with a private PostgreSQL schema and Elasticsearch index prefix."""
    tag = uuid.uuid4().hex[:10]
    db.create_schema(settings, f"esc_{tag}")
    isolated = db.in_schema(settings, f"esc_{tag}").updated(es={"index_prefix": f"twesc{tag}"})
    yield isolated
    es = es_client(isolated)
    delete_everything(es, isolated)
    es.close()
    db.drop_schema(settings, f"esc_{tag}")


def publish(settings: Settings, alerts: list[Alert]) -> None:
    with Publisher(settings, DLQ_SINKS) as publisher:
        for alert in alerts:
            publisher.publish(ALERTS, alert)


def drain(settings: Settings, writer: Writer) -> SinkRunner:
    runner = SinkRunner(settings, writer, [ALERTS], batch_size=500)
    runner.run(exit_when_idle_s=3.0)
    return runner


def drain_both(settings: Settings) -> None:
    assert drain(settings, PostgresWriter(settings)).counters.dead_lettered == 0
    assert drain(settings, ElasticsearchWriter(settings)).counters.dead_lettered == 0


def stored_in_postgres(settings: Settings) -> list[Alert]:
    engine = db.make_engine(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(db.alerts)).mappings().all()
    finally:
        engine.dispose()
    times = ("ts", "window_start", "window_end")
    return [Alert.model_validate({k: datetime_to_ms(v) if k in times else v for k, v in r.items()}) for r in rows]


def stored_in_elasticsearch(settings: Settings) -> list[tuple[str, int, dict[str, object]]]:
    """(id, _version, tapewatch part) of every alert document."""
    es = es_client(settings)
    try:
        es.indices.refresh(index=index_pattern(settings, "alerts"))
        hits = scan(es, index=index_pattern(settings, "alerts"), query={"query": {"match_all": {}}}, version=True)
        return [(hit["_id"], hit["_version"], hit["_source"]["tapewatch"]) for hit in hits]
    finally:
        es.close()


def assert_newest_kept(settings: Settings, newest: list[Alert], others: list[Alert]) -> None:
    expected = {a.alert_id: a for a in [*newest, *others]}
    in_postgres = stored_in_postgres(settings)
    assert sorted(a.alert_id for a in in_postgres) == sorted(expected)  # each id once
    for alert in in_postgres:
        assert alert == expected[alert.alert_id]
    in_elasticsearch = stored_in_elasticsearch(settings)
    assert sorted(doc_id for doc_id, _, _ in in_elasticsearch) == sorted(expected)
    for doc_id, version, source in in_elasticsearch:
        wanted = expected[doc_id]
        assert version == wanted.emission
        assert (source["severity"], source["score"], source["evidence"], source["news"]) == (
            wanted.severity.value,
            wanted.score,
            wanted.evidence,
            wanted.news,
        )


def test_newest_emission_kept_whatever_the_order(stores_settings: Settings) -> None:
    settings = stores_settings
    originals = [synthetic_alert(i, 1_700_000_000_000 + i * 1000) for i in range(40)]
    escalated = {i: synthetic_escalation(originals[i]) for i in (1, 2, 3, 4)}
    escalated |= {i: with_news(originals[i]) for i in (5, 6)}  # the same ts, with the news about its onset
    untouched = [a for i, a in enumerate(originals) if i not in escalated]

    # Run 1: alert 1 escalates after its original, alert 2's escalation arrives before its original (a replay),
    # both inside one batch; alerts 3 and 4 are stored as originals (3) and as the escalation (4) only.
    # Alert 5's news comes after it, alert 6's original is replayed after its news.
    publish(settings, [*originals, escalated[1], escalated[2], originals[2], escalated[4], escalated[5], escalated[6]])
    publish(settings, [originals[6]])
    drain_both(settings)
    newest = [escalated[1], escalated[2], originals[3], escalated[4], escalated[5], escalated[6]]
    assert_newest_kept(settings, newest, untouched)

    # Run 2, a later batch: alert 3 escalates over the stored original; alert 4's original is replayed over the
    # stored escalation and must not replace it; the untouched ones are replayed unchanged.
    publish(settings, [escalated[3], originals[4], *untouched[:5]])
    drain_both(settings)
    assert_newest_kept(settings, list(escalated.values()), untouched)


def with_news(alert: Alert) -> Alert:
    """``alert`` as the detect stage sends it again once an item about its onset has arrived."""
    context = NewsContext()
    context.observe(NewsRef(item_id=f"wire:{alert.alert_id}", ts=alert.window_start - 60_000, source="wire",
                            title=f"news about {alert.symbol}", url="", sentiment=0.5))  # fmt: skip
    annotated = context.annotate(alert)
    assert annotated.ts == alert.ts and annotated.emission > alert.emission
    return annotated


def test_copy_rows_keeps_the_newest(stores_settings: Settings) -> None:
    settings = stores_settings
    db.upgrade(settings)
    first = synthetic_alert(7, 1_700_000_000_000)
    newer = synthetic_escalation(first)
    engine = db.make_engine(settings)
    try:
        with engine.begin() as conn:  # both emissions in one batch: the newest, once
            assert db.copy_rows(conn, db.alerts, [db.alert_doc(newer), db.alert_doc(first)]) == 1
        with engine.begin() as conn:
            assert db.copy_rows(conn, db.alerts, [db.alert_doc(first)]) == 0  # older: not stored
            assert db.copy_rows(conn, db.alerts, [db.alert_doc(newer)]) == 0  # the same: nothing to do
    finally:
        engine.dispose()
    assert stored_in_postgres(settings) == [newer]
