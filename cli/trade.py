"""`tapewatch trade paper` (the paper-trading worker) and `tapewatch trade report` (what it did: the report is
:mod:`tapewatch.evaluation.paper_report`, its rows come from :mod:`tapewatch.sinks.trade_history`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import orjson
import typer
from rich.console import Console

from tapewatch.errors import TapewatchError
from tapewatch.feeds import ORDER_BOOK_MARKET_VENUE
from tapewatch.settings import Settings

if TYPE_CHECKING:
    from tapewatch.execution.grid import VenueRules

trade_app = typer.Typer(help="Paper trading on the live book: orders, fills, positions and P&L from the signals.")
console = Console()
log = logging.getLogger(__name__)


def venue_rules(settings: Settings) -> VenueRules:
    """The built-in grids plus the exchange information file of the settings (TAPEWATCH_TRADE_EXCHANGE_INFO)."""
    from tapewatch.execution.grid import VenueRules

    rules = VenueRules()
    path = settings.trade.exchange_info
    if path is None:
        return rules
    try:
        info = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise TapewatchError(f"trade exchange info {path}: {exc}") from None
    if not isinstance(info, dict):
        raise TapewatchError(f"trade exchange info {path}: expected {{venue: {{symbol: rules}}}}")
    for venue, symbols in info.items():
        if isinstance(symbols, dict):
            rules = rules.merged(VenueRules.from_exchange_info(venue, symbols))
    return rules


def binance_rules(settings: Settings) -> VenueRules:
    """Tick, lot and minimum value of TAPEWATCH_BINANCE_SYMBOLS from Binance's exchange information, now."""
    import asyncio

    import aiohttp

    from tapewatch.execution.grid import VenueRules
    from tapewatch.producers.binance import ExchangeInfoError, fetch_exchange_info

    symbols = [s.strip().upper() for s in settings.sources.binance_symbols.split(",") if s.strip()]

    async def fetch() -> dict[str, dict[str, str]]:
        async with aiohttp.ClientSession() as http:
            rules = await fetch_exchange_info(http, settings.sources.binance_rest_url, symbols)
        return {s: {"tick": str(r.tick_size), "step": str(r.step_size), "min_notional": str(r.min_notional)}
                for s, r in rules.items()}  # fmt: skip

    try:
        return VenueRules.from_exchange_info("binance", asyncio.run(fetch()))
    except ExchangeInfoError as exc:
        raise TapewatchError(f"binance exchange information: {exc}") from None


def market_rules(seed: int, symbols: int, venue: str) -> VenueRules:
    """The order-book market's grids (``tapewatch produce market --seed --symbols --venue``): each instrument's tick
    and lot as the generator defines them, published as a venue publishes its exchange information."""
    from tapewatch.execution.grid import VenueRules
    from tapewatch.generators.lob_market import exchange_info

    return VenueRules.from_exchange_info(venue, exchange_info(seed, symbols))


@trade_app.command("paper")
def trade_paper(
    name: Annotated[str, typer.Option(help="The executor's name: its state topic and consumer group")] = "paper",
    start: Annotated[str, typer.Option(help="Without a checkpoint, read from: earliest | latest")] = "earliest",
    until_idle: Annotated[
        float | None, typer.Option(help="Stop once every partition was read to its end this many seconds")
    ] = None,
    binance: Annotated[
        bool, typer.Option(help="Load the grids of TAPEWATCH_BINANCE_SYMBOLS from Binance's exchange information")
    ] = False,
    max_skew_ms: Annotated[
        int | None, typer.Option(min=1000, help="A silent partition's bound (default TAPEWATCH_TRADE_MAX_SKEW_MS)")
    ] = None,
    market_seed: Annotated[
        int | None,
        typer.Option(help="Load the grids of the order-book market of this seed (`tapewatch produce market --seed`)"),
    ] = None,
    market_symbols: Annotated[int, typer.Option(min=1, help="…of this many symbols (produce market --symbols)")] = 8,
    market_venue: Annotated[
        str, typer.Option(help="…on this venue (produce market --venue)")
    ] = ORDER_BOOK_MARKET_VENUE,
) -> None:
    """Follow the signal topics on md.quotes/md.books with each paper account of TAPEWATCH_TRADE_ACCOUNTS:
    orders, fills and portfolio snapshots to their topics, refused inputs to dlq.streams, until stopped."""
    from tapewatch.execution.accounts import parse_accounts
    from tapewatch.settings import load_settings
    from tapewatch.streams.trade import TradeWorker

    settings = load_settings()
    if start not in ("earliest", "latest"):
        raise TapewatchError("--start must be earliest or latest")
    try:
        accounts = parse_accounts(settings.trade.accounts)
    except ValueError as exc:
        raise TapewatchError(str(exc)) from None
    begin: Literal["earliest", "latest"] = "earliest" if start == "earliest" else "latest"
    rules = venue_rules(settings)
    if binance:
        rules = rules.merged(binance_rules(settings))
    if market_seed is not None:
        rules = rules.merged(market_rules(market_seed, market_symbols, market_venue))
    skew = settings.trade.max_skew_ms if max_skew_ms is None else max_skew_ms
    worker = TradeWorker(settings, name, accounts, rules, max_skew_ms=skew, start=begin)
    worker.prepare()
    log.info("paper trader %s: accounts %s", name, ", ".join(a.name for a in accounts))
    try:
        counters = worker.run(until_idle_s=until_idle)
    except Exception as exc:  # the traceback goes to the log; the CLI ends with one line
        log.critical("paper trader %s failed; it resumes from its last checkpoint: %r", name, exc, exc_info=True)
        raise TapewatchError(f"paper trader crashed: {exc!r}") from None
    out = dict(counters.out)
    console.print(
        f"paper trader {name}: {counters.events_in} records read, {counters.applied} applied, "
        f"{out.get('order', 0)} order events, {out.get('fill', 0)} fills, {out.get('portfolio', 0)} snapshots, "
        f"{counters.dead_letters} dead letters"
    )


