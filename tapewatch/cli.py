"""The `tapewatch` command. Each sub-command fails with one clear line and a non-zero exit."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from tapewatch.errors import TapewatchError
from tapewatch.records import RecordError
from tapewatch.secrets import redact
from tapewatch.settings import Settings, load_settings

app = typer.Typer(
    name="tapewatch",
    help="Real-time market surveillance and trading signals on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Effective configuration.", no_args_is_help=True)
schema_app = typer.Typer(help="Record contracts for downstream consumers.", no_args_is_help=True)
infra_app = typer.Typer(help="Kafka, PostgreSQL and Elasticsearch on this machine.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics of the registry.", no_args_is_help=True)
db_app = typer.Typer(help="PostgreSQL schema (Alembic migrations).", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks on the real services (scripts that print numbers).", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(schema_app, name="schema")
app.add_typer(infra_app, name="infra")
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")
app.add_typer(bench_app, name="bench")


def _register_subcommands() -> None:
    # The other packages own their commands; the CLI only wires them (DESIGN.md: tapewatch/ imports the
    # others only for this).
    from producers.cli import fetch_app, produce_app
    from streams.cli import stream_app

    app.add_typer(produce_app, name="produce")
    app.add_typer(fetch_app, name="fetch")
    app.add_typer(stream_app, name="stream")

    from sinks.cli import alerts_app, kibana_app, sink_app

    app.add_typer(sink_app, name="sink")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(kibana_app, name="kibana")

    # Surveillance (`detect`, `eval`) and models: `train kmeans` and `train dqn` share detectors.cli's `train`
    # group (detectors.dqn_cli adds its command to it on import); `backtest dqn`.
    from detectors.cli import detect_app, eval_app, train_app
    from detectors.dqn_cli import backtest_app

    app.add_typer(detect_app, name="detect")
    app.add_typer(eval_app, name="eval")
    app.add_typer(train_app, name="train")
    app.add_typer(backtest_app, name="backtest")


console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return load_settings()


# --- config -----------------------------------------------------------------------------------
@config_app.command("show")
def config_show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Print the effective settings, secrets masked."""
    shown = settings().masked()
    if as_json:
        console.print_json(orjson.dumps(shown).decode())
        return
    table = Table("setting", "env var", "value")
    for name, value in shown.items():
        table.add_row(name, f"TAPEWATCH_{name.upper()}", value)
    console.print(table)


# --- schema -----------------------------------------------------------------------------------
@schema_app.command("export")
def schema_export(directory: Path) -> None:
    """Write one JSON Schema per record (quote.schema.json, …) into DIRECTORY."""
    from tapewatch.schemas import export_schemas

    for path in export_schemas(directory):
        console.print(f"wrote {path}")


# --- infra ------------------------------------------------------------------------------------
@infra_app.command("up")
def infra_up() -> None:
    """Install (first time) and start the services, wait until healthy, create the topics. Idempotent."""
    from infra import manager

    with console.status("starting services…") as spinner:

        def report(name: str, message: str) -> None:
            spinner.update(f"{name}: {message}")
            if message in ("running", "healthy", "external, reachable") or name == "topics":
                console.print(f"  {name}: {message}")

        statuses = manager.up(settings(), report)
    _print_status(statuses)


@infra_app.command("down")
def infra_down() -> None:
    """Stop the services `up` started here (external ones are left alone)."""
    from infra import manager

    manager.down(settings(), lambda name, message: console.print(f"  {name}: {message}"))


@infra_app.command("status")
def infra_status() -> None:
    """Health, version, address and pid of each service; exit 1 when any is unhealthy."""
    from infra import manager

    statuses = manager.status(settings())
    _print_status(statuses)
    bad = [s for s in statuses if not s.healthy]
    if bad:
        raise TapewatchError("; ".join(f"{s.name} at {s.address} {s.detail}" for s in bad))


