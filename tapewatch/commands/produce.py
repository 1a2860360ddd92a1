"""`tapewatch produce …` and `tapewatch fetch …`: every source, one framework."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from producers.framework import SourceCounters, run_source
from tapewatch.settings import load_settings

produce_app = typer.Typer(help="Sources → Kafka (md.quotes, md.books, truth).", no_args_is_help=True)
fetch_app = typer.Typer(help="Historical data → files.", no_args_is_help=True)
console = Console(stderr=True)

Duration = Annotated[float | None, typer.Option("--duration", help="Stop after this many seconds")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="No live progress line")]


def summarise(stage: str, counters: SourceCounters) -> None:
    console.print(
        f"{stage}: {counters.records:,} records ({counters.quotes:,} quotes, {counters.books:,} books, "
        f"{counters.episodes:,} episodes), {counters.dead_lettered:,} dead-lettered, {counters.errors:,} errors, "
        f"{counters.backoffs:,} back-offs, {counters.skipped:,} skipped"
    )
    for reason, count in sorted(counters.reasons.items(), key=lambda kv: -kv[1])[:5]:
        console.print(f"  {count:>8,}  {reason}")


@produce_app.command("replay")
def produce_replay(
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet files of ticks and/or books")],
    speed: Annotated[float, typer.Option(help="× the recorded pace; 0 = as fast as possible")] = 0.0,
    venue: Annotated[str, typer.Option(help="Venue for rows without a venue column")] = "replay",
    duration: Duration = None,
    no_progress: NoProgress = False,
) -> None:
    """Replay recorded ticks/books (columns: symbol, ts, price, size, side, bid1..5, bidsz1..5, ask1..5, asksz1..5)."""
    from producers.replay import Replay

    settings = load_settings()
    replay = Replay(files, speed=speed, venue=venue)
    counters = asyncio.run(
        run_source(settings, "producer:replay", replay.run, duration_s=duration, show_progress=not no_progress)
    )
    summarise("replay", counters)


def _register() -> None:
    from producers.binance import produce_binance_command
    from producers.bitstamp_capture import fetch_bitstamp_sample_command
    from producers.simulate import produce_simulate_command
    from producers.twse import produce_twse_command
    from producers.twse_daily import fetch_twse_daily_command

    produce_app.command("twse")(produce_twse_command)
    produce_app.command("binance")(produce_binance_command)
    produce_app.command("simulate")(produce_simulate_command)
    fetch_app.command("twse-daily")(fetch_twse_daily_command)
    fetch_app.command("bitstamp-sample")(fetch_bitstamp_sample_command)


_register()
