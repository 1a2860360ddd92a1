"""The tape around a chunk, shared by every detector: the session clock, the price drift and one-sided sweeps.

A *sweep* takes several levels at once and the price stays there: ``|ret_bps| ≥ tape.sweep_ret_bps`` and more
than ``tape.sweep_min_spreads`` of the chunk's spread (a one-tick step on a coarse-tick stock is not a sweep), the
long window's return agreeing, and same-side aggressor imbalance ``≥ tape.sweep_imbalance``. Sweeps are remembered
(``tape.sweep_memory_ms``) long enough for the pump detectors to tell a pump's slow start from a momentum ignition's
followers.

The *drift z* is the larger of the short (``tape.drift_ms``, 2 min) and the long (``tape.ramp_ms``, 10 min) drift in
units of the symbol's own volatility over as long (the baseline std of a chunk's return, ``mid_sigma_bps`` or
``ret_sigma_bps``, times √chunks): of the mid when the feed has books (it does not bounce between bid and ask,
which a snapshot feed's last price does), else of the trades. Positive is up.

>>> from tapewatch.detectors.patterns.params import TapeParams
>>> tape = TapeContext(TapeParams(close_time=None))
>>> sweep = {"ret_bps": 60.0, "ret_bps_long": 60.0, "aggr_imbalance": 1.0, "spread_bps": 10.0}
>>> ctx = tape.on_chunk(10_000, sweep)
>>> ctx.sweep, ctx.drift_bps, ctx.in_close, list(ctx.sweeps), ctx.drift_z
(True, 60.0, False, [5000], None)
>>> round(tape.on_chunk(15_000, {"ret_bps": 5.0, "ret_sigma_bps": 2.0}).drift_z, 2)  # 65 bps / (2 bps × √24)
6.63
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tapewatch.detectors.patterns.base import (
    ChunkContext,
    Drift,
    DriftScale,
    Values,
    chunk_volatility,
    get,
    takes_levels,
)
from tapewatch.feeds import ms_to_close

if TYPE_CHECKING:  # annotations only: the tape's record is composed in params.py with the detectors' own
    from tapewatch.detectors.patterns.params import TapeParams


class TapeContext:
    """Builds the :class:`ChunkContext` of each chunk; state keys ``drift`` and ``sweeps``."""

    __slots__ = (
        "drift",
        "mid_drift",
        "mid_ramp_drift",
        "mid_slow_drift",
        "params",
        "ramp_drift",
        "scales",
        "slow_drift",
        "sweeps",
    )

    def __init__(self, params: TapeParams) -> None:
        self.params = params
        self.drift = Drift(params.chunks(params.drift_ms))
        self.ramp_drift = Drift(params.chunks(params.ramp_ms))
        self.mid_drift = Drift(params.chunks(params.drift_ms))
        self.mid_ramp_drift = Drift(params.chunks(params.ramp_ms))
        self.slow_drift = Drift(params.chunks(params.slow_ramp_ms))
        self.mid_slow_drift = Drift(params.chunks(params.slow_ramp_ms))
        self.sweeps: deque[int] = deque()  # chunk starts of recent one-sided sweeps
        # the typical drift per horizon, over a few hours (at least four horizons) of the symbol's own chunks
        windows = (self.drift.window, self.ramp_drift.window, self.slow_drift.window)
        hour = params.chunks(3_600_000)
        self.scales = tuple(DriftScale(w, max(hour, 4 * w)) for w in windows)

    def ms_to_close(self, ts: int) -> int | None:
        return ms_to_close(ts, self.params.close_time, self.params.utc_offset_min)

    def on_chunk(self, ts: int, v: Values) -> ChunkContext:
        p = self.params
        start = ts - p.chunk_ms
        to_close = self.ms_to_close(ts)
        in_close = to_close is not None and -p.chunk_ms <= to_close <= p.close_window_ms
        ret = get(v, "ret_bps")
        drift = self.drift.observe(start, ret, p.chunk_ms)
        sweep = self._sweep(v)
        horizon = start - p.sweep_memory_ms
        while self.sweeps and self.sweeps[0] < horizon:
            self.sweeps.popleft()
        if sweep:
            self.sweeps.append(start)
        sigma, of_mid = chunk_volatility(v)
        short_z, long_z, slow_z = self._drift_z(start, drift, v, sigma, of_mid)
        path = (self.mid_slow_drift if of_mid else self.slow_drift).rets if sigma is not None else None
        context = ChunkContext(
            ts, start, to_close, in_close, drift, short_z, long_z, sweep, self.sweeps, slow_z, path, sigma
        )
        context.trend_z = self._trend_z(of_mid, sigma, (short_z, long_z, slow_z), context)
        context.move_path = (self.mid_slow_drift if of_mid else self.slow_drift).rets
        context.horizons = (self.drift.window, self.ramp_drift.window, self.slow_drift.window)
        return context

    def _trend_z(
        self, of_mid: bool, sigma: float | None, zs: tuple[float | None, ...], context: ChunkContext
    ) -> tuple[float | None, float | None, float | None]:
        """Each horizon's drift in units of the larger of √n·σ and the symbol's own typical drift over it.

        A horizon whose typical drift is not measured yet (the first ``2 × window`` chunks: an hour for the slow
        one) borrows the variance ratio (typical drift / √n·σ, at least 1) of the short horizon once that is
        measured (4 minutes): a price that trends over minutes does so over longer spans too, and read at √n
        alone the early session's trends would be pumps. The short horizon's, not the longest measured
        one's: a ramp of many minutes lifts the typical drift over ten, and would hide itself; over two it barely
        moves it."""
        series = (
            (self.mid_drift, self.mid_ramp_drift, self.mid_slow_drift)
            if of_mid
            else (self.drift, self.ramp_drift, self.slow_drift)
        )
        out: list[float | None] = []
        borrowed = 1.0  # the short horizon's variance ratio, once it is measured
        typicals: list[float | None] = []
        for i, (drift, scale, z) in enumerate(zip(series, self.scales, zs, strict=True)):
            value = drift.value
            typical = scale.observe(value)
            typicals.append(typical)
            if z is None or sigma is None:
                out.append(z)
                continue
            martingale = sigma * math.sqrt(drift.window)
            ratio = borrowed if typical is None else max(1.0, typical / martingale)
            if i == 0:
                borrowed = ratio
            out.append(value / (martingale * ratio))
        context.drifts = (series[0].value, series[1].value, series[2].value)
        context.typical_drifts = (typicals[0], typicals[1], typicals[2])
        return out[0], out[1], out[2]

    def _drift_z(
        self, start: int, drift: float, v: Values, sigma: float | None, of_mid: bool
    ) -> tuple[float | None, float | None, float | None]:
        p = self.params
        ret, mid_ret = get(v, "ret_bps"), get(v, "mid_ret_bps")
        long_drift = self.ramp_drift.observe(start, ret, p.chunk_ms)
        slow_drift = self.slow_drift.observe(start, ret, p.chunk_ms)
        mid_drift = self.mid_drift.observe(start, mid_ret, p.chunk_ms)
        mid_long = self.mid_ramp_drift.observe(start, mid_ret, p.chunk_ms)
        mid_slow = self.mid_slow_drift.observe(start, mid_ret, p.chunk_ms)
        if sigma is None:
            return None, None, None
        if of_mid:
            drift, long_drift, slow_drift = mid_drift, mid_long, mid_slow
        return (
            drift / (sigma * math.sqrt(self.drift.window)),
            long_drift / (sigma * math.sqrt(self.ramp_drift.window)),
            slow_drift / (sigma * math.sqrt(self.slow_drift.window)),
        )

    def _sweep(self, v: Values) -> bool:
        p = self.params
        ret, imb, ret_long = get(v, "ret_bps"), get(v, "aggr_imbalance"), get(v, "ret_bps_long")
        if ret is None or imb is None or ret_long is None:
            return False
        sign = 1 if ret > 0 else -1
        return (
            abs(ret) >= p.sweep_ret_bps
            and takes_levels(ret, v, p.sweep_min_spreads)
            and ret_long * sign >= p.sweep_ret_bps
            and imb * sign >= p.sweep_imbalance
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "drift": self.drift.to_state(),
            "sweeps": list(self.sweeps),
            "ramp_drift": self.ramp_drift.to_state(),
            "mid_drift": self.mid_drift.to_state(),
            "mid_ramp_drift": self.mid_ramp_drift.to_state(),
            "slow_drift": self.slow_drift.to_state(),
            "mid_slow_drift": self.mid_slow_drift.to_state(),
            "drift_scales": [scale.to_state() for scale in self.scales],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], params: TapeParams) -> TapeContext:
        tape = cls(params)

        def drift(key: str, fresh: Drift) -> Drift:
            return Drift.from_state(state[key], fresh.window)

        tape.drift = drift("drift", tape.drift)
        tape.sweeps = deque(int(x) for x in state["sweeps"])
        tape.ramp_drift = drift("ramp_drift", tape.ramp_drift)
        tape.mid_drift = drift("mid_drift", tape.mid_drift)
        tape.mid_ramp_drift = drift("mid_ramp_drift", tape.mid_ramp_drift)
        tape.slow_drift = drift("slow_drift", tape.slow_drift)
        tape.mid_slow_drift = drift("mid_slow_drift", tape.mid_slow_drift)
        tape.scales = tuple(
            DriftScale.from_state(raw, fresh.window, fresh.tau_chunks)
            for fresh, raw in zip(tape.scales, state["drift_scales"], strict=True)
        )
        return tape
