"""`tapewatch bench sinks`: rows/s into PostgreSQL (alerts, then order books), documents/s into Elasticsearch, and
the time from an alert on Kafka to the alert being searchable in Elasticsearch.

Everything runs in private places (a topic prefix, a PostgreSQL schema, an index prefix) that are removed
afterwards. Throughput is measured over a backlog: from the sink's start to its last commit. The latency run
produces alerts at a fixed rate with ``ts`` = the produce time while the Elasticsearch sink runs live, and a
poller records when each ``_id`` first shows up in a search (polling every 50 ms, so latencies are rounded up).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import orjson
from rich.console import Console
from rich.table import Table

from tapewatch.bench.timing import latency_summary
from tapewatch.collector import tuned_for_batches
from tapewatch.producers.publisher import Publisher
from tapewatch.records import BOOK_DEPTH, Alert, AlertKind, Book, Severity, alert_id
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.sinks.consumer import SinkCounters, SinkRunner, Writer
from tapewatch.sinks.elastic import ElasticsearchWriter, delete_everything
from tapewatch.sinks.postgres import PostgresWriter
from tapewatch.sinks.search import es_client
from tapewatch.topics import ALERTS, BOOKS, DLQ_SINKS, Topic

log = logging.getLogger(__name__)

KINDS = list(AlertKind)
SEVERITIES = list(Severity)


def synthetic_alert(i: int, ts: int, symbols: int = 200) -> Alert:
    symbol = f"B{i % symbols:04d}"
    kind = KINDS[i % len(KINDS)]
    start = ts - ts % 60_000
    return Alert(
        alert_id=alert_id(symbol, kind.value, start + i),  # unique per i, deterministic
        symbol=symbol,
        venue="bench",
        ts=ts,
        kind=kind,
        severity=SEVERITIES[i % len(SEVERITIES)],
        score=(i % 1000) / 1000,
        window_start=start,
        window_end=start + 60_000,
        evidence={"price": 100.0 + i % 50, "change_pct": (i % 21 - 10) / 10, "volume": float(i % 10_000), "i": i},
        model_version="bench-v1",
        message=f"synthetic alert {i}",
    )


def synthetic_book(i: int, ts: int, symbols: int = 200) -> Book:
    """A full five-level book around a mid that moves with ``i``, sizes varying by level (unique per i)."""
    mid = 100.0 + (i % 500) / 100
    return Book(
        symbol=f"B{i % symbols:04d}",
        venue="bench",
        ts=ts,
        bids=[(round(mid - 0.01 * (level + 1), 2), float(100 + (i + level * 37) % 900)) for level in range(BOOK_DEPTH)],
        asks=[
            (round(mid + 0.01 * (level + 1), 2), float(100 + (i * 7 + level * 53) % 900)) for level in range(BOOK_DEPTH)
        ],
    )


def synthetic_escalation(alert: Alert, later_ms: int = 30_000) -> Alert:
    """``alert`` re-emitted as it escalates: the same alert_id, ``later_ms`` later, critical, a higher score, a
    wider window and more evidence (what the detectors do when an episode grows)."""
    return alert.model_copy(
        update={
            "ts": alert.ts + later_ms,
            "severity": Severity.CRITICAL,
            "score": min(1.0, alert.score + 0.25),
            "window_end": alert.window_end + later_ms,
            "evidence": {**alert.evidence, "escalated": True},
            "message": f"{alert.message} (escalated)",
        }
    )


@dataclass(slots=True)
class SinkBenchResult:
    records: int
    pg_rows_per_s: float
    pg_seconds: float
    es_docs_per_s: float
    es_seconds: float
    latency_rate: float
    latency_alerts: int  # alerts seen searchable
    latency_sent: int  # alerts produced during the latency run (any not seen is a loss, shown as such)
    latency_ms: dict[str, float] = field(default_factory=dict)
    books: int = 0  # order books in the PostgreSQL books run (0: not run)
    pg_cases_rows_per_s: float = 0.0  # alerts with the console's cases made: one tenant whose venues cover them
    pg_cases_seconds: float = 0.0
    pg_books_per_s: float = 0.0
    pg_books_seconds: float = 0.0

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)


def _timed_backlog(
    settings: Settings, writer: Writer, expected: int, topics: Sequence[Topic] = (ALERTS,), group: str | None = None
) -> tuple[int, float]:
    """Drain the backlog of ``topics`` with one sink (of its own ``group`` when given); (records written, seconds
    from first record to last commit)."""
    runner = SinkRunner(
        settings, writer, list(topics), group=group, batch_size=settings.sinks.batch_size, poll_timeout_s=0.2
    )
    finished = time.monotonic()

    def on_batch(counters: SinkCounters) -> None:
        nonlocal finished
        finished = time.monotonic()
        if counters.consumed >= expected:
            runner.stop()

    with tuned_for_batches():  # as `tapewatch sink` runs
        counters = runner.run(exit_when_idle_s=15.0, on_batch=on_batch)
    # From the first record consumed (group join and schema set-up excluded) to the last commit.
    return counters.written, finished - (counters.first_record_at or finished)


def run_sink_bench(
    settings: Settings,
    *,
    records: int = 100_000,
    rate: float = 500.0,
    seconds: float = 20.0,
    books: int = 100_000,
    report: Callable[[str], object] = lambda message: None,
) -> SinkBenchResult:
    started = time.monotonic()

    def phase(message: str) -> None:  # shown, and logged with the time since the start
        log.info("bench sinks +%.0f s: %s", time.monotonic() - started, message)
        report(message)

    from tapewatch.infra.kafka import ensure_topics
    from tapewatch.kafka import admin_client

    tag = uuid.uuid4().hex[:8]
    isolated = settings.updated(kafka={"topic_prefix": f"bench-{tag}."}, es={"index_prefix": f"twbench{tag}"})
    schema = f"bench_{tag}"
    created = ensure_topics(isolated)
    db.create_schema(settings, schema)
    pg_settings = db.in_schema(isolated, schema)
    es = es_client(settings)
    try:
        phase(f"producing {records:,} alerts and {books:,} order books…")
        _produce_backlogs(isolated, records, books)
        (pg_rows, pg_seconds), (pg_books, pg_books_seconds) = _postgres_backlogs(pg_settings, records, books, phase)
        phase("PostgreSQL sink over the alerts backlog, each alert a case of one tenant…")
        db.create_schema(settings, f"{schema}_cases")
        cases_settings = db.in_schema(isolated, f"{schema}_cases")
        _with_one_tenant(cases_settings)
        pg_cases, pg_cases_seconds = _timed_backlog(
            cases_settings, PostgresWriter(cases_settings), records, group=f"bench-{tag}-cases"
        )
        phase("Elasticsearch sink over the backlog…")
        es_docs, es_seconds = _timed_backlog(isolated, ElasticsearchWriter(isolated), records)
        phase(f"latency: {rate:,.0f} alerts/s for {seconds:.0f} s…")
        latencies, sent = _latency_run(isolated, rate, seconds, offset=records)
        phase("cleaning up")
    finally:
        delete_everything(es, isolated)
        es.close()
        db.drop_schema(settings, schema)
        db.drop_schema(settings, f"{schema}_cases")
        admin = admin_client(isolated)
        for future in admin.delete_topics(created, operation_timeout=30).values():
            future.result()
    return SinkBenchResult(
        records=records,
        pg_rows_per_s=_per_s(pg_rows, pg_seconds),
        pg_seconds=pg_seconds,
        es_docs_per_s=_per_s(es_docs, es_seconds),
        es_seconds=es_seconds,
        latency_rate=rate,
        latency_alerts=len(latencies),
        latency_sent=sent,
        latency_ms=latency_summary(latencies),
        books=books,
        pg_books_per_s=_per_s(pg_books, pg_books_seconds),
        pg_books_seconds=pg_books_seconds,
        pg_cases_rows_per_s=_per_s(pg_cases, pg_cases_seconds),
        pg_cases_seconds=pg_cases_seconds,
    )


def _with_one_tenant(settings: Settings) -> None:
    """The schema at head with one console tenant covering every venue: the sink's alerts become its cases."""
    from tapewatch.console.users import add_tenant

    db.upgrade(settings)
    engine = db.make_engine(settings)
    try:
        with engine.begin() as conn:
            add_tenant(conn, "bench", ["*"], "bench")
    finally:
        engine.dispose()


