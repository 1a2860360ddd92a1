"""A venue's calibration: what its symbols' tapes usually look like by time of day, learnt over its own history, so
that the first session after deployment is judged against what every session does and not against the quiet hour
before the open; and the score cut-offs that hold the venue's alerts to a budget
(:mod:`tapewatch.detectors.alert_budget`).

:func:`calibrate` gathers the time-of-day baselines (:class:`tapewatch.detectors.seasonal.TimeOfDayProfile`) the
materiality gate of each symbol's detector learnt over a replay of the venue's history; :meth:`Calibration.seed`
starts a new detector from them. :meth:`Calibration.to_artifact` / :meth:`Calibration.from_artifact` are the
versioned artifact's manifest and weights (stored like the K-means models, :mod:`tapewatch.artifacts`).

A calibration is for one venue and one feed shape: :meth:`Calibration.check` refuses another venue's, another feed
shape's or another bucket layout's with one line. A history shorter than :data:`MIN_SESSIONS` venue-local days
cannot say what a time of day usually does: :func:`calibrate` refuses it and says how much is needed.

>>> from tapewatch.detectors.patterns import PatternParams, SymbolDetector, TapeParams
>>> params = PatternParams(tape=TapeParams(close_time=None))
>>> detector = SymbolDetector("ES", "cme", params=params)
>>> for ts in range(5_000, 2 * 86_400_000 + 1, 60_000):
...     _ = detector.on_chunk(ts, {"ret_bps": 1.0, "volume": 5.0})
>>> calibration = calibrate({"ES": detector}, "cme", "trades", sessions=2)
>>> calibration.symbols["ES"][0][:2]  # bucket 00:00-00:30: two sessions, a 2-minute drift of 2 bps
[2.0, 4.0]
>>> fresh = SymbolDetector("ES", "cme", params=params)
>>> calibration.seed(fresh)
True
>>> try:
...     calibration.check("binance", "trades", params)
... except CalibrationError as refused:
...     print(refused)
calibration of venue 'cme' refused for venue 'binance': calibrate that venue on its own history
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from tapewatch.artifacts import Artifact, ArtifactStore, data_hash
from tapewatch.detectors.alert_budget import BudgetLine
from tapewatch.detectors.alerting import PolicyParams
from tapewatch.detectors.patterns import PatternParams, SymbolDetector
from tapewatch.detectors.patterns.materiality import RECORD_SERIES, SERIES
from tapewatch.errors import TapewatchError
from tapewatch.feeds import Prints
from tapewatch.records import AlertKind

#: the artifact family (``kind`` in the manifest)
ARTIFACT_KIND: Final = "calibration"
#: a history must cover this many venue-local days to calibrate
MIN_SESSIONS: Final = 2


class CalibrationError(TapewatchError, ValueError):
    """A calibration that cannot be made or used: too short a history, another venue's or feed shape's."""


def artifact_name(venue: str) -> str:
    """The artifact store's name of a venue's calibrations."""
    return f"calibration-{venue}"


@dataclass(frozen=True)
class Calibration:
    venue: str
    prints: Prints | None
    bucket_minutes: int
    series: tuple[str, ...]
    #: venue-local days the history covered
    sessions: int
    #: symbol → bucket → [sessions, mean of each series (``None``: not measured)]
    symbols: Mapping[str, Mapping[int, Sequence[float | None]]]
    #: per alert kind, the score cut-off set to the alert budget on the history
    #: (:mod:`tapewatch.detectors.alert_budget`; empty: the policy's defaults), the budget (alerts per symbol-day) and
    #: the symbol-days it was met over
    min_score: Mapping[str, float] = field(default_factory=dict)
    budget: float | None = None
    symbol_days: float = 0.0
    #: symbol (of :attr:`symbols`) → the maxima of each of its last sessions in the history, of
    #: :data:`RECORD_SERIES` (``None``: no such hit that session): the records a burst must beat from the first
    #: session on
    records: Mapping[str, Sequence[Sequence[float | None]]] = field(default_factory=dict)
    #: symbol → its liquidity tier (:func:`tapewatch.detectors.alert_budget.liquidity_tiers`), and per tier with history
    #: enough its own cut-offs (a symbol of another tier, or one the history never saw, takes ``min_score``)
    tiers: Mapping[str, str] = field(default_factory=dict)
    tier_min_score: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def check(self, venue: str, prints: Prints | None, params: PatternParams) -> None:
        """Refuses (one line) a calibration made for another venue, feed shape or bucket layout."""
        if venue != self.venue:
            raise CalibrationError(
                f"calibration of venue {self.venue!r} refused for venue {venue!r}: calibrate that venue on its own "
                "history"
            )
        if prints != self.prints:
            raise CalibrationError(
                f"calibration of {self.venue!r} was made on {self.prints or 'unprofiled'} prints, the feed now sends "
                f"{prints or 'unprofiled'} ones: calibrate again on this feed's history"
            )
        layout = (params.materiality.seasonal.bucket_minutes, SERIES)
        if (self.bucket_minutes, self.series) != layout:
            raise CalibrationError(
                f"calibration of {self.venue!r} has {self.bucket_minutes}-minute buckets of {list(self.series)}, "
                f"this code keeps {layout[0]}-minute buckets of {list(layout[1])}: calibrate again"
            )

    def seed(self, detector: SymbolDetector) -> bool:
        """Starts a new detector of this venue from its symbol's baselines; ``False``: the history never saw the
        symbol (its baselines start empty). Either way its alerts say the venue is calibrated."""
        learnt = self.symbols.get(detector.symbol)
        detector.patterns.materiality.seed(learnt or {}, self.records.get(detector.symbol, ()))
        return learnt is not None

    def policy(self, base: PolicyParams | None = None, symbol: str | None = None) -> PolicyParams:
        """The alert policy with the cut-offs of the symbol's liquidity tier where it has its own, else the venue's
        (never below the base policy's own minimum)."""
        base = base or PolicyParams()
        scores = self.tier_min_score.get(self.tiers.get(symbol or "", ""), self.min_score)
        cut = {AlertKind(kind): max(base.threshold(AlertKind(kind)), score) for kind, score in scores.items()}
        return replace(base, min_score={**base.min_score, **cut})

    def with_budget(self, lines: Sequence[BudgetLine], budget: float, symbol_days: float) -> Calibration:
        """This calibration with the cut-offs :func:`tapewatch.detectors.alert_budget.cutoffs` set."""
        return replace(
            self, min_score={str(line.kind): line.cutoff for line in lines}, budget=budget, symbol_days=symbol_days
        )

    def with_tiers(self, tiers: Mapping[str, str], lines: Mapping[str, Sequence[BudgetLine]]) -> Calibration:
        """This calibration with its symbols' liquidity tiers and the cut-offs set for each tier in ``lines``."""
        by_tier = {tier: {str(line.kind): line.cutoff for line in tier_lines} for tier, tier_lines in lines.items()}
        return replace(self, tiers=dict(tiers), tier_min_score=by_tier)

    def to_artifact(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[np.float64]]]:
        """(manifest fields, weights): one array symbols × buckets × (sessions, series…), NaN where unknown."""
        names = sorted(self.symbols)
        buckets = 1440 // self.bucket_minutes
        table = np.full((len(names), buckets, 1 + len(self.series)), np.nan)
        for i, symbol in enumerate(names):
            for bucket, row in self.symbols[symbol].items():
                table[i, bucket] = [np.nan if x is None else x for x in row]
        manifest = {
            "kind": ARTIFACT_KIND,
            "venue": self.venue,
            "prints": self.prints,
            "bucket_minutes": self.bucket_minutes,
            "series": list(self.series),
            "sessions": self.sessions,
            "symbols": names,
            "min_score": dict(self.min_score),
            "budget": self.budget,
            "symbol_days": self.symbol_days,
            "tiers": dict(self.tiers),
            "tier_min_score": {tier: dict(scores) for tier, scores in self.tier_min_score.items()},
            "record_series": list(RECORD_SERIES),
            "record_sessions": [len(self.records.get(symbol, ())) for symbol in names],
        }
        return manifest, {"baselines": table, "records": self._records_table(names)}

    def _records_table(self, names: Sequence[str]) -> npt.NDArray[np.float64]:
        """symbols × sessions × record series, NaN where unknown (a session or a series the symbol did not have)."""
        depth = max((len(rows) for rows in self.records.values()), default=0)
        table = np.full((len(names), depth, len(RECORD_SERIES)), np.nan)
        for i, symbol in enumerate(names):
            rows = self.records.get(symbol, ())
            for j, row in enumerate(rows):
                table[i, depth - len(rows) + j] = [np.nan if x is None else x for x in row]
        return table

    def save(self, store: ArtifactStore, extra: Mapping[str, Any] | None = None) -> Artifact:
        """Publishes this calibration as the next version of the venue's artifact (``extra``: more manifest)."""
        manifest, weights = self.to_artifact()
        return store.save(
            artifact_name(self.venue),
            {**manifest, **(extra or {})},
            weights,
            hash_hex=data_hash(weights["baselines"], weights["records"]),
        )

    @classmethod
    def load(cls, store: ArtifactStore, venue: str, version: str = "latest") -> Calibration | None:
        """The venue's calibration (``None``: it has none and ``version`` is ``latest``)."""
        if version == "latest" and store.latest_version(artifact_name(venue)) is None:
            return None
        artifact = store.load(artifact_name(venue), version, kind=ARTIFACT_KIND)
        return cls.from_artifact(artifact.manifest, artifact.weights)

    @classmethod
    def from_artifact(cls, manifest: Mapping[str, Any], weights: Mapping[str, npt.NDArray[Any]]) -> Calibration:
        table = weights["baselines"]
        symbols: dict[str, dict[int, list[float | None]]] = {}
        for i, symbol in enumerate(manifest["symbols"]):
            rows = {
                b: [None if np.isnan(x) else float(x) for x in table[i, b]]
                for b in range(table.shape[1])
                if not np.isnan(table[i, b, 0])
            }
            symbols[str(symbol)] = rows
        return cls(
            venue=str(manifest["venue"]),
            prints=manifest["prints"],
            bucket_minutes=int(manifest["bucket_minutes"]),
            series=tuple(manifest["series"]),
            sessions=int(manifest["sessions"]),
            symbols=symbols,
            min_score={str(kind): float(score) for kind, score in manifest.get("min_score", {}).items()},
            budget=None if manifest.get("budget") is None else float(manifest["budget"]),
            symbol_days=float(manifest.get("symbol_days", 0.0)),
            records=_records_of(manifest, weights),
            tiers={str(symbol): str(tier) for symbol, tier in manifest.get("tiers", {}).items()},
            tier_min_score={
                str(tier): {str(kind): float(score) for kind, score in scores.items()}
                for tier, scores in manifest.get("tier_min_score", {}).items()
            },
        )


