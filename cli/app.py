"""The `tapewatch` command. Each sub-command fails with one clear line and a non-zero exit."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tapewatch import extras
from tapewatch.errors import TapewatchError
from tapewatch.secrets import redact
from tapewatch.settings import Settings, load_settings

if TYPE_CHECKING:
    from tapewatch.ops.demo import Summary
    from tapewatch.ops.run import RunResult

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
app.add_typer(config_app, name="config")
app.add_typer(schema_app, name="schema")
app.add_typer(infra_app, name="infra")
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")


def _register_sources() -> None:
    import tapewatch.cli.news_sources  # noqa: F401  (adds produce news-cnyes, news-feed and news-replay)
    from tapewatch.cli.produce import fetch_app, produce_app

    app.add_typer(produce_app, name="produce")
    app.add_typer(fetch_app, name="fetch")


def _register_bench() -> None:
    from tapewatch.cli.bench import bench_app

    app.add_typer(bench_app, name="bench")


def _register_stream() -> None:
    from tapewatch.cli.stream import stream_app

    app.add_typer(stream_app, name="stream")


def _register_sinks() -> None:
    from tapewatch.cli.sink import alerts_app, kibana_app, sink_app

    app.add_typer(sink_app, name="sink")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(kibana_app, name="kibana")


def _register_models() -> None:
    """Surveillance (`detect`, `eval`) and models: `train kmeans|dqn|lstm|cnn|news` share one `train` group."""
    from tapewatch.cli.calibrate import calibrate
    from tapewatch.cli.cnn import train_cnn_command
    from tapewatch.cli.detect import detect_app, eval_app, train_app
    from tapewatch.cli.dqn import backtest_app, train_dqn
    from tapewatch.cli.eval_orders import eval_orders, eval_public_spoofing, eval_public_wash
    from tapewatch.cli.hit_model import eval_hit_model
    from tapewatch.cli.lstm import train_lstm
    from tapewatch.cli.news import train_news
    from tapewatch.cli.scorecard import eval_scorecard
    from tapewatch.cli.signals import backtest_signals, forecast

    train_app.command("dqn")(train_dqn)
    train_app.command("lstm")(train_lstm)
    train_app.command("cnn")(train_cnn_command)
    train_app.command("news")(train_news)
    backtest_app.command("signals")(backtest_signals)
    app.command("forecast")(forecast)
    app.command("calibrate")(calibrate)
    eval_app.command("scorecard")(eval_scorecard)
    eval_app.command("hit-model")(eval_hit_model)
    eval_app.command("orders")(eval_orders)
    eval_app.command("public-spoofing")(eval_public_spoofing)
    eval_app.command("public-wash")(eval_public_wash)
    app.add_typer(detect_app, name="detect")
    app.add_typer(eval_app, name="eval")
    app.add_typer(train_app, name="train")
    app.add_typer(backtest_app, name="backtest")


def _register_console() -> None:
    from tapewatch.cli.console import console_app

    app.add_typer(console_app, name="console")


def _register_trade() -> None:
    from tapewatch.cli.trade import trade_app

    app.add_typer(trade_app, name="trade")


#: each command group's module is imported only when the command line names it — `tapewatch sink postgres` loads
#: no simulator, pandas or aiohttp, `config show` no torch or Spark: every process the pipeline starts is up sooner
GROUPS: Final[dict[str, Callable[[], None]]] = {
    "produce": _register_sources,
    "fetch": _register_sources,
    "bench": _register_bench,
    "stream": _register_stream,
    **dict.fromkeys(("sink", "alerts", "kibana"), _register_sinks),
    **dict.fromkeys(("detect", "eval", "train", "backtest", "forecast", "calibrate"), _register_models),
    "console": _register_console,
    "trade": _register_trade,
}
_registered: set[Callable[[], None]] = set()


def _register(*registrars: Callable[[], None]) -> None:
    for registrar in registrars:
        if registrar not in _registered:
            registrar()
            _registered.add(registrar)


def _register_for(argv: Sequence[str]) -> None:
    """The group the command line names, or every group (help, or a name that is no group's: the app's own
    commands and its error message need no group)."""
    own = {group.name for group in app.registered_groups} | {command.name for command in app.registered_commands}
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    if first in GROUPS:
        _register(GROUPS[first])
    elif first not in own:
        _register(*GROUPS.values())


def cli() -> typer.Typer:
    """The whole command, every group registered: for a caller that invokes it in-process (tests, docs)."""
    _register(*GROUPS.values())
    return app


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
    # a console of this call's terminal: a value wider than the table wraps, and a wrapped secret hides from a grep
    Console().print(table)


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
    from tapewatch.infra import manager

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
    from tapewatch.infra import manager

    manager.down(settings(), lambda name, message: console.print(f"  {name}: {message}"))


@infra_app.command("status")
def infra_status() -> None:
    """Health, version, address and pid of each service; exit 1 when any is unhealthy."""
    from tapewatch.infra import manager

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
    from tapewatch.infra import manager

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
    from tapewatch.infra.kafka import ensure_topics

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
    from tapewatch.sinks import db

    db.upgrade(settings(), revision)
    console.print(f"schema at {revision}")


# --- run --------------------------------------------------------------------------------------
@app.command("run")
def run(
    source: Annotated[
        str, typer.Option(help="simulate, market (the order-book market: orders, drop copy), replay, twse or binance")
    ] = "simulate",
    files: Annotated[list[Path] | None, typer.Option("--file", help="Replay input (with --source replay)")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C)")] = None,
    symbols: Annotated[int, typer.Option(help="Simulated symbols")] = 20,
    speed: Annotated[float, typer.Option(help="Simulated/replayed time × this (0 = as fast as possible)")] = 30.0,
    seed: Annotated[int, typer.Option(help="Simulator seed")] = 7,
) -> None:
    """Start the services and run the whole pipeline live — source → stream worker (bars, features, detection,
    DQN actions) → PostgreSQL and Elasticsearch sinks — with a dashboard; then a summary and a report folder."""
    import time as clock

    from tapewatch.infra import manager
    from tapewatch.ops.demo import DEMO_USER, ensure_demo_user, ensure_models, summarise
    from tapewatch.ops.run import run_pipeline
    from tapewatch.sinks import db

    cfg = settings()
    source_args = _source_args(source, files, symbols, speed, seed)
    if source == "market":  # its firm's accounts are kept in the console's table of the demo tenant
        extras.require("console", "tapewatch run --source market")
    stamp = clock.strftime("%Y%m%d-%H%M%S")
    if source in ("simulate", "market", "replay") and "TAPEWATCH_TOPIC_PREFIX" not in os.environ:
        # A simulated or replayed session repeats its event times: on last run's topics, the stream state
        # would call all of it late. Each such run gets fresh topics (the previous demo's are deleted).
        cfg = cfg.updated(kafka={"topic_prefix": f"demo-{stamp}."})
    with console.status("starting services…"):
        _print_status(manager.up(cfg))
        db.upgrade(cfg)
    if cfg.kafka.topic_prefix.startswith("demo-"):
        _replace_demo_topics(cfg)
    with console.status("models (trained on first use, reused afterwards)…"):
        for line in ensure_models(cfg):
            console.print(f"model  {line}")
    with_console = extras.available("console")
    if with_console:
        login = ensure_demo_user(cfg)
        console.print(
            f"console  http://{cfg.console.host}:{cfg.console.port}/  user [bold]{DEMO_USER}[/], "
            f"password in {login} (readable by you only)"
        )
    else:
        console.print(f"console  off: the 'console' extra is not installed ({extras.hint('console')})")
    pace = speed if source in ("simulate", "market", "replay") else 1.0
    # the live Taiwan market's news comes from cnyes beside its quotes (a simulated session publishes its own news)
    news_args = ["news-cnyes"] if source == "twse" else None
    grids = _paper_grid_args(source, symbols, seed)
    result = run_pipeline(
        cfg, source_args, duration, console=with_console, speed=pace, news_args=news_args, grid_args=grids
    )
    summary = Table("topic", "records", title="summary")
    for name, rate in result.view.topics.items():
        summary.add_row(name, f"{rate.total:,}")
    console.print(summary)
    with console.status("writing the report…"):
        outcome = summarise(cfg, result.view, Path("reports") / f"run-{stamp}")
    _print_run_outcome(cfg, result, outcome)


def _source_args(source: str, files: list[Path] | None, symbols: int, speed: float, seed: int) -> list[str]:
    """The `tapewatch produce` arguments of the run's source."""
    if source == "simulate":
        return ["simulate", "--symbols", str(symbols), "--speed", str(speed), "--seed", str(seed)]
    if source == "market":
        from tapewatch.ops.demo import DEMO_TENANT

        # the market's firm is the demo's tenant: its drop copy's alerts become the demo user's cases
        firm = ["--tenant", DEMO_TENANT]
        return ["market", "--symbols", str(symbols), "--speed", str(speed), "--seed", str(seed), *firm]
    if source == "replay":
        if not files:
            raise TapewatchError("run: --source replay needs at least one --file")
        return ["replay", *map(str, files), "--speed", str(speed)]
    if source in ("twse", "binance"):
        return [source]
    raise TapewatchError(f"run: unknown source {source!r}; choose simulate, market, replay, twse or binance")


