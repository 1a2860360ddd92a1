"""Materiality: no price-based alert on a move a trader would not call material, and no volume burst on what this
time of day always trades.

A pump-and-dump, marking the close, momentum ignition or price burst hit stands only when the price moved, within
one of the tape's drift horizons (``drift_ms``, ``ramp_ms``, ``slow_ramp_ms``: 2, 10 and 30 minutes), at least

    ``material_bps = max(floor_bps, typical_multiple × the symbol's typical move over that horizon)``

The move is the excursion: how far the price now stands from where it stood farthest from it within the horizon
(:meth:`~detectors.patterns.base.ChunkContext.excursions`; a sweep given back or a rise dumped moved the price even
where it ended level). The typical move is the root mean square of the drift over that horizon *at this time of
day* across past sessions (:class:`detectors.seasonal.TimeOfDayProfile`). A time of day never learnt borrows the
median of the learnt ones, and before any is learnt the session's own (:class:`~detectors.patterns.base.DriftScale`);
before that the floor alone stands. The floor is per venue (:attr:`tapewatch.feeds.FeedProfile.material_bps`): a few
bps in a thin overnight session are never a pump, however many σ of that quiet hour they are.

A volume burst stands only when the long window traded at least ``volume_multiple`` times what this time of day
usually trades in as long (the open surges every day: once learnt, it is not a burst).

A price-based hit held back as immaterial is not forgotten: when, within ``pending_ms`` of it, the price's move
over a horizon turns material (up, for a pump), it is raised then, dated from its episode's first window. A pump
found at its onset is thus alerted as soon as its run-up is material, not only if its detector fires again.

A hit that stands carries the measure as evidence (:data:`EVIDENCE`): the move, the bar it cleared and how many
past sessions the time of day's baseline holds (0: none yet, a borrowed or in-session baseline).

>>> from detectors.patterns.context import TapeContext
>>> from detectors.patterns.params import PatternParams
>>> params = PatternParams(close_time=None)
>>> tape, gate = TapeContext(params), Materiality(params)
>>> ctx = tape.on_chunk(5_000, {"ret_bps": 3.0})
>>> gate.on_chunk(ctx, {"ret_bps": 3.0})
>>> burst = ctx.hit(AlertKind.PRICE_BURST, 0, 0.9, {"ret_bps_long": 3.0}, "")
>>> gate.judge(ctx, {}, burst) is None  # 3 bps: under the 25 bps floor
True
>>> ctx = tape.on_chunk(10_000, {"ret_bps": 40.0})
>>> gate.judge(ctx, {}, burst).evidence["material_bps"]
25.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from detectors.alerting import Hit
from detectors.evidence import Key, derived, number
from detectors.patterns.base import ChunkContext, Values, get
from detectors.seasonal import Baseline, SeasonalParams, TimeOfDayProfile
from tapewatch.records import AlertKind

#: the kinds a price move must be material for
PRICE_KINDS: Final = frozenset(
    {AlertKind.PUMP_AND_DUMP, AlertKind.MARKING_THE_CLOSE, AlertKind.MOMENTUM_IGNITION, AlertKind.PRICE_BURST}
)
#: the series the time-of-day profile keeps: the squared drift over each horizon, the volume of one chunk
SERIES: Final = ("drift_sq_short", "drift_sq_long", "drift_sq_slow", "volume")


@dataclass(frozen=True, slots=True)
class MaterialityParams:
    """The materiality gate's parameters; validated on construction."""

    #: no price-based alert on a move under this many bps (the venue's profile may set its own)
    floor_bps: float = 25.0
    #: … nor under this many times the symbol's typical move over the horizon at this time of day
    typical_multiple: float = 3.0
    #: a volume burst needs this many times the volume this time of day usually trades in the long window
    volume_multiple: float = 4.0
    #: a hit held back as immaterial is raised if the price's move turns material within this long of it (ms)
    pending_ms: int = 600_000
    seasonal: SeasonalParams = field(default_factory=SeasonalParams)

    def __post_init__(self) -> None:
        if self.pending_ms < 0:
            raise ValueError(f"materiality: pending_ms must be ≥ 0, got {self.pending_ms}")
        for name in ("floor_bps", "typical_multiple", "volume_multiple"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"materiality: {name} must be a finite number ≥ 0, got {value!r}")

    def with_floor(self, floor_bps: float | None) -> MaterialityParams:
        return self if floor_bps is None else replace(self, floor_bps=float(floor_bps))


def _material_bar(_p: object, evidence: Mapping[str, Any]) -> float | None:
    return number(evidence, "material_bps")


#: what the gate adds to a price-based hit's evidence (a volume burst's: ``usual_volume_long``)
EVIDENCE: Final[Mapping[str, Key]] = {
    "price_move_bps": Key(
        "how far the price moved within the horizon it is most material on",
        "bps",
        derived("|x| ≥", None, "material_bps", _material_bar),
    ),
    "material_bps": Key("the bar: the venue's floor or a multiple of the typical move at this time of day", "bps"),
    "baseline_sessions": Key("past sessions behind this time of day's baseline (0: none yet)", "sessions"),
    "usual_volume_long": Key("volume this time of day usually trades in the long window", "shares"),
    "calibrated": Key("the symbol's venue was calibrated on its history (tapewatch calibrate)", "yes/no"),
}