def _records_of(
    manifest: Mapping[str, Any], weights: Mapping[str, npt.NDArray[Any]]
) -> dict[str, list[list[float | None]]]:
    """The artifact's session records; none where it kept other series (or, made before them, none)."""
    if manifest.get("record_series") != list(RECORD_SERIES) or "records" not in weights:
        return {}
    table = weights["records"]
    records: dict[str, list[list[float | None]]] = {}
    for i, (symbol, kept) in enumerate(zip(manifest["symbols"], manifest["record_sessions"], strict=True)):
        rows = table[i, table.shape[1] - int(kept) :]
        if len(rows):
            records[str(symbol)] = [[None if np.isnan(x) else float(x) for x in row] for row in rows]
    return records


def calibrate(
    detectors: Mapping[str, SymbolDetector], venue: str, prints: Prints | None, *, sessions: int
) -> Calibration:
    """The baselines the detectors of one venue learnt over a history of ``sessions`` venue-local days."""
    if sessions < MIN_SESSIONS:
        raise CalibrationError(
            f"the history of {venue!r} covers {sessions} session(s); calibration needs at least {MIN_SESSIONS} "
            "venue-local days of its ticks"
        )
    symbols: dict[str, dict[int, list[float | None]]] = {}
    records: dict[str, list[list[float | None]]] = {}
    bucket_minutes = PatternParams().materiality.seasonal.bucket_minutes
    for symbol, detector in sorted(detectors.items()):
        profile = detector.patterns.materiality.profile
        profile.flush()
        bucket_minutes = profile.params.bucket_minutes
        if profile.learnt:
            symbols[symbol] = {bucket: list(row) for bucket, row in profile.learnt.items()}
            records[symbol] = detector.patterns.materiality.records.sessions()
    if not symbols:
        raise CalibrationError(f"no symbol of {venue!r} traded long enough in any time of day to calibrate")
    return Calibration(venue, prints, bucket_minutes, SERIES, sessions, symbols, records=records)
