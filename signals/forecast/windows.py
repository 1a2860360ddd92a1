"""Sliding windows over feature rows and forward returns: the inputs and targets of the forecasters.

A window ending at bar ``t`` holds rows ``t - length + 1 … t`` (oldest first): only what is known at ``t``'s
close. Its target is the return from ``t``'s close to ``t + horizon``'s close, unknown (NaN) for the last
``horizon`` bars.

>>> rows = np.arange(10.0).reshape(5, 2)
>>> windows = sliding_windows(rows, 3)
>>> windows.shape, windows[0].tolist(), windows[-1][-1].tolist()
((3, 3, 2), [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], [8.0, 9.0])
>>> forward_returns(np.array([10.0, 11.0, 12.1, 11.0]), 1).round(6).tolist()
[0.1, 0.1, -0.090909, nan]
>>> forward_returns(np.array([10.0, 11.0, 12.1]), 2).round(6).tolist()
[0.21, nan, nan]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tapewatch.signals.dqn.data import DataError

FloatArray = npt.NDArray[np.float64]


class HistoryError(DataError):
    """Too few rows for one window."""


def sliding_windows(rows: npt.ArrayLike, length: int) -> FloatArray:
    """``(n - length + 1, length, features)`` read-only views: window ``i`` ends at row ``i + length - 1``."""
    array = np.asarray(rows, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError("rows must be (bars, features)")
    if length < 1:
        raise ValueError("a window needs at least one row")
    if len(array) < length:
        raise HistoryError(f"{len(array)} rows, a window needs {length}")
    view = np.lib.stride_tricks.sliding_window_view(array, length, axis=0)  # (n - L + 1, features, L)
    return np.swapaxes(view, 1, 2)


def forward_returns(close: npt.ArrayLike, horizon: int) -> FloatArray:
    """``close[t + horizon] / close[t] - 1``; NaN where the future is not in the data."""
    prices = np.asarray(close, dtype=np.float64)
    if horizon < 1:
        raise ValueError("horizon must be at least one bar")
    out = np.full(len(prices), np.nan)
    if len(prices) > horizon:
        out[:-horizon] = prices[horizon:] / prices[:-horizon] - 1.0
    return out
