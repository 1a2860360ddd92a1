"""Pump-and-dump, third path (any feed): the *dump* after a sustained ramp.

What makes a pump-and-dump is its shape, whatever the feed shows of its volume or sides: the price is walked up
over minutes, then sold back down fast. The other two paths look for the ramp while it runs; where its volume is
small next to the symbol's usual (small buys on a stock that trades in blocks) and a snapshot feed shows no
orders, the ramp is a drift like any other until the dump confirms it. A *dump chunk* has the price falling
``≥ pump_dump.fall_z`` of the symbol's own volatility over ``tape.drift_ms`` (the context's short drift z: the mid
where there are books) with flow that is not net buying. At a dump chunk the detector reads back the price path of
the last ``tape.slow_ramp_ms`` (the context's, :attr:`ChunkContext.path`) and hits when:

* the path's highest level came within the last ``pump_dump.peak_ms`` (the dump follows the top);
* the *rise* to it, from the lowest level before it, is ``≥ pump_dump.rise_z`` of the symbol's volatility over
  as long;
* the rise was *sustained*: the price took ``≥ pump_dump.min_rise_ms`` from half the rise to the top. A
  momentum ignition jumps most of its move in seconds and drifts the rest within a minute; a pump walks up over
  minutes (its convex ramp reaches half its rise in the last ~40 % of the ramp, a linear one at the middle);
* the price has given back ``≥ pump_dump.fall_share`` of the rise.

The hit's window starts where the rise began, so an earlier ramp alert on the same pump is extended, not
repeated (:mod:`tapewatch.detectors.alerting`). The scan runs only at dump chunks (a 2-minute fall of this size is rare)
and reads at most ``tape.slow_ramp_ms`` of chunks; the detector keeps no state of its own.

Evidence: ``rise_bps``, ``rise_z``, ``rise_s`` (half-rise to top), ``fall_bps``, ``fall_share``, ``drift_z``
(the short drift, negative), ``aggr_imbalance_long``, ``volume_z_long``, ``inferred_share_long``.

>>> from tapewatch.detectors.patterns.context import TapeContext
>>> from tapewatch.detectors.patterns.params import TapeParams
>>> params, own = TapeParams(close_time=None), PumpDumpParams()
>>> tape, dump = TapeContext(params), PumpDump(params, own)
>>> quiet = [0.0] * 24
>>> walk = [1.0 + 0.05 * i for i in range(72)]  # six minutes up, steeper towards the top: +2 %
>>> crash = [-30.0] * 8  # forty seconds down
>>> rets = quiet + walk + crash
>>> hits = [h for i, r in enumerate(rets, 1)
...         for h in dump.on_chunk(tape.on_chunk(i * 5_000, {"mid_ret_bps": r, "mid_sigma_bps": 3.0}), {})]
>>> h = hits[0]
>>> h.window_start, round(h.evidence["rise_bps"]), h.evidence["rise_s"], round(h.evidence["fall_share"], 2)
(120000, 200, 125, 0.75)

The same rise in one jump (a momentum ignition's sweep) and the same fall: no pump.

>>> tape, dump = TapeContext(params), PumpDump(params, own)
>>> jump = quiet + [200.0] + [0.0] * 71 + crash
>>> [h for i, r in enumerate(jump, 1)
...  for h in dump.on_chunk(tape.on_chunk(i * 5_000, {"mid_ret_bps": r, "mid_sigma_bps": 3.0}), {})]
[]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Evidence, Key, Rule, bound, derived, fixed
from tapewatch.detectors.patterns.base import ChunkContext, Values, cited, context, get, rise_to_top, strength
from tapewatch.detectors.patterns.checks import non_negative, positive
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: params.py composes this module's record
    from tapewatch.detectors.patterns.params import PatternParams, TapeParams


@dataclass(frozen=True, slots=True)
class PumpDumpParams:
    """The dump that confirms a pump: a rise walked over minutes, sold back fast."""

    GROUP: ClassVar[str] = "pump_dump"

    #: a dump chunk: the price falls this far (σ of the symbol's volatility over ``tape.drift_ms``) on flow that is
    #: not buying …
    fall_z: float = 4.0
    #: … within ``peak_ms`` of the top of a rise of this many σ of the symbol's volatility over as long …
    rise_z: float = 2.5
    peak_ms: int = 300_000
    #: … that took at least this long from half its height to the top (a sweep jumps, a pump walks) …
    min_rise_ms: int = 90_000
    #: … and the price has given back at least this share of the rise
    fall_share: float = 0.5

    def __post_init__(self) -> None:
        positive(self, "peak_ms", "rise_z", "fall_share")
        non_negative(self, "fall_z", "min_rise_ms")


def _min_rise_s(p: PatternParams, _: Evidence) -> float:
    return p.pump_dump.min_rise_ms / 1000


def _fall_z(p: PatternParams, _: Evidence) -> float:
    return -p.pump_dump.fall_z


class PumpDump:
    """Reads the context's price path at dump chunks; no state of its own."""

    __slots__ = ("params", "tape")

    PARAMS: ClassVar[type[PumpDumpParams]] = PumpDumpParams
    NEEDS: ClassVar[frozenset[str]] = frozenset()

    #: the hit's evidence (:mod:`tapewatch.detectors.evidence`): the flow not net buying is ``aggr_imbalance_long ≤ 0``
    #: (or no sides); the top's age (``≤ pump_dump.peak_ms``) is not in it
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.PUMP_AND_DUMP,
            "pump dump",
            "rise_bps",
            {
                "rise_bps": Key("the rise to the top, from the lowest level before it", "bps"),
                "rise_z": Key("that rise in the symbol's own units over as long", "σ", bound("≥", "pump_dump.rise_z")),
                "rise_s": Key(
                    "time from half the rise to the top",
                    "s",
                    derived("≥", "pump_dump.min_rise_ms", "pump_dump.min_rise_ms / 1000", _min_rise_s),
                ),
                "fall_bps": Key("the fall from the top", "bps"),
                "fall_share": Key("share of the rise given back", "share", bound("≥", "pump_dump.fall_share")),
                "drift_z": Key(
                    "price drift in the symbol's own units, drift window",
                    "σ",
                    derived("≤", "pump_dump.fall_z", "−pump_dump.fall_z", _fall_z),
                ),
                "aggr_imbalance_long": cited("aggr_imbalance_long", fixed("≤", 0.0)),
                **context("volume_z_long", "inferred_share_long"),
            },
        ),
    )

    def __init__(self, tape: TapeParams, params: PumpDumpParams) -> None:
        self.tape, self.params = tape, params

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p, tape = self.params, self.tape
        fall_z = ctx.drift_z_short
        imb_long = get(v, "aggr_imbalance_long")
        if fall_z is None or fall_z > -p.fall_z or (imb_long is not None and imb_long > 0.0):
            return []
        if ctx.path is None or ctx.sigma_bps is None:
            return []
        horizon_start = ctx.ts - tape.chunks(tape.slow_ramp_ms) * tape.chunk_ms
        found = rise_to_top(ctx.path, horizon_start, tape.chunk_ms)
        if found is None:
            return []
        rise, now = found
        chunks = max(1, (rise.top_ts - rise.base_ts) // tape.chunk_ms)
        rise_z = rise.bps / (ctx.sigma_bps * math.sqrt(chunks))
        fall_share = (rise.top - now) / rise.bps if rise.bps > 0 else 0.0
        if (
            ctx.ts - rise.top_ts > p.peak_ms
            or rise_z < p.rise_z
            or rise.top_ts - rise.half_ts < p.min_rise_ms
            or fall_share < p.fall_share
        ):
            return []
        evidence = {
            "rise_bps": rise.bps,
            "rise_z": rise_z,
            "rise_s": (rise.top_ts - rise.half_ts) // 1000,
            "fall_bps": rise.top - now,
            "fall_share": fall_share,
            "drift_z": fall_z,
            "aggr_imbalance_long": imb_long,
            "volume_z_long": get(v, "volume_z_long"),
            "inferred_share_long": get(v, "inferred_share_long"),
        }
        return [
            ctx.hit(
                AlertKind.PUMP_AND_DUMP,
                rise.base_ts,
                strength(rise_z / p.rise_z * fall_share / p.fall_share),
                evidence,
                f"price walked up {rise.bps:.0f} bps ({rise_z:.1f} σ of the symbol's own volatility) over minutes,"
                f" then gave back {fall_share:.0%} of it",
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: PumpDumpParams) -> PumpDump:
        return cls(tape, params)  # stateless
