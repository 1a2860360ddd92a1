"""Materiality: no price-based alert on a move a trader would not call material, and no volume burst on what this
time of day always trades.

A pump-and-dump, marking the close, momentum ignition or price burst hit stands only when the price moved, within
one of the tape's drift horizons (``tape.drift_ms``, ``tape.ramp_ms``, ``tape.slow_ramp_ms``: 2, 10 and 30 minutes),
at least

    ``material_bps = max(floor_bps, typical_multiple × the symbol's typical move over that horizon)``

A pump's move is its rise: the largest run-up from a level to a later, higher one within the horizon
(:meth:`~tapewatch.detectors.patterns.base.ChunkContext.run_ups`; a rise dumped since still counts, a fall does not).
The other kinds' move is the excursion: how far the price now stands from where it stood farthest from it within the
horizon (:meth:`~tapewatch.detectors.patterns.base.ChunkContext.excursions`; a sweep given back moved the price even
where it ended level). The typical move is the root mean square of the drift over that horizon *at this time of
day* across past sessions (:class:`tapewatch.detectors.seasonal.TimeOfDayProfile`). A time of day never learnt borrows
the median of the learnt ones, and before any is learnt the session's own
(:class:`~tapewatch.detectors.patterns.base.DriftScale`); before that the floor alone stands. The floor is per venue
(:attr:`tapewatch.feeds.FeedProfile.material_bps`): a few bps in a thin overnight session are never a pump, however many
σ of that quiet hour they are.

A volume burst stands only when the long window traded at least ``volume_multiple`` times what this time of day
usually trades in as long (the open surges every day: once learnt, it is not a burst).

A price-based hit held back as immaterial is not forgotten: when, within ``pending_ms`` of it, the price's move
over a horizon turns material (up, for a pump), it is raised then, dated from its episode's first window. A pump
found at its onset is thus alerted as soon as its run-up is material, not only if its detector fires again.

A hit that stands carries the measure as evidence (:data:`EVIDENCE`): the move, the bar it cleared and how many
past sessions the time of day's baseline holds (0: none yet, a borrowed or in-session baseline).

Generic outliers (:data:`OUTLIERS`: price and volume bursts, and a momentum ignition where the feed's sides are
inferred) have nothing but their size to speak for them. Each must also be the largest hit of its kind in the
symbol's last sessions and today (:class:`tapewatch.detectors.session_records.SessionRecords`), bursts only once the
symbol has a past session to compare with, and is medium at most: whatever the tails of a market, it beats its own
records about once per remembered session.

>>> from tapewatch.detectors.patterns.context import TapeContext
>>> from tapewatch.detectors.patterns.params import TapeParams
>>> params = TapeParams(close_time=None)
>>> tape, gate = TapeContext(params), Materiality(params, MaterialityParams())
>>> ctx = tape.on_chunk(5_000, {"ret_bps": 3.0})
>>> gate.on_chunk(ctx, {"ret_bps": 3.0})
>>> pump = ctx.hit(AlertKind.PUMP_AND_DUMP, 0, 0.8, {}, "")
>>> gate.judge(ctx, {}, pump) is None  # 3 bps: under the 25 bps floor
True
>>> ctx = tape.on_chunk(10_000, {"ret_bps": 40.0})
>>> gate.judge(ctx, {}, pump).evidence["material_bps"]
25.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from tapewatch.detectors.alerting import MEDIUM_AT_MOST, Hit
from tapewatch.detectors.evidence import Key, derived, number
from tapewatch.detectors.patterns.base import ChunkContext, Values, get
from tapewatch.detectors.seasonal import Baseline, SeasonalParams, TimeOfDayProfile
from tapewatch.detectors.session_records import RecordHigh, RecordParams, SessionRecords
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: params.py composes the gate's record with the tape's
    from tapewatch.detectors.patterns.params import TapeParams

#: the kinds a price move must be material for
PRICE_KINDS: Final = frozenset(
    {AlertKind.PUMP_AND_DUMP, AlertKind.MARKING_THE_CLOSE, AlertKind.MOMENTUM_IGNITION, AlertKind.PRICE_BURST}
)
#: the series the time-of-day profile keeps: the squared drift over each horizon, the volume of one chunk
SERIES: Final = ("drift_sq_short", "drift_sq_long", "drift_sq_slow", "volume")
#: the generic outliers, each held to the symbol's records of its own hits: kind → the evidence key holding the
#: hit's size (|return| in bps, or volume); a momentum ignition only where the feed's sides are inferred
#: (:meth:`Materiality.must_be_rare`)
OUTLIERS: Final = {
    AlertKind.PRICE_BURST: "ret_bps_long",
    AlertKind.VOLUME_BURST: "volume_long",
    AlertKind.MOMENTUM_IGNITION: "ret_bps",
}
#: the outliers with nothing but their size on any feed: they need ``records.min_sessions`` past sessions of the
#: symbol (or a calibration's) before they can be told rare
BURSTS: Final = frozenset({AlertKind.PRICE_BURST, AlertKind.VOLUME_BURST})
#: the series the session records keep: the largest hit of each outlier kind
RECORD_SERIES: Final = tuple(str(kind) for kind in OUTLIERS)
_NO_RECORD: Final = (None,) * len(RECORD_SERIES)


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
    records: RecordParams = field(default_factory=RecordParams)

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


def _record_bar(_p: object, evidence: Mapping[str, Any]) -> float | None:
    return number(evidence, "session_record")


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
    "outlier_value": Key(
        "the outlier's size (|return| in bps, or volume): it must be the symbol's record",
        "",
        derived("≥", None, "session_record", _record_bar),
    ),
    "session_record": Key("the largest hit of its kind in the symbol's last sessions and today before it", ""),
    "record_sessions": Key("past sessions the record spans besides today (0: today only)", "sessions"),
}


class Materiality:
    """The gate, with its per-symbol time-of-day profile. State keys: ``materiality`` (the profile), ``records`` (the
    session records; absent: none kept), ``calibrated`` and ``immaterial`` (the hits held)."""

    __slots__ = ("calibrated", "chunk_ms", "long_chunks", "params", "pending", "profile", "records")

    def __init__(self, tape: TapeParams, params: MaterialityParams) -> None:
        self.params = params
        self.long_chunks = tape.long_chunks
        self.chunk_ms = tape.chunk_ms
        self.profile = TimeOfDayProfile(SERIES, params.seasonal, tape.utc_offset_min)
        self.records = SessionRecords(RECORD_SERIES, params.records, tape.utc_offset_min)
        #: the profile was started from a calibration over the venue's history (else from nothing)
        self.calibrated = False
        #: per kind, the latest hit held back as immaterial: raised when the price's move turns material within
        #: ``pending_ms`` of it (dated from its episode's first window, so its alert id is the episode's)
        self.pending: dict[AlertKind, Hit] = {}

    def seed(
        self, learnt: Mapping[int, Sequence[float | None]], records: Sequence[Sequence[float | None]] = ()
    ) -> None:
        """Starts from the baselines and the session records a calibration learnt over the symbol's history."""
        self.profile.seed(learnt)
        self.records.seed(records)
        self.calibrated = True

    def on_chunk(self, ctx: ChunkContext, v: Values) -> None:
        short, long, slow = ctx.drifts
        self.profile.observe(ctx.ts, (short * short, long * long, slow * slow, get(v, "volume")))
        self.records.observe(ctx.ts, _NO_RECORD)  # the session is one the symbol traded

    def on_hits(self, ctx: ChunkContext, v: Values, hits: Sequence[Hit]) -> list[Hit]:
        """The chunk's hits that stand, and each held hit whose move turned material in this chunk."""
        out: list[Hit] = []
        for hit in hits:
            outlier = self.as_outlier(hit, v)
            if outlier is None:
                continue
            judged = self._material(ctx, v, outlier)
            if judged is not None:
                out.append(judged)
                self.pending.pop(hit.kind, None)
            elif hit.kind in PRICE_KINDS:
                self._hold(outlier)
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
        outlier = self.as_outlier(hit, v)
        return None if outlier is None else self._material(ctx, v, outlier)

    def _material(self, ctx: ChunkContext, v: Values, hit: Hit) -> Hit | None:
        """The hit with the materiality evidence when its move (or volume) is material, else ``None``."""
        hit = replace(hit, evidence={**hit.evidence, "calibrated": self.calibrated})
        if hit.kind is AlertKind.VOLUME_BURST:
            return self._judge_volume(ctx, v, hit)
        if hit.kind not in PRICE_KINDS:
            return hit
        if hit.kind is AlertKind.PUMP_AND_DUMP:  # a pump is its rise: a drop, however deep, pumped nothing
            return self._stands(ctx, hit, ctx.run_ups(self.chunk_ms))
        return self._stands(ctx, hit, ctx.excursions(self.chunk_ms))

    @staticmethod
    def must_be_rare(hit: Hit, v: Values) -> bool:
        """Price and volume bursts are generic outliers: nothing but their size speaks for them. A momentum
        ignition is one too where the feed's sides are inferred: there, every sweep looks one-sided and followed by
        the tick rule, so only its size is evidence."""
        if hit.kind is AlertKind.MOMENTUM_IGNITION:
            return (get(v, "inferred_share_long") or 0.0) > 0.5
        return hit.kind in OUTLIERS

    def as_outlier(self, hit: Hit, v: Values) -> Hit | None:
        """Counts an outlier kind's hit in the symbol's records. Returns the hit or ``None`` where it must be rare
        and is not: smaller than a hit of its kind in the last sessions or earlier today, or a burst before the
        symbol has a past session to compare with. A rare one carries its record as evidence and is medium at most:
        its size is all that speaks for it, and size is what news, a large genuine order and a fast market have
        too; it says "look here", not "someone manipulated this"."""
        if hit.kind not in OUTLIERS:
            return hit
        index = RECORD_SERIES.index(str(hit.kind))
        size = number(hit.evidence, OUTLIERS[hit.kind])
        record = self.records.record(index) if size is None else self.records.counted(hit.ts, index, abs(size))
        if not self.must_be_rare(hit, v):
            return hit
        min_sessions = self.params.records.min_sessions if hit.kind in BURSTS else 0
        return None if size is None else rare(hit, abs(size), record, min_sessions)

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
            "records": self.records.to_state(),
            "calibrated": self.calibrated,
            "immaterial": {str(kind): _hit_state(hit) for kind, hit in self.pending.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: MaterialityParams) -> Materiality:
        gate = cls(tape, params)
        offset = tape.utc_offset_min
        gate.profile = TimeOfDayProfile.from_state(state["materiality"], SERIES, params.seasonal, offset)
        gate.records = SessionRecords.from_state(state.get("records", {}), RECORD_SERIES, params.records, offset)
        gate.calibrated = bool(state["calibrated"])
        gate.pending = {AlertKind(kind): _hit_of(kind, raw) for kind, raw in state["immaterial"].items()}
        return gate


def rare(hit: Hit, size: float, record: RecordHigh, min_sessions: int) -> Hit | None:
    """A generic outlier's hit if it is rare: at least the largest of its kind in the symbol's remembered sessions and
    today before it (``record``), which must span ``min_sessions`` past sessions. It then carries its record as
    evidence and is medium at most; ``None`` where it is not rare."""
    if (record.value is not None and size < record.value) or record.sessions < min_sessions:
        return None
    evidence = {"outlier_value": size, "session_record": record.value, "record_sessions": record.sessions}
    return replace(hit, score=min(hit.score, MEDIUM_AT_MOST), evidence={**hit.evidence, **evidence})


def _hit_state(hit: Hit) -> list[Any]:
    return [hit.ts, hit.window_start, hit.window_end, hit.score, dict(hit.evidence), hit.model_version, hit.message]


def _hit_of(kind: str, raw: Sequence[Any]) -> Hit:
    ts, start, end, score, evidence, version, message = raw
    return Hit(AlertKind(kind), int(ts), int(start), int(end), float(score), dict(evidence), str(version), str(message))
