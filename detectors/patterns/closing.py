"""Marking the close: the price pushed in the last minutes before the venue's session close.

Inside the last ``close_window_ms`` before the close (``close_time`` local, ``utc_offset_min``; ``None``
disables it, e.g. for 24-hour crypto; the chunk that straddles the close counts), either of two paths:

* the **push** (buying into the close): a *push chunk* has activity far above the symbol's usual
  (:func:`~detectors.patterns.base.surge_z` ``≥ close_surge_z``: its trade count, on a snapshot feed also its
  volume), one-sided buying (``aggr_imbalance_long ≥ close_imbalance``, sides given or inferred) and a drift
  over ``drift_ms`` ``≥ close_drift_bps`` (the push walks the price up 1–3 % in 3–8 min); hit when push chunks
  covering ``close_min_ms`` fall within the last ``close_push_window_ms``;
* the **late drift** (any feed, either direction, patterns-v4): the short or long drift ``≥ close_late_z`` of
  the symbol's own volatility (:mod:`detectors.patterns.context`) on volume not below its usual
  (``volume_z_long ≥ close_late_volume_z``); hit when such chunks cover ``close_late_min_ms`` of the last
  ``close_push_window_ms``. A push on ordinary volume leaves only this.

Evidence: ``ms_to_close``, ``push_chunks`` or ``late_chunks``, ``trades_z_long``, ``aggr_imbalance_long``,
``ret_bps_long``, ``drift_bps``, ``drift_z``, ``volume_z_long``.

>>> from detectors.patterns.context import TapeContext
>>> from detectors.patterns.params import PatternParams
>>> tape, close = TapeContext(PatternParams()), MarkingTheClose(PatternParams())
>>> push = {"trades_z_long": 4.0, "aggr_imbalance_long": 0.6, "ret_bps": 10.0}
>>> close_ts = 1_704_173_400_000  # 2024-01-02 13:30 Asia/Taipei, the TWSE close
>>> hits = [h for i in range(12, 0, -1) for h in close.on_chunk(tape.on_chunk(close_ts - i * 5_000, push), push)]
>>> [h.evidence["push_chunks"] for h in hits]
[6, 7, 8, 9]

A walk down on ordinary volume, seen only as a price drift far beyond the symbol's volatility:

>>> tape, close = TapeContext(PatternParams()), MarkingTheClose(PatternParams())
>>> down = {"mid_ret_bps": -6.0, "mid_sigma_bps": 2.0, "volume_z_long": 0.5}
>>> hits = [h for i in range(12, 0, -1) for h in close.on_chunk(tape.on_chunk(close_ts - i * 5_000, down), down)]
>>> [(h.evidence["late_chunks"], round(h.evidence["drift_z"], 1)) for h in hits][:2]
[(2, -4.3), (3, -4.9)]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detectors.alerting import Hit
from detectors.patterns.base import ChunkContext, Run, Values, ge, get, strength, surge_z
from detectors.patterns.params import PatternParams
from tapewatch.records import AlertKind


class MarkingTheClose:
    """State keys ``close`` (push chunks) and ``close_late`` (late-drift chunks); sets
    :attr:`ChunkContext.close_push`."""

    __slots__ = ("late", "min_late", "min_pushes", "params", "pushes")

    def __init__(self, params: PatternParams) -> None:
        self.params = params
        self.pushes = Run(params.chunks(params.close_push_window_ms))
        self.min_pushes = params.chunks(params.close_min_ms)
        self.late = Run(params.chunks(params.close_push_window_ms))
        self.min_late = params.chunks(params.close_late_min_ms)

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p = self.params
        push = ctx.close_push = (
            ctx.in_close
            and (activity := surge_z(v, p.prints)) is not None
            and activity >= p.close_surge_z
            and ge(v, "aggr_imbalance_long", p.close_imbalance)
            and ctx.drift_bps >= p.close_drift_bps
        )
        pushes = self.pushes.push(ctx.start, push, p.chunk_ms)
        drift_z = ctx.drift_z_abs
        late = (
            ctx.in_close
            and drift_z is not None
            and abs(drift_z) >= p.close_late_z
            and ge(v, "volume_z_long", p.close_late_volume_z)
        )
        lates = self.late.push(ctx.start, late, p.chunk_ms)
        if push and pushes >= self.min_pushes and self.pushes.first_start is not None:
            ratio = (surge_z(v, p.prints) or 0.0) / p.close_surge_z * pushes / self.min_pushes
            return [self._hit(ctx, v, self.pushes.first_start, ratio, {"push_chunks": pushes}, "buy-side push")]
        if late and lates >= self.min_late and self.late.first_start is not None and drift_z is not None:
            ratio = abs(drift_z) / p.close_late_z * lates / self.min_late
            direction = "up" if drift_z > 0 else "down"
            return [self._hit(ctx, v, self.late.first_start, ratio, {"late_chunks": lates}, f"price drift {direction}")]
        return []

    def _hit(self, ctx: ChunkContext, v: Values, first: int, ratio: float, run: dict[str, Any], what: str) -> Hit:
        evidence = {
            "ms_to_close": ctx.ms_to_close,
            **run,
            "trades_z_long": get(v, "trades_z_long"),
            "aggr_imbalance_long": get(v, "aggr_imbalance_long"),
            "ret_bps_long": get(v, "ret_bps_long"),
            "drift_bps": ctx.drift_bps,
            "drift_z": ctx.drift_z_abs,
            "volume_z_long": get(v, "volume_z_long"),
        }
        chunks = next(iter(run.values()))
        return ctx.hit(
            AlertKind.MARKING_THE_CLOSE,
            first,
            strength(ratio),
            evidence,
            f"{what} into the close ({chunks} chunks), {(ctx.ms_to_close or 0) // 1000} s before it",
        )

    def to_state(self) -> dict[str, Any]:
        return {"close": self.pushes.to_state(), "close_late": self.late.to_state()}

    def load(self, state: Mapping[str, Any]) -> None:
        self.pushes.load(state["close"])
        if "close_late" in state:  # absent before version 5
            self.late.load(state["close_late"])
