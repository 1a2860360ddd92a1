"""`tapewatch bench console`: the analyst console's server time over a realistic case load, and how soon a new
alert shows in an open queue.

1. **Seed** (:mod:`tapewatch.bench.console_seed`): ``--alerts`` alerts (a million by default) and their cases, made by
   the database's own trigger, with the analysts' work, notes, links, audit lines and chart data; VACUUM ANALYZE.
2. **Pages**: the console served by uvicorn (a background thread, a free port, real HTTP), signed in as a
   supervisor; the pages and API calls asked in turn, each ``--requests`` times, by one client that waits for
   every answer (one analyst). The server's time is its ``Server-Timing: app;dur=`` header (the request's
   arrival to the response's first byte: session check, queries, rendering); the client's adds HTTP and the
   body. Goal: p95 ≤ 200 ms server time.
3. **Live**: a PostgreSQL sink (``SinkRunner`` + ``PostgresWriter``, as ``tapewatch sink postgres`` runs them,
   in a thread) on private topics, a signed-in subscriber on ``/events``; critical alerts produced one at a
   time; for each, the wall time from produce to the case's transaction in PostgreSQL (the case's
   ``updated_at``, the trigger's ``now()``), to the SSE ``changed`` event, and to a ``/queue/rows`` answer (the
   default open queue, what the page fetches) that holds the alert. Each case is then closed through the
   case form, as an analyst would, so the next one is on the first page too (the seeded open queue holds no
   critical case: those are worked first). One alert goes first, not counted: the sink's first write opens its
   connection. Goal: ≤ 2 s.

Everything runs in a private PostgreSQL schema and behind a private topic prefix, both removed afterwards
(``keep`` leaves the schema for EXPLAIN; ``reuse`` measures an existing one without seeding).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import platform
import queue
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from typing import Any, Final
from urllib.parse import urlencode

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from tapewatch.bench.console_seed import ANALYSTS, BENCH_PASSWORD, BENCH_TENANT, BENCH_USER, SeedPlan, seed
from tapewatch.errors import TapewatchError
from tapewatch.records import Alert, AlertKind, Severity, alert_id
from tapewatch.settings import Settings
from tapewatch.sinks import db

__all__ = ["ConsoleBenchResult", "print_console_bench", "run_console_bench"]

log = logging.getLogger(__name__)
HOST: Final = "127.0.0.1"
WIDTH: Final = 120  # the tables' width, whatever the terminal's (the default of a pipe is 80)
GOAL_PAGE_MS: Final = 200.0
GOAL_LIVE_MS: Final = 2000.0
WARMUP: Final = 5  # requests per page before the timed ones
KINDS: Final = [kind.value for kind in AlertKind]


# --- HTTP ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    client_ms: float  # request sent → body read, on the client
    server_ms: float  # Server-Timing app;dur: arrival → first byte, on the server (nan when absent)


_SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


class HttpClient:
    """One keep-alive HTTP/1.1 connection with its cookies (the standard library's: the benchmark needs none of
    the test dependencies), each request timed by the client and read for the server's ``Server-Timing``."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)
        self.cookies: dict[str, str] = {}
        self.headers = headers or {}

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Answer:
        headers = {**self.headers, "Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = self.cookie_header()
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        content = response.read()
        client_ms = (time.perf_counter() - started) * 1000
        for header in response.headers.get_all("set-cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel.value and morsel["max-age"] != "0":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        found = _SERVER_TIMING.search(response.headers.get("server-timing", ""))
        return Answer(response.status, content, client_ms, float(found.group(1)) if found else float("nan"))

    def close(self) -> None:
        self.conn.close()


def sign_in(client: HttpClient) -> str:
    """Sign ``client`` in as the benchmark's supervisor; the session's CSRF token (for the forms)."""
    login = client.request("GET", "/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', login.body.decode())
    if found is None:
        raise TapewatchError("bench console: no CSRF token on the login page")
    form = {"username": BENCH_USER, "password": BENCH_PASSWORD, "csrf_token": found.group(1), "next": "/queue"}
    answer = client.request("POST", "/login", form=form)
    if answer.status != 303:
        raise TapewatchError(f"bench console: the login answered {answer.status}")
    page = re.search(r'name="csrf-token" content="([^"]+)"', client.request("GET", "/queue").body.decode())
    if page is None:
        raise TapewatchError("bench console: no CSRF token on the queue page")
    return page.group(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[int]:
    """The console on a free local port, served by uvicorn in a background thread; yields the port."""
    import uvicorn

    from tapewatch.console.app import create_app

    port = _free_port()
    config = uvicorn.Config(
        create_app(settings),
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="console-bench-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise TapewatchError("bench console: the console did not start")
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# --- pages ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sample:
    """What the pages are asked about: symbols, alerts with and without chart data, the assignees."""

    symbols: list[str]
    charted: list[str]
    plain: list[str]
    assignees: list[str]


def _sample(engine: Engine, charted: list[str]) -> Sample:
    with engine.connect() as conn:
        symbols = list(conn.execute(text("SELECT DISTINCT symbol FROM alerts WHERE symbol <> 'LIVE'")).scalars())
        plain = list(conn.execute(text("SELECT alert_id FROM alerts TABLESAMPLE BERNOULLI (0.5) LIMIT 2000")).scalars())
        if not charted:  # a reused schema: the alerts whose episode has book snapshots
            charted = list(
                conn.execute(
                    text(
                        "SELECT alert_id FROM alerts a WHERE EXISTS (SELECT 1 FROM book_snapshots b WHERE "
                        "(b.symbol, b.venue) = (a.symbol, a.venue) AND b.ts BETWEEN a.window_start AND a.window_end)"
                    )
                ).scalars()
            )
    assignees = [f"analyst{i:02d}" for i in range(1, ANALYSTS + 1)]
    with_charts = set(charted)
    return Sample(symbols, charted, [a for a in plain if a not in with_charts], assignees)


Pages = dict[str, Callable[[random.Random], str]]


def pages(sample: Sample) -> tuple[Pages, Pages]:
    """The signed-in pages and the API calls (a service token), each a path maker."""
    site: Pages = {
        "queue (open cases)": lambda r: "/queue",
        "queue, one kind": lambda r: "/queue?" + urlencode({"kind": r.choice(KINDS)}),
        "queue, one symbol": lambda r: "/queue?" + urlencode({"symbol": r.choice(sample.symbols)}),
        "queue, one symbol, all states": lambda r: (
            "/queue?" + urlencode({"symbol": r.choice(sample.symbols), "state": "all"})
        ),
        "queue, closed": lambda r: "/queue?state=closed",
        "queue, one assignee": lambda r: "/queue?" + urlencode({"assignee": r.choice(sample.assignees)}),
        "queue, one assignee, closed": lambda r: (
            "/queue?" + urlencode({"assignee": r.choice(sample.assignees), "state": "closed"})
        ),
        "queue, page 5": lambda r: "/queue?page=5",
        "queue rows (the live refresh)": lambda r: "/queue/rows",
        "case, with charts": lambda r: "/case?" + urlencode({"id": r.choice(sample.charted)}),
        "case, no chart data": lambda r: "/case?" + urlencode({"id": r.choice(sample.plain)}),
        "supervisor (not in the goal)": lambda r: "/supervisor",
    }
    api: Pages = {
        "API /api/v1/cases": lambda r: "/api/v1/cases",
        "API /api/v1/cases?state=closed&kind=…": lambda r: (
            "/api/v1/cases?" + urlencode({"state": "closed", "kind": r.choice(KINDS)})
        ),
        "API /api/v1/cases/{id}": lambda r: "/api/v1/cases/" + r.choice(sample.plain),
    }
    return site, api


def percentiles(values: list[float]) -> dict[str, float]:
    """n, p50, p95, p99 and max of ``values`` (ms)."""
    if not values:
        return {"n": 0.0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    array = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = (float(np.percentile(array, q)) for q in (50, 95, 99))
    return {"n": float(len(array)), "p50": p50, "p95": p95, "p99": p99, "max": float(array.max())}


def measure_pages(
    clients: list[tuple[HttpClient, Pages]], requests: int, report: Callable[[str], object], seed_: int = 14
) -> dict[str, dict[str, Any]]:
    """Every page ``requests`` times, the pages in turn (so a noisy moment on the machine hits them all)."""
    rng = random.Random(seed_)
    plan = [(name, client, make) for client, made in clients for name, make in made.items()]
    for _, client, make in plan:
        for _ in range(WARMUP):
            client.request("GET", make(rng))
    server: dict[str, list[float]] = {name: [] for name, _, _ in plan}
    wall: dict[str, list[float]] = {name: [] for name, _, _ in plan}
    errors = dict.fromkeys(server, 0)
    for i in range(requests):
        if i % 20 == 0:
            report(f"pages: round {i + 1:,} of {requests:,}…")
        for name, client, make in plan:
            answer = client.request("GET", make(rng))
            if answer.status != 200:
                errors[name] += 1
                log.warning("bench console: %s answered %d", name, answer.status)
            server[name].append(answer.server_ms)
            wall[name].append(answer.client_ms)
    return {
        name: {
            "example": make(random.Random(0)),
            "errors": errors[name],
            "server_ms": percentiles(server[name]),
            "client_ms": percentiles(wall[name]),
        }
        for name, _, make in plan
    }


# --- live ----------------------------------------------------------------------------------------------------
class EventStream:
    """A signed-in ``/events`` subscriber on its own thread: the wall time of every ``changed`` event."""

    def __init__(self, port: int, cookie: str) -> None:
        self.events: queue.Queue[float] = queue.Queue()
        self.ready = threading.Event()
        self._conn = http.client.HTTPConnection(HOST, port, timeout=120)
        self._conn.request("GET", "/events", headers={"Cookie": cookie, "Accept": "text/event-stream"})
        self._response = self._conn.getresponse()
        if self._response.status != 200:
            raise TapewatchError(f"bench console: /events answered {self._response.status}")
        self._thread = threading.Thread(target=self._read, name="console-bench-sse", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
            while line := self._response.readline():
                if line.startswith(b"retry:"):
                    self.ready.set()  # the first line: the server has subscribed this stream
                elif line.startswith(b"event: changed"):
                    self.events.put(time.time())

    def drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.events.get_nowait()

    def close(self) -> None:
        """End the stream: the socket shut down under the reader (which then returns), then closed."""
        if self._conn.sock is not None:
            with contextlib.suppress(OSError):
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._conn.close()


def live_alert(i: int, now_ms: int) -> Alert:
    """A critical alert on the symbol LIVE, its episode the minute before ``now_ms``."""
    kind = AlertKind(KINDS[i % len(KINDS)])
    start = now_ms - 60_000
    return Alert(
        alert_id=alert_id("LIVE", kind.value, start),
        symbol="LIVE",
        venue="xnas",
        ts=now_ms,
        kind=kind,
        severity=Severity.CRITICAL,
        score=0.97,
        window_start=start,
        window_end=now_ms,
        evidence={"zscore": 9.5, "live": i},
        model_version="bench-live",
        message=f"live alert {i}",
    )


@dataclass(slots=True)
class LiveRun:
    sent: int = 0
    missed: int = 0  # no event, or no /queue/rows answer holding the alert, within 10 s
    refetches: int = 0  # /queue/rows answers that did not hold the alert yet
    hops: dict[str, list[float]] = field(default_factory=dict)
    rows_server_ms: list[float] = field(default_factory=list)

    def add(self, hop: str, ms: float) -> None:
        self.hops.setdefault(hop, []).append(ms)


def run_live(settings: Settings, engine: Engine, port: int, alerts: int, report: Callable[[str], object]) -> LiveRun:
    """``alerts`` alerts through Kafka, the sink, PostgreSQL's NOTIFY and the SSE stream to the queue's rows."""
    from tapewatch.producers.publisher import Publisher
    from tapewatch.sinks.consumer import SinkRunner
    from tapewatch.sinks.postgres import PostgresWriter
    from tapewatch.topics import ALERTS, DLQ_SINKS

    runner = SinkRunner(settings, PostgresWriter(settings), [ALERTS], batch_size=settings.sinks.batch_size)
    sink = threading.Thread(target=runner.run, name="console-bench-sink", daemon=True)
    sink.start()
    client = HttpClient(port)
    csrf = sign_in(client)
    stream = EventStream(port, client.cookie_header())
    run = LiveRun()
    try:
        if not runner.assigned.wait(60) or not stream.ready.wait(30):
            raise TapewatchError("bench console: the sink or the event stream did not start")
        time.sleep(2.0)  # the group settled
        with Publisher(settings, DLQ_SINKS, **{"linger.ms": 0}) as publisher:
            # one alert first, not counted: the sink's first write opens its connection (and COPY staging tables)
            for i in range(-1, alerts):
                report(f"live: alert {i + 1} of {alerts}…")
                _one_live_alert(run if i >= 0 else LiveRun(), i, publisher, stream, client, engine, csrf)
                time.sleep(random.uniform(0.3, 0.8))  # not in step with the sink's polls
    finally:
        stream.close()
        client.close()
        runner.stop()
        sink.join(timeout=60)
    return run


def _one_live_alert(
    run: LiveRun, i: int, publisher: Any, stream: EventStream, client: HttpClient, engine: Engine, csrf: str
) -> None:
    from tapewatch.topics import ALERTS

    stream.drain()
    sent = time.time()
    alert = live_alert(i, int(sent * 1000))
    publisher.publish(ALERTS, alert)
    publisher.flush()
    run.sent += 1
    try:
        event_at = stream.events.get(timeout=10)
    except queue.Empty:
        run.missed += 1
        return
    while True:
        answer = client.request("GET", "/queue/rows")
        if alert.alert_id.encode() in answer.body:
            shown_at = time.time()
            break
        run.refetches += 1
        if time.time() - sent > 10:
            run.missed += 1
            return
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT extract(epoch FROM updated_at) FROM cases WHERE tenant = :tenant AND alert_id = :id"),
            {"id": alert.alert_id, "tenant": BENCH_TENANT},
        ).scalar_one()
    run.add("Kafka → case stored (the sink's transaction)", (float(stored) - sent) * 1000)
    run.add("Kafka → SSE event", (event_at - sent) * 1000)
    run.add("Kafka → /queue/rows holding the alert", (shown_at - sent) * 1000)
    run.rows_server_ms.append(answer.server_ms)
    closed = client.request(
        "POST",
        "/case/act",
        form={"csrf_token": csrf, "alert_id": alert.alert_id, "action": "close", "disposition": "false_positive"},
    )
    if closed.status != 303:
        raise TapewatchError(f"bench console: closing a live case answered {closed.status}")


# --- the run -------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class ConsoleBenchResult:
    machine: str
    alerts: int
    schema: str
    seed_seconds: dict[str, float]
    counts: dict[str, int]
    requests: int
    pages: dict[str, dict[str, Any]]
    live_sent: int
    live_missed: int
    live_refetches: int
    live_ms: dict[str, dict[str, float]]

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


def run_console_bench(
    settings: Settings,
    *,
    plan: SeedPlan,
    requests: int = 300,
    live: int = 50,
    keep: bool = False,
    reuse: str | None = None,
    report: Callable[[str], object] = lambda message: None,
) -> ConsoleBenchResult:
    from tapewatch.bench.topics import private_topics

    tag = uuid.uuid4().hex[:8]
    schema = reuse or f"bench_console_{tag}"
    if reuse is None:
        db.create_schema(settings, schema)
    private = db.in_schema(settings, schema).updated(console={"cookie_secure": False})  # plain HTTP
    engine = db.make_engine(private)
    try:
        if reuse is None:
            db.upgrade(private)
            seeded = seed(engine, plan, report)
            seconds, counts, charted = seeded.seconds, seeded.counts, seeded.charted_ids
        else:
            seconds, charted = {}, []
            with engine.connect() as conn:
                counts = {"alerts": int(conn.execute(text("SELECT count(*) FROM alerts")).scalar_one())}
        timed = _pages_run(private, engine, _sample(engine, charted), requests, report)
        with private_topics(private, f"bench-{tag}.") as isolated, serving(isolated) as port:
            run = run_live(isolated, engine, port, live, report)
    finally:
        engine.dispose()
        if not keep and reuse is None:
            db.drop_schema(settings, schema)
    return ConsoleBenchResult(
        machine=f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        alerts=counts["alerts"],
        schema=schema if keep or reuse else "",
        seed_seconds=seconds,
        counts=counts,
        requests=requests,
        pages=timed,
        live_sent=run.sent,
        live_missed=run.missed,
        live_refetches=run.refetches,
        live_ms={
            **{hop: percentiles(values) for hop, values in run.hops.items()},
            "/queue/rows server time in the live run": percentiles(run.rows_server_ms),
        },
    )


def _pages_run(
    settings: Settings, engine: Engine, sample: Sample, requests: int, report: Callable[[str], object]
) -> dict[str, dict[str, Any]]:
    from tapewatch.console import users

    with engine.begin() as conn:
        token = users.add_token(conn, "bench", BENCH_TENANT, "bench")
    with serving(settings) as port:
        site, service = HttpClient(port), HttpClient(port, {"Authorization": f"Bearer {token.secret}"})
        try:
            sign_in(site)
            site_pages, api_pages = pages(sample)
            return measure_pages([(site, site_pages), (service, api_pages)], requests, report)
        finally:
            site.close()
            service.close()


def print_console_bench(terminal: Console, result: ConsoleBenchResult) -> None:
    # a pipe's default width (80) wraps the tables' names: WIDTH columns then, a terminal's own width otherwise
    console = terminal if terminal.is_terminal else Console(file=terminal.file, width=WIDTH)
    if result.seed_seconds:
        table = Table("seeding step", "seconds", title=f"seeding {result.alerts:,} alerts and their cases")
        for step, seconds in result.seed_seconds.items():
            table.add_row(step, f"{seconds:,.1f}")
        table.add_row("total", f"{sum(result.seed_seconds.values()):,.1f}")
        console.print(table)
        console.print(", ".join(f"{name} {count:,}" for name, count in result.counts.items()))
    table = Table(
        "page",
        "errors",
        "server p50",
        "p95",
        "max",
        "client p50",
        "p95",
        "max",
        title=f"console pages, {result.requests:,} requests each (ms; goal: server p95 ≤ {GOAL_PAGE_MS:.0f})",
    )
    for name, stats in result.pages.items():
        server, client = stats["server_ms"], stats["client_ms"]
        p95 = f"{server['p95']:,.1f}"
        table.add_row(
            name,
            str(stats["errors"]),
            f"{server['p50']:,.1f}",
            p95 if server["p95"] <= GOAL_PAGE_MS else f"[bold red]{p95}[/]",
            f"{server['max']:,.1f}",
            *(f"{client[k]:,.1f}" for k in ("p50", "p95", "max")),
        )
    console.print(table)
    table = Table(
        "hop",
        "alerts",
        "p50 ms",
        "p95 ms",
        "max ms",
        title=f"live: alert on Kafka → visible in the open queue (goal ≤ {GOAL_LIVE_MS:,.0f} ms)",
    )
    for hop, stats in result.live_ms.items():
        table.add_row(hop, f"{stats['n']:,.0f}", *(f"{stats[k]:,.1f}" for k in ("p50", "p95", "max")))
    console.print(table)
    console.print(
        f"{result.live_sent} alerts produced, {result.live_missed} not seen within 10 s, "
        f"{result.live_refetches} /queue/rows answers without the alert yet"
    )
    if result.schema:
        console.print(f"schema kept: {result.schema} (drop it with DROP SCHEMA {result.schema} CASCADE)")
