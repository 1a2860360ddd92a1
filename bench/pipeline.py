"""`tapewatch bench pipeline`: end-to-end latency of the whole pipeline on a live feed.

A simulated session opened *now* (``produce simulate --start-now``: event time = wall time) flows through one
stream worker and the PostgreSQL and Elasticsearch sinks, on private topics, schema and indices. For every alert,
with its event time ``ts`` (the moment the evidence was complete: the chunk or bar end):

* **→ Kafka**: the alert message's timestamp (set by the worker's producer when it sent it);
* **→ PostgreSQL**: when the row first appears (polled every ``poll_s``);
* **→ Elasticsearch**: when a search first finds it (polled every ``poll_s``, after a refresh).

Latencies include the event-time grace (``TAPEWATCH_STREAM_GRACE_MS``) a window waits for late records, and the
polling resolution.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from tapewatch.bench.timing import latency_summary
from tapewatch.errors import TapewatchError
from tapewatch.kafka import consumer_config
from tapewatch.settings import PROJECT_ROOT, Settings
from tapewatch.topics import ALERTS

TAPEWATCH = str(Path(sys.executable).with_name("tapewatch"))


@dataclass
class PipelineBenchResult:
    symbols: int
    minutes: float
    alerts: int
    grace_ms: int
    poll_s: float
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # hop → n/p50/p99/max

    def to_json(self) -> bytes:
        return orjson.dumps({"benchmark": "pipeline", **asdict(self)}, option=orjson.OPT_INDENT_2)


@dataclass
class _Seen:
    ts: int
    kafka_ms: float
    postgres_ms: float | None = None
    elasticsearch_ms: float | None = None


@contextlib.contextmanager
def _private(settings: Settings) -> Iterator[Settings]:
    """Fresh topics, PostgreSQL schema and Elasticsearch indices, all removed afterwards."""
    from tapewatch.bench.topics import private_topics
    from tapewatch.sinks import db
    from tapewatch.sinks.elastic import delete_everything
    from tapewatch.sinks.search import es_client

    tag = uuid.uuid4().hex[:6]
    db.create_schema(settings, f"bench_{tag}")
    stores = db.in_schema(settings, f"bench_{tag}").updated(es={"index_prefix": f"twbench{tag}"})
    try:
        with private_topics(stores, f"bench-{tag}.") as isolated:
            db.upgrade(isolated)
            yield isolated
    finally:
        db.drop_schema(settings, f"bench_{tag}")
        es = es_client(stores)
        delete_everything(es, stores)
        es.close()


def run_pipeline_bench(
    settings: Settings, *, symbols: int, minutes: float, poll_s: float, workdir: Path
) -> PipelineBenchResult:
    from tapewatch.ops.demo import ensure_models

    ensure_models(settings)
    with _private(settings) as isolated:
        env = {
            **os.environ,
            "TAPEWATCH_TOPIC_PREFIX": isolated.kafka.topic_prefix,
            "TAPEWATCH_POSTGRES_URL": isolated.postgres.url_plain,
            "TAPEWATCH_ES_INDEX_PREFIX": isolated.es.index_prefix,
            "TAPEWATCH_MODEL_DIR": str(settings.local.models_path),
        }
        procs = _start_stages(env, workdir)
        tracker = _AlertTracker(isolated)
        try:
            _wait_for_worker(workdir / "pipeline-worker.log", procs[0])
            time.sleep(5)  # the sinks join their groups
            argv = [TAPEWATCH, "produce", "simulate", "--start-now", "--symbols", str(symbols)]
            argv += ["--minutes", str(minutes), "--seed", "11", "--no-progress"]
            with (workdir / "pipeline-source.log").open("wb") as out:
                source = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out)
            drain_until: float | None = None
            while drain_until is None or time.monotonic() < drain_until:
                if drain_until is None and source.poll() is not None:
                    drain_until = time.monotonic() + 30
                tracker.poll(poll_s)
        finally:
            tracker.close()
            _stop(procs)
    return PipelineBenchResult(
        symbols=symbols,
        minutes=minutes,
        alerts=len(tracker.seen),
        grace_ms=settings.stream.grace_ms,
        poll_s=poll_s,
        latency_ms={hop: latency_summary(values) for hop, values in _hops(tracker.seen).items() if values},
    )


def _start_stages(env: dict[str, str], workdir: Path) -> list[subprocess.Popen[bytes]]:
    """The stream worker and both sinks, each logging to ``workdir``; the worker first."""
    stages = [
        ("worker", ["stream", "worker", "--metrics-port", "0"]),
        ("sink-postgres", ["sink", "postgres"]),
        ("sink-elasticsearch", ["sink", "elasticsearch"]),
    ]
    procs = []
    for name, args in stages:
        with (workdir / f"pipeline-{name}.log").open("wb") as out:
            procs.append(subprocess.Popen([TAPEWATCH, *args], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out))
    return procs


def _wait_for_worker(worker_log: Path, worker: subprocess.Popen[bytes]) -> None:
    """Until the worker logs that it is ready (TapewatchError if it exits or takes over two minutes)."""
    deadline = time.monotonic() + 120
    while b"Ready" not in worker_log.read_bytes():
        if time.monotonic() > deadline or worker.poll() is not None:
            raise TapewatchError(f"the stream worker did not start; see {worker_log}")
        time.sleep(0.5)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


class _AlertTracker:
    """When each alert shows up on Kafka, in PostgreSQL and in Elasticsearch (by alert id)."""

    def __init__(self, isolated: Settings) -> None:
        from tapewatch.sinks import db
        from tapewatch.sinks.elastic import index_pattern
        from tapewatch.sinks.search import es_client

        self.consumer = Consumer(
            consumer_config(isolated, **{"group.id": f"bench-{uuid.uuid4()}", "enable.auto.commit": False})
        )
        topic = isolated.topic(ALERTS.name)
        self.consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(isolated.kafka.topic_partitions)]
        )
        self.engine = db.make_engine(isolated)
        self.es = es_client(isolated)
        self.pattern = index_pattern(isolated, "alerts")
        self.seen: dict[str, _Seen] = {}

    def poll(self, poll_s: float) -> None:
        """New alerts from Kafka (waiting up to ``poll_s``), then the ones not yet found in each store."""
        for message in self.consumer.consume(num_messages=1000, timeout=poll_s):
            if message.error() is None and message.value():
                alert = orjson.loads(message.value() or b"{}")
                _, kafka_ms = message.timestamp()
                self.seen.setdefault(alert["alert_id"], _Seen(int(alert["ts"]), float(kafka_ms)))
        now_ms = time.time() * 1000.0
        self._poll_postgres(now_ms)
        self._poll_elasticsearch(now_ms)

    def _poll_postgres(self, now_ms: float) -> None:
        from sqlalchemy import select

        from tapewatch.sinks import db

        missing = [a for a, s in self.seen.items() if s.postgres_ms is None]
        if missing:
            with self.engine.connect() as conn:
                rows = conn.execute(select(db.alerts.c.alert_id).where(db.alerts.c.alert_id.in_(missing)))
                for (alert_id,) in rows:
                    self.seen[alert_id].postgres_ms = now_ms

    def _poll_elasticsearch(self, now_ms: float) -> None:
        missing = [a for a, s in self.seen.items() if s.elasticsearch_ms is None]
        if missing:
            found = self.es.search(
                index=self.pattern,
                query={"ids": {"values": missing}},
                source=False,
                size=len(missing),
                ignore_unavailable=True,
            )
            for hit in found["hits"]["hits"]:
                self.seen[hit["_id"]].elasticsearch_ms = now_ms

    def close(self) -> None:
        self.consumer.close()
        self.engine.dispose()
        self.es.close()


def _hops(seen: dict[str, _Seen]) -> dict[str, list[float]]:
    """Latency samples per hop (ms); an alert a store never showed is left out of that store's hops."""
    return {
        "event → alert on Kafka": [s.kafka_ms - s.ts for s in seen.values()],
        "event → row in PostgreSQL": [s.postgres_ms - s.ts for s in seen.values() if s.postgres_ms is not None],
        "event → searchable in Elasticsearch": [
            s.elasticsearch_ms - s.ts for s in seen.values() if s.elasticsearch_ms is not None
        ],
        "alert on Kafka → row in PostgreSQL": [
            s.postgres_ms - s.kafka_ms for s in seen.values() if s.postgres_ms is not None
        ],
        "alert on Kafka → searchable in Elasticsearch": [
            s.elasticsearch_ms - s.kafka_ms for s in seen.values() if s.elasticsearch_ms is not None
        ],
    }
