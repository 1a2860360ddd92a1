"""`tapewatch produce …` and `tapewatch fetch …`: every source, one framework.

The commands are the command-line side only (options, their checks, what is printed); what they run is the
sources' in :mod:`producers`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from tapewatch.errors import TapewatchError
from tapewatch.feeds import ORDER_BOOK_MARKET_VENUE
from tapewatch.generators.simulator import TAIPEI, SimulationConfig, generate
from tapewatch.producers import binance, bitstamp_capture, es_tape, simulate, twse, twse_daily
from tapewatch.producers.framework import SourceCounters, SourceRun, run_source
from tapewatch.producers.market import MARKET_STAGE, AccountsKeeper
from tapewatch.records import AccountRef
from tapewatch.settings import Settings, load_settings

produce_app = typer.Typer(
    help="Sources → Kafka (md.quotes, md.books, md.orders, orders.firm, truth, news.items).", no_args_is_help=True
)
fetch_app = typer.Typer(help="Historical data → files.", no_args_is_help=True)
console = Console(stderr=True)

Duration = Annotated[float | None, typer.Option("--duration", help="Stop after this many seconds")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="No live progress line")]
#: a live venue's --duration: without it the feed runs until Ctrl-C
LiveDuration = Annotated[
    float | None, typer.Option("--duration", min=0, help="Stop after this many seconds (default: run until Ctrl-C)")
]


def summarise(stage: str, counters: SourceCounters) -> None:
    console.print(
        f"{stage}: {counters.records:,} records ({counters.quotes:,} quotes, {counters.books:,} books, "
        f"{counters.episodes:,} episodes), {counters.dead_lettered:,} dead-lettered, {counters.errors:,} errors, "
        f"{counters.backoffs:,} back-offs, {counters.skipped:,} skipped"
    )
    for reason, count in sorted(counters.reasons.items(), key=lambda kv: -kv[1])[:5]:
        console.print(f"  {count:>8,}  {reason}")


def progress_line(stage: str, counters: SourceCounters, elapsed: float, delivered: int) -> Text:
    rate = counters.records / elapsed if elapsed > 0 else 0.0
    return Text.assemble(
        (f"{stage} ", "bold"),
        f"{counters.records:,} records ({rate:,.0f}/s) · delivered {delivered:,} · ",
        (f"dead-lettered {counters.dead_lettered:,}", "yellow" if counters.dead_lettered else ""),
        f" · errors {counters.errors:,} · back-offs {counters.backoffs:,}",
        f" · skipped {counters.skipped:,} · {elapsed:,.0f}s",
    )


class ProgressLine:
    """A source's live progress line on stderr: shown from its first report on, left in place when it ends."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.live: Live | None = None

    def __call__(self, counters: SourceCounters, elapsed: float, delivered: int) -> None:
        line = progress_line(self.stage, counters, elapsed, delivered)
        if self.live is None:
            self.live = Live(line, console=console, refresh_per_second=4, transient=False)
            self.live.start()
        else:
            self.live.update(line)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def run_with_progress(
    settings: Settings,
    stage: str,
    source: SourceRun,
    *,
    duration_s: float | None,
    show_progress: bool,
    live_feed: bool = False,
) -> SourceCounters:
    """:func:`~tapewatch.producers.framework.run_source`, with the live progress line unless ``show_progress`` is
    off."""
    progress = ProgressLine(stage) if show_progress else None
    try:
        return asyncio.run(
            run_source(settings, stage, source, duration_s=duration_s, progress=progress, live_feed=live_feed)
        )
    finally:
        if progress is not None:
            progress.close()


# --- produce replay -----------------------------------------------------------------------------------------
@produce_app.command("replay")
def produce_replay(
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet files of ticks and/or books")],
    speed: Annotated[float, typer.Option(help="× the recorded pace; 0 = as fast as possible")] = 0.0,
    venue: Annotated[str, typer.Option(help="Venue for rows without a venue column")] = "replay",
    duration: Duration = None,
    no_progress: NoProgress = False,
) -> None:
    """Replay recorded ticks/books (columns: symbol, ts, price, size, side, bid1..5, bidsz1..5, ask1..5, asksz1..5)."""
    from tapewatch.producers.replay import Replay

    settings = load_settings()
    replay = Replay(files, speed=speed, venue=venue)
    counters = run_with_progress(
        settings, "producer:replay", replay.run, duration_s=duration, show_progress=not no_progress
    )
    summarise("replay", counters)


