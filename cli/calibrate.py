"""`tapewatch calibrate`: a venue's time-of-day baselines and score cut-offs, learnt over its own history and
published as a versioned artifact that the stream worker and `detect file` start new symbols from."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.errors import TapewatchError
from tapewatch.settings import load_settings

if TYPE_CHECKING:
    import pandas as pd

    from tapewatch.detectors.alert_budget import BudgetLine
    from tapewatch.detectors.calibration import Calibration
    from tapewatch.evaluation.lookback import DetectionOutput
    from tapewatch.records import Alert, AlertKind
    from tapewatch.settings import Settings

console = Console()


#: where a calibration's history comes from: files of ticks, or what the PostgreSQL sink stored
HistoryFiles = Annotated[
    list[Path] | None,
    typer.Argument(help="CSV or Parquet: ticks (symbol, ts, price, size, …) or 1m bars (none with --from-db)"),
]


@dataclass(frozen=True)
class _History:
    """A venue's history: its rows' (symbol, ts), and the detectors replayed over it from a calibration or none."""

    rows: pd.DataFrame
    detect: Callable[[Mapping[str, Calibration] | None], DetectionOutput]
    #: symbol → trades in the history (its liquidity tier's measure; bars without trade counts: their volume)
    trades: Mapping[str, float]


def calibrate(
    inputs: HistoryFiles = None,
    venue: Annotated[str, typer.Option(help="The venue calibrated: rows without one are this venue's")] = "",
    budget: Annotated[float, typer.Option(help="Alerts per symbol-day the desk can work, all kinds together")] = 0.5,
    from_db: Annotated[
        bool, typer.Option("--from-db", help="The order-flow chunks the PostgreSQL sink stored, not files")
    ] = False,
    since: Annotated[str | None, typer.Option(help="--from-db: from this UTC day on (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, typer.Option(help="--from-db: up to this UTC day, excluded (YYYY-MM-DD)")] = None,
) -> None:
    """Replays the detectors over a venue's history (ticks in CSV or Parquet files, or with ``--from-db`` the
    order-flow chunks the PostgreSQL sink stored; at least two venue-local days): learns what each symbol's tape
    usually does at each time of day and its records, then sets each alert kind's score cut-off so that the
    history's alerts stay within the budget, and publishes both as ``calibration-<venue>`` in the model
    directory."""
    from tapewatch.artifacts import ArtifactStore
    from tapewatch.detectors.alert_budget import cutoffs, symbol_days_needed
    from tapewatch.detectors.alerting import PolicyParams
    from tapewatch.detectors.calibration import calibrate as learn
    from tapewatch.detectors.flow import FlowConfig
    from tapewatch.detectors.patterns import PatternParams

    settings = load_settings()
    if not venue:
        raise TapewatchError("calibrate: name the venue (--venue)")
    if bool(inputs) == from_db:
        raise TapewatchError("calibrate: give the history as files or as --from-db, one of them")
    if (since or until) and not from_db:
        raise TapewatchError("calibrate: --since and --until select stored chunks (--from-db); cut files yourself")
    profile = settings.venues.feeds()(venue)
    flow = FlowConfig.from_settings(settings)
    with console.status("reading history…"):
        history = _stored(settings, venue, since, until) if from_db else _files(settings, inputs or [], venue)
    sessions, symbol_days = _days(history.rows, profile.utc_offset_min)
    with console.status("learning the time-of-day baselines…"):
        learnt = history.detect(None)
    calibration = learn(learnt.detectors, venue, profile.prints, sessions=sessions)
    with console.status("replaying from them to set the cut-offs…"):
        again = history.detect({venue: calibration})
    lines: list[BudgetLine] = []
    tier_lines: dict[str, list[BudgetLine]] = {}
    if symbol_days >= symbol_days_needed(budget):
        minimum = PolicyParams().default_min_score
        lines = cutoffs(_best_scores(again.alerts), symbol_days=symbol_days, budget=budget, floor=minimum)
        calibration = calibration.with_budget(lines, budget, symbol_days)
        calibration, tier_lines = _per_tier(calibration, history, again.alerts, budget, profile.utc_offset_min)
    gate = PatternParams().for_feed(flow, profile).materiality
    materiality = {"floor_bps": gate.floor_bps, "typical_multiple": gate.typical_multiple}
    artifact = calibration.save(ArtifactStore(settings.local.models_path), {"materiality": materiality})
    if lines:
        _print_budget(lines, symbol_days, budget)
        _print_tiers(calibration, tier_lines)
    else:
        console.print(
            f"[yellow]no score cut-offs: a budget of {budget:g} alerts per symbol-day needs "
            f"{symbol_days_needed(budget)} symbol-days of history, this one holds {symbol_days:g} "
            "(the time-of-day baselines are calibrated, the cut-offs stay the defaults)[/]"
        )
    _print_published(calibration, symbol_days, Path(artifact.path))


def _print_published(calibration: Calibration, symbol_days: float, path: Path) -> None:
    baselines = sum(len(rows) for rows in calibration.symbols.values())
    console.print(
        f"calibration of {calibration.venue!r}: {len(calibration.symbols)} symbol(s), {calibration.sessions} "
        f"session(s), {symbol_days:g} symbol-day(s), {baselines} time-of-day baselines → {path}"
    )


def _per_tier(
    calibration: Calibration, history: _History, alerts: Sequence[Alert], budget: float, utc_offset_min: int
) -> tuple[Calibration, dict[str, list[BudgetLine]]]:
    """The calibration with its symbols' liquidity tiers, and the cut-offs of each tier with history enough."""
    from tapewatch.detectors.alert_budget import TIERS, cutoffs, liquidity_tiers, symbol_days_needed
    from tapewatch.detectors.alerting import PolicyParams

    days = _symbol_days(history.rows, utc_offset_min)
    tiers = liquidity_tiers({symbol: n / days[symbol] for symbol, n in history.trades.items() if symbol in days})
    lines: dict[str, list[BudgetLine]] = {}
    for tier in TIERS:
        members = {symbol for symbol, named in tiers.items() if named == tier}
        tier_days = float(sum(days[symbol] for symbol in members))
        if members and tier_days >= symbol_days_needed(budget):
            scores = _best_scores([a for a in alerts if a.symbol in members])
            floor = PolicyParams().default_min_score
            lines[tier] = cutoffs(scores, symbol_days=tier_days, budget=budget, floor=floor)
    return calibration.with_tiers(tiers, lines), lines