def _paper_grid_args(source: str, symbols: int, seed: int) -> list[str]:
    """The paper trader's options that give it the grids of the run's source beyond the built-in ones: Binance's
    exchange information (fetched once at its start), the order-book market's instruments (those of its session).

    >>> _paper_grid_args("market", 4, 7), _paper_grid_args("simulate", 4, 7)
    (['--market-seed', '7', '--market-symbols', '4'], [])
    """
    if source == "binance":
        return ["--binance"]
    if source == "market":
        return ["--market-seed", str(seed), "--market-symbols", str(symbols)]
    return []


def _print_run_outcome(cfg: Settings, result: RunResult, outcome: Summary) -> None:
    """Alerts against the truth, where they landed, where the report and logs are, and what to look at next."""
    from tapewatch.ops.demo import DEMO_USER, kinds_rows

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
    console.print(
        f"bars seen live: {result.view.bars_seen:,}; actions: {result.view.actions_seen:,}; "
        f"forecasts: {result.view.forecasts_seen:,}"
    )
    console.print(f"report: {outcome.report}/report.md (charts beside it); stage logs in {cfg.local.var_dir / 'run'}")
    for hint in query_hints(cfg):
        console.print(hint)
    console.print(
        "Kibana dashboard: tapewatch kibana import http://localhost:5601 (docker compose imports it by itself)"
    )
    if extras.available("console"):
        console.print(
            f"analyst console: the cases stay in PostgreSQL — `tapewatch console serve`, then "
            f"http://{cfg.console.host}:{cfg.console.port}/ (user {DEMO_USER}, password in "
            f"{cfg.local.var_dir / 'console' / 'demo-password'})"
        )
    troubled = [stage for stage in result.stages if stage.restarts]
    for stage in troubled:
        err_console.print(f"[yellow]warning:[/] {stage.name} restarted {stage.restarts}× — see {stage.log}")


