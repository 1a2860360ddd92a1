"""`tapewatch eval orders`: the order-level detectors on the order-book market's drop copy, seed by seed."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.cli.detect import _seed_list


def _fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def eval_orders(
    seeds: Annotated[str, typer.Option(help="Evaluated seeds: 201-206 or 201,203")] = "201-206",
    symbols: Annotated[int, typer.Option(min=1, help="Symbols per session")] = 8,
    minutes: Annotated[float, typer.Option(min=1, help="Session minutes (ends at 13:30 Taipei)")] = 210.0,
    firm_agents: Annotated[
        float, typer.Option(min=0, max=1, help="Share of the manipulators and look-alikes trading through the firm")
    ] = 0.5,
) -> None:
    """Spoofing and wash trading found by account in the firm's drop copy (feed shape mbo+firm of the order-book
    market): per kind, the episodes (all, and those through the firm) found, precision, F1, the share of true
    alerts naming the episode's account, and the alerts on clean symbols."""
    from tapewatch.evaluation.order_level import evaluate_sessions

    console = Console()
    report = evaluate_sessions(_seed_list(seeds), symbols, minutes, firm_agents)
    table = Table(title=f"firm drop copy, order-book market, seeds {seeds} ({symbols} symbols × {minutes:g} min)")
    for column in ("kind", "episodes", "through the firm", "found", "found (firm)", "alerts", "precision",
                   "F1 (all)", "F1 (firm)", "account named", "false on look-alikes"):  # fmt: skip
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
        )
    console.print(table)
    per_day = report.clean_alerts / report.clean_symbol_days if report.clean_symbol_days else math.nan
    console.print(
        f"alerts on clean symbols: {report.clean_alerts} in {report.clean_symbol_days} symbol-days "
        f"({_fmt(per_day)} a symbol-day)"
    )
