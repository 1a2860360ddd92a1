"""Momentum ignition: a one-sided sweep that is not part of a pump or a closing push.

An *ignition chunk*: ``|ret_bps| ≥ ignite_ret_bps``, aggressor imbalance of the same sign ``≥
ignite_imbalance``, the chunk's activity ``≥ ignite_activity_z`` above the symbol's usual
(:func:`~detectors.patterns.base.surge_z` of the chunk: its trade count, on a snapshot feed — one print per snapshot
however hard it trades — also its volume; the sweep is one order among the chunk's prints) and a move of more than
``sweep_min_spreads`` spreads (:func:`~detectors.patterns.base.takes_levels`), while no pump is under way (no onset
chunk in the onset window and surge chunks under half of ``pump_min_ms``) and the chunk is not a closing push; so
it runs after :mod:`~detectors.patterns.pump_onset` and :mod:`~detectors.patterns.closing`. Where there are books,
the mid moved the same way by more than ``sweep_min_spreads`` spreads too (a snapshot's one print may sit at
either quote: the bid-ask bounce).

Such a chunk is a *candidate*, confirmed (the hit, dated from the candidate) when the price gives back
``ignite_reversal_share`` of the move within ``ignite_reversal_ms``: the igniter trading against the move he
started, which is what makes a sweep manipulation. A burst of trades taking levels in one direction is as often a
block buyer, a liquidity shock or the market's own cascade (patterns-v17 asks the reversal on every feed; before,
a trade feed's sweep was the hit at once: an order-book market's tuning seeds 2–3 raised 14 false ignitions, now 8,
and the simulator's seeds 2–3 found 7 of 17, now 12). State key ``ignition``: the pending candidate.

Evidence: ``ret_bps``, ``aggr_imbalance``, ``trades_z``, ``volume_z``, ``range_bps``, ``mid_ret_bps``,
``spread_bps``, ``reversal_bps``, ``reversal_s``.

>>> from detectors.patterns.context import TapeContext
>>> from detectors.patterns.params import PatternParams
>>> params = PatternParams(close_time=None)
>>> tape, ignition = TapeContext(params), MomentumIgnition(params)
>>> sweep, back = {"ret_bps": -60.0, "aggr_imbalance": -1.0, "trades_z": 6.0}, {"ret_bps": 35.0}
>>> [[h.message for h in ignition.on_chunk(tape.on_chunk(t, v), v)] for t, v in ((5_000, sweep), (10_000, back))]
[[], ['one-sided sweep moved the price -60 bps in 5 s, then gave back +35 bps in 10 s']]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detectors.alerting import Hit
from detectors.patterns.base import ChunkContext, Values, get, strength, surge_z, takes_levels
from detectors.patterns.params import PatternParams
from tapewatch.records import AlertKind


class MomentumIgnition:
    """State: the snapshot path's pending candidate (start, move, return since, evidence)."""

    __slots__ = ("max_surge", "params", "pending")

    def __init__(self, params: PatternParams) -> None:
        self.params = params
        self.max_surge = params.chunks(params.pump_min_ms) // 2
        self.pending: tuple[int, float, float, dict[str, Any]] | None = None

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        hits = self._confirm(ctx, v)
        evidence = self._ignition(ctx, v)
        if evidence is not None and self._mid_takes_levels(evidence):
            self.pending = (ctx.start, evidence["ret_bps"], 0.0, evidence)
        return hits

    def _ignition(self, ctx: ChunkContext, v: Values) -> dict[str, Any] | None:
        """The chunk's evidence if it is an ignition chunk, else None."""
        p = self.params
        ret, imb = get(v, "ret_bps"), get(v, "aggr_imbalance")
        if ret is None or imb is None or abs(ret) < p.ignite_ret_bps or not takes_levels(ret, v, p.sweep_min_spreads):
            return None
        activity = surge_z(v, p.prints, chunk=True)
        one_sided = imb * (1 if ret > 0 else -1) >= p.ignite_imbalance and (activity or 0.0) >= p.ignite_activity_z
        pump_underway = ctx.surge_chunks >= self.max_surge or ctx.onset_chunks > 0
        if not one_sided or pump_underway or ctx.close_push:
            return None
        return {
            "ret_bps": ret,
            "aggr_imbalance": imb,
            "trades_z": get(v, "trades_z"),
            "volume_z": get(v, "volume_z"),
            "range_bps": get(v, "range_bps"),
            "mid_ret_bps": get(v, "mid_ret_bps"),
            "spread_bps": get(v, "spread_bps"),
        }

    def _mid_takes_levels(self, evidence: Mapping[str, Any]) -> bool:
        """A print may sit at either quote, so its jump may be the bid-ask bounce: where there are books, the
        mid must move the same way by more than ``sweep_min_spreads`` spreads too."""
        ret, mid = evidence["ret_bps"], evidence["mid_ret_bps"]
        if mid is None:
            return True  # no books: the prints are all there is
        return mid * ret > 0 and takes_levels(mid, evidence, self.params.sweep_min_spreads)

    def _confirm(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        """The pending candidate's hit once the price gave back enough of its move."""
        if self.pending is None:
            return []
        start, move, since, evidence = self.pending
        p = self.params
        if ctx.start - start > p.ignite_reversal_ms:
            self.pending = None
            return []
        since += get(v, "ret_bps") or 0.0
        if since * (1 if move > 0 else -1) > -p.ignite_reversal_share * abs(move):
            self.pending = (start, move, since, evidence)
            return []
        self.pending = None
        reversal = {**evidence, "reversal_bps": since, "reversal_s": (ctx.ts - start) / 1000}
        return [self._hit(ctx, start, reversal)]

    def _hit(self, ctx: ChunkContext, start: int, evidence: dict[str, Any]) -> Hit:
        p, ret = self.params, evidence["ret_bps"]
        message = f"one-sided sweep moved the price {ret:+.0f} bps in {p.chunk_ms // 1000} s"
        if "reversal_bps" in evidence:
            message += f", then gave back {evidence['reversal_bps']:+.0f} bps in {evidence['reversal_s']:.0f} s"
        return ctx.hit(AlertKind.MOMENTUM_IGNITION, start, strength(abs(ret) / p.ignite_ret_bps), evidence, message)

    def to_state(self) -> dict[str, Any]:
        return {"ignition": None if self.pending is None else list(self.pending)}

    def load(self, state: Mapping[str, Any]) -> None:
        raw = state.get("ignition")  # absent before patterns-v9
        self.pending = None if raw is None else (int(raw[0]), float(raw[1]), float(raw[2]), dict(raw[3]))
