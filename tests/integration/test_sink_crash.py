"""The issue's crash test: 100,000 alerts replayed through the PostgreSQL and Elasticsearch sinks, each sink
killed with SIGKILL mid-run and restarted; afterwards each store holds exactly the expected ids, none twice.

The sinks run as the real command (``tapewatch sink …``) in subprocesses, configured through the
environment like any deployment; static membership (``--instance-id``) lets the restarted process take its
partitions back at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from elasticsearch import ApiError
from elasticsearch.helpers import scan
from sqlalchemy import func, select

from tapewatch.bench.sink import synthetic_alert
from tapewatch.producers.publisher import Publisher
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.sinks.elastic import index_pattern
from tapewatch.sinks.search import es_client
from tapewatch.topics import ALERTS, DLQ_SINKS
from tests.search_support import shard_starting

pytestmark = pytest.mark.integration

RECORDS = 100_000
TAPEWATCH = Path(sys.executable).with_name("tapewatch")


def start_sink(settings: Settings, sink: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "TAPEWATCH_POSTGRES_URL": settings.postgres.url_plain,
        "TAPEWATCH_ES_INDEX_PREFIX": settings.es.index_prefix,
        "TAPEWATCH_SINK_BATCH_SIZE": "2000",
    }
    argv = [str(TAPEWATCH), "sink", sink, "--topics", ALERTS.name, "--instance-id", f"crash-{sink}", *extra]
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill_9_mid_run_loses_and_duplicates_nothing(stores: Settings, tmp_path: Path) -> None:
    expected = [synthetic_alert(i, 1_700_000_000_000 + i * 500).alert_id for i in range(RECORDS)]
    assert len(set(expected)) == RECORDS
    with Publisher(stores, DLQ_SINKS) as publisher:
        for i in range(RECORDS):
            publisher.publish(ALERTS, synthetic_alert(i, 1_700_000_000_000 + i * 500))

    engine = db.make_engine(stores)
    es = es_client(stores)
    pattern = index_pattern(stores, "alerts")

    def pg_rows() -> int:
        try:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(db.alerts)).scalar_one())
        except Exception:
            return 0

    def es_docs() -> int:
        try:
            answer = es.options(ignore_status=404).count(index=pattern, allow_no_indices=True)
        except ApiError as error:
            if shard_starting(error):
                return 0
            raise
        return int(answer.get("count", 0))

    pg_log, es_log = tmp_path / "pg.log", tmp_path / "es.log"
    sinks = {
        "postgres": start_sink(stores, "postgres", pg_log),
        "elasticsearch": start_sink(stores, "elasticsearch", es_log),
    }
    progress = {"postgres": pg_rows, "elasticsearch": es_docs}
    at_kill: dict[str, int] = {}
    try:
        for name, count in progress.items():
            wait_for(f"{name} to store its first 10,000", lambda: count() >= 10_000, 180)  # noqa: B023 - called now
            sinks[name].send_signal(signal.SIGKILL)
            sinks[name].wait(30)
            at_kill[name] = count()
        for name, stored in at_kill.items():
            assert 0 < stored < RECORDS, f"{name} was not killed mid-run ({stored:,} stored)"
        restarted = {
            name: start_sink(stores, name, tmp_path / f"{name}-2.log", "--exit-when-idle", "8") for name in progress
        }
        for name, process in restarted.items():
            assert process.wait(300) == 0, (tmp_path / f"{name}-2.log").read_text()[-2000:]
    finally:
        for process in sinks.values():
            if process.poll() is None:
                process.kill()

    with engine.connect() as conn:
        pg_ids = [row[0] for row in conn.execute(select(db.alerts.c.alert_id))]
    engine.dispose()
    assert len(pg_ids) == RECORDS and set(pg_ids) == set(expected)

    es.indices.refresh(index=pattern)
    es_ids = [
        hit["_id"] for hit in scan(es, index=pattern, query={"query": {"match_all": {}}}, _source=False, size=5000)
    ]
    assert es.count(index=pattern)["count"] == RECORDS
    assert len(es_ids) == RECORDS and set(es_ids) == set(expected)
    es.close()
