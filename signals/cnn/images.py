"""Indicator images and move classes: what the CNN sees at a bar close and what it learns to predict.

The image at bar ``t`` is the last ``window`` bars (56 by default, oldest first) of a set of indicators of
:mod:`tapewatch.detectors.features`, each standardised with the training range's statistics (:class:`Normaliser`,
clipped at ±5), laid out as ``(channel 1, indicators, window)``: one row per indicator, one column per bar. It only
holds bars up to ``t`` (:func:`tapewatch.signals.forecast.windows.sliding_windows`), and only when all of them are
complete.

One channel, the symbol itself: that is what a live request carries (one symbol's feature rows) and what the
lab's ``predict(series)`` sees. A second channel of the S&P 500's image at the same date was tried offline
(validation years 2007–2009, seeds 0 and 1): validation balanced accuracy +0.012 on average over the six
pairs (+0.037, -0.018, +0.021, -0.016, +0.028, +0.020), within the noise, so it is not worth a model that
cannot be served from one symbol's stream.

The label of bar ``t`` is the move over the next ``horizon`` bars (14 by default),
``close[t + horizon] / close[t] - 1`` (:func:`tapewatch.signals.forecast.windows.forward_returns`), put in one of three
classes (:data:`CLASS_NAMES`) by two thresholds fitted on the training range only (:class:`ClassThresholds`).

Twelve bars of two indicators, images of 4 bars, a 2-bar horizon: the first complete row is bar 1, so the
first image ends at bar 4; the last two bars have no label yet.

>>> import pandas as pd
>>> from tapewatch.signals.dqn.data import AssetSeries
>>> close = np.array([10, 10, 11, 12, 11, 10, 10, 11, 12, 13, 13, 12], dtype=float)
>>> raw = pd.DataFrame({"ret_1": np.r_[np.nan, np.diff(np.log(close))], "rsi_14": np.linspace(40, 62, 12)})
>>> series = AssetSeries("TEST", "synthetic", np.arange(12).astype("datetime64[D]"), close, raw)
>>> normaliser = Normaliser(("ret_1", "rsi_14"), np.array([0.0, 50.0]), np.array([0.1, 10.0]))
>>> found = series_images(series, normaliser, window=4)
>>> found.images.shape, found.ends.tolist()[:3]
((8, 1, 2, 4), [4, 5, 6])
>>> found.images[0, 0, 1].astype(float).round(2).tolist()  # rsi_14 of bars 1…4, standardised
[-0.8, -0.6, -0.4, -0.2]
>>> thresholds = ClassThresholds.fit([forward_returns(close, 2)])
>>> thresholds.label(forward_returns(close, 2)).tolist()
[1, 2, 1, 0, 0, 1, 2, 2, 1, 0, -1, -1]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from tapewatch.signals.dqn.data import AssetSeries, DataError, Normaliser
from tapewatch.signals.forecast.contract import CLASS_NAMES
from tapewatch.signals.forecast.windows import forward_returns, sliding_windows

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ImageArray = npt.NDArray[np.float32]

DEFAULT_WINDOW: Final = 56
DEFAULT_HORIZON: Final = 14

#: The image's rows, grouped by family so that the rows a 3×3 or 5×5 kernel spans are related indicators:
#: returns (short → long), distance from moving averages, oscillators, volatility and volume. All are
#: scale-free (returns, ratios, bounded oscillators), so one network serves a $10 and a $1,000 stock, and the
#: set is the DQN's default features: one live feature stream feeds both models.
IMAGE_FEATURES: Final[tuple[str, ...]] = (
    "ret_1",
    "ret_5",
    "ret_10",
    "ret_30",
    "mom_20",
    "ema_20",
    "bias_25",
    "macd_hist",
    "rsi_14",
    "kd_k",
    "boll_pctb_20",
    "up_ratio_10",
    "boll_width_20",
    "rvol_30",
    "volume_z_30",
)


def window_images(windows: npt.ArrayLike) -> ImageArray:
    """Normalised windows ``(k, window, features)`` → images ``(k, 1, features, window)`` (float32).

    >>> window_images(np.arange(6.0).reshape(1, 3, 2)).tolist()
    [[[[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]]]
    """
    array = np.asarray(windows, dtype=np.float32)
    return np.ascontiguousarray(np.swapaxes(array, 1, 2)[:, None])


@dataclass(frozen=True)
class SeriesImages:
    """Every complete image of one series: ``images[j]`` ends at bar ``ends[j]`` of the series."""

    images: ImageArray
    ends: IntArray


def series_images(series: AssetSeries, normaliser: Normaliser, window: int) -> SeriesImages:
    """The images of every bar whose last ``window`` rows of the normaliser's features are all finite."""
    raw = series.features.loc[:, list(normaliser.feature_names)].to_numpy(dtype=np.float64)
    if len(raw) < window:
        return SeriesImages(np.zeros((0, 1, len(normaliser.feature_names), window), np.float32), np.zeros(0, np.int64))
    complete = np.isfinite(raw).all(axis=1).astype(np.int64)
    full = np.convolve(complete, np.ones(window, dtype=np.int64), mode="valid") == window
    windows = sliding_windows(normaliser.transform(raw), window)[full]
    return SeriesImages(window_images(windows), np.flatnonzero(full).astype(np.int64) + window - 1)


@dataclass(frozen=True)
class ClassThresholds:
    """A forward return below ``down`` is class *down*, above ``up`` is *up*, else *flat* (``down <= up``).

    Fitted on the training range's forward returns only: by default at their terciles, so the training classes
    are balanced and a model can only beat the majority class by learning something beyond the base rates;
    with ``sigma`` at ``±sigma · std`` around zero.

    >>> returns = [np.array([-0.03, -0.01, 0.0, 0.01, 0.02, 0.05, np.nan])]
    >>> thresholds = ClassThresholds.fit(returns)
    >>> round(thresholds.down, 6), round(thresholds.up, 6), thresholds.method
    (-0.003333, 0.013333, 'tercile')
    >>> ClassThresholds.fit(returns, sigma=0.5).label(np.array([-0.02, 0.0, 0.02])).tolist()
    [0, 1, 2]
    """

    down: float
    up: float
    method: str = "tercile"

    def __post_init__(self) -> None:
        if not self.down <= self.up:
            raise DataError(f"class thresholds must satisfy down <= up, got {self.down} > {self.up}")

    @classmethod
    def fit(cls, returns: Sequence[npt.ArrayLike], sigma: float | None = None) -> ClassThresholds:
        pooled = np.concatenate([np.asarray(r, dtype=np.float64).ravel() for r in returns])
        pooled = pooled[np.isfinite(pooled)]
        if len(pooled) < 3:
            raise DataError("too few labelled bars in the training range to fit the class thresholds")
        if sigma is not None:
            spread = sigma * float(pooled.std())
            return cls(-spread, spread, f"{sigma:g} sigma")
        down, up = np.quantile(pooled, [1 / 3, 2 / 3])
        return cls(float(down), float(up), "tercile")

    def label(self, returns: npt.ArrayLike) -> IntArray:
        """Class index (into :data:`CLASS_NAMES`) of each return; ``-1`` where the return is unknown."""
        r = np.asarray(returns, dtype=np.float64)
        out = np.where(r < self.down, 0, np.where(r > self.up, 2, 1)).astype(np.int64)
        out[~np.isfinite(r)] = -1
        return out

    def to_manifest(self) -> dict[str, Any]:
        return {"down": self.down, "up": self.up, "method": self.method}

    @classmethod
    def from_manifest(cls, data: Mapping[str, Any]) -> ClassThresholds:
        return cls(float(data["down"]), float(data["up"]), str(data.get("method", "tercile")))


@dataclass(frozen=True)
class LabelledImages:
    """Images with a known label, pooled over series (what training and validation iterate over)."""

    images: ImageArray
    labels: IntArray

    def counts(self) -> IntArray:
        return np.bincount(self.labels, minlength=len(CLASS_NAMES)).astype(np.int64)


def labelled_images(
    series: Sequence[AssetSeries], normaliser: Normaliser, window: int, horizon: int, thresholds: ClassThresholds
) -> LabelledImages:
    """The images whose label is known *within each series*.

    A series cut at the end of its range (:meth:`AssetSeries.window`) has no close after it, so its last
    ``horizon`` bars have no label: a training label never reaches into the validation range.
    """
    images: list[ImageArray] = []
    labels: list[IntArray] = []
    for s in series:
        found = series_images(s, normaliser, window)
        label = thresholds.label(forward_returns(s.close, horizon))[found.ends]
        keep = label >= 0
        images.append(found.images[keep])
        labels.append(label[keep])
    if not images:
        raise DataError("no series to build images from")
    return LabelledImages(np.concatenate(images), np.concatenate(labels))
