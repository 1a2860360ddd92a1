"""Pump-and-dump, second path (any feed, patterns-v3): the *ramp*.

A snapshot feed has no rush orders and no sides, so a *ramp chunk* has the mid (the last price where there
are no books: the mid does not bounce between bid and ask) drifting ``≥ pump_ramp_z`` of the symbol's own
volatility (``mid_sigma_bps``/``ret_sigma_bps``, the baseline std of a chunk's return, scaled by √chunks) over
``drift_ms`` (2 minutes) or over ``ramp_ms`` (10 minutes: slow ramps), on volume ``volume_z_long ≥
pump_ramp_volume_z``, with flow that is not net selling, outside the closing window. Hit when ramp chunks
covering ``pump_ramp_min_ms`` fall within the last ``pump_ramp_window_ms``, not next to a sweep.

Evidence: ``ramp_chunks``, ``drift_z``, ``drift_bps``, ``ret_sigma_bps``, ``volume_z_long``,
``aggr_imbalance_long``, ``inferred_share_long``.

>>> from detectors.patterns.context import TapeContext
>>> from detectors.patterns.params import PatternParams
>>> params = PatternParams(close_time=None)
>>> tape, ramp = TapeContext(params), PumpRamp(params)
>>> rising = {"ret_bps": 10.0, "ret_sigma_bps": 2.0, "volume_z_long": 5.0}
>>> hits = [h for i in range(1, 13) for h in ramp.on_chunk(tape.on_chunk(i * 5_000, rising), rising)]
>>> len(hits), hits[0].evidence["ramp_chunks"]  # from the 6th ramp chunk (30 s) of the last 24 on
(4, 6)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from detectors.alerting import Hit
from detectors.patterns.base import ChunkContext, Drift, Run, Values, ge, get, strength
from detectors.patterns.params import PatternParams
from tapewatch.records import AlertKind


class PumpRamp:
    """State keys ``ramp``, ``ramp_drift``, ``mid_drift``, ``mid_ramp_drift``."""

    __slots__ = ("mid_drift", "mid_ramp_drift", "min_ramps", "params", "ramp", "ramp_drift")

    def __init__(self, params: PatternParams) -> None:
        self.params = params
        self.ramp = Run(params.chunks(params.pump_ramp_window_ms))
        self.min_ramps = params.chunks(params.pump_ramp_min_ms)
        self.ramp_drift = Drift(params.chunks(params.ramp_ms))
        self.mid_drift = Drift(params.chunks(params.drift_ms))
        self.mid_ramp_drift = Drift(params.chunks(params.ramp_ms))

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p = self.params
        drift_z = self._drift_z(ctx, v)
        imb_long = get(v, "aggr_imbalance_long")
        ramp = (
            drift_z is not None
            and drift_z >= p.pump_ramp_z
            and ge(v, "volume_z_long", p.pump_ramp_volume_z)
            and (imb_long is None or imb_long >= 0.0)
            and not ctx.in_close
        )
        ramps = self.ramp.push(ctx.start, ramp, p.chunk_ms)
        first = self.ramp.first_start
        if not ramp or ramps < self.min_ramps or first is None or ctx.near_sweep(first, p.pump_onset_sweep_ms):
            return []
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
                strength((drift_z or 0.0) / p.pump_ramp_z * ramps / self.min_ramps),
                evidence,
                f"price drifting {drift_z or 0.0:.1f} σ of the symbol's own volatility on unusual volume"
                f" ({ramps} of the last {self.ramp.window} chunks)",
            )
        ]

    def _drift_z(self, ctx: ChunkContext, v: Values) -> float | None:
        """The larger of the short and the ramp-window drift in units of the symbol's own volatility: of the
        mid when the feed has books, else of the trades."""
        p = self.params
        drift = ctx.drift_bps
        long_drift = self.ramp_drift.push(ctx.start, get(v, "ret_bps"), p.chunk_ms)
        mid_drift = self.mid_drift.push(ctx.start, get(v, "mid_ret_bps"), p.chunk_ms)
        mid_long = self.mid_ramp_drift.push(ctx.start, get(v, "mid_ret_bps"), p.chunk_ms)
        sigma = get(v, "mid_sigma_bps")
        if sigma:
            drift, long_drift = mid_drift, mid_long
        else:
            sigma = get(v, "ret_sigma_bps")
        if not sigma:
            return None
        short_z = drift / (sigma * math.sqrt(self.mid_drift.window))
        return max(short_z, long_drift / (sigma * math.sqrt(self.ramp_drift.window)))

    def to_state(self) -> dict[str, Any]:
        return {
            "ramp": self.ramp.to_state(),
            "ramp_drift": self.ramp_drift.to_state(),
            "mid_drift": self.mid_drift.to_state(),
            "mid_ramp_drift": self.mid_ramp_drift.to_state(),
        }

    def load(self, state: Mapping[str, Any]) -> None:
        if "ramp" in state:  # absent before version 4
            self.ramp.load(state["ramp"])
            self.ramp_drift.load(state["ramp_drift"])
            self.mid_drift.load(state["mid_drift"])
            self.mid_ramp_drift.load(state["mid_ramp_drift"])
