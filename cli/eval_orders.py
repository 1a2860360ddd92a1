"""`tapewatch eval orders`, `eval public-spoofing` and `eval public-wash`: the order-level detectors on a generator's
market-by-order feed and drop copy (the order-book market's, ``--generator lob``, or the labelled simulator's,
``sim``), seed by seed."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.cli.detect import _seed_list
from tapewatch.records import AlertKind


def _fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


#: the generators' names in the tables' titles
_MARKETS = {"lob": "order-book market", "sim": "simulator"}


def _generator(value: str) -> str:
    if value not in _MARKETS:
        raise typer.BadParameter(f"one of {', '.join(_MARKETS)}")
    return value


def eval_orders(
    seeds: Annotated[str, typer.Option(help="Evaluated seeds: 201-206 or 201,203")] = "201-206",
    symbols: Annotated[int, typer.Option(min=1, help="Symbols per session")] = 8,
    minutes: Annotated[float, typer.Option(min=1, help="Session minutes (ends at 13:30 Taipei)")] = 210.0,
    firm_agents: Annotated[
        float, typer.Option(min=0, max=1, help="Share of the manipulators and look-alikes trading through the firm")
    ] = 0.5,
    generator: Annotated[
        str, typer.Option(callback=_generator, help="The labelled market: lob (order-book market) or sim (simulator)")
    ] = "lob",
) -> None:
    """Spoofing, wash trading, pumps, marking the close and quote stuffing found by account in the firm's drop copy
    (feed shape mbo+firm of the order-book market or, ``--generator sim``, of the simulator; both with their quote
    stuffers): per kind, the episodes (all, and those through the firm) found, precision, F1, the share of true alerts
    naming the episode's account, the median time from an episode's first order to the first alert naming its
    account, the alerts on look-alikes, and the alerts on clean symbols."""
    from tapewatch.evaluation.order_level import evaluate_sessions

    console = Console()
    report = evaluate_sessions(_seed_list(seeds), symbols, minutes, firm_agents, generator)
    market = _MARKETS[generator]
    table = Table(title=f"firm drop copy, {market}, seeds {seeds} ({symbols} symbols × {minutes:g} min)")
    for column in ("kind", "episodes", "through the firm", "found", "found (firm)", "alerts", "precision",
                   "F1 (all)", "F1 (firm)", "account named", "false on look-alikes",
                   "median onset → alert (s)"):  # fmt: skip
        table.add_column(column, justify="left" if column == "kind" else "right")
    for k in report.kinds:
        named = k.named_right / k.true_alerts if k.true_alerts else math.nan
        table.add_row(
            k.kind,
            str(k.episodes),
            str(k.firm_episodes),
            str(k.detected),
            str(k.firm_detected),
            str(k.alerts),
            _fmt(k.precision),
            _fmt(k.f1(k.recall)),
            _fmt(k.f1(k.firm_recall)),
            _fmt(named),
            str(k.lookalike_alerts),
            _fmt(k.median_delay_s),
        )
    console.print(table)
    per_day = report.clean_alerts / report.clean_symbol_days if report.clean_symbol_days else math.nan
    by_kind = ", ".join(f"{kind} {count}" for kind, count in report.clean_by_kind.items())
    console.print(
        f"alerts on clean symbols: {report.clean_alerts} in {report.clean_symbol_days} symbol-days "
        f"({_fmt(per_day)} a symbol-day; {by_kind})"
    )


Seeds = Annotated[str, typer.Option(help="Evaluated seeds: 201-206 or 201,203")]
Symbols = Annotated[int, typer.Option(min=1, help="Symbols per session")]
Minutes = Annotated[float, typer.Option(min=1, help="Session minutes (ends at 13:30 Taipei)")]
Generator = Annotated[
    str, typer.Option(callback=_generator, help="The labelled market: lob (order-book market) or sim (simulator)")
]


def eval_public_spoofing(
    seeds: Seeds = "201-206", symbols: Symbols = 8, minutes: Minutes = 210.0, generator: Generator = "lob"
) -> None:
    """Spoofing from the public market-by-order feed alone (feed shape mbo of the order-book market or,
    ``--generator sim``, of the simulator; every episode whoever traded it): found, precision, F1, look-alikes and
    clean symbol-days alerted; then the real Bitstamp capture as market-by-order events, where every alert is
    false."""
    _public_feed_report(AlertKind.SPOOFING, seeds, symbols, minutes, generator)


def eval_public_wash(
    seeds: Seeds = "201-206", symbols: Symbols = 8, minutes: Minutes = 210.0, generator: Generator = "lob"
) -> None:
    """Wash trading from the public market-by-order feed alone (feed shape mbo of the order-book market or,
    ``--generator sim``, of the simulator; every episode whoever traded it): found, precision, F1, look-alikes and
    clean symbol-days alerted; then the real Bitstamp capture as market-by-order events, where every alert is
    false."""
    _public_feed_report(AlertKind.WASH_TRADING, seeds, symbols, minutes, generator)


def _public_feed_report(kind: AlertKind, seeds: str, symbols: int, minutes: float, generator: str) -> None:
    from tapewatch.evaluation.order_level import collapse_alerts
    from tapewatch.evaluation.public_feed import evaluate, real_tape_alerts, sessions_of
    from tapewatch.producers.bitstamp_capture import SYMBOL, VENUE
    from tapewatch.producers.bitstamp_orders import sample_order_events

    console = Console()
    report = evaluate(sessions_of(_seed_list(seeds), symbols, minutes, generator), kind)
    r = report.result
    market = _MARKETS[generator]
    table = Table(title=f"public feed alone, {market}, seeds {seeds} ({symbols} symbols × {minutes:g} min)")
    for column in ("kind", "episodes", "found", "alerts", "true", "precision", "recall", "F1", "look-alikes alerted",
                   "alerts a clean symbol-day"):  # fmt: skip
        table.add_column(column, justify="left" if column == "kind" else "right")
    table.add_row(
        str(kind), str(r.episodes), str(r.detected), str(r.alerts), str(r.true_alerts), _fmt(r.precision),
        _fmt(r.recall), _fmt(report.f1), f"{r.lookalike_alerts} of {report.lookalikes}", _fmt(report.clean_per_day),
    )  # fmt: skip
    console.print(table)
    console.print(f"severities: {report.severities}")
    real = collapse_alerts(real_tape_alerts(sample_order_events(), SYMBOL, VENUE, kind))
    console.print(f"real Bitstamp capture (market-by-order): {len(real)} alerts {[str(a.severity) for a in real]}")
