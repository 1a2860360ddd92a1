"""Forecasts → desired positions → the environment's actions: how a forecaster becomes a trading rule.

A rule says, at each bar close, which position (in units, long or flat) it wants; :func:`chooser_from_targets`
turns that into HOLD / BUY / SELL for :func:`tapewatch.signals.dqn.backtest.run_policy`, so every rule trades through
the same environment, costs and timing as the agent.

>>> band_targets(np.array([0.002, 0.0005, -0.0005, -0.003, np.nan]), band=0.001).tolist()
[1, 1, 1, 0, 0]
>>> choose = chooser_from_targets(np.array([1, 1, 0]))
>>> [choose(0, 0), choose(1, 1), choose(2, 1)]
[1, 0, 2]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tapewatch.signals.dqn.backtest import Chooser
from tapewatch.signals.dqn.env import Act
from tapewatch.signals.forecast.band import band_step

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def band_targets(prediction: npt.ArrayLike, band: float, start: int = 0) -> IntArray:
    """Long once the forecast rises above ``+band``, flat once it falls below ``-band``, else unchanged.

    The band is hysteresis: a forecast that wobbles around zero does not pay the costs of a trade each bar.
    A missing forecast (NaN) keeps the position.
    """
    values = np.asarray(prediction, dtype=np.float64)
    out = np.empty(len(values), dtype=np.int64)
    position = start
    for t, value in enumerate(values.tolist()):
        position = band_step(position, value, band)
        out[t] = position
    return out


def chooser_from_targets(targets: npt.ArrayLike, max_units: int = 1) -> Chooser:
    """BUY while below the target position, SELL while above it, HOLD at it."""
    wanted = np.clip(np.asarray(targets, dtype=np.int64), 0, max_units)

    def choose(t: int, position: int) -> int:
        target = int(wanted[t]) if t < len(wanted) else position
        return int(Act.BUY if target > position else Act.SELL if target < position else Act.HOLD)

    return choose