class Materiality:
    """The gate, with its per-symbol time-of-day profile; state key ``materiality``."""

    __slots__ = ("calibrated", "chunk_ms", "long_chunks", "params", "pending", "profile")

    def __init__(self, pattern_params: Any) -> None:
        self.params: MaterialityParams = pattern_params.materiality
        self.long_chunks: int = pattern_params.long_chunks
        self.chunk_ms: int = pattern_params.chunk_ms
        self.profile = TimeOfDayProfile(SERIES, self.params.seasonal, pattern_params.utc_offset_min)
        #: the profile was started from a calibration over the venue's history (else from nothing)
        self.calibrated = False
        #: per kind, the latest hit held back as immaterial: raised when the price's move turns material within
        #: ``pending_ms`` of it (dated from its episode's first window, so its alert id is the episode's)
        self.pending: dict[AlertKind, Hit] = {}

    def seed(self, learnt: Mapping[int, Sequence[float | None]]) -> None:
        """Starts from the baselines a calibration learnt over the symbol's history."""
        self.profile.seed(learnt)
        self.calibrated = True

    def on_chunk(self, ctx: ChunkContext, v: Values) -> None:
        short, long, slow = ctx.drifts
        self.profile.observe(ctx.ts, (short * short, long * long, slow * slow, get(v, "volume")))

    def on_hits(self, ctx: ChunkContext, v: Values, hits: Sequence[Hit]) -> list[Hit]:
        """The chunk's hits that stand, and each held hit whose move turned material in this chunk."""
        out: list[Hit] = []
        for hit in hits:
            judged = self.judge(ctx, v, hit)
            if judged is not None:
                out.append(judged)
                self.pending.pop(hit.kind, None)
            elif hit.kind in PRICE_KINDS:
                self._hold(hit)
        fresh = {hit.kind for hit in hits}
        for kind, held in list(self.pending.items()):
            if kind in fresh:
                continue
            if ctx.ts - held.ts > self.params.pending_ms:
                del self.pending[kind]
                continue
            stood = self._stands(ctx, held, self._directed(kind, ctx.drifts))
            if stood is not None:
                out.append(replace(stood, ts=ctx.ts, window_end=ctx.ts))
                del self.pending[kind]
        return out

    def judge(self, ctx: ChunkContext, v: Values, hit: Hit) -> Hit | None:
        """The hit with the gate's evidence when it stands, else ``None``."""
        hit = replace(hit, evidence={**hit.evidence, "calibrated": self.calibrated})
        if hit.kind is AlertKind.VOLUME_BURST:
            return self._judge_volume(ctx, v, hit)
        if hit.kind not in PRICE_KINDS:
            return hit
        return self._stands(ctx, hit, ctx.excursions(self.chunk_ms))

    @staticmethod
    def _directed(kind: AlertKind, drifts: tuple[float, float, float]) -> tuple[float, ...]:
        """A held hit's moves since: a pump's must be up; the other kinds' may go either way."""
        if kind is AlertKind.PUMP_AND_DUMP:
            return tuple(max(drift, 0.0) for drift in drifts)
        return tuple(abs(drift) for drift in drifts)

    def _stands(self, ctx: ChunkContext, hit: Hit, moves: Sequence[float]) -> Hit | None:
        """The hit with the gate's evidence when one horizon's move clears its bar, else ``None``."""
        best: tuple[float, float, float, int] | None = None  # (ratio, move, bar, sessions)
        for i, move in enumerate(moves):
            typical, sessions = self._typical_move(ctx, i)
            bar = max(self.params.floor_bps, self.params.typical_multiple * typical if typical else 0.0)
            ratio = move / bar if bar > 0 else math.inf
            if best is None or ratio > best[0]:
                best = (ratio, move, bar, sessions)
        assert best is not None
        ratio, move, bar, sessions = best
        if ratio < 1.0:
            return None
        evidence = {**hit.evidence, "price_move_bps": move, "material_bps": bar, "baseline_sessions": sessions}
        return replace(hit, evidence=evidence)

    def _hold(self, hit: Hit) -> None:
        """Keeps an immaterial hit (its episode's first window start, its best score, its latest evidence)."""
        held = self.pending.get(hit.kind)
        if held is not None:
            hit = replace(hit, window_start=held.window_start, score=max(held.score, hit.score))
        self.pending[hit.kind] = replace(hit, evidence={**hit.evidence, "calibrated": self.calibrated})

    def _typical_move(self, ctx: ChunkContext, horizon: int) -> tuple[float | None, int]:
        """The typical move over one horizon at this time of day (bps) and the past sessions behind it."""
        seasonal: Baseline = self.profile.typical(ctx.ts, horizon)
        if seasonal.value is not None:
            return math.sqrt(seasonal.value), seasonal.sessions
        return ctx.typical_drifts[horizon], 0

    def _judge_volume(self, ctx: ChunkContext, v: Values, hit: Hit) -> Hit | None:
        usual_chunk = self.profile.typical(ctx.ts, SERIES.index("volume")).value
        if usual_chunk is None:
            return hit
        usual = usual_chunk * self.long_chunks
        volume = get(v, "volume_long")
        if volume is not None and volume < self.params.volume_multiple * usual:
            return None
        return replace(hit, evidence={**hit.evidence, "usual_volume_long": usual})

    def to_state(self) -> dict[str, Any]:
        return {
            "materiality": self.profile.to_state(),
            "calibrated": self.calibrated,
            "immaterial": {str(kind): _hit_state(hit) for kind, hit in self.pending.items()},
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self.profile.load(state.get("materiality", {}))
        self.calibrated = bool(state.get("calibrated", False))
        self.pending = {AlertKind(kind): _hit_of(kind, raw) for kind, raw in state.get("immaterial", {}).items()}


def _hit_state(hit: Hit) -> list[Any]:
    return [hit.ts, hit.window_start, hit.window_end, hit.score, dict(hit.evidence), hit.model_version, hit.message]


def _hit_of(kind: str, raw: Sequence[Any]) -> Hit:
    ts, start, end, score, evidence, version, message = raw
    return Hit(AlertKind(kind), int(ts), int(start), int(end), float(score), dict(evidence), str(version), str(message))