@infra_app.command("logs")
def infra_logs(
    service: str,
    lines: Annotated[int, typer.Option("-n", "--lines")] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow")] = False,
) -> None:
    """Print (or follow) the log of SERVICE: kafka, postgres or elasticsearch."""
    from infra import manager

    path = manager.service(settings(), service).failure_hint()
    if not path.exists():
        raise TapewatchError(f"{service}: no log yet at {path}")
    argv = ["tail", "-n", str(lines), *(["-F"] if follow else []), str(path)]
    raise typer.Exit(subprocess.call(argv))


def _print_status(statuses: list) -> None:  # type: ignore[type-arg]
    table = Table("service", "version", "address", "pid", "managed", "healthy", "detail")
    for s in statuses:
        table.add_row(
            s.name,
            s.version or "-",
            s.address,
            str(s.pid) if s.pid else "-",
            "yes" if s.managed else "external",
            "[green]yes[/]" if s.healthy else "[red]no[/]",
            s.detail,
        )
    console.print(table)


# --- topics -----------------------------------------------------------------------------------
@topics_app.command("create")
def topics_create() -> None:
    """Create missing registry topics with the configured partition count."""
    from infra.kafka import ensure_topics

    created = ensure_topics(settings())
    console.print(f"created {len(created)} topic(s): {', '.join(created)}" if created else "all topics present")


@topics_app.command("list")
def topics_list() -> None:
    """The registry, with each topic's partitions on the broker."""
    from tapewatch.kafka import cluster_metadata
    from tapewatch.topics import ALL_TOPICS

    cfg = settings()
    existing = cluster_metadata(cfg).topics
    table = Table("topic", "record", "partitions", "purpose")
    for topic in ALL_TOPICS:
        name = cfg.topic(topic.name)
        parts = str(len(existing[name].partitions)) if name in existing else "[red]missing[/]"
        table.add_row(name, topic.record.record_name if topic.record else "raw bytes + headers", parts, topic.doc)
    console.print(table)


# --- db ---------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the PostgreSQL schema to REVISION (default: the newest)."""
    from sinks import db

    db.upgrade(settings(), revision)
    console.print(f"schema at {revision}")


# --- run --------------------------------------------------------------------------------------
@app.command("run")
def run(
    source: Annotated[str, typer.Option(help="simulate, replay, twse or binance")] = "simulate",
    files: Annotated[list[Path] | None, typer.Option("--file", help="Replay input (with --source replay)")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C)")] = None,
    symbols: Annotated[int, typer.Option(help="Simulated symbols")] = 20,
    speed: Annotated[float, typer.Option(help="Simulated/replayed time × this (0 = as fast as possible)")] = 30.0,
    seed: Annotated[int, typer.Option(help="Simulator seed")] = 7,
) -> None:
    """Start the services and run the whole pipeline live — source → stream worker (bars, features, detection,
    DQN actions) → PostgreSQL and Elasticsearch sinks — with a dashboard; then a summary and a report folder."""
    import os
    import time as clock

    from infra import manager
    from sinks import db
    from tapewatch.demo import ensure_models, kinds_rows, summarise
    from tapewatch.run import run_pipeline

    cfg = settings()
    if source == "simulate":
        source_args = ["simulate", "--symbols", str(symbols), "--speed", str(speed), "--seed", str(seed)]
    elif source == "replay":
        if not files:
            raise TapewatchError("run: --source replay needs at least one --file")
        source_args = ["replay", *map(str, files), "--speed", str(speed)]
    elif source in ("twse", "binance"):
        source_args = [source]
    else:
        raise TapewatchError(f"run: unknown source {source!r}; choose simulate, replay, twse or binance")
    stamp = clock.strftime("%Y%m%d-%H%M%S")
    if source in ("simulate", "replay") and "TAPEWATCH_TOPIC_PREFIX" not in os.environ:
        # A simulated or replayed session repeats its event times: on last run's topics, the stream state
        # would call all of it late. Each such run gets fresh topics (the previous demo's are deleted).
        cfg = cfg.model_copy(update={"topic_prefix": f"demo-{stamp}."})
    with console.status("starting services…"):
        _print_status(manager.up(cfg))
        db.upgrade(cfg)
    if cfg.topic_prefix.startswith("demo-"):
        _replace_demo_topics(cfg)
    with console.status("models (trained on first use, reused afterwards)…"):
        for line in ensure_models(cfg):
            console.print(f"model  {line}")
    result = run_pipeline(cfg, source_args, duration)
    summary = Table("topic", "records", title="summary")
    for name, rate in result.view.topics.items():
        summary.add_row(name, f"{rate.total:,}")
    console.print(summary)
    report_dir = Path("reports") / f"run-{stamp}"
    with console.status("writing the report…"):
        outcome = summarise(cfg, result.view, report_dir)
    kinds = Table("kind", "episodes injected (ended)", "detected", "alerts", "median delay", title="alerts vs truth")
    for row in kinds_rows(outcome):
        kinds.add_row(*map(str, row))
    console.print(kinds)
    console.print(
        "episodes are published when they end: an alert for one still running at the stop has no episode yet",
        style="dim",
    )
    pg = "?" if outcome.in_postgres is None else f"{outcome.in_postgres:,}"
    es = "?" if outcome.in_elasticsearch is None else f"{outcome.in_elasticsearch:,}"
    console.print(f"alerts on Kafka: {outcome.alerts:,} · in PostgreSQL: {pg} · in Elasticsearch: {es}")
    for note in outcome.notes:
        err_console.print(f"[yellow]note:[/] {note}")
    console.print(f"bars seen live: {result.view.bars_seen:,}; actions: {result.view.actions_seen:,}")
    console.print(f"report: {outcome.report}/report.md (charts beside it); stage logs in {cfg.var_dir / 'run'}")
    for hint in query_hints(cfg):
        console.print(hint)
    console.print(
        "Kibana dashboard: tapewatch kibana import http://localhost:5601 (docker compose imports it by itself)"
    )
    troubled = [stage for stage in result.stages if stage.restarts]
    for stage in troubled:
        err_console.print(f"[yellow]warning:[/] {stage.name} restarted {stage.restarts}× — see {stage.log}")