# --- produce orders -----------------------------------------------------------------------------------------
@produce_app.command("orders")
def produce_orders(
    files: Annotated[list[Path], typer.Argument(help="Market-by-order files or drop copies, each replayed in order")],
    venue: Annotated[str, typer.Option(help="The venue the files are of")],
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="databento-csv, databento-dbn, lobster or fix (default: from each file's name: .dbn, "
            "SYMBOL_DATE_…_message_N.csv, .fix/.log, .csv)",
        ),
    ] = None,
    symbol: Annotated[
        str | None, typer.Option(help="The symbol, for files that do not name it (LOBSTER, a CSV without one)")
    ] = None,
    day: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="The day of a LOBSTER file not named by it")
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option(
            help="The console tenant a drop copy belongs to (required for FIX files: only it sees its alerts)"
        ),
    ] = None,
    duration: Duration = None,
    no_progress: NoProgress = False,
) -> None:
    """Replay market-by-order files (Databento MBO, LOBSTER) into md.orders and FIX drop copies into orders.firm."""
    from tapewatch.producers.orders.replay import FORMATS, OrderReplay

    if file_format is not None and file_format not in FORMATS:
        raise TapewatchError(f"--format {file_format!r}: one of {', '.join(FORMATS)}")
    settings = load_settings()
    replay = OrderReplay(files, venue, file_format, symbol, day.date() if day else None, tenant)
    counters = run_with_progress(
        settings, "producer:orders", replay.run, duration_s=duration, show_progress=not no_progress
    )
    summarise("orders", counters)


# --- produce twse -------------------------------------------------------------------------------------------
@produce_app.command("twse")
def produce_twse(
    symbols_file: Annotated[
        Path | None,
        typer.Option(
            "--symbols-file",
            help="File with one MIS channel per line (tse_2330.tw, otc_6547.tw); default: TAPEWATCH_TWSE_SYMBOLS",
            dir_okay=False,
        ),
    ] = None,
    duration: LiveDuration = None,
    ignore_hours: Annotated[
        bool, typer.Option("--ignore-hours", help="Poll outside TWSE trading hours (replay servers, tests)")
    ] = False,
    hours: Annotated[
        str, typer.Option("--hours", help="Trading hours in Asia/Taipei, Monday to Friday")
    ] = "09:00-13:30",
    no_progress: NoProgress = False,
) -> None:
    """Poll TWSE MIS quotes (one batched request every ≥ 5 s) into md.quotes and md.books."""
    settings = load_settings()
    try:
        market_hours = twse.MarketHours.parse(hours)
    except ValueError as exc:
        raise TapewatchError(str(exc)) from None
    channels = twse.load_channels(settings, symbols_file)
    poller = twse.TwsePoller(settings, channels, hours=market_hours, ignore_hours=ignore_hours)
    counters = run_with_progress(
        settings, "producer:twse", poller.run, duration_s=duration, show_progress=not no_progress, live_feed=True
    )
    typer.echo(
        f"twse: {counters.quotes:,} quotes, {counters.books:,} books, {counters.dead_lettered:,} dead-lettered, "
        f"{counters.skipped:,} unchanged snapshots skipped, {counters.errors:,} errors, "
        f"{counters.backoffs:,} back-offs",
        err=True,
    )


# --- produce binance ----------------------------------------------------------------------------------------
@produce_app.command("binance")
def produce_binance(
    symbols: Annotated[
        str | None,
        typer.Option(
            "--symbols",
            help="Comma-separated Binance spot symbols, e.g. btcusdt,ethusdt (default: TAPEWATCH_BINANCE_SYMBOLS)",
        ),
    ] = None,
    duration: LiveDuration = None,
    no_progress: NoProgress = False,
) -> None:
    """Stream Binance spot trades and 5-level books (websocket) into md.quotes and md.books."""
    settings = load_settings()
    stream = binance.BinanceStream(settings, binance.parse_symbols(symbols) if symbols is not None else None)
    counters = run_with_progress(
        settings, binance.STAGE, stream.run, duration_s=duration, show_progress=not no_progress, live_feed=True
    )
    stats = stream.stats
    typer.echo(
        f"binance: {counters.quotes:,} trades, {counters.books:,} books, {counters.dead_lettered:,} dead-lettered, "
        f"{counters.skipped:,} duplicates skipped, {counters.errors:,} errors, {counters.backoffs:,} back-offs, "
        f"{stats.connections:,} connections ({stats.rotations:,} planned replacements), "
        f"{stats.off_grid_prices + stats.off_grid_sizes:,} off-grid trades",
        err=True,
    )