def _postgres_backlogs(
    settings: Settings, alerts: int, books: int, phase: Callable[[str], None]
) -> tuple[tuple[int, float], tuple[int, float]]:
    """The PostgreSQL sink over the alerts backlog, then over the books backlog (if any) with a fresh sink: each
    alone, so the alerts' number stays comparable with the runs from before books were stored."""
    phase("PostgreSQL sink over the alerts backlog…")
    alerts_run = _timed_backlog(settings, PostgresWriter(settings), alerts)
    if not books:
        return alerts_run, (0, 0.0)
    phase("PostgreSQL sink over the order-books backlog…")
    return alerts_run, _timed_backlog(settings, PostgresWriter(settings), books, (BOOKS,))


def _per_s(count: int, seconds: float) -> float:
    return count / seconds if seconds else 0.0


def _produce_backlogs(settings: Settings, alerts: int, books: int) -> None:
    """``alerts`` synthetic alerts and ``books`` synthetic books, one millisecond apart, ending now."""
    base_ts = int(time.time() * 1000) - max(alerts, books)
    with Publisher(settings, DLQ_SINKS) as publisher:
        for i in range(alerts):
            publisher.publish(ALERTS, synthetic_alert(i, base_ts + i))
        for i in range(books):
            publisher.publish(BOOKS, synthetic_book(i, base_ts + i))


