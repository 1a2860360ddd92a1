"""Feature rows → normalised windows and their targets, the inputs of training and prediction (no torch).

A window ending at bar ``t`` holds the normalised rows ``t - window + 1 … t`` and exists only when every one
of them is complete (no feature still warming up or undefined); its target is the return from ``t``'s close to
``t + horizon``'s close (:func:`tapewatch.signals.forecast.windows.forward_returns`), unknown for the last bars.
Windows are not copied: :class:`Samples` keeps the stacked rows and each window's first row.

>>> rows = np.array([[0.0], [np.nan], [1.0], [2.0], [3.0]])
>>> window_ends(rows, 2).tolist()  # bars 3 and 4; bars 1 and 2 see the incomplete row 1
[3, 4]
>>> normaliser = Normaliser(("ret_1",), np.zeros(1), np.ones(1))
>>> close = np.array([10.0, 11.0, 12.0, 12.0, 13.2, 13.2])
>>> series = AssetSeries("X", "test", np.arange(6).astype("datetime64[D]"), close,
...                      pd.DataFrame({"ret_1": [np.nan, 0.1, 0.1, 0.0, 0.1, 0.0]}))
>>> samples = build_samples([series], normaliser, window=3, horizon=1)
>>> len(samples), samples.returns.round(6).tolist()  # windows end at bars 3, 4 (5 has no next close)
(2, [0.1, 0.0])
>>> samples.windows(np.array([1]))[0, :, 0].astype(float).round(6).tolist()  # rows 2, 3, 4 (float32)
[0.1, 0.0, 0.1]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

from tapewatch.signals.dqn.data import AssetSeries, Normaliser
from tapewatch.signals.forecast.windows import forward_returns

__all__ = ["Samples", "build_samples", "normalised_rows", "window_ends"]

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def normalised_rows(series: AssetSeries, normaliser: Normaliser) -> Float32Array:
    """The series' selected features, normalised and clipped as in training; NaN in incomplete rows."""
    raw = series.features.loc[:, list(normaliser.feature_names)].to_numpy(dtype="float64")
    return normaliser.transform(raw).astype(np.float32)


def window_ends(rows: npt.ArrayLike, window: int) -> IntArray:
    """The bars ``t`` whose rows ``t - window + 1 … t`` are all complete (finite), ascending."""
    values = np.asarray(rows)
    incomplete = ~np.isfinite(values).all(axis=1)
    before = np.concatenate([[0], np.cumsum(incomplete)])  # before[i]: incomplete rows among the first i
    ends = np.arange(window - 1, len(values), dtype=np.int64)
    complete: IntArray = ends[before[ends + 1] - before[ends + 1 - window] == 0]
    return complete


@dataclass(frozen=True)
class Samples:
    """Examples over several series: example ``i`` is ``rows[starts[i] : starts[i] + window]`` (its last bar's
    close ``close[i]``) and the return ``returns[i]`` that followed it."""

    rows: Float32Array
    starts: IntArray
    returns: FloatArray
    close: FloatArray
    window: int

    def __len__(self) -> int:
        return len(self.starts)

    def windows(self, index: npt.ArrayLike) -> Float32Array:
        """``(len(index), window, features)`` windows of the examples ``index``."""
        first = self.starts[np.asarray(index, dtype=np.int64)]
        windows: Float32Array = self.rows[first[:, None] + np.arange(self.window)]
        return windows


def build_samples(
    series: Sequence[AssetSeries],
    normaliser: Normaliser,
    window: int,
    horizon: int,
    start: date | str | None = None,
) -> Samples:
    """Every window with a known target; with ``start``, only windows ending on or after it (the rows before
    ``start`` still fill the first windows, as a live stream's history would)."""
    blocks: list[Float32Array] = []
    starts: list[IntArray] = []
    returns: list[FloatArray] = []
    closes: list[FloatArray] = []
    offset = 0
    for s in series:
        rows = normalised_rows(s, normaliser)
        ends = window_ends(rows, window)
        target = forward_returns(s.close, horizon)[ends]
        keep = np.isfinite(target)
        if start is not None:
            keep &= s.times[ends] >= np.datetime64(pd.Timestamp(start))
        blocks.append(rows)
        starts.append(offset + ends[keep] - window + 1)
        returns.append(target[keep])
        closes.append(s.close[ends[keep]])
        offset += len(rows)
    width = len(normaliser.feature_names)
    return Samples(
        rows=np.concatenate(blocks) if blocks else np.zeros((0, width), dtype=np.float32),
        starts=np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64),
        returns=np.concatenate(returns) if returns else np.zeros(0),
        close=np.concatenate(closes) if closes else np.zeros(0),
        window=window,
    )
