"""`tapewatch sink …`, `tapewatch alerts …` and `tapewatch kibana …`.

Each sink is a consumer group (``<topic prefix>tapewatch-sink-<name>``): run more processes of the same
command to scale out, up to the partition count. Wired into the main command in :mod:`tapewatch.cli.app`.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.collector import tuned_for_batches
from tapewatch.errors import TapewatchError
from tapewatch.kafka import require_topics
from tapewatch.records import Alert, AlertKind, Severity, tenant_problem
from tapewatch.settings import Settings, load_settings
from tapewatch.sinks.consumer import SinkCounters, SinkRunner, Writer, resolve_topics
from tapewatch.sinks.defaults import ELASTICSEARCH_TOPICS, POSTGRES_TOPICS
from tapewatch.sinks.webhook import AlertFilter
from tapewatch.topics import DLQ_SINKS

sink_app = typer.Typer(help="Kafka → PostgreSQL, Elasticsearch and webhook subscribers.", no_args_is_help=True)
alerts_app = typer.Typer(help="Watch the alerts as they come.", no_args_is_help=True)
kibana_app = typer.Typer(help="Kibana saved objects (data views, dashboard).", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)
log = logging.getLogger(__name__)

Topics = Annotated[
    str | None, typer.Option("--topics", help="Comma-separated registry topics (default: the list above)")
]
Group = Annotated[str | None, typer.Option("--group", help="Consumer group (default: <prefix>tapewatch-sink-<name>)")]
InstanceId = Annotated[
    str | None, typer.Option("--instance-id", help="Static group membership id: a restart takes its partitions back")
]
BatchSize = Annotated[int | None, typer.Option("--batch-size", min=1, help="Default: TAPEWATCH_SINK_BATCH_SIZE")]
ExitWhenIdle = Annotated[
    float | None, typer.Option("--exit-when-idle", min=0.1, help="Stop after this many seconds without records")
]


def _run_sink(
    settings: Settings,
    writer: Writer,
    topic_names: list[str],
    group: str | None,
    instance_id: str | None,
    batch_size: int | None,
    exit_when_idle: float | None,
) -> None:
    topics = resolve_topics(topic_names)
    # a sink waits out its store's outages, but a missing broker or topic at start is one line, at once
    require_topics(settings, [settings.topic(topic.name) for topic in (*topics, DLQ_SINKS)])
    runner = SinkRunner(
        settings,
        writer,
        topics,
        group=group,
        instance_id=instance_id,
        batch_size=batch_size or settings.sinks.batch_size,
    )
    runner.install_signal_handlers()
    last_report = time.monotonic()

    def report(counters: SinkCounters) -> None:
        nonlocal last_report
        if time.monotonic() - last_report >= 10.0:
            last_report = time.monotonic()
            log.info(
                "sink %s: %d consumed, %d written, %d dead-lettered, %d outages",
                writer.name,
                counters.consumed,
                counters.written,
                counters.dead_lettered,
                counters.outages,
            )

    log.info("sink %s: reading %s", writer.name, ", ".join(settings.topic(t.name) for t in topics))
    with tuned_for_batches():
        counters = runner.run(exit_when_idle_s=exit_when_idle, on_batch=report)
    err_console.print(
        f"sink {writer.name}: {counters.consumed:,} consumed, {counters.written:,} written, "
        f"{counters.dead_lettered:,} dead-lettered, {counters.batches:,} batches, {counters.outages:,} outages"
    )
    for reason, count in sorted(counters.reasons.items(), key=lambda kv: -kv[1])[:5]:
        err_console.print(f"  {count:>8,}  {reason}")


def _topic_list(value: str | None, default: tuple[str, ...]) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()] if value else list(default)


def alert_row(alert: Alert, *, header: bool, width: int) -> Table:
    """One alert as a table row whose fields keep their width at any terminal width: the message takes what is left
    (cut with an ellipsis), and below 118 columns the time drops its year and milliseconds."""
    wide = width >= 118
    when = datetime.fromtimestamp(alert.ts / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[: 23 if wide else 19]
    fixed = {"time (UTC)": 23 if wide else 14, "symbol": 10, "venue": 8, "kind": 17, "severity": 8, "score": 5}
    table = Table(show_header=header, box=None, pad_edge=False, padding=(0, 1, 0, 0), width=width)
    for name, column_width in fixed.items():
        table.add_column(name, min_width=column_width, no_wrap=True, overflow="ellipsis")
    table.add_column("message", ratio=1, min_width=7, no_wrap=True, overflow="ellipsis")
    table.add_row(
        when if wide else when[5:], alert.symbol, alert.venue, alert.kind.value,
        f"[{SEVERITY_STYLE[alert.severity]}]{alert.severity.value}[/]", f"{alert.score:.2f}",
        alert.message or alert.alert_id,
    )  # fmt: skip
    return table


@sink_app.command(
    "postgres",
    help="Bars, features, scores, alerts, actions, forecasts, news, order books, paper trading and dead-letter "
    "summaries → PostgreSQL (migrates the schema first; keeps TAPEWATCH_POSTGRES_BOOK_RETENTION_HOURS of books).\n\n"
    f"Default topics: {', '.join(POSTGRES_TOPICS)}.",
)
def sink_postgres(
    topics: Topics = None,
    group: Group = None,
    instance_id: InstanceId = None,
    batch_size: BatchSize = None,
    exit_when_idle: ExitWhenIdle = None,
) -> None:
    from tapewatch.sinks.postgres import PostgresWriter, check_topics

    settings = load_settings()
    names = _topic_list(topics, POSTGRES_TOPICS)
    check_topics(resolve_topics(names))
    _run_sink(settings, PostgresWriter(settings), names, group, instance_id, batch_size, exit_when_idle)


@sink_app.command(
    "elasticsearch",
    help="Alerts, scores, forecasts and news signals (and actions, if asked) → Elasticsearch as ECS documents in "
    f"monthly indices.\n\nDefault topics: {', '.join(ELASTICSEARCH_TOPICS)}.",
)
def sink_elasticsearch(
    topics: Topics = None,
    group: Group = None,
    instance_id: InstanceId = None,
    batch_size: BatchSize = None,
    exit_when_idle: ExitWhenIdle = None,
) -> None:
    from tapewatch.sinks.elastic import ElasticsearchWriter, check_topics

    settings = load_settings()
    names = _topic_list(topics, ELASTICSEARCH_TOPICS)
    check_topics(resolve_topics(names))
    _run_sink(settings, ElasticsearchWriter(settings), names, group, instance_id, batch_size, exit_when_idle)


@sink_app.command("webhook")
def sink_webhook(
    subscribers: Annotated[
        Path | None, typer.Option("--subscribers", help="JSON/YAML file (default: TAPEWATCH_WEBHOOK_SUBSCRIBERS)")
    ] = None,
    group: Group = None,
    instance_id: InstanceId = None,
    batch_size: BatchSize = None,
    exit_when_idle: ExitWhenIdle = None,
) -> None:
    """Alerts → every webhook subscriber whose filters accept them (signed POST, retries, Idempotency-Key)."""
    from tapewatch.sinks.webhook import WebhookWriter, load_subscribers

    settings = load_settings()
    path = subscribers or settings.sinks.webhook_subscribers
    if path is None:
        raise TapewatchError("sink webhook: no subscribers file (--subscribers or TAPEWATCH_WEBHOOK_SUBSCRIBERS)")
    writer = WebhookWriter(settings, load_subscribers(path))
    _run_sink(settings, writer, ["alerts"], group, instance_id, batch_size, exit_when_idle)


SEVERITY_STYLE = {
    Severity.LOW: "dim",
    Severity.MEDIUM: "yellow",
    Severity.HIGH: "bold red",
    Severity.CRITICAL: "bold white on red",
}


@alerts_app.command("tail")
def alerts_tail(
    kind: Annotated[list[AlertKind] | None, typer.Option("--kind", help="Only this kind (repeatable)")] = None,
    severity: Annotated[
        list[Severity] | None, typer.Option("--severity", help="Only this severity (repeatable)")
    ] = None,
    symbol: Annotated[list[str] | None, typer.Option("--symbol", help="Only this symbol (repeatable)")] = None,
    min_score: Annotated[float, typer.Option("--min-score", min=0.0, max=1.0)] = 0.0,
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Start at the oldest alert")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Stop after this many alerts")] = None,
    idle_exit: Annotated[
        float | None, typer.Option("--idle-exit", min=0.1, help="Stop after N s without alerts")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Also show this tenant's own alerts (from its drop copy)")
    ] = None,
) -> None:
    """Follow the alerts topic and print the alerts that pass the filters as a table (Ctrl-C stops). A tenant's own
    alerts name its accounts: they are shown only with --tenant."""
    from tapewatch.sinks.tail import follow_alerts

    settings = load_settings()
    problem = None if tenant is None else tenant_problem(tenant)
    if problem is not None:
        raise TapewatchError(f"--tenant: {problem}")
    alert_filter = AlertFilter(
        kinds=frozenset(kind or ()), severities=frozenset(severity or ()), symbols=frozenset(symbol or ()),
        min_score=min_score, tenant=tenant,
    )  # fmt: skip
    alerts = follow_alerts(settings, alert_filter, from_beginning=from_beginning, idle_exit_s=idle_exit)
    for shown, alert in enumerate(alerts, start=1):
        console.print(alert_row(alert, header=shown == 1, width=console.width))
        if limit is not None and shown >= limit:
            break


@kibana_app.command("import")
def kibana_import(
    url: Annotated[str, typer.Argument(help="Kibana base URL, e.g. http://127.0.0.1:5601")],
    files: Annotated[list[Path] | None, typer.Option("--file", help="NDJSON file (default: infra/kibana/*)")] = None,
    space: Annotated[str | None, typer.Option("--space", help="Kibana space id (default: the default space)")] = None,
) -> None:
    """Import the saved objects (data views, dashboard) into Kibana; re-importing overwrites (stable ids)."""
    from tapewatch.sinks.kibana import import_saved_objects

    for result in import_saved_objects(load_settings(), url, files, space):
        console.print(f"imported {result.success_count} object(s) from {result.file.name}")