# --- produce simulate ---------------------------------------------------------------------------------------
SymbolsOption = Annotated[int, typer.Option("--symbols", min=1, help="Number of simulated symbols (SIM0001, …)")]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives byte-identical records")]
MinutesOption = Annotated[
    float, typer.Option("--minutes", help="Session length in minutes from 09:00 (270 = a full TWSE day)")
]
SpeedOption = Annotated[
    float, typer.Option("--speed", help="× the session's own pace (event time); 0 = as fast as possible")
]
OutDirOption = Annotated[
    Path | None, typer.Option("--out-dir", help="Write ticks and episodes files here instead of Kafka")
]
TruthOption = Annotated[
    Path | None,
    typer.Option(
        "--truth",
        help="Ground-truth CSV (default: <var>/sim/truth-<date>-seed<seed>-<config digest>.csv, "
        "or <out-dir>/episodes.csv)",
    ),
]
FormatOption = Annotated[str, typer.Option("--format", help="With --out-dir: parquet or csv")]
StartNowOption = Annotated[
    bool,
    typer.Option(
        "--start-now",
        help="Open the session now (event time = wall time at --speed 1, the default then): a live feed, for "
        "latency measurements",
    ),
]
FeedOption = Annotated[
    str,
    typer.Option(
        "--feed",
        help="Feed profile: trades (every print with its side), twse-mis (5 s snapshots as TWSE MIS sends them: "
        "last price, volume since the previous one, best five, no side) or snapshot-1s",
    ),
]
BookChurnOption = Annotated[
    float,
    typer.Option("--book-churn", help="0..1: chance per book step a level 2-5 queue is re-drawn (0 = persistent)"),
]
RegimesOption = Annotated[
    str, typer.Option("--regimes", help="Per-symbol draws: twse, or wide (prices 5-2,000, 0.1-50 prints/s, …)")
]
VariantsOption = Annotated[
    bool, typer.Option("--variants", help="Draw an episode variant per episode (slow pumps, long spoofing, …)")
]
LookalikesOption = Annotated[
    bool,
    typer.Option(
        "--lookalikes/--no-lookalikes",
        help="Legitimate look-alikes on every symbol (news, meta-orders, large orders executed, quote pulls), "
        "labelled in lookalikes.csv with --out-dir",
    ),
]
NewsOption = Annotated[
    bool,
    typer.Option(
        "--news/--no-news",
        help="The session's news: an item per news repricing, background news, touting during some pumps "
        "(news.items, or news.jsonl and news_labels.csv with --out-dir)",
    ),
]


@produce_app.command("market")
def produce_market(
    symbols: SymbolsOption = 8,
    seed: SeedOption = 0,
    minutes: MinutesOption = 270.0,
    speed: SpeedOption = 0.0,
    venue: Annotated[
        str, typer.Option(help="The venue its records name (its feed profile decides the path)")
    ] = ORDER_BOOK_MARKET_VENUE,
    quiet_open: Annotated[
        float, typer.Option(min=0, help="Minutes after the open before the first manipulation (baselines warm up)")
    ] = 45.0,
    tenant: Annotated[str, typer.Option(help="The console tenant the firm's drop copy belongs to")] = "firm",
    duration: Duration = None,
    no_progress: NoProgress = False,
) -> None:
    """The labelled order-book market live: its market-by-order feed into md.orders, a firm's drop copy into
    orders.firm, its news into news.items and each episode into truth once it is over, in event-time order."""
    from tapewatch.generators.lob_market import LobConfig
    from tapewatch.producers.market import MarketSource

    try:
        config = LobConfig(
            symbols=symbols,
            seed=seed,
            minutes=minutes,
            orders=True,
            venue=venue,
            quiet_open_s=quiet_open * 60,
            tenant=tenant,
        )
    except ValueError as exc:
        raise TapewatchError(f"market: {exc}") from None
    settings = load_settings()
    source = MarketSource(config, firm_accounts_keeper(settings, tenant), speed)
    counters = run_with_progress(settings, MARKET_STAGE, source.run, duration_s=duration, show_progress=not no_progress)
    summarise("market", counters)