def _replace_demo_topics(cfg: Settings) -> None:
    """Create this demo's topics; delete earlier demos' (keeps the broker's disk from filling up)."""
    from tapewatch.infra.kafka import ensure_topics
    from tapewatch.kafka import admin_client

    admin = admin_client(cfg)
    stale = [
        t
        for t in admin.list_topics(timeout=30).topics
        if t.startswith("demo-") and not t.startswith(cfg.kafka.topic_prefix)
    ]
    if stale:
        for future in admin.delete_topics(stale, operation_timeout=60).values():
            with contextlib.suppress(Exception):
                future.result()
    ensure_topics(cfg)


def query_hints(cfg: Settings) -> list[str]:
    """How to look at what a run stored, credentials masked (the user has them; a terminal log may not)."""
    url = redact(cfg.postgres.url_plain.replace("postgresql+psycopg2://", "postgresql://"))
    return [
        f'query PostgreSQL: psql {url} -c "select kind, severity, count(*) from alerts group by 1, 2"',
        f"query Elasticsearch: curl '{redact(cfg.es.url)}/{cfg.es.index_prefix}-alerts-*/_search?size=5&pretty'",
    ]


def _fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(redact(message))}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """Run the command; whatever stops it early is one line on standard error and a non-zero exit."""
    _register_for(sys.argv[1:])
    try:
        code = app(standalone_mode=False)
    except TapewatchError as exc:
        _fail(str(exc))
    except typer.Abort as exc:  # Ctrl-C (click turns it into Abort), or the end of input at a prompt
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        err_console.print("interrupted" if interrupted else "aborted")
        sys.exit(130 if interrupted else 1)
    except typer.TyperException as exc:  # a usage error: a missing or bad option, an unknown command
        if not exc.format_message():  # a group called without a command: its help is printed already
            sys.exit(getattr(exc, "exit_code", 2))
        context = getattr(exc, "ctx", None)
        where = f"{context.command_path}: " if context is not None else ""
        helped = f" (see `{context.command_path} --help`)" if context is not None else ""
        _fail(f"{where}{exc.format_message()}{helped}", getattr(exc, "exit_code", 2))
    except ModuleNotFoundError as exc:
        # a path no command guards with tapewatch.extras.require (a benchmark, say) still says which extra it needs
        extra = extras.extra_of(exc.name)
        if extra is None:
            raise
        _fail(f"{exc}: this needs the '{extra}' extra, {extras.hint(extra)}")
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