def _files(settings: Settings, inputs: Sequence[Path], venue: str) -> _History:
    """Ticks (or bars) from files, run through the flow stage as the stream runs them."""
    from tapewatch.detectors.flow import FlowConfig
    from tapewatch.evaluation.lookback import detect_frames, read_input

    data = read_input(list(inputs), venue)
    other = sorted(set(data.frame["venue"].astype(str)) - {venue})
    if other:
        raise TapewatchError(f"calibrate: the input holds other venues too ({', '.join(other)}): one venue a run")
    flow, grace, feeds = FlowConfig.from_settings(settings), settings.stream.grace_ms, settings.venues.feeds()

    def detect(calibrations: Mapping[str, Calibration] | None) -> DetectionOutput:
        return detect_frames(data, None, flow_config=flow, grace_ms=grace, feeds=feeds, calibrations=calibrations)

    frame = data.frame
    # bars that do not count their trades are tiered by their volume: one measure for every symbol of the venue
    counted = frame["price"].notna() if "price" in frame else frame.get("trades", frame["volume"])
    trades = counted.astype("float64").groupby(frame["symbol"].astype(str)).sum()
    rows = frame[["symbol", "ts"]] if data.kind == "ticks" else frame[["symbol"]].assign(ts=frame["start"])
    return _History(rows, detect, {str(k): float(n) for k, n in trades.items()})