def _latency_run(settings: Settings, rate: float, seconds: float, offset: int) -> tuple[list[float], int]:
    """Milliseconds from produce to searchable of every alert seen, and how many alerts were produced."""
    runner = SinkRunner(settings, ElasticsearchWriter(settings), [ALERTS], batch_size=settings.sinks.batch_size)

    def run_sink() -> None:
        with tuned_for_batches():  # as `tapewatch sink` runs
            runner.run()

    sink = threading.Thread(target=run_sink, name="es-sink", daemon=True)
    sink.start()
    poller = _SearchPoller(settings)
    polling = threading.Thread(target=poller.run, name="es-poller", daemon=True)
    # Let the sink join its group and take the old backlog out of the way before the clock starts.
    time.sleep(5.0)
    polling.start()
    _publish_at_rate(settings, poller, rate, seconds, offset)
    poller.finish(30.0)
    polling.join()
    runner.stop()
    sink.join(timeout=60)
    poller.es.close()
    return [poller.seen[key] - sent_ms for key, sent_ms in poller.sent.items() if key in poller.seen], len(poller.sent)


def _publish_at_rate(settings: Settings, poller: _SearchPoller, rate: float, seconds: float, offset: int) -> None:
    """Synthetic alerts (numbered from ``offset``) at ``rate`` per second for ``seconds``, each noted as sent."""
    with Publisher(settings, DLQ_SINKS, **{"linger.ms": 0}) as publisher:
        # An idempotent producer's first records wait for its producer id (about half a second here), which a
        # long-lived worker pays once: one record delivered before the clock starts keeps that out of the figures.
        publisher.publish(ALERTS, synthetic_alert(offset - 1, int(time.time() * 1000)))
        publisher.flush()
        interval = 1.0 / rate
        next_at = time.monotonic()
        i = offset
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            now_ms = int(time.time() * 1000)
            alert = synthetic_alert(i, now_ms)
            publisher.publish(ALERTS, alert)
            poller.note_sent(alert.alert_id, now_ms)
            i += 1
            next_at += interval
            publisher.poll()
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)


class _SearchPoller:
    """When each alert sent first shows up in an Elasticsearch search (polled every 50 ms, on its own thread)."""

    def __init__(self, settings: Settings) -> None:
        self.sent: dict[str, int] = {}
        self.order: deque[tuple[str, int]] = deque()  # in send order, so the poller only asks for what is still unseen
        self.seen: dict[str, float] = {}
        self.done = threading.Event()
        self.es = es_client(settings)
        self.index = f"{settings.es.index_prefix}-alerts-*"
        self.give_up = float("inf")

    def note_sent(self, alert_id: str, sent_ms: int) -> None:
        self.sent[alert_id] = sent_ms
        self.order.append((alert_id, sent_ms))

    def run(self) -> None:
        while not self.done.is_set() or len(self.seen) < len(self.sent):
            order = self.order
            while order and order[0][0] in self.seen:
                order.popleft()
            since = order[0][1] if order else int(time.time() * 1000) - 1000
            answer = self.es.search(
                index=self.index,
                query={"range": {"@timestamp": {"gte": since}}},
                size=10_000,
                source=False,
                ignore_unavailable=True,
            )
            now = time.time() * 1000
            for hit in answer["hits"]["hits"]:
                self.seen.setdefault(hit["_id"], now)
            time.sleep(0.05)
            if self.done.is_set() and time.monotonic() > self.give_up:
                return

    def finish(self, wait_s: float) -> None:
        """Nothing more will be sent: wait at most ``wait_s`` more for the alerts still unseen."""
        self.give_up = time.monotonic() + wait_s
        self.done.set()


def print_sink_bench(console: Console, result: SinkBenchResult) -> None:
    table = Table("sink", "records", "seconds", "records/s", "goal", title="sinks (backlogs of alerts and books)")
    table.add_row(
        "PostgreSQL rows (alerts)",
        f"{result.records:,}",
        f"{result.pg_seconds:.2f}",
        f"{result.pg_rows_per_s:,.0f}",
        "≥ 20,000",
    )
    table.add_row(
        "PostgreSQL rows (alerts, each a case of one tenant)",
        f"{result.records:,}",
        f"{result.pg_cases_seconds:.2f}",
        f"{result.pg_cases_rows_per_s:,.0f}",
        "",
    )
    if result.books:
        table.add_row(
            "PostgreSQL rows (order books)",
            f"{result.books:,}",
            f"{result.pg_books_seconds:.2f}",
            f"{result.pg_books_per_s:,.0f}",
            "≥ 20,000",
        )
    table.add_row(
        "Elasticsearch documents",
        f"{result.records:,}",
        f"{result.es_seconds:.2f}",
        f"{result.es_docs_per_s:,.0f}",
        "≥ 10,000",
    )
    console.print(table)
    lat = result.latency_ms
    console.print(
        f"alert on Kafka → searchable in Elasticsearch at {result.latency_rate:,.0f} alerts/s "
        f"({result.latency_alerts:,} of {result.latency_sent:,} alerts seen): p50 {lat['p50']:,.0f} ms, "
        f"p99 {lat['p99']:,.0f} ms "
        f"(goal ≤ 1,000 ms), max {lat['max']:,.0f} ms"
    )