def _replace_demo_topics(cfg: Settings) -> None:
    """Create this demo's topics; delete earlier demos' (keeps the broker's disk from filling up)."""
    from infra.kafka import ensure_topics
    from tapewatch.kafka import admin_client

    admin = admin_client(cfg)
    stale = [
        t for t in admin.list_topics(timeout=30).topics if t.startswith("demo-") and not t.startswith(cfg.topic_prefix)
    ]
    if stale:
        for future in admin.delete_topics(stale, operation_timeout=60).values():
            with contextlib.suppress(Exception):
                future.result()
    ensure_topics(cfg)


# --- bench ------------------------------------------------------------------------------------
BenchOut = Annotated[Path, typer.Option("--out", help="Directory for the JSON results")]


def _bench_table(title: str, rows: list[tuple[str, int, float, float]]) -> None:
    table = Table("benchmark", "records", "seconds", "records/s", "× raw Kafka", title=title)
    reference = rows[0][1] / rows[0][2] if rows and rows[0][2] else 0.0
    for name, records, seconds, _ in rows:
        rate = records / seconds if seconds else 0.0
        table.add_row(
            name, f"{records:,}", f"{seconds:.2f}", f"{rate:,.0f}", f"{rate / reference:.2f}" if reference else "-"
        )
    console.print(table)


@bench_app.command("produce")
def bench_produce(
    records: Annotated[int, typer.Option(help="Records per benchmark")] = 500_000,
    out: BenchOut = Path("reports/bench"),
) -> None:
    """Records/s into the real broker: raw confluent-kafka, replay, simulator."""
    import tempfile

    from producers.bench import as_json, extra_sources, run_produce_bench

    cfg = settings()
    from infra import manager

    manager.up(cfg)
    with tempfile.TemporaryDirectory() as tmp, console.status("benchmarking producers…"):
        results = run_produce_bench(cfg, records, Path(tmp), extra_sources(records))
    _bench_table("producers → Kafka", [(r.name, r.records, r.seconds, r.rate) for r in results])
    out.mkdir(parents=True, exist_ok=True)
    (out / "produce.json").write_bytes(as_json(results))
    console.print(f"wrote {out / 'produce.json'}")