def _stored(settings: Settings, venue: str, since: str | None, until: str | None) -> _History:
    """The order-flow chunks the PostgreSQL sink stored for the venue, refused if another flow stage computed them."""
    import pandas as pd

    from tapewatch.detectors.flow import FLOW_FEATURE_NAMES, FLOW_FEATURE_SET_VERSION, FlowConfig
    from tapewatch.evaluation.lookback import replay_flow
    from tapewatch.sinks.db import make_engine
    from tapewatch.sinks.flow_history import read_flow_chunks

    engine = make_engine(settings)
    try:
        stored = read_flow_chunks(engine, venue, _day_ms(since, "--since"), _day_ms(until, "--until"))
    finally:
        engine.dispose()
    if stored.empty:
        raise TapewatchError(f"calibrate: PostgreSQL holds no order-flow chunks of venue {venue!r} in that range")
    versions = sorted(set(stored["version"]) - {FLOW_FEATURE_SET_VERSION})
    if versions:
        raise TapewatchError(
            f"calibrate: stored chunks of {venue!r} were computed by {', '.join(versions)}, this code's flow stage is "
            f"{FLOW_FEATURE_SET_VERSION}: select days it computed (--since) or calibrate from files"
        )
    values = pd.DataFrame.from_records(stored["values"].tolist(), columns=list(FLOW_FEATURE_NAMES))
    chunks = pd.concat([stored[["symbol", "ts"]], values.astype("float64")], axis=1)
    venues = dict.fromkeys(chunks["symbol"].astype(str).unique().tolist(), venue)
    flow, feeds = FlowConfig.from_settings(settings), settings.venues.feeds()

    def detect(calibrations: Mapping[str, Calibration] | None) -> DetectionOutput:
        return replay_flow(chunks, venues, flow_config=flow, feeds=feeds, calibrations=calibrations)

    trades = chunks["trades"].fillna(0.0).groupby(chunks["symbol"].astype(str)).sum()
    return _History(chunks[["symbol", "ts"]], detect, {str(k): float(n) for k, n in trades.items()})


def _day_ms(day: str | None, option: str) -> int | None:
    if day is None:
        return None
    try:
        return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)
    except ValueError:
        raise TapewatchError(f"calibrate: {option} {day!r}: give a day as YYYY-MM-DD") from None


def _local_day(rows: pd.DataFrame, utc_offset_min: int) -> pd.Series:
    return (rows["ts"] + utc_offset_min * 60_000) // 86_400_000


def _days(frame: pd.DataFrame, utc_offset_min: int) -> tuple[int, float]:
    """(venue-local days the history covers, symbol-days it holds)."""
    sessions = int(_local_day(frame, utc_offset_min).nunique())
    return sessions, float(sum(_symbol_days(frame, utc_offset_min).values()))


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


def _symbol_days(rows: pd.DataFrame, utc_offset_min: int) -> dict[str, int]:
    """Symbol → the venue-local days it traded in the history."""
    day = _local_day(rows, utc_offset_min)
    return {str(symbol): int(n) for symbol, n in rows.assign(day=day).groupby("symbol")["day"].nunique().items()}


def _print_tiers(calibration: Calibration, lines: Mapping[str, Sequence[BudgetLine]]) -> None:
    """One line per liquidity tier: its symbols and its own cut-offs, or why it takes the venue's."""
    from tapewatch.detectors.alert_budget import TIERS
    from tapewatch.detectors.alerting import PolicyParams

    floor = PolicyParams().default_min_score
    if not calibration.tiers:
        console.print("liquidity tiers: too few symbols to tell them apart (the venue's cut-offs apply to all)")
        return
    table = Table("liquidity tier", "symbols", "cut-offs", title="cut-offs per liquidity tier")
    for tier in TIERS:
        members = sorted(symbol for symbol, named in calibration.tiers.items() if named == tier)
        if not members:
            continue
        own = lines.get(tier)
        if own is None:
            cut = "the venue's (too short a history for the tier's own)"
        else:
            raised = [f"{line.kind} {line.cutoff:.3f}" for line in own if line.cutoff > floor]
            cut = ", ".join(raised) or "the policy's minimum for every kind"
        shown = ", ".join(members[:6]) + (f" … ({len(members)})" if len(members) > 6 else "")
        table.add_row(tier, shown, cut)
    console.print(table)


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
