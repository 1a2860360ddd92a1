"""`tapewatch bench …`: every benchmark, one runner. Each prints its numbers and writes a JSON beside them.

The ones on the real services (``produce``, ``stream``, ``news``, ``sinks``, ``pipeline``, ``console``, ``all``) start
them first; ``flow``, ``patterns``, ``features``, ``sentiment``, ``dqn``, ``lstm`` and ``cnn`` time the computation
alone.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from tapewatch.settings import Settings, load_settings

bench_app = typer.Typer(help="Benchmarks (scripts that print numbers).", no_args_is_help=True)
console = Console()

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


def _services() -> Settings:
    """The settings, with the real services up (a no-op when they already are)."""
    from tapewatch.infra import manager

    cfg = load_settings()
    manager.up(cfg)
    return cfg


def _write(out: Path, name: str, data: bytes) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(data)
    console.print(f"wrote {out / name}")


def _latency_table(title: str, columns: tuple[str, str], latency_ms: dict[str, dict[str, float]], digits: int) -> None:
    """One row per cadence or hop: its count, p50, p99 and max in ms
    (:func:`tapewatch.bench.timing.latency_summary`)."""
    table = Table(*columns, "p50 ms", "p99 ms", "max ms", title=title)
    for name, stats in latency_ms.items():
        table.add_row(name, f"{stats['n']:,.0f}", *(f"{stats[k]:,.{digits}f}" for k in ("p50", "p99", "max")))
    console.print(table)


@bench_app.command("produce")
def bench_produce(
    records: Annotated[int, typer.Option(help="Records per benchmark")] = 500_000,
    out: BenchOut = Path("reports/bench"),
) -> None:
    """Records/s into the real broker: raw confluent-kafka, replay, simulator."""
    import tempfile

    from tapewatch.bench.producer import as_json, extra_sources, run_produce_bench

    cfg = _services()
    with tempfile.TemporaryDirectory() as tmp, console.status("benchmarking producers…"):
        results = run_produce_bench(cfg, records, Path(tmp), extra_sources(records))
    _bench_table("producers → Kafka", [(r.name, r.records, r.seconds, r.rate) for r in results])
    _write(out, "produce.json", as_json(results))


@bench_app.command("stream")
def bench_stream(
    symbols: Annotated[int, typer.Option(help="Simulated symbols in the backlog")] = 40,
    minutes: Annotated[float, typer.Option(help="Session minutes in the backlog")] = 60.0,
    rate: Annotated[float, typer.Option(help="Records/s for the latency run")] = 5_000.0,
    seconds: Annotated[float, typer.Option(help="Length of the latency run")] = 60.0,
    feed: Annotated[
        str, typer.Option(help="level2: quotes and books; mbo: the order-book market's market-by-order feed")
    ] = "level2",
    out: BenchOut = Path("reports/bench"),
) -> None:
    """One stream worker: sustained records/s over a backlog (beside raw confluent-kafka consume of the same
    topics) and event-to-feature latency at a fixed live rate; with ``--feed mbo``, market-by-order events/s on one
    core with every stage on."""
    from tapewatch.bench.stream import run_stream_bench

    cfg = _services()
    out.mkdir(parents=True, exist_ok=True)  # the worker's log goes there
    if feed == "mbo":
        _bench_order_stream(cfg, symbols, minutes, out)
        return
    if feed != "level2":
        raise typer.BadParameter("level2 or mbo", param_hint="--feed")
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
    latency = dict(sorted(result.latency_ms.items()))
    _latency_table(f"event → feature at {rate:,.0f} records/s", ("cadence", "outputs"), latency, digits=1)
    console.print(f"latency = arrival at a features.1m consumer − (window end + grace {cfg.stream.grace_ms} ms)")
    _write(out, "stream.json", result.to_json())


def _bench_order_stream(cfg: Settings, symbols: int, minutes: float, out: Path) -> None:
    from tapewatch.bench.order_stream import run_order_stream_bench

    with console.status("benchmarking the stream worker on a market-by-order backlog (one core)…"):
        result = run_order_stream_bench(cfg, symbols=symbols, minutes=minutes, workdir=out.resolve())
    events = result.events
    _bench_table(
        "stream worker on md.orders (one core, every stage on)",
        [
            ("raw confluent-kafka consume", events, events / result.raw_consume_per_s, 0.0),
            ("orders stage, sustained", events, events / result.orders_stage_per_s, 0.0),
            ("whole worker (orders → level 2 → features)", events, events / result.whole_worker_per_s, 0.0),
        ],
    )
    console.print(f"{result.derived:,} derived trades and books")
    _write(out, "stream-mbo.json", result.to_json())


@bench_app.command("peers")
def bench_peers(
    symbols: Annotated[int, typer.Option(help="Simulated symbols in the backlog")] = 40,
    minutes: Annotated[float, typer.Option(help="Session minutes in the backlog")] = 60.0,
    framework: Annotated[
        list[str] | None, typer.Option(help="tapewatch, quix, faust (repeat the option; default: all three)")
    ] = None,
    out: BenchOut = Path("reports/bench"),
) -> None:
    """Bars only, one backlog of quotes through tapewatch, Quix Streams and faust-streaming (on their own venv, built
    on first use): records/s of each beside raw confluent-kafka consume of the same topic, the ratios, and the bars
    each produced against the count the input closes."""
    from tapewatch.bench.peers import FRAMEWORKS, print_peers_bench, run_peers_bench

    chosen = framework or list(FRAMEWORKS)
    unknown = sorted(set(chosen) - set(FRAMEWORKS))
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)}: not one of {', '.join(FRAMEWORKS)}", param_hint="--framework")
    cfg = _services()
    with console.status("benchmarking tapewatch, Quix Streams and faust on one backlog (bars only)…"):
        result = run_peers_bench(cfg, symbols=symbols, minutes=minutes, workdir=out.resolve(), frameworks=chosen)
    print_peers_bench(console, result)
    _write(out, "peers.json", result.to_json())


@bench_app.command("news")
def bench_news(
    out: BenchOut = Path("bench-results"),
    items: Annotated[int, typer.Option(min=1_000, help="News items in the backlog")] = 30_000,
    cores: Annotated[int, typer.Option(min=1, help="Cores the worker may run on")] = 1,
) -> None:
    """News items per second one stream worker's news stage keeps up with (real broker, pinned to ``--cores``)."""
    from tapewatch.bench.news import run_news_bench

    settings = _services()
    result = run_news_bench(settings, items, out, cores)
    table = Table(
        "items", "records", "raw Kafka records/s", "news stage records/s", "items/s", "cores", title="news stage"
    )
    table.add_row(
        f"{result.items:,}",
        f"{result.records:,}",
        f"{result.raw_consume_per_s:,.0f}",
        f"{result.worker_per_s:,.0f}",
        f"{result.items_per_s:,.0f}",
        str(result.cores),
    )
    console.print(table)
    _write(out, "news.json", result.to_json())


