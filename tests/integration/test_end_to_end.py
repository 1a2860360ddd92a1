"""End to end on the real services: a simulated session with known episodes → Kafka → stream worker (bars,
features, detection, DQN actions) → PostgreSQL and Elasticsearch sinks. The alerts stored in PostgreSQL and
Elasticsearch are exactly those of the offline twin (`tapewatch detect file`) over the same input, and
PostgreSQL holds an action for every symbol and bar."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from elasticsearch import ApiError
from sqlalchemy import select

from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.sinks.elastic import index_pattern
from tapewatch.sinks.search import es_client
from tests.pipeline_session import PreparedSession
from tests.postgres_times import datetime_to_ms
from tests.search_support import shard_starting
from tests.stream_worker import Worker, start_sink

pytestmark = pytest.mark.integration

TAPEWATCH = Path(sys.executable).with_name("tapewatch")
WAIT_S = 180.0


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float, details: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}\n{details()}")


@pytest.mark.timeout(600)
def test_alerts_in_postgres_and_elasticsearch_equal_the_offline_twin(
    stores: Settings, stream_settings: Settings, prepared_session: PreparedSession, tmp_path: Path
) -> None:
    settings = stores
    env = {
        "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "TAPEWATCH_POSTGRES_URL": settings.postgres.url_plain,
        "TAPEWATCH_ES_INDEX_PREFIX": settings.es.index_prefix,
    }
    session = prepared_session
    env = session.env_with(env)
    expected_ids = {a["alert_id"] for a in session.offline_alerts}
    expected_alerts = {(a["alert_id"], a["symbol"], a["kind"], a["window_start"]) for a in session.offline_alerts}
    expected_actions = set(zip(session.bars["symbol"], session.bars["end"], strict=True))
    assert expected_ids and expected_actions

    db.upgrade(settings)
    engine = db.make_engine(settings)
    es = es_client(settings)
    worker = Worker(settings, tmp_path / "worker.log", "--metrics-port", "0", env=env)
    logs = [tmp_path / "sink-postgres.log", tmp_path / "sink-elasticsearch.log"]
    sinks = [start_sink(name, env, log) for name, log in zip(("postgres", "elasticsearch"), logs, strict=True)]

    def details() -> str:
        return worker.tail() + "".join(f"\n{log.name}:\n" + log.read_text(errors="replace")[-1500:] for log in logs)

    def pg_alerts() -> list[tuple[str, str, str, int, int]]:
        """(alert_id, symbol, kind, window_start, ts of the first emission) per stored row."""
        a = db.alerts.c
        with engine.connect() as conn:
            rows = conn.execute(select(a.alert_id, a.symbol, a.kind, a.window_start, a.ts))
            return [(r[0], r[1], r[2], datetime_to_ms(r[3]), datetime_to_ms(r[4])) for r in rows]

    def pg_actions() -> set[tuple[str, int]]:
        with engine.connect() as conn:
            rows = conn.execute(select(db.actions.c.symbol, db.actions.c.ts))
            return {(r[0], datetime_to_ms(r[1])) for r in rows}

    def es_alert_ids() -> list[str]:
        pattern = index_pattern(settings, "alerts")
        try:
            es.indices.refresh(index=pattern, ignore_unavailable=True, allow_no_indices=True)
            found = es.search(index=pattern, size=10_000, source=False, ignore_unavailable=True)
        except ApiError as error:
            if shard_starting(error):
                return []  # the sink's index was just created: nothing searchable yet, so the wait goes on
            raise
        return [hit["_id"] for hit in found["hits"]["hits"]]

    try:
        session.produce(env, "--truth", str(tmp_path / "truth.csv"))
        wait_for("the alerts in PostgreSQL", lambda: expected_ids <= {a[0] for a in pg_alerts()}, WAIT_S, details)
        wait_for("the alerts in Elasticsearch", lambda: expected_ids <= set(es_alert_ids()), WAIT_S, details)
        wait_for("an action per symbol and bar", lambda: expected_actions <= pg_actions(), WAIT_S, details)
        time.sleep(3)  # anything extra would arrive now
        stored_pg = pg_alerts()
        stored_es = es_alert_ids()
        actions = pg_actions()
    finally:
        worker.stop()
        for sink in sinks:
            sink.terminate()
            sink.wait(30)
        engine.dispose()

    # both stores hold the same alerts, once each (the alert_id is the key); up to the session's open tail,
    # exactly the offline twin's
    pg_ids = [a[0] for a in stored_pg]
    assert len(pg_ids) == len(set(pg_ids)) and len(stored_es) == len(set(stored_es)), "an alert stored twice"
    assert set(pg_ids) == set(stored_es)
    assert {a[:4] for a in stored_pg if a[4] <= session.cutoff} == expected_alerts, details()
    assert expected_actions <= actions
