"""Store outages mid-run: a PRIVATE PostgreSQL cluster (and a private Elasticsearch node) is stopped for 30 s
while alerts keep arriving, then started again; the sink pauses, backs off, resumes, and nothing is lost. A hung
store too: the private cluster paused (SIGSTOP, every process of it) for 60 s, which answers nothing at all, is
reported as an outage and nothing is lost.

The shared services are never touched: each test starts its own instance on a free port under a temporary
var dir (infra/ places it under /var/lib/tapewatch/<hash> when the service user cannot reach the temp dir)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from elasticsearch.helpers import scan
from sqlalchemy import select

from tapewatch.backoff import Backoff
from tapewatch.bench.sink import synthetic_alert
from tapewatch.infra.elasticsearch import Elasticsearch as ElasticsearchService
from tapewatch.infra.manager import START_TIMEOUT_S, _wait_healthy
from tapewatch.infra.postgres import Postgres
from tapewatch.producers.publisher import Publisher
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.sinks.consumer import SinkRunner, Writer
from tapewatch.sinks.elastic import ElasticsearchWriter, index_pattern
from tapewatch.sinks.postgres import PostgresWriter
from tapewatch.sinks.search import es_client
from tapewatch.topics import ALERTS, DLQ_SINKS

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0
RATE = 400.0  # alerts/s, before, during and after the outage
PRODUCE_S = 45.0


def free_port(span: int = 0) -> int:
    """A free port (and port + span free too: Elasticsearch's transport port is http + 100)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if span == 0 or port + span < 65536:
            with socket.socket() as other:
                try:
                    other.bind(("127.0.0.1", port + span))
                except OSError:
                    continue
            return port


def produce_steadily(settings: Settings, sent: list[str], stop_after_s: float) -> None:
    with Publisher(settings, DLQ_SINKS) as publisher:
        start = time.monotonic()
        i = 0
        while (elapsed := time.monotonic() - start) < stop_after_s:
            while i < elapsed * RATE:
                alert = synthetic_alert(i, 1_700_000_000_000 + i * 100)
                publisher.publish(ALERTS, alert)
                sent.append(alert.alert_id)
                i += 1
            publisher.poll()
            time.sleep(0.01)


def ride_out_outage(
    settings: Settings,
    writer: Writer,
    stop_service: Callable[[], object],
    start_service: Callable[[], object],
    stored_ids: Callable[[], list[str]],
    outage_s: float = OUTAGE_S,
) -> SinkRunner:
    """Run the sink while producing; stop the store 5 s in, keep it down for OUTAGE_S, start it again; wait
    until every sent alert is stored. Returns the runner (its counters tell the outage story)."""
    runner = SinkRunner(settings, writer, [ALERTS], batch_size=1000, backoff=Backoff(base_s=0.2, cap_s=2.0))
    sink = threading.Thread(target=runner.run, daemon=True)
    sent: list[str] = []
    producer = threading.Thread(target=produce_steadily, args=(settings, sent, PRODUCE_S), daemon=True)
    sink.start()
    producer.start()
    try:
        time.sleep(5.0)
        stop_service()
        down_at = time.monotonic()
        time.sleep(max(0.0, outage_s - (time.monotonic() - down_at)))
        start_service()
        producer.join(120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(set(stored_ids())) < len(sent):
            time.sleep(1.0)
    finally:
        runner.stop()
        sink.join(60)
    ids = stored_ids()
    assert len(sent) > RATE * PRODUCE_S * 0.8
    assert len(ids) == len(set(ids)) == len(sent) and set(ids) == set(sent)
    assert runner.counters.outages >= 1 and runner.counters.retries >= 3
    return runner


@pytest.fixture
def private_postgres(services: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Postgres]]:
    port = free_port()
    private = services.updated(
        local={"var_dir": tmp_path / "var"},
        postgres={
            "url": type(services.postgres.url)(f"postgresql+psycopg2://tapewatch:tapewatch@127.0.0.1:{port}/tapewatch")
        },
    )
    pg = Postgres(private)
    pg.install()
    pg.start()
    try:
        yield private, pg
    finally:
        pg.stop()
        shutil.rmtree(pg.home, ignore_errors=True)


def test_postgres_down_30_s_loses_nothing(settings: Settings, private_postgres: tuple[Settings, Postgres]) -> None:
    private, pg = private_postgres
    sink_settings = private.updated(kafka={"topic_prefix": settings.kafka.topic_prefix})
    engine = db.make_engine(sink_settings)

    def stored() -> list[str]:
        try:
            with engine.connect() as conn:
                return [row[0] for row in conn.execute(select(db.alerts.c.alert_id))]
        except Exception:
            return []

    try:
        ride_out_outage(sink_settings, PostgresWriter(sink_settings), pg.stop, pg.start, stored)
    finally:
        engine.dispose()


def _process_tree(root: int) -> list[int]:
    """``root`` and every process below it (from /proc: the postmaster and its backends)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def test_postgres_paused_60_s_is_an_outage_and_loses_nothing(
    settings: Settings, private_postgres: tuple[Settings, Postgres]
) -> None:
    private, pg = private_postgres
    sink_settings = private.updated(kafka={"topic_prefix": settings.kafka.topic_prefix})
    engine = db.make_engine(sink_settings)
    paused: list[int] = []

    def pause() -> None:
        postmaster = pg.pid()
        assert postmaster is not None
        paused.extend(_process_tree(postmaster))
        for pid in paused:
            os.kill(pid, signal.SIGSTOP)

    def resume() -> None:
        for pid in paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stored() -> list[str]:  # asked only once the cluster runs again
        try:
            with engine.connect() as conn:
                return [row[0] for row in conn.execute(select(db.alerts.c.alert_id))]
        except Exception:
            return []

    writer = PostgresWriter(sink_settings)
    try:
        runner = ride_out_outage(sink_settings, writer, pause, resume, stored, outage_s=60.0)
    finally:
        resume()
        engine.dispose()
    # the pause outlived the statement timeout and the watchdog: the sink said so, it did not just wait
    assert runner.counters.outages >= 1
    assert sink_settings.postgres.statement_timeout_s + 5 < 60


@pytest.fixture
def private_elasticsearch(services: Settings, tmp_path: Path) -> Iterator[tuple[Settings, ElasticsearchService]]:
    port = free_port(span=100)
    private = services.updated(
        local={"var_dir": tmp_path / "var", "es_heap_mb": 256},
        es={"url": f"http://127.0.0.1:{port}", "index_prefix": f"twoutage{uuid.uuid4().hex[:6]}"},
    )
    node = ElasticsearchService(private)

    def start() -> None:
        _wait_healthy(node, node.start(), START_TIMEOUT_S["elasticsearch"])

    node.install()
    start()
    try:
        yield private, node
    finally:
        node.stop()
        shutil.rmtree(node.root, ignore_errors=True)


def test_elasticsearch_down_30_s_loses_nothing(
    settings: Settings, private_elasticsearch: tuple[Settings, ElasticsearchService]
) -> None:
    private, node = private_elasticsearch
    sink_settings = private.updated(kafka={"topic_prefix": settings.kafka.topic_prefix})
    es = es_client(sink_settings, request_timeout=10)
    pattern = index_pattern(sink_settings, "alerts")

    def stored() -> list[str]:
        try:
            es.indices.refresh(index=pattern, allow_no_indices=True)
            return [hit["_id"] for hit in scan(es, index=pattern, _source=False, size=5000)]
        except Exception:
            return []

    def start() -> None:
        _wait_healthy(node, node.start(), START_TIMEOUT_S["elasticsearch"])

    try:
        ride_out_outage(sink_settings, ElasticsearchWriter(sink_settings), node.stop, start, stored)
        assert es.count(index=pattern)["count"] == len(stored())
    finally:
        es.close()