@bench_app.command("pipeline")
def bench_pipeline(
    symbols: Annotated[int, typer.Option(help="Simulated symbols")] = 20,
    minutes: Annotated[float, typer.Option(help="Session minutes, live (event time = wall time)")] = 6.0,
    poll: Annotated[float, typer.Option(help="Seconds between PostgreSQL/Elasticsearch polls")] = 0.1,
    out: BenchOut = Path("reports/bench"),
) -> None:
    """End-to-end latency on a live simulated feed: event time → alert on Kafka → row in PostgreSQL → document
    searchable in Elasticsearch (one stream worker and both sinks)."""
    from tapewatch.bench.pipeline import run_pipeline_bench

    cfg = _services()
    out.mkdir(parents=True, exist_ok=True)  # the stages' logs go there
    with console.status(f"live pipeline for {minutes:g} min (models trained first if missing)…"):
        result = run_pipeline_bench(cfg, symbols=symbols, minutes=minutes, poll_s=poll, workdir=out.resolve())
    _latency_table(f"end-to-end latency ({result.alerts} alerts)", ("hop", "alerts"), result.latency_ms, digits=0)
    console.print(f"event time = the window end the alert stands for; includes the {result.grace_ms} ms grace")
    _write(out, "pipeline.json", result.to_json())


