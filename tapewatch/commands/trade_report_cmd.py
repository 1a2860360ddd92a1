"""`tapewatch trade report`: the trader's report on paper trading, from what the PostgreSQL sink stored.

:func:`report_command` joins the ``trade`` group (:mod:`tapewatch.commands.trade`), which registers it as
``report``; importing this module registers nothing. The report itself is :mod:`offline.trade_report`, the rows
come from :mod:`sinks.trade_history`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tapewatch.errors import TapewatchError

console = Console()

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
    from offline.trade_report import write_trade_report
    from sinks import db
    from sinks.trade_history import load_trade_history
    from tapewatch.settings import load_settings

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
