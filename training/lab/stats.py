"""A paired circular block bootstrap of the Sharpe difference between a policy and buy-and-hold.

Daily returns are autocorrelated in volatility, so days are resampled in blocks (circularly, so every day is
equally likely); the *same* resampled days are used for the policy and for buy-and-hold on each (asset, year)
series, which is what makes the difference's interval narrower than the two intervals side by side. The
statistic is the mean Sharpe over series (and seeds) of the policy minus that of buy-and-hold.

Always long equals buy-and-hold exactly, so its difference is zero in every replicate:

>>> rng = np.random.default_rng(0)
>>> series = [rng.normal(0.0005, 0.01, 250) for _ in range(3)]
>>> ci = sharpe_difference_ci([[s, s] for s in series], series, replicates=200)
>>> (ci.difference, ci.low, ci.high) == (0.0, 0.0, 0.0)
True
>>> flat = sharpe_difference_ci([[np.zeros(250)] for _ in series], series, replicates=200)
>>> flat.low < flat.difference < flat.high
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Interval:
    difference: float
    low: float
    high: float
    level: float
    replicates: int


def sharpe(returns: FloatArray, periods_per_year: float) -> FloatArray:
    """Annualised Sharpe along the last axis (sample std; 0 where the returns do not vary)."""
    std = returns.std(axis=-1, ddof=1)
    mean = returns.mean(axis=-1)
    safe = np.where(std > 1e-15, std, 1.0)
    return np.where(std > 1e-15, mean / safe * math.sqrt(periods_per_year), 0.0)


def block_indices(rng: np.random.Generator, n: int, replicates: int, block: int) -> npt.NDArray[np.int64]:
    """``(replicates, n)`` day indices: blocks of ``block`` consecutive days from uniform starts, wrapping."""
    blocks = -(-n // block)
    starts = rng.integers(0, n, size=(replicates, blocks))
    steps = np.arange(block)
    return ((starts[:, :, None] + steps) % n).reshape(replicates, -1)[:, :n]


def sharpe_difference_ci(
    policy: Sequence[Sequence[FloatArray]],
    buy_and_hold: Sequence[FloatArray],
    *,
    periods_per_year: float = 252.0,
    replicates: int = 2000,
    block: int = 10,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """``policy[i]`` holds one return series per seed on series ``i`` (an asset's test year), aligned day by day
    with ``buy_and_hold[i]``."""
    if len(policy) != len(buy_and_hold) or not policy:
        raise ValueError("need one buy-and-hold series per policy series, and at least one")
    rng = np.random.default_rng(seed)
    total = np.zeros(replicates)
    point = 0.0
    for runs, series in zip(policy, buy_and_hold, strict=True):
        matrix = np.vstack([np.asarray(r, dtype=np.float64) for r in runs])  # (seeds, days)
        hold = np.asarray(series, dtype=np.float64)
        if matrix.shape[1] != len(hold) or len(hold) < 2:
            raise ValueError("each policy run must cover the same days as buy-and-hold (at least two)")
        point += float(sharpe(matrix, periods_per_year).mean() - sharpe(hold, periods_per_year))
        idx = block_indices(rng, len(hold), replicates, min(block, len(hold)))
        total += sharpe(matrix[:, idx], periods_per_year).mean(axis=0) - sharpe(hold[idx], periods_per_year)
    total /= len(policy)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(total, [tail, 1.0 - tail])
    return Interval(round(point / len(policy), 12), round(float(low), 12), round(float(high), 12), level, replicates)
