"""Pump-and-dump, fifth path (feeds without order-level prints: snapshots): a *surge* of net buying, sustained.

The crowd path (:mod:`tapewatch.detectors.patterns.pump_crowd`) counts aggressive buy orders, which only a feed that
prints every trade can show. A snapshot feed (TWSE MIS: the volume since the previous snapshot, no side) shows the same
pump as volume far above the symbol's own, bought more than sold by the inferred sides, with the price following; the
ramp path (:mod:`tapewatch.detectors.patterns.pump_ramp`) waits until the drift alone is 3.5 σ, minutes later on a pump
that walks the price up a tick at a time. A *surge chunk* has the long window's activity
(:func:`~tapewatch.detectors.patterns.base.surge_z`: on snapshots the volume's z) ``≥ pump_surge.volume_z``, net buying
(``aggr_imbalance_long ≥ pump_surge.imbalance``, inferred sides counted as the feed gives them), a drift not falling
(``≥ pump_surge.drift_bps``) and at least ``pump_surge.drift_z`` of the symbol's own over the short horizon
(:attr:`~tapewatch.detectors.patterns.base.ChunkContext.trend_z`: σ·√n or the measured typical drift, the larger) — the
three kinds of evidence together, where the ramp needs the drift alone to be extreme.

As the crowd does, the surge asks *persistence*: surge chunks covering ``pump_surge.min_ms`` within the last
``pump_surge.window_ms`` (a sweep's followers buy for 20–60 s, a pump for minutes). Hit outside the closing window
(a push into the close is marking the close), not next to a sweep and on a rise walked, not jumped (the ramp's
guards). Off where the feed carries order-level prints (``buy_orders_z_long`` present): the crowd path reads the
same pump from its orders there, more precisely than volume can.

Evidence: ``surge_chunks``, ``surge_z``, ``drift_z``, ``drift_bps``, ``aggr_imbalance_long``,
``inferred_share_long``.

>>> from tapewatch.detectors.patterns.context import TapeContext
>>> from tapewatch.detectors.patterns.params import TapeParams
>>> params, own = TapeParams(close_time=None, prints="snapshots"), PumpSurgeParams()
>>> tape, surge = TapeContext(params), PumpSurge(params, own)
>>> bought = {"volume_z_long": 5.0, "aggr_imbalance_long": 0.5, "ret_bps": 3.0, "ret_sigma_bps": 2.0}
>>> hits = [(i, h) for i in range(1, 30) for h in surge.on_chunk(tape.on_chunk(i * 5_000, bought), bought)]
>>> hits[0][0], hits[0][1].window_start, hits[0][1].evidence["surge_chunks"]  # a minute of surge chunks
(15, 15000, 12)

(the first three chunks are not surge chunks: 9 bps is under one σ of the drift's window, 2 bps × √24 ≈ 9.8)

On a feed that prints every order the crowd path decides:

>>> tape, surge = TapeContext(params), PumpSurge(params, own)
>>> printed = {**bought, "buy_orders_z_long": 0.0}
>>> [h for i in range(1, 30) for h in surge.on_chunk(tape.on_chunk(i * 5_000, printed), printed)]
[]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Key, Rule, bound
from tapewatch.detectors.patterns.base import ChunkContext, Run, Values, cited, context, ge, get, strength, surge_z
from tapewatch.detectors.patterns.checks import finite, non_negative, not_longer, positive
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: params.py composes this module's record
    from tapewatch.detectors.patterns.params import TapeParams


@dataclass(frozen=True, slots=True)
class PumpSurgeParams:
    """Volume far above the symbol's own, net buying and the price following, held for a minute (feeds without
    order-level prints). All four together: any one of them loosened alone adds few false pumps, all loosened together
    many."""

    GROUP: ClassVar[str] = "pump_surge"

    #: a surge chunk: the long window's activity (on snapshots the volume's z) this far above the symbol's own …
    volume_z: float = 3.5
    #: … net buying by the inferred sides (``aggr_imbalance_long``) at least this …
    imbalance: float = 0.3
    #: … the drift over ``tape.drift_ms`` at least this (bps; ≥ 0: not falling) …
    drift_bps: float = 0.0
    #: … and at least this many of the symbol's own units over as long (``ChunkContext.trend_z``)
    drift_z: float = 1.0
    #: surge chunks covering this much time within this window
    min_ms: int = 60_000
    window_ms: int = 90_000

    def __post_init__(self) -> None:
        positive(self, "min_ms", "window_ms")
        finite(self, "volume_z", "drift_z")
        non_negative(self, "drift_bps")
        non_negative(self, "imbalance")  # an imbalance or share bar: above 1 turns the path off
        not_longer(self, "min_ms", "window_ms")


class PumpSurge:
    """State key ``pump_surge`` (surge chunks)."""

    __slots__ = ("min_chunks", "params", "surge", "tape")

    PARAMS: ClassVar[type[PumpSurgeParams]] = PumpSurgeParams
    NEEDS: ClassVar[frozenset[str]] = frozenset({"prints"})

    #: the hit's evidence (:mod:`tapewatch.detectors.evidence`)
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.PUMP_AND_DUMP,
            "pump surge",
            "surge_chunks",
            {
                "surge_chunks": Key(
                    "surge chunks in the surge window", "chunks", bound("≥", "pump_surge.min_ms", chunks=True)
                ),
                "surge_z": Key(
                    "activity vs the symbol's baseline, long window (trade count; on snapshots the larger of count"
                    " and volume)",
                    "σ",
                    bound("≥", "pump_surge.volume_z"),
                ),
                "drift_z": Key(
                    "price drift in the symbol's own units, drift window", "σ", bound("≥", "pump_surge.drift_z")
                ),
                "drift_bps": cited("drift_bps", bound("≥", "pump_surge.drift_bps")),
                "aggr_imbalance_long": cited("aggr_imbalance_long", bound("≥", "pump_surge.imbalance")),
                **context("inferred_share_long"),
            },
        ),
    )

    def __init__(self, tape: TapeParams, params: PumpSurgeParams) -> None:
        self.tape, self.params = tape, params
        self.surge = Run(tape.chunks(params.window_ms))
        self.min_chunks = tape.chunks(params.min_ms)

    def _surging(self, ctx: ChunkContext, v: Values, activity: float | None) -> bool:
        p = self.params
        trend = ctx.trend_z[0]
        return (
            get(v, "buy_orders_z_long") is None
            and activity is not None
            and activity >= p.volume_z
            and ge(v, "aggr_imbalance_long", p.imbalance)
            and ctx.drift_bps >= p.drift_bps
            and trend is not None
            and trend >= p.drift_z
        )

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p = self.params
        activity = surge_z(v, self.tape.prints)
        sustained = ctx.sustained_rise(self.surge, self._surging(ctx, v, activity), self.min_chunks, self.tape)
        if sustained is None:
            return []
        chunks, first = sustained
        activity, trend = activity or 0.0, ctx.trend_z[0] or 0.0
        evidence = {
            "surge_chunks": chunks,
            "surge_z": activity,
            "drift_z": trend,
            "drift_bps": ctx.drift_bps,
            "aggr_imbalance_long": get(v, "aggr_imbalance_long"),
            "inferred_share_long": get(v, "inferred_share_long"),
        }
        return [
            ctx.hit(
                AlertKind.PUMP_AND_DUMP,
                first,
                strength(activity / p.volume_z * chunks / self.min_chunks),
                evidence,
                f"activity {activity:.1f} σ above the symbol's own, net buying, the price up {trend:.1f} σ,"
                f" sustained ({chunks} of the last {self.surge.window} chunks)",
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {"pump_surge": self.surge.to_state()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: PumpSurgeParams) -> PumpSurge:
        detector = cls(tape, params)
        detector.surge = Run.from_state(state["pump_surge"], detector.surge.window)
        return detector
