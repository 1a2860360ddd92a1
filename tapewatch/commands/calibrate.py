"""`tapewatch calibrate`: a venue's time-of-day baselines and score cut-offs, learnt over its own history and
published as a versioned artifact that the stream worker and `detect file` start new symbols from."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.commands.detect import Inputs, user_errors
from tapewatch.errors import TapewatchError
from tapewatch.settings import load_settings

if TYPE_CHECKING:
    import pandas as pd

    from detectors.alert_budget import BudgetLine
    from tapewatch.records import Alert, AlertKind

console = Console()


def calibrate(
    inputs: Inputs,
    venue: Annotated[str, typer.Option(help="The venue calibrated: rows without one are this venue's")],
    budget: Annotated[float, typer.Option(help="Alerts per symbol-day the desk can work, all kinds together")] = 0.5,
) -> None:
    """Replays the detectors over a venue's ticks (CSV or Parquet, at least two venue-local days): learns what each
    symbol's tape usually does at each time of day, then sets each alert kind's score cut-off so that the history's
    alerts stay within the budget, and publishes both as ``calibration-<venue>`` in the model directory."""
    from detectors.alert_budget import cutoffs, symbol_days_needed
    from detectors.alerting import PolicyParams
    from detectors.calibration import calibrate as learn
    from detectors.patterns import PatternParams
    from offline.lookback import detect_frames, read_input
    from tapewatch.artifacts import ArtifactStore

    settings = load_settings()
    profile = settings.feeds()(venue)
    flow, grace, feeds = settings.flow_config(), settings.stream_grace_ms, settings.feeds()
    with user_errors():
        with console.status("reading history…"):
            data = read_input(inputs, venue)
        other = sorted(set(data.frame["venue"].astype(str)) - {venue})
        if other:
            raise TapewatchError(f"calibrate: the input holds other venues too ({', '.join(other)}): one venue a run")
        sessions, symbol_days = _days(data.frame, profile.utc_offset_min)
        with console.status("learning the time-of-day baselines…"):
            learnt = detect_frames(data, None, flow_config=flow, grace_ms=grace, feeds=feeds)
        calibration = learn(learnt.detectors, venue, profile.prints, sessions=sessions)
        with console.status("replaying from them to set the cut-offs…"):
            again = detect_frames(
                data, None, flow_config=flow, grace_ms=grace, feeds=feeds, calibrations={venue: calibration}
            )
        lines: list[BudgetLine] = []
        if symbol_days >= symbol_days_needed(budget):
            minimum = PolicyParams().default_min_score
            lines = cutoffs(_best_scores(again.alerts), symbol_days=symbol_days, budget=budget, floor=minimum)
            calibration = calibration.with_budget(lines, budget, symbol_days)
    gate = PatternParams().for_feed(flow, profile).materiality
    materiality = {"floor_bps": gate.floor_bps, "typical_multiple": gate.typical_multiple}
    artifact = calibration.save(ArtifactStore(settings.models_path), {"materiality": materiality})
    if lines:
        _print_budget(lines, symbol_days, budget)
    else:
        console.print(
            f"[yellow]no score cut-offs: a budget of {budget:g} alerts per symbol-day needs "
            f"{symbol_days_needed(budget)} symbol-days of history, this one holds {symbol_days:g} "
            "(the time-of-day baselines are calibrated, the cut-offs stay the defaults)[/]"
        )
    baselines = sum(len(rows) for rows in calibration.symbols.values())
    console.print(
        f"calibration of {venue!r}: {len(calibration.symbols)} symbol(s), {sessions} session(s), "
        f"{symbol_days:g} symbol-day(s), {baselines} time-of-day baselines → {Path(artifact.path)}"
    )


def _days(frame: pd.DataFrame, utc_offset_min: int) -> tuple[int, float]:
    """(venue-local days the history covers, symbol-days it holds)."""
    day = (frame["ts"] + utc_offset_min * 60_000) // 86_400_000
    return int(day.nunique()), float(frame.assign(day=day).groupby("symbol")["day"].nunique().sum())


def _best_scores(alerts: Sequence[Alert]) -> dict[AlertKind, list[float]]:
    """Per kind, each alert's best score (an alert is re-emitted under its id as it escalates)."""
    best: dict[str, Alert] = {}
    for alert in alerts:
        if alert.alert_id not in best or alert.score > best[alert.alert_id].score:
            best[alert.alert_id] = alert
    scores: dict[AlertKind, list[float]] = defaultdict(list)
    for alert in best.values():
        scores[alert.kind].append(alert.score)
    return scores


def _print_budget(lines: Sequence[BudgetLine], symbol_days: float, budget: float) -> None:
    table = Table(title=f"alert budget {budget:g} per symbol-day over {symbol_days:g} symbol-days")
    for column in ("kind", "allowed", "cut-off", "above the line", "per symbol-day", "met", "just below the line"):
        table.add_column(column)
    for line in lines:
        table.add_row(
            str(line.kind),
            str(line.allowed),
            f"{line.cutoff:.6f}",
            str(line.above),
            f"{line.above / symbol_days:.3f}",
            "yes" if line.met else "[red]no[/]",
            ", ".join(f"{score:.3f}" for score in line.below) or "–",
        )
    console.print(table)
