"""`tapewatch stream …`: run the stream workers.

Wired into the main command with ``app.add_typer(stream_app, name="stream")`` in :mod:`tapewatch.cli.app`;
``python -m tapewatch.cli.stream worker`` runs the same command stand-alone.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from tapewatch.errors import TapewatchError
from tapewatch.streams.limits import BATCH_MAX, BATCH_WITHIN_S

stream_app = typer.Typer(help="Stream workers: bars, features, scores, alerts, actions.", no_args_is_help=True)

log = logging.getLogger(__name__)


@stream_app.callback()
def _group() -> None:
    """Stream workers: bars, features, scores, alerts, actions."""


@stream_app.command("worker")
def worker(
    loglevel: Annotated[
        str | None, typer.Option("-l", "--loglevel", help="Log level (default: TAPEWATCH_LOG_LEVEL)")
    ] = None,
    batch_max: Annotated[int, typer.Option("--batch-max", min=1, help="Max records per batch")] = BATCH_MAX,
    batch_within: Annotated[
        float, typer.Option("--batch-within", min=0.001, help="Max seconds to wait to fill a batch")
    ] = BATCH_WITHIN_S,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port", min=0, max=65535, help="Prometheus /metrics port (default: TAPEWATCH_STREAM_METRICS_PORT)"
        ),
    ] = None,
) -> None:
    """Consume md.quotes and md.books; write bars to md.bars.1m, bar and order-flow features to features.1m,
    scores, alerts and actions, and bad or late records to dlq.streams, until stopped (SIGTERM/SIGINT)."""
    from tapewatch.logs import configure as configure_logging
    from tapewatch.settings import load_settings

    settings = load_settings()
    if loglevel:
        settings = settings.updated(log={"level": loglevel})
        configure_logging(settings)

    from tapewatch.kafka import ensure_reachable
    from tapewatch.streams.admin import prepare_topics
    from tapewatch.streams.app import create_app

    ensure_reachable(settings)  # before the worker loads its models: a missing broker is one line, at once

    stream = create_app(settings, batch_max=batch_max, batch_within_s=batch_within)
    created = prepare_topics(settings, stream.registry_topics, stream.changelog_topics)
    if created:
        log.info("created internal topic(s) %s", ", ".join(created))
    port = settings.stream.metrics_port if metrics_port is None else metrics_port
    if port:
        try:
            stream.metrics.serve(port)
        except OSError as exc:
            raise TapewatchError(f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    log.info(
        "stream worker %s: topics %s; kafka %s; metrics %s",
        stream.group,
        ", ".join(stream.registry_topics),
        settings.kafka.bootstrap,
        f"http://127.0.0.1:{port}/metrics" if port else "off",
    )
    from tapewatch.collector import tuned_for_batches

    try:
        with tuned_for_batches():
            stream.run()
    except Exception as exc:  # logged with its traceback; the CLI ends with one line
        raise TapewatchError(f"stream worker crashed: {exc!r}") from None


def main() -> None:
    try:
        stream_app()
    except TapewatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
