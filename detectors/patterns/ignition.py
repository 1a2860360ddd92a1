"""Momentum ignition: a one-sided sweep that is not part of a pump or a closing push.

An *ignition chunk*: ``|ret_bps| ≥ ignite_ret_bps``, aggressor imbalance of the same sign ``≥
ignite_imbalance``, ``trades_z ≥ ignite_trades_z`` and a move of more than ``sweep_min_spreads`` spreads
(:func:`~detectors.patterns.base.takes_levels`), while no pump is under way (no onset chunk in the
onset window and surge chunks under half of ``pump_min_ms``) and the chunk is not a closing push; so it runs
after :mod:`~detectors.patterns.pump_onset` and :mod:`~detectors.patterns.closing`. Stateless.

Evidence: ``ret_bps``, ``aggr_imbalance``, ``trades_z``, ``range_bps``.

>>> from detectors.patterns.context import TapeContext
>>> from detectors.patterns.params import PatternParams
>>> params = PatternParams(close_time=None)
>>> sweep = {"ret_bps": -60.0, "aggr_imbalance": -1.0, "trades_z": 6.0}
>>> [h.message for h in MomentumIgnition(params).on_chunk(TapeContext(params).on_chunk(5_000, sweep), sweep)]
['one-sided sweep moved the price -60 bps in 5 s']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detectors.alerting import Hit
from detectors.patterns.base import ChunkContext, Values, ge, get, strength, takes_levels
from detectors.patterns.params import PatternParams
from tapewatch.records import AlertKind


class MomentumIgnition:
    """No state."""

    __slots__ = ("max_surge", "params")

    def __init__(self, params: PatternParams) -> None:
        self.params = params
        self.max_surge = params.chunks(params.pump_min_ms) // 2

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p = self.params
        ret, imb = get(v, "ret_bps"), get(v, "aggr_imbalance")
        if ret is None or imb is None or abs(ret) < p.ignite_ret_bps or not takes_levels(ret, v, p.sweep_min_spreads):
            return []
        one_sided = imb * (1 if ret > 0 else -1) >= p.ignite_imbalance and ge(v, "trades_z", p.ignite_trades_z)
        pump_underway = ctx.surge_chunks >= self.max_surge or ctx.onset_chunks > 0
        if not one_sided or pump_underway or ctx.close_push:
            return []
        return [
            ctx.hit(
                AlertKind.MOMENTUM_IGNITION,
                ctx.start,
                strength(abs(ret) / p.ignite_ret_bps),
                {
                    "ret_bps": ret,
                    "aggr_imbalance": imb,
                    "trades_z": get(v, "trades_z"),
                    "range_bps": get(v, "range_bps"),
                },
                f"one-sided sweep moved the price {ret:+.0f} bps in {p.chunk_ms // 1000} s",
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {}

    def load(self, state: Mapping[str, Any]) -> None:
        return None