@bench_app.command("stream")
def bench_stream(
    symbols: Annotated[int, typer.Option(help="Simulated symbols in the backlog")] = 40,
    minutes: Annotated[float, typer.Option(help="Session minutes in the backlog")] = 60.0,
    rate: Annotated[float, typer.Option(help="Records/s for the latency run")] = 5_000.0,
    seconds: Annotated[float, typer.Option(help="Length of the latency run")] = 60.0,
    out: BenchOut = Path("reports/bench"),
) -> None:
    """One stream worker: sustained records/s over a backlog (beside raw confluent-kafka consume of the same
    topics) and event-to-feature latency at a fixed live rate."""
    from infra import manager
    from streams.bench import run_stream_bench

    cfg = settings()
    manager.up(cfg)
    out.mkdir(parents=True, exist_ok=True)
    with console.status("benchmarking the stream worker (backlog, then a live run)…"):
        result = run_stream_bench(
            cfg, symbols=symbols, minutes=minutes, rate=rate, seconds=seconds, workdir=out.resolve()
        )
    _bench_table(
        "stream worker (md.quotes + md.books)",
        [
            ("raw confluent-kafka consume", result.records, result.records / result.raw_consume_per_s, 0.0),
            ("stream worker, sustained", result.records, result.records / result.worker_per_s, 0.0),
        ],
    )
    table = Table("cadence", "outputs", "p50 ms", "p99 ms", "max ms", title=f"event → feature at {rate:,.0f} records/s")
    for cadence, stats in sorted(result.latency_ms.items()):
        table.add_row(
            cadence, f"{stats['n']:,.0f}", f"{stats['p50']:,.1f}", f"{stats['p99']:,.1f}", f"{stats['max']:,.1f}"
        )
    console.print(table)
    console.print(f"latency = arrival at a features.1m consumer − (window end + grace {cfg.stream_grace_ms} ms)")
    (out / "stream.json").write_bytes(result.to_json())
    console.print(f"wrote {out / 'stream.json'}")


@bench_app.command("pipeline")
def bench_pipeline(
    symbols: Annotated[int, typer.Option(help="Simulated symbols")] = 20,
    minutes: Annotated[float, typer.Option(help="Session minutes, live (event time = wall time)")] = 6.0,
    poll: Annotated[float, typer.Option(help="Seconds between PostgreSQL/Elasticsearch polls")] = 0.1,
    out: BenchOut = Path("reports/bench"),
) -> None:
    """End-to-end latency on a live simulated feed: event time → alert on Kafka → row in PostgreSQL → document
    searchable in Elasticsearch (one stream worker and both sinks)."""
    from infra import manager
    from tapewatch.bench_pipeline import run_pipeline_bench

    cfg = settings()
    manager.up(cfg)
    out.mkdir(parents=True, exist_ok=True)
    with console.status(f"live pipeline for {minutes:g} min (models trained first if missing)…"):
        result = run_pipeline_bench(cfg, symbols=symbols, minutes=minutes, poll_s=poll, workdir=out.resolve())
    table = Table("hop", "alerts", "p50 ms", "p99 ms", "max ms", title=f"end-to-end latency ({result.alerts} alerts)")
    for hop, stats in result.latency_ms.items():
        table.add_row(hop, f"{stats['n']:,.0f}", f"{stats['p50']:,.0f}", f"{stats['p99']:,.0f}", f"{stats['max']:,.0f}")
    console.print(table)
    console.print(f"event time = the window end the alert stands for; includes the {result.grace_ms} ms grace")
    (out / "pipeline.json").write_bytes(result.to_json())
    console.print(f"wrote {out / 'pipeline.json'}")


