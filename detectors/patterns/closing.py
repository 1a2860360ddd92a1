"""Marking the close: a buy-side push in the last minutes before the venue's session close.

Inside the last ``close_window_ms`` before the close (``close_time`` local, ``utc_offset_min``; ``None``
disables it, e.g. for 24-hour crypto; the chunk that straddles the close counts): a *push chunk* with
``trades_z_long ≥ close_trades_z``, ``aggr_imbalance_long ≥ close_imbalance`` and a drift over ``drift_ms``
``≥ close_drift_bps`` (the push walks the price up 1–3 % in 3–8 min). Hit when push chunks covering
``close_min_ms`` fall within the last ``close_push_window_ms``.

Evidence: ``ms_to_close``, ``push_chunks``, ``trades_z_long``, ``aggr_imbalance_long``, ``ret_bps_long``,
``drift_bps``.

>>> from detectors.patterns.context import TapeContext
>>> from detectors.patterns.params import PatternParams
>>> tape, close = TapeContext(PatternParams()), MarkingTheClose(PatternParams())
>>> push = {"trades_z_long": 4.0, "aggr_imbalance_long": 0.6, "ret_bps": 10.0}
>>> close_ts = 1_704_173_400_000  # 2024-01-02 13:30 Asia/Taipei, the TWSE close
>>> hits = [h for i in range(12, 0, -1) for h in close.on_chunk(tape.on_chunk(close_ts - i * 5_000, push), push)]
>>> [h.evidence["push_chunks"] for h in hits]
[6, 7, 8, 9]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detectors.alerting import Hit
from detectors.patterns.base import ChunkContext, Run, Values, ge, get, strength
from detectors.patterns.params import PatternParams
from tapewatch.records import AlertKind


class MarkingTheClose:
    """State key ``close``; sets :attr:`ChunkContext.close_push`."""

    __slots__ = ("min_pushes", "params", "pushes")

    def __init__(self, params: PatternParams) -> None:
        self.params = params
        self.pushes = Run(params.chunks(params.close_push_window_ms))
        self.min_pushes = params.chunks(params.close_min_ms)

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p = self.params
        push = ctx.close_push = (
            ctx.in_close
            and ge(v, "trades_z_long", p.close_trades_z)
            and ge(v, "aggr_imbalance_long", p.close_imbalance)
            and ctx.drift_bps >= p.close_drift_bps
        )
        pushes = self.pushes.push(ctx.start, push, p.chunk_ms)
        first = self.pushes.first_start
        if not push or pushes < self.min_pushes or first is None:
            return []
        trades_z = get(v, "trades_z_long")
        evidence = {
            "ms_to_close": ctx.ms_to_close,
            "push_chunks": pushes,
            "trades_z_long": trades_z,
            "aggr_imbalance_long": get(v, "aggr_imbalance_long"),
            "ret_bps_long": get(v, "ret_bps_long"),
            "drift_bps": ctx.drift_bps,
        }
        return [
            ctx.hit(
                AlertKind.MARKING_THE_CLOSE,
                first,
                strength((trades_z or 0.0) / p.close_trades_z * pushes / self.min_pushes),
                evidence,
                f"buy-side push into the close ({pushes} chunks), {(ctx.ms_to_close or 0) // 1000} s before it",
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {"close": self.pushes.to_state()}

    def load(self, state: Mapping[str, Any]) -> None:
        self.pushes.load(state["close"])
