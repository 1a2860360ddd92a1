"""Real tapes of liquid instruments, where every manipulation alert is false: how many alerts the detectors raise
per session, and how severe.

The tapes ship inside packages (nothing is downloaded at run time; :mod:`tapewatch.producers.real_tapes` loads them):
mlfinpy's E-mini S&P 500 futures prints (two Globex sessions, prints only), ob-analytics' Bitstamp BTC/USD
capture (thirty minutes of trades with sides and rebuilt books, counted as one session) and ta4j's week of Bitstamp
BTC/USD trades from November 2013 (prints only, seven UTC days). An alert is counted
once per ``alert_id`` at its highest severity.

The bar a desk sets for such a tape: at most one alert per session, and none high or critical.

A tape may also be run as a desk deploys: calibrated (:mod:`tapewatch.detectors.calibration`) on its first venue-local
days, then scored on the days after them only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import pandas as pd

from tapewatch.detectors.calibration import calibrate
from tapewatch.detectors.flow import FlowConfig
from tapewatch.detectors.seasonal import DAY_MS
from tapewatch.evaluation.lookback import Input, detect_frames, tick_input
from tapewatch.feeds import FeedProfile, FeedProfiles
from tapewatch.records import Alert, Severity

__all__ = ["MAX_ALERTS_PER_SESSION", "TapeResult", "run_tape"]

MAX_ALERTS_PER_SESSION: Final = 1.0
SERIOUS: Final = (Severity.HIGH, Severity.CRITICAL)


@dataclass(frozen=True)
class TapeResult:
    name: str
    prints: int
    sessions: int
    alerts: int  # distinct alerts (by id)
    by_kind: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)

    @property
    def per_session(self) -> float:
        return self.alerts / self.sessions if self.sessions else float("nan")

    @property
    def serious(self) -> int:
        return sum(self.by_severity.get(str(s), 0) for s in SERIOUS)

    @property
    def meets_bar(self) -> bool:
        return self.per_session <= MAX_ALERTS_PER_SESSION and self.serious == 0


def _strongest(alerts: Sequence[Alert]) -> list[Alert]:
    """One alert per id: its most severe emission."""
    order = {s: i for i, s in enumerate(Severity)}
    best: dict[str, Alert] = {}
    for alert in alerts:
        held = best.get(alert.alert_id)
        if held is None or order[alert.severity] > order[held.severity]:
            best[alert.alert_id] = alert
    return list(best.values())


def run_tape(
    name: str,
    ticks: pd.DataFrame,
    sessions: int,
    *,
    flow_config: FlowConfig | None = None,
    feeds: Callable[[str], FeedProfile] | None = None,
    calibrate_days: int = 0,
) -> TapeResult:
    """The stream's detectors (patterns, no K-means model) over one real tape's tick rows
    (:mod:`tapewatch.producers.real_tapes` loads them); with ``calibrate_days``, calibrated on that many first
    venue-local days and scored on the rest."""
    calibrations = None
    if calibrate_days:
        profiles = feeds or FeedProfiles()
        ticks, history = _split_days(ticks, calibrate_days, profiles)
        sessions -= calibrate_days
        learnt = detect_frames(_input(history), None, flow_config=flow_config, feeds=feeds)
        venue = str(history["venue"].iloc[0])
        calibrations = {venue: calibrate(learnt.detectors, venue, profiles(venue).prints, sessions=calibrate_days)}
    detected = detect_frames(_input(ticks), None, flow_config=flow_config, feeds=feeds, calibrations=calibrations)
    alerts = _strongest(detected.alerts)
    return TapeResult(
        name=name,
        prints=len(ticks) if _is_bars(ticks) else int(ticks["price"].notna().sum()),
        sessions=sessions,
        alerts=len(alerts),
        by_kind=dict(Counter(str(a.kind) for a in alerts)),
        by_severity=dict(Counter(str(a.severity) for a in alerts)),
    )


def _split_days(
    ticks: pd.DataFrame, days: int, feeds: Callable[[str], FeedProfile]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the ticks after the first ``days`` venue-local days, those days' ticks); one venue a tape."""
    venues = set(ticks["venue"].astype(str))
    if len(venues) != 1:
        raise ValueError(f"a tape calibrated on its first days holds one venue, not {sorted(venues)}")
    offset = feeds(venues.pop()).utc_offset_min * 60_000
    day = (ticks["start" if _is_bars(ticks) else "ts"] + offset) // DAY_MS
    first = sorted(day.unique())
    if len(first) <= days:
        raise ValueError(f"the tape covers {len(first)} day(s): nothing left to score after {days} calibrated")
    history = day.isin(first[:days])
    return ticks[~history], ticks[history]


def _is_bars(rows: pd.DataFrame) -> bool:
    """A tape of 1-minute bars (``start``, ``open`` … ``volume``) rather than tick rows."""
    return "start" in rows.columns and "price" not in rows.columns


def _input(rows: pd.DataFrame) -> Input:
    return Input("bars", rows) if _is_bars(rows) else tick_input(rows)