def firm_accounts_keeper(settings: Settings, tenant: str) -> AccountsKeeper:
    """What keeps the simulated firm's accounts: its tenant's accounts table, as `console accounts load` keeps a
    file's (row-level security, audited as the source, :data:`MARKET_STAGE`, what changed sent before the commit); then
    the table whole, as `console accounts publish` sends it, since a load sends only what changed and the session's
    topics may be new (each `tapewatch run` has its own). The tenant must exist."""
    from tapewatch.cli.console import account_writer, cli_user
    from tapewatch.console.accounts import load, publish_table, republish_command
    from tapewatch.kafka_producer import DeliveryError

    def keep(refs: Sequence[AccountRef]) -> None:
        with account_writer(settings, tenant) as (engine, feed):
            load(engine, feed, tenant, refs, replace=False, client=cli_user(), actor=MARKET_STAGE)
            try:
                publish_table(engine, feed, tenant)
            except DeliveryError as exc:
                raise TapewatchError(
                    f"market: the firm's accounts are loaded but not all published ({exc}): run "
                    f"`{republish_command(tenant)}` once Kafka is back"
                ) from None

    return keep


@produce_app.command("simulate")
def produce_simulate(
    symbols: SymbolsOption = 20,
    seed: SeedOption = 0,
    minutes: MinutesOption = 270.0,
    speed: SpeedOption = 0.0,
    out_dir: OutDirOption = None,
    truth: TruthOption = None,
    file_format: FormatOption = "parquet",
    duration: Duration = None,
    start_now: StartNowOption = False,
    no_progress: NoProgress = False,
    feed: FeedOption = "trades",
    book_churn: BookChurnOption = 0.0,
    regimes: RegimesOption = "twse",
    variants: VariantsOption = False,
    lookalikes: LookalikesOption = False,
    news: NewsOption = True,
) -> None:
    """Simulate a labelled TWSE-like session (pump-and-dump, spoofing, wash trading, marking the close,
    momentum ignition) and its news into md.quotes / md.books / truth / news.items, or into files with --out-dir."""
    if speed < 0:
        raise TapewatchError("simulate: --speed must be ≥ 0")
    if file_format not in simulate.FORMATS:
        raise TapewatchError(f"simulate: --format must be one of {', '.join(simulate.FORMATS)}, not {file_format!r}")
    if start_now:
        speed = 1.0
    try:
        config = SimulationConfig(
            symbols=symbols,
            seed=seed,
            minutes=minutes,
            feed=feed,
            book_churn=book_churn,
            regimes=regimes,
            variants=variants,
            lookalikes=lookalikes,
            news=news,
            **(_opening_now() if start_now else {}),  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise TapewatchError(f"simulate: {exc}") from None
    if out_dir is None:
        _publish_session(config, speed=speed, truth=truth, duration=duration, live=start_now, progress=not no_progress)
        return
    if speed > 0 or duration is not None:
        raise TapewatchError("simulate: --speed and --duration pace Kafka publishing; drop them with --out-dir")
    _write_session_files(config, out_dir, file_format, truth, progress=not no_progress)


def _opening_now() -> dict[str, object]:
    """The session's day and opening time for a live feed: a few seconds ahead, for the session is generated
    before its first record is due."""
    opened = datetime.now(TAIPEI).replace(microsecond=0) + timedelta(seconds=5)
    return {"day": opened.date(), "open_time": opened.time().replace(tzinfo=None)}


def _write_session_files(
    config: SimulationConfig, out_dir: Path, file_format: str, truth: Path | None, *, progress: bool
) -> None:
    if progress:
        with console.status(f"simulating {config.symbols} symbols × {config.minutes:g} min…"):
            simulation = generate(config)
    else:
        simulation = generate(config)
    ticks_path, truth_path = simulate.write_files(simulation, out_dir, file_format, truth)
    counts = simulation.counts
    console.print(
        f"simulate: wrote {ticks_path} ({counts['quotes']:,} quotes incl. snapshots, {counts['books']:,} books) "
        f"and {truth_path} ({counts['episodes']:,} episodes)"
    )
    if config.lookalikes:
        console.print(f"simulate: {len(simulation.lookalikes):,} look-alikes in {out_dir / simulate.LOOKALIKES_CSV}")
    if config.news:
        console.print(
            f"simulate: {len(simulation.news):,} news items in {out_dir / simulate.NEWS_JSONL}, labelled in "
            f"{out_dir / simulate.NEWS_LABELS_CSV}"
        )


def _publish_session(
    config: SimulationConfig, *, speed: float, truth: Path | None, duration: float | None, live: bool, progress: bool
) -> None:
    settings = load_settings()
    truth_path = truth or simulate.default_truth_path(settings.local.var_dir, config)
    source = simulate.SimulateSource(config, speed=speed, truth_path=truth_path, live=live)
    counters = run_with_progress(settings, simulate.STAGE, source.run, duration_s=duration, show_progress=progress)
    summarise("simulate", counters)
    console.print(f"simulate: ground truth ({counters.episodes:,} episodes) in {truth_path}")


# --- fetch twse-daily ---------------------------------------------------------------------------------------
@fetch_app.command("twse-daily")
def fetch_twse_daily(
    symbols: Annotated[list[str], typer.Argument(help="Stock codes (2330 2317, or 2330,2317; tse_2330.tw works too)")],
    start: Annotated[str, typer.Option("--start", help="First month, YYYY-MM")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file (*.parquet) or directory to write into")],
    end: Annotated[str | None, typer.Option("--end", help="Last month, YYYY-MM (default: --start)")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar")] = False,
) -> None:
    """Download TWSE daily bars (STOCK_DAY, one request per stock-month, ≥ 5 s apart) into a Parquet file."""
    settings = load_settings()
    try:
        codes = twse_daily.parse_symbols(symbols)
        months = twse_daily.month_range(start, end or start)
    except ValueError as exc:
        raise TapewatchError(str(exc)) from None
    if not codes:
        raise TapewatchError("no stock codes given")
    path = twse_daily.output_path(out, months[0], months[-1])
    fetcher = twse_daily.TwseDailyFetcher(settings)
    total = len(codes) * len(months)
    with Progress(
        TextColumn("STOCK_DAY {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=no_progress,
    ) as progress:
        task = progress.add_task("", total=total)

        def done(symbol: str, month: date, rows: int) -> None:
            progress.update(task, advance=1, description=f"{symbol} {month:%Y-%m} ({rows} days)")

        report = asyncio.run(fetcher.fetch(codes, months, on_month=done))
    twse_daily.write_parquet(report.frame, path)
    console.print(
        f"wrote {len(report.frame):,} daily bars of {len(codes)} stock(s) to {path} "
        f"({report.requests} requests, {report.empty_months} month(s) without data, "
        f"{report.skipped_rows} row(s) skipped, {report.backoffs} back-off(s))",
        highlight=False,
    )


# --- fetch bitstamp-sample ----------------------------------------------------------------------------------
@fetch_app.command("bitstamp-sample")
def fetch_bitstamp_sample(
    out: Annotated[Path, typer.Option("--out", help="Tick file to write (.parquet or .csv)")],
    orders: Annotated[
        Path | None, typer.Option("--orders", help="Another capture's orders.csv(.gz) (default: the bundled one)")
    ] = None,
    trades: Annotated[
        Path | None, typer.Option("--trades", help="Its trades.csv (default: trades.csv next to --orders)")
    ] = None,
    symbol: Annotated[str, typer.Option(help="Instrument code to write")] = bitstamp_capture.SYMBOL,
    book_interval_ms: Annotated[
        int, typer.Option("--book-interval-ms", min=1, help="At most one book per this many ms (1: every change)")
    ] = bitstamp_capture.DEFAULT_INTERVAL_MS,
) -> None:
    """A Bitstamp level-3 capture (ob-analytics' BTC/USD sample by default) → trades and five-level books."""
    if orders is None and trades is None:
        orders, trades = bitstamp_capture.sample_paths()
    elif orders is None:
        raise TapewatchError("--trades needs --orders")
    trades = trades or orders.parent / "trades.csv"
    done = bitstamp_capture.convert(orders, trades, symbol, book_interval_ms)
    bitstamp_capture.write_ticks(done.ticks, out)
    for line in bitstamp_capture.summary(done):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"→ {out}", highlight=False, soft_wrap=True)


# --- fetch es-tape ----------------------------------------------------------------------------------------------
@fetch_app.command("es-tape")
def fetch_es_tape(
    out: Annotated[Path, typer.Option("--out", help="Tick file to write (.parquet or .csv)")],
    file: Annotated[
        Path | None, typer.Option("--file", help="Another DateTime,Price,Volume file (default: the bundled one)")
    ] = None,
    symbol: Annotated[str, typer.Option(help="Instrument code to write")] = es_tape.SYMBOL,
    venue: Annotated[str, typer.Option(help="Venue to write (its feed profile applies)")] = es_tape.VENUE,
) -> None:
    """A real E-mini S&P 500 futures tape (500,000 prints, mlfinpy's sample by default) → a prints-only tick file:
    every manipulation alert on it is false."""
    tape = es_tape.read_tape(file or es_tape.sample_path(), symbol, venue)
    bitstamp_capture.write_ticks(tape.ticks, out)
    console.print(
        f"{len(tape.ticks):,} prints of {symbol} over {tape.sessions} session(s), "
        f"{_iso(tape.first_ms)} → {_iso(tape.last_ms)} UTC → {out}",
        highlight=False,
        soft_wrap=True,
    )


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