@bench_app.command("all")
def bench_all(
    records: Annotated[int, typer.Option(help="Records per producer benchmark")] = 500_000,
    minutes: Annotated[float, typer.Option(help="Live minutes of the end-to-end latency run")] = 6.0,
    out: BenchOut = Path("reports/bench"),
) -> None:
    """Every benchmark in one run — raw Kafka produce/consume as the reference, then producers, the stream
    worker, the sinks and the end-to-end latency — and one table of absolute numbers and ratios (all.json)."""
    import platform

    from tapewatch.machine import describe, machine_info

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
            "PostgreSQL sink, order books",
            f"{sinks['pg_books_per_s']:,.0f} rows/s",
            f"{sinks['pg_books_per_s'] / raw_consume:.2f}",
        ),
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
    machine = f"{describe(machine_info())}, {os.cpu_count()} cores, Python {platform.python_version()}"
    table = Table("benchmark", "measured", "× raw Kafka", title=f"tapewatch bench all — {machine}")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    summary = {
        "machine": machine,
        "rows": [dict(zip(("benchmark", "measured", "ratio"), r, strict=True)) for r in rows],
    }
    _write(out, "all.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2))


@bench_app.command("sinks")
def bench_sinks(
    records: Annotated[int, typer.Option(help="Alerts for the throughput runs")] = 100_000,
    rate: Annotated[float, typer.Option(help="Alerts/s for the latency run")] = 500.0,
    seconds: Annotated[float, typer.Option(help="Length of the latency run")] = 20.0,
    books: Annotated[int, typer.Option(help="Order books for the PostgreSQL books run (0: skip it)")] = 100_000,
    out: BenchOut = Path("reports/bench"),
) -> None:
    """Rows/s into PostgreSQL (alerts, then order books), documents/s into Elasticsearch, and alert-on-Kafka →
    searchable latency."""
    from tapewatch.bench.sink import print_sink_bench, run_sink_bench

    cfg = _services()
    with console.status("benchmarking the sinks…") as spinner:
        result = run_sink_bench(cfg, records=records, rate=rate, seconds=seconds, books=books, report=spinner.update)
    print_sink_bench(console, result)
    _write(out, "sinks.json", result.to_json())


@bench_app.command("console")
def bench_console(
    alerts: Annotated[int, typer.Option(help="Alerts (and their cases) to seed")] = 1_000_000,
    requests: Annotated[int, typer.Option(help="Timed requests per page")] = 300,
    live: Annotated[int, typer.Option(help="Alerts of the live run, produced one at a time")] = 50,
    charted: Annotated[int, typer.Option(help="Alerts with bars and book snapshots around them")] = 300,
    open_share: Annotated[float, typer.Option(help="Share of the cases left open")] = 0.005,
    keep: Annotated[bool, typer.Option(help="Keep the seeded schema (for EXPLAIN); its name is printed")] = False,
    reuse: Annotated[str | None, typer.Option(help="Measure a kept schema instead of seeding one")] = None,
    out: BenchOut = Path("reports/bench"),
) -> None:
    """The analyst console over a million alerts and their cases: server time (Server-Timing) of the queue,
    case and API pages, and alert on Kafka → visible in an open queue (sink, NOTIFY, server-sent event)."""
    from tapewatch.bench.console import print_console_bench, run_console_bench
    from tapewatch.bench.console_seed import SeedPlan

    cfg = _services()
    plan = SeedPlan(alerts=alerts, charted=charted, open_share=open_share)
    with console.status("benchmarking the console…") as spinner:
        result = run_console_bench(
            cfg, plan=plan, requests=requests, live=live, keep=keep, reuse=reuse, report=spinner.update
        )
    print_console_bench(console, result)
    _write(out, "console.json", result.to_json())


SimulatedSymbols = Annotated[int, typer.Argument(min=1, help="Simulated symbols")]
SessionMinutes = Annotated[float, typer.Argument(min=1.0, help="Session minutes")]


@bench_app.command("flow")
def bench_flow(
    symbols: SimulatedSymbols = 5,
    minutes: SessionMinutes = 120.0,
) -> None:
    """The order-flow features alone: incremental updates vs the batch frame, and the state round trip."""
    from tapewatch.bench.flow import main

    main([str(symbols), str(minutes)])


@bench_app.command("orders")
def bench_orders(
    symbols: SimulatedSymbols = 4,
    minutes: SessionMinutes = 30.0,
    profile: Annotated[bool, typer.Option(help="One more run under cProfile: its top 30 by own time")] = False,
) -> None:
    """The orders stage alone, no Kafka: market-by-order events/s and a digest of every byte it sent."""
    from tapewatch.bench.orders_stage import main

    main(["--symbols", str(symbols), "--minutes", str(minutes), *(["--profile"] if profile else [])])


@bench_app.command("patterns")
def bench_patterns(
    symbols: SimulatedSymbols = 6,
    minutes: SessionMinutes = 210.0,
) -> None:
    """Pattern detection alone: flow chunks through each symbol's detector, and its state's JSON."""
    from tapewatch.bench.patterns import main

    main([str(symbols), str(minutes)])


@bench_app.command("trade")
def bench_trade(
    symbols: SimulatedSymbols = 10,
    minutes: SessionMinutes = 60.0,
) -> None:
    """The paper trader: the executor in process, then a worker through Kafka (records/s)."""
    from tapewatch.bench.trade import main

    _services()
    main([str(symbols), str(minutes)])


@bench_app.command("features")
def bench_features(bars: Annotated[int, typer.Argument(min=2, help="One-minute bars of one symbol")] = 20_000) -> None:
    """The bar features alone: incremental updates vs the batch frame."""
    from tapewatch.bench.features import main

    main([str(bars)])


@bench_app.command("sentiment")
def bench_sentiment(seconds: Annotated[float, typer.Option(help="Seconds per measurement")] = 5.0) -> None:
    """News sentiment scoring alone: items per second on one core, plain lexicon and trained classifier."""
    from tapewatch.bench.sentiment import main

    main(["--seconds", str(seconds)])


def _batched(main: Callable[[list[str] | None], None], batch: list[int] | None, seconds: float, threads: int) -> None:
    """Run a batched-inference benchmark script (``tapewatch.bench.dqn``, ``tapewatch.bench.lstm``) with the command's
    options."""
    main(
        [
            "--batch",
            *(str(b) for b in batch or (1, 100, 1000, 10_000)),
            "--seconds",
            str(seconds),
            "--threads",
            str(threads),
        ]
    )


#: the batched-inference benchmarks (``bench/<name>.py``, each a script with the same options) and what they time
BATCHED: dict[str, str] = {
    "dqn": "Batched DQN inference: symbol-decisions per second.",
    "lstm": "Batched LSTM forecasts: forecasts per second (end to end and the forward passes alone).",
    "cnn": "Batched CNN inference: forecasts per second (requests of 56 feature rows in, forecasts out).",
}


def _batched_command(name: str, doc: str) -> Callable[..., None]:
    def command(
        batch: Annotated[list[int] | None, typer.Option(help="Batch sizes (repeat the option)")] = None,
        seconds: Annotated[float, typer.Option(help="Seconds per batch size")] = 3.0,
        threads: Annotated[int, typer.Option(help="torch threads")] = 1,
    ) -> None:
        _batched(importlib.import_module(f"tapewatch.bench.{name}").main, batch, seconds, threads)

    command.__doc__ = doc
    return command


for _name, _doc in BATCHED.items():
    bench_app.command(_name)(_batched_command(_name, _doc))
