"""Alerts on legitimate look-alikes: how many of a generator's labelled legitimate events (news repricings,
meta-orders, large genuine orders that get executed, market makers pulling their quotes) drew a manipulation
alert that no real episode explains.

A look-alike is **alerted** when an alert of one of the evaluated manipulation kinds, on its symbol, overlaps its
``[start - tolerance, end + tolerance]`` and matches no labelled episode (:mod:`tapewatch.evaluation.judge`'s matching
rule: same symbol and kind, overlapping windows within the tolerance). An alert that is a true detection does not
count against a look-alike it happens to overlap.

>>> episodes = pd.DataFrame({"symbol": ["A"], "kind": ["spoofing"], "start": [0], "end": [60_000]})
>>> events = pd.DataFrame({"symbol": ["A", "A", "B"], "kind": ["news", "quote_pull", "news"],
...                        "start": [30_000, 500_000, 0], "end": [40_000, 505_000, 300_000]})
>>> alerts = pd.DataFrame({"alert_id": ["a1", "a2", "a3"], "symbol": ["A", "A", "B"],
...     "kind": ["spoofing", "spoofing", "pump_and_dump"], "ts": [10_000, 501_000, 100_000],
...     "window_start": [5_000, 499_000, 90_000], "window_end": [20_000, 503_000, 120_000],
...     "score": [0.8, 0.7, 0.9], "severity": ["high", "medium", "high"]})
>>> rows = {r.kind: (r.events, r.alerted) for r in lookalike_alerts(episodes, events, alerts, 30_000)}
>>> rows
{'news': (2, 1), 'quote_pull': (1, 1)}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from tapewatch.evaluation import judge as ev

__all__ = ["LookalikeRate", "alerts_on_lookalikes", "false_alerts", "lookalike_alerts"]


@dataclass(frozen=True, slots=True)
class LookalikeRate:
    kind: str
    events: int
    alerted: int
    by_alert_kind: dict[str, int] = field(default_factory=dict)  # alerted events per kind of the alert

    @property
    def share(self) -> float:
        return self.alerted / self.events if self.events else float("nan")


def false_alerts(episodes: pd.DataFrame, alerts: pd.DataFrame, tolerance_ms: int) -> pd.DataFrame:
    """The collapsed alerts of the evaluated kinds that match no labelled episode."""
    collapsed = ev.collapse(alerts)
    collapsed = collapsed[collapsed["kind"].isin([str(k) for k in ev.EVALUATED_KINDS])]
    if collapsed.empty or episodes.empty:
        return collapsed.reset_index(drop=True)
    pairs = collapsed.reset_index().merge(episodes[["symbol", "kind", "start", "end"]], on=["symbol", "kind"])
    matched = (pairs["window_start"] <= pairs["end"] + tolerance_ms) & (
        pairs["window_end"] >= pairs["start"] - tolerance_ms
    )
    explained = set(pairs.loc[matched, "index"])
    return collapsed[~collapsed.index.isin(explained)].reset_index(drop=True)


def _overlapping(events: pd.DataFrame, false: pd.DataFrame, tolerance_ms: int) -> pd.DataFrame:
    """(look-alike, alert) pairs on one symbol whose windows overlap within the tolerance; ``index`` is the
    look-alike's row in ``events``, ``kind_alert`` the alert's kind."""
    alerts = false[["alert_id", "symbol", "kind", "window_start", "window_end"]]
    hits = events.reset_index().merge(alerts, on="symbol", suffixes=("", "_alert"))
    reach_start, reach_end = hits["start"] - tolerance_ms, hits["end"] + tolerance_ms
    return hits[(hits["window_start"] <= reach_end) & (hits["window_end"] >= reach_start)]


def alerts_on_lookalikes(
    episodes: pd.DataFrame, events: pd.DataFrame, alerts: pd.DataFrame, tolerance_ms: int
) -> pd.DataFrame:
    """The collapsed alerts of the evaluated kinds that match no labelled episode and overlap a look-alike."""
    false = false_alerts(episodes, alerts, tolerance_ms)
    on_lookalikes = set(_overlapping(events, false, tolerance_ms)["alert_id"])
    return false[false["alert_id"].isin(on_lookalikes)].reset_index(drop=True)


def lookalike_alerts(
    episodes: pd.DataFrame, events: pd.DataFrame, alerts: pd.DataFrame, tolerance_ms: int, kinds: Sequence[str] = ()
) -> list[LookalikeRate]:
    """Per look-alike kind (``kinds``, else those present): how many events, how many alerted."""
    wanted = list(kinds) or sorted(events["kind"].unique())
    false = false_alerts(episodes, alerts, tolerance_ms)
    rows = []
    for kind in wanted:
        mine = events[events["kind"] == kind]
        overlapping = _overlapping(mine, false, tolerance_ms)
        alerted = overlapping.drop_duplicates("index")
        by_kind = overlapping.drop_duplicates(["index", "kind_alert"]).groupby("kind_alert").size()
        rows.append(LookalikeRate(kind, len(mine), len(alerted), {str(k): int(v) for k, v in by_kind.items()}))
    return rows