When = Annotated[
    str | None,
    typer.Option(help="ISO date or date-time, e.g. 2026-11-26 or 2026-11-26T09:00+08:00 (no zone: UTC)"),
]


def parse_when(text: str | None, option: str) -> datetime | None:
    """An option's ISO date or date-time as an aware datetime (UTC when it names no zone); None for None.

    >>> parse_when("2026-11-26", "--since")
    datetime.datetime(2026, 11, 26, 0, 0, tzinfo=datetime.timezone.utc)
    >>> parse_when("2026-11-26T09:00+08:00", "--until").isoformat()
    '2026-11-26T09:00:00+08:00'
    """
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TapewatchError(f"trade report: {option} {text!r} is not an ISO date or date-time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def describe_selection(accounts: list[str], since: datetime | None, until: datetime | None) -> str:
    """What the report covers, in words (its first line).

    >>> describe_selection([], None, None)
    'every account, all time'
    >>> describe_selection(["b", "a"], datetime(2026, 11, 26, tzinfo=UTC), None)
    'accounts a, b, from 2026-11-26T00:00:00+00:00'
    """
    who = f"accounts {', '.join(sorted(accounts))}" if accounts else "every account"
    ends = [f"from {since.isoformat()}"] if since else []
    ends += [f"until {until.isoformat()} (exclusive)"] if until else []
    return ", ".join([who, *ends]) if ends else f"{who}, all time"


@trade_app.command("report")
def report_command(
    out: Annotated[Path, typer.Option(help="Directory for report.md and its PNG charts")] = Path("reports/trade"),
    account: Annotated[
        list[str] | None, typer.Option("--account", help="Only this paper account (repeat for more; default: all)")
    ] = None,
    since: When = None,
    until: When = None,
) -> None:
    """The trader's report on paper trading: P&L over time, win rate, trades per hour, fees and taxes, slippage
    against the decision price (per account, symbol and signal model) and what became of the orders; from the
    paper_orders, paper_fills and paper_portfolio tables (`tapewatch sink postgres` fills them)."""
    from tapewatch.evaluation.paper_report import write_trade_report
    from tapewatch.settings import load_settings
    from tapewatch.sinks import db
    from tapewatch.sinks.trade_history import load_trade_history

    accounts = sorted(set(account or []))
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    if start is not None and end is not None and start >= end:
        raise TapewatchError("trade report: --since must be before --until")
    settings = load_settings()
    with console.status("reading the paper-trading history…"):
        db.upgrade(settings)
        engine = db.make_engine(settings)
        try:
            history = load_trade_history(engine, accounts, start, end)
        finally:
            engine.dispose()
    frames = (history.orders, history.fills, history.portfolio)
    paths = write_trade_report(*frames, out, describe_selection(accounts, start, end))
    if all(frame.empty for frame in frames):
        console.print(
            f"wrote {paths['report']}: nothing to report yet (no orders, fills or portfolio snapshots)", soft_wrap=True
        )
    else:
        charts = len(paths) - 1
        console.print(
            f"wrote {paths['report']} and {charts} chart{'' if charts == 1 else 's'} beside it", soft_wrap=True
        )
