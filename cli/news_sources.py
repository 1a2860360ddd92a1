"""`tapewatch produce news-cnyes | news-feed | news-replay`: news sources → ``news.items``.

The command-line side only (options, their checks, what is printed); the sources are :mod:`tapewatch.producers.news`.
Registered on ``tapewatch produce`` beside the market-data sources, with their progress line and summary.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import urlsplit

import typer

from tapewatch.cli.produce import Duration, LiveDuration, NoProgress, console, produce_app, run_with_progress
from tapewatch.errors import TapewatchError
from tapewatch.producers.framework import SourceCounters
from tapewatch.producers.news.lists import CNYES_MAX_PAGES, CNYES_WINDOW_S, CnyesList, FeedList, ListReader
from tapewatch.producers.news.poller import NewsPoller, NewsStats
from tapewatch.producers.news.replay import NewsReplay
from tapewatch.producers.news.symbols import load_matcher
from tapewatch.records import VENUE_PATTERN
from tapewatch.settings import Settings, load_settings

_NAME: Final = re.compile(VENUE_PATTERN)
_LANGUAGE: Final = re.compile(r"^[a-z]{2}(-[A-Za-z]{2,4})?$")

SymbolsFile = Annotated[
    Path | None,
    typer.Option(
        "--symbols",
        help="CSV of the venue's symbols: code,name[,alias…] (default: TAPEWATCH_NEWS_SYMBOLS_FILE, else the codes "
        "of TAPEWATCH_TWSE_SYMBOLS)",
        dir_okay=False,
    ),
]
Venue = Annotated[str, typer.Option("--venue", help="Venue of the symbols the items are matched to")]


def _checked(value: str, pattern: re.Pattern[str], option: str, example: str) -> str:
    if not pattern.match(value):
        raise TapewatchError(f"{option} {value!r}: expected something like {example}")
    return value


def _poll(settings: Settings, stage: str, reader: ListReader, duration: float | None, no_progress: bool) -> None:
    poller = NewsPoller(settings, reader)
    counters = run_with_progress(settings, stage, poller.run, duration_s=duration, show_progress=not no_progress)
    _summarise(reader.source, counters, poller.stats)


def _summarise(name: str, counters: SourceCounters, stats: NewsStats) -> None:
    console.print(
        f"{name}: {stats.items:,} items → {counters.records:,} records on news.items, {stats.repeats:,} repeats "
        f"skipped, {stats.unrelated:,} about none of the venue's symbols, {counters.dead_lettered:,} dead-lettered; "
        f"{stats.requests:,} requests ({stats.not_modified:,} not modified), {counters.errors:,} errors, "
        f"{counters.backoffs:,} back-offs",
        highlight=False,
    )
    for reason, count in sorted(counters.reasons.items(), key=lambda kv: -kv[1])[:5]:
        console.print(f"  {count:>8,}  {reason}", highlight=False)


@produce_app.command("news-cnyes")
def produce_news_cnyes(
    symbols: SymbolsFile = None,
    venue: Venue = "twse",
    max_pages: Annotated[
        int, typer.Option("--max-pages", min=1, max=20, help="Pages of 30 items one poll reads at most")
    ] = CNYES_MAX_PAGES,
    window_s: Annotated[
        int, typer.Option("--window-s", min=60, help="How far back the list is read (its startAt), seconds")
    ] = CNYES_WINDOW_S,
    duration: LiveDuration = None,
    no_progress: NoProgress = False,
) -> None:
    """Poll cnyes' Taiwan-stock news list (TAPEWATCH_NEWS_CNYES_URL, every ≥ 60 s) into news.items."""
    settings = load_settings()
    _checked(venue, _NAME, "--venue", "twse")
    matcher = load_matcher(settings, symbols)
    reader = CnyesList(settings.sources.news_cnyes_url, matcher, venue, window_s=window_s, max_pages=max_pages)
    _poll(settings, "producer:news-cnyes", reader, duration, no_progress)


@produce_app.command("news-feed")
def produce_news_feed(
    url: Annotated[str, typer.Argument(help="The RSS or Atom feed's http(s) address")],
    source: Annotated[str, typer.Option("--source", help="The feed's name: item ids are <source>:<the feed's id>")],
    venue: Venue = "twse",
    language: Annotated[
        str, typer.Option("--language", help="BCP 47 language of items whose feed does not say (zh-TW, en)")
    ] = "en",
    symbols: SymbolsFile = None,
    duration: LiveDuration = None,
    no_progress: NoProgress = False,
) -> None:
    """Poll an RSS or Atom feed a desk names (an exchange's announcements, …; every ≥ 60 s) into news.items."""
    settings = load_settings()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TapewatchError(f"news-feed: {url!r} is not an http(s) address")
    _checked(source, _NAME, "--source", "twse-notices")
    _checked(venue, _NAME, "--venue", "twse")
    _checked(language, _LANGUAGE, "--language", "zh-TW or en")
    reader = FeedList(url, source, load_matcher(settings, symbols), venue, language)
    _poll(settings, "producer:news-feed", reader, duration, no_progress)


@produce_app.command("news-replay")
def produce_news_replay(
    files: Annotated[list[Path], typer.Argument(help="JSON Lines files of news.items records, one a line")],
    speed: Annotated[float, typer.Option(help="× the recorded pace (publish times); 0 = as fast as possible")] = 0.0,
    duration: Duration = None,
    no_progress: NoProgress = False,
) -> None:
    """Replay recorded news items (news.items records, one JSON object a line) into news.items."""
    settings = load_settings()
    replay = NewsReplay(files, speed=speed)
    counters = run_with_progress(
        settings, "producer:news-replay", replay.run, duration_s=duration, show_progress=not no_progress
    )
    console.print(
        f"news-replay: {counters.records:,} records on news.items, {replay.repeats:,} repeated records skipped, "
        f"{counters.dead_lettered:,} bad lines dead-lettered",
        highlight=False,
    )
    for bad in replay.bad[:5]:
        console.print(f"  {bad.path}: {bad.reason[:160]}", highlight=False, soft_wrap=True)