@bench_app.command("all")
def bench_all(
    records: Annotated[int, typer.Option(help="Records per producer benchmark")] = 500_000,
    minutes: Annotated[float, typer.Option(help="Live minutes of the end-to-end latency run")] = 6.0,
    out: BenchOut = Path("reports/bench"),
) -> None:
    """Every benchmark in one run — raw Kafka produce/consume as the reference, then producers, the stream
    worker, the sinks and the end-to-end latency — and one table of absolute numbers and ratios (all.json)."""
    import platform

    bench_produce(records=records, out=out)
    bench_stream(out=out)
    bench_sinks(out=out)
    bench_pipeline(minutes=minutes, out=out)
    produce = orjson.loads((out / "produce.json").read_bytes())["results"]
    stream = orjson.loads((out / "stream.json").read_bytes())
    sinks = orjson.loads((out / "sinks.json").read_bytes())
    pipeline = orjson.loads((out / "pipeline.json").read_bytes())
    raw_produce = produce[0]["records_per_s"]
    raw_consume = stream["raw_consume_per_s"]
    rows: list[tuple[str, str, str]] = [
        ("raw confluent-kafka produce (reference)", f"{raw_produce:,.0f} rec/s", "1.00"),
        *((r["name"], f"{r['records_per_s']:,.0f} rec/s", f"{r['ratio_to_raw']:.2f}") for r in produce[1:]),
        ("raw confluent-kafka consume (reference)", f"{raw_consume:,.0f} rec/s", "1.00"),
        ("stream worker, sustained", f"{stream['worker_per_s']:,.0f} rec/s", f"{stream['ratio_to_raw']:.2f}"),
        ("PostgreSQL sink", f"{sinks['pg_rows_per_s']:,.0f} rows/s", f"{sinks['pg_rows_per_s'] / raw_consume:.2f}"),
        (
            "Elasticsearch sink",
            f"{sinks['es_docs_per_s']:,.0f} docs/s",
            f"{sinks['es_docs_per_s'] / raw_consume:.2f}",
        ),
    ]
    for cadence, stats in sorted(stream["latency_ms"].items()):
        rows.append((f"event → {cadence} features (p50 / p99)", f"{stats['p50']:,.0f} / {stats['p99']:,.0f} ms", ""))
    for hop, stats in pipeline["latency_ms"].items():
        rows.append((f"{hop} (p50 / p99)", f"{stats['p50']:,.0f} / {stats['p99']:,.0f} ms", ""))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    table = Table("benchmark", "measured", "× raw Kafka", title=f"tapewatch bench all — {machine}")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    summary = {
        "machine": machine,
        "rows": [dict(zip(("benchmark", "measured", "ratio"), r, strict=True)) for r in rows],
    }
    (out / "all.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    console.print(f"wrote {out / 'all.json'}")


@bench_app.command("sinks")
def bench_sinks(
    records: Annotated[int, typer.Option(help="Alerts for the throughput runs")] = 100_000,
    rate: Annotated[float, typer.Option(help="Alerts/s for the latency run")] = 500.0,
    seconds: Annotated[float, typer.Option(help="Length of the latency run")] = 20.0,
    out: BenchOut = Path("reports/bench"),
) -> None:
    """Rows/s into PostgreSQL, documents/s into Elasticsearch, and alert-on-Kafka → searchable latency."""
    from sinks.bench import print_sink_bench, run_sink_bench

    cfg = settings()
    from infra import manager

    manager.up(cfg)
    with console.status("benchmarking the sinks…") as spinner:
        result = run_sink_bench(cfg, records=records, rate=rate, seconds=seconds, report=spinner.update)
    print_sink_bench(console, result)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sinks.json").write_bytes(result.to_json())
    console.print(f"wrote {out / 'sinks.json'}")


_register_subcommands()


def query_hints(cfg: Settings) -> list[str]:
    """How to look at what a run stored, credentials masked (the user has them; a terminal log may not)."""
    url = redact(cfg.postgres_url_plain.replace("postgresql+psycopg2://", "postgresql://"))
    return [
        f'query PostgreSQL: psql {url} -c "select kind, severity, count(*) from alerts group by 1, 2"',
        f"query Elasticsearch: curl '{redact(cfg.es_url)}/{cfg.es_index_prefix}-alerts-*/_search?size=5&pretty'",
    ]


def main() -> None:
    try:
        app()
    except (TapewatchError, RecordError) as exc:
        err_console.print(f"[bold red]error:[/] {redact(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
