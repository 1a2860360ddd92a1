"""Pump-and-dump, second path (any feed): the *ramp*.

A snapshot feed has no rush orders and no sides, so a *ramp chunk* has the price drifting ``≥ pump_ramp.drift_z``
of the symbol's own volatility (the context's drift z, :mod:`tapewatch.detectors.patterns.context`: the mid where there
are books) over ``tape.drift_ms`` (2 minutes), ``tape.ramp_ms`` (10 minutes) or ``tape.slow_ramp_ms`` (30 minutes: slow
ramps), on volume ``volume_z_long ≥ pump_ramp.volume_z``, with flow that is not net selling, outside the closing window.
Each horizon's drift is read in units of the *larger* of the symbol's volatility over as long (one chunk's σ × √chunks)
and its own typical drift over that horizon, measured directly (:class:`~tapewatch.detectors.patterns.base.DriftScale`,
``ChunkContext.trend_z``): √n assumes a martingale, and a price that catches up with news over minutes or follows a
parent order trends by its nature, and read at √n its ordinary drifts look like pumps. Hit when ramp chunks covering
``pump_ramp.min_ms`` fall within the last ``pump_ramp.window_ms``, not next to a sweep, and the rise to the price's top
over ``tape.slow_ramp_ms`` was walked, not jumped (:meth:`~tapewatch.detectors.patterns.base.Rise.jumped` with
``tape.jump_share``, ``tape.walk_ms``: a sweep's followers hold the price where one chunk took it, and read as a drift
for minutes after).

Evidence: ``ramp_chunks``, ``drift_z``, ``drift_bps``, ``ret_sigma_bps``, ``volume_z_long``,
``aggr_imbalance_long``, ``inferred_share_long``.

>>> from tapewatch.detectors.patterns.context import TapeContext
>>> from tapewatch.detectors.patterns.params import TapeParams
>>> params = TapeParams(close_time=None)
>>> tape, ramp = TapeContext(params), PumpRamp(params, PumpRampParams())
>>> rising = {"ret_bps": 10.0, "ret_sigma_bps": 2.0, "volume_z_long": 5.0}
>>> hits = [h for i in range(1, 13) for h in ramp.on_chunk(tape.on_chunk(i * 5_000, rising), rising)]
>>> len(hits), hits[0].evidence["ramp_chunks"]  # 3.5 σ from the 4th chunk; 3 ramp chunks (15 s) from the 6th
(7, 3)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Key, Rule, bound, fixed
from tapewatch.detectors.patterns.base import ChunkContext, Run, Values, cited, context, ge, get, strength
from tapewatch.detectors.patterns.checks import finite, not_longer, positive
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: params.py composes this module's record
    from tapewatch.detectors.patterns.params import TapeParams


@dataclass(frozen=True, slots=True)
class PumpRampParams:
    """The ramp (any feed: snapshots have no rush orders and no sides): the price drifts far beyond the symbol's own
    volatility over one of the tape's drift horizons, on unusual volume, and the flow is not selling."""

    GROUP: ClassVar[str] = "pump_ramp"

    #: a ramp chunk: the largest drift in the symbol's own units (``ChunkContext.trend_z``) at least this …
    drift_z: float = 3.5
    #: … on the long window's volume this far above the symbol's own (``volume_z_long``)
    volume_z: float = 1.5
    #: ramp chunks covering this much time within this window
    min_ms: int = 15_000
    window_ms: int = 120_000

    def __post_init__(self) -> None:
        positive(self, "min_ms", "window_ms")
        finite(self, "drift_z", "volume_z")
        not_longer(self, "min_ms", "window_ms")


class PumpRamp:
    """State keys ``ramp``, ``ramp_drift``, ``mid_drift``, ``mid_ramp_drift``."""

    __slots__ = ("min_ramps", "params", "ramp", "tape")

    PARAMS: ClassVar[type[PumpRampParams]] = PumpRampParams
    NEEDS: ClassVar[frozenset[str]] = frozenset()

    #: the hit's evidence (:mod:`tapewatch.detectors.evidence`): the flow not net selling is ``aggr_imbalance_long ≥ 0``
    #: (or no sides); the ramp does not compare the drift in bps
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.PUMP_AND_DUMP,
            "pump ramp",
            "ramp_chunks",
            {
                "ramp_chunks": Key(
                    "ramp chunks in the ramp window", "chunks", bound("≥", "pump_ramp.min_ms", chunks=True)
                ),
                "drift_z": Key(
                    "largest price drift in the symbol's own units (drift, ramp or slow-ramp window)",
                    "σ",
                    bound("≥", "pump_ramp.drift_z"),
                ),
                "volume_z_long": cited("volume_z_long", bound("≥", "pump_ramp.volume_z")),
                "aggr_imbalance_long": cited("aggr_imbalance_long", fixed("≥", 0.0)),
                **context("drift_bps", "ret_sigma_bps", "inferred_share_long"),
            },
        ),
    )

    def __init__(self, tape: TapeParams, params: PumpRampParams) -> None:
        self.tape, self.params = tape, params
        self.ramp = Run(tape.chunks(params.window_ms))
        self.min_ramps = tape.chunks(params.min_ms)

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p = self.params
        short, long, slow = ctx.trend_z
        drift_z = None if short is None or long is None else max(short, long)
        if slow is not None and drift_z is not None:
            drift_z = max(drift_z, slow)
        imb_long = get(v, "aggr_imbalance_long")
        ramp = (
            drift_z is not None
            and drift_z >= p.drift_z
            and ge(v, "volume_z_long", p.volume_z)
            and (imb_long is None or imb_long >= 0.0)
            and not ctx.in_close
        )
        sustained = ctx.sustained_rise(self.ramp, ramp, self.min_ramps, self.tape)
        if sustained is None:
            return []
        ramps, first = sustained
        evidence = {
            "ramp_chunks": ramps,
            "drift_z": drift_z,
            "drift_bps": ctx.drift_bps,
            "ret_sigma_bps": get(v, "ret_sigma_bps"),
            "volume_z_long": get(v, "volume_z_long"),
            "aggr_imbalance_long": imb_long,
            "inferred_share_long": get(v, "inferred_share_long"),
        }
        return [
            ctx.hit(
                AlertKind.PUMP_AND_DUMP,
                first,
                strength((drift_z or 0.0) / p.drift_z * ramps / self.min_ramps),
                evidence,
                f"price drifting {drift_z or 0.0:.1f} σ of the symbol's own volatility on unusual volume"
                f" ({ramps} of the last {self.ramp.window} chunks)",
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {"ramp": self.ramp.to_state()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: PumpRampParams) -> PumpRamp:
        detector = cls(tape, params)
        detector.ramp = Run.from_state(state["ramp"], detector.ramp.window)
        return detector
