"""Market data for the agent: bars → :mod:`tapewatch.detectors.features` → normalised observation features.

Pure computation; the sources are read by :mod:`tapewatch.training.dqn.data`:

* ``bokeh-sampledata`` (BSD-3 package; the stock series are public domain, Quandl WIKI): AAPL, GOOG, IBM,
  MSFT daily OHLCV 2000-03 … 2013-03 (GOOG from 2004-08). Prices are unadjusted in the file; they are scaled
  by the file's split/dividend-adjusted close, so splits are not crashes.
* ``arch`` (NCSA licence): S&P 500 and NASDAQ Composite daily OHLCV 1999 … 2018.
* TWSE daily history as written by ``tapewatch fetch twse-daily`` (Parquet), when the user has network.
* The labelled simulator for intraday 1-minute sessions.

Daily rows become bars shaped like :mod:`tapewatch.detectors.bars` output (``vwap ≈ (high + low + close) / 3``, change
percentages by :func:`tapewatch.detectors.bars.pct_change`) and go through
:func:`tapewatch.detectors.features.compute_frame`, so a daily feature is the same definition as a live minute feature,
only over daily bars.

Sixty business days of a random walk → bars → features → a segment the agent can use: the rows still warming
up (the RSI's first 14) are dropped and the rest normalised with the training range's statistics:

>>> close = 50 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, 60)))
>>> daily = pd.DataFrame({"date": pd.bdate_range("2024-01-01", periods=60), "open": close,
...                       "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1e6})
>>> series = series_from_bars("TEST", "synthetic", bars_from_daily(daily))
>>> normaliser = Normaliser.fit(("ret_1", "rsi_14"), [series])
>>> segment = prepare(series, normaliser)
>>> len(series.close), len(segment)
(60, 46)
>>> bool(np.allclose(segment.features.mean(axis=0), 0.0)), segment.features.std(axis=0).round(6).tolist()
(True, [1.0, 1.0])
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from tapewatch.detectors.bars import pct_change
from tapewatch.detectors.features import FEATURE_NAMES, FEATURE_SET_VERSION, compute_frame
from tapewatch.errors import TapewatchError

FloatArray = npt.NDArray[np.float64]

#: The observation features of a default model: returns at several horizons, volatility, volume surprise,
#: trend and oscillator features. Scale-free, so one network serves assets of any price level.
DEFAULT_FEATURES: Final[tuple[str, ...]] = (
    "ret_1",
    "ret_5",
    "ret_10",
    "ret_30",
    "rvol_30",
    "volume_z_30",
    "ema_20",
    "bias_25",
    "rsi_14",
    "kd_k",
    "macd_hist",
    "boll_pctb_20",
    "boll_width_20",
    "mom_20",
    "up_ratio_10",
)

#: clip of normalised features: a once-in-a-decade bar should not saturate the network
CLIP: Final = 5.0


class DataError(TapewatchError, ValueError):
    """Input data the agent cannot use: unknown asset, missing columns or features, too few rows."""


@dataclass(frozen=True)
class AssetSeries:
    """One asset's bars and every feature of :data:`FEATURE_NAMES` (raw, NaN while warming up).

    >>> days = pd.bdate_range("2024-01-01", periods=60)
    >>> bars = pd.DataFrame({"date": days, "open": 10.0, "high": 10.5, "low": 9.5, "close": 10.0, "volume": 1e6})
    >>> series = series_from_bars("FLAT", "synthetic", bars_from_daily(bars))
    >>> february = series.window("2024-02-01", "2024-03-01")
    >>> len(february.close), str(february.times[0]), str(february.times[-1])
    (21, '2024-02-01T00:00:00.000', '2024-02-29T00:00:00.000')
    >>> float(february.features["ret_10"].iloc[0])  # from January's closes: the window keeps the history
    0.0
    """

    symbol: str
    source: str
    times: npt.NDArray[np.datetime64]
    close: FloatArray
    features: pd.DataFrame
    session_end: npt.NDArray[np.bool_] | None = None
    time_to_close: FloatArray | None = None

    @property
    def intraday(self) -> bool:
        return self.session_end is not None

    def window(self, start: date | str | None, end: date | str | None) -> AssetSeries:
        """Bars with ``start <= time < end`` (features keep their history from before ``start``)."""
        mask = np.ones(len(self.times), dtype=bool)
        if start is not None:
            mask &= self.times >= np.datetime64(pd.Timestamp(start))
        if end is not None:
            mask &= self.times < np.datetime64(pd.Timestamp(end))
        return replace(
            self,
            times=self.times[mask],
            close=self.close[mask],
            features=self.features.loc[mask],
            session_end=None if self.session_end is None else self.session_end[mask],
            time_to_close=None if self.time_to_close is None else self.time_to_close[mask],
        )


# -- bars ------------------------------------------------------------------------------------------------------
def bars_from_daily(ohlcv: pd.DataFrame) -> pd.DataFrame:
    """Daily OHLCV (index or column ``date``) → a frame with the columns :func:`compute_frame` reads."""
    frame = ohlcv.reset_index() if "date" not in ohlcv.columns else ohlcv
    missing = {"date", "open", "high", "low", "close", "volume"} - set(frame.columns)
    if missing:
        raise DataError(f"daily data lacks column(s) {', '.join(sorted(missing))}")
    frame = frame.sort_values("date").drop_duplicates("date")
    close = frame["close"].to_numpy(dtype="float64")
    volume = frame["volume"].to_numpy(dtype="float64")
    prev_close: list[float | None] = [None, *close[:-1].tolist()]
    prev_volume: list[float | None] = [None, *volume[:-1].tolist()]
    dates = pd.to_datetime(frame["date"]).to_numpy(dtype="datetime64[ms]")
    return pd.DataFrame(
        {
            "start": dates.astype("int64"),
            "open": frame["open"].to_numpy(dtype="float64"),
            "high": frame["high"].to_numpy(dtype="float64"),
            "low": frame["low"].to_numpy(dtype="float64"),
            "close": close,
            "volume": volume,
            "vwap": (frame["high"].to_numpy("float64") + frame["low"].to_numpy("float64") + close) / 3.0,
            "price_change_pct": [_nan(pct_change(c, p)) for c, p in zip(close.tolist(), prev_close, strict=True)],
            "volume_change_pct": [_nan(pct_change(v, p)) for v, p in zip(volume.tolist(), prev_volume, strict=True)],
        }
    )


def _nan(value: float | None) -> float:
    return np.nan if value is None else value


def series_from_bars(
    symbol: str, source: str, bars: pd.DataFrame, *, session_end: Any = None, time_to_close: Any = None
) -> AssetSeries:
    bars = bars.reset_index(drop=True)
    if len(bars) == 0:
        raise DataError(f"{symbol}: no bars")
    close = bars["close"].to_numpy(dtype="float64")
    if not np.all(np.isfinite(close)) or np.any(close <= 0):
        raise DataError(f"{symbol}: close prices must be finite and positive")
    return AssetSeries(
        symbol=symbol,
        source=source,
        times=bars["start"].to_numpy(dtype="int64").astype("datetime64[ms]"),
        close=close,
        features=compute_frame(bars),
        session_end=None if session_end is None else np.asarray(session_end, dtype=bool),
        time_to_close=None if time_to_close is None else np.asarray(time_to_close, dtype="float64"),
    )


# -- normalisation and prepared segments ---------------------------------------------------------------------
@dataclass(frozen=True)
class Normaliser:
    """``clip((x - mean) / std, ±CLIP)`` with training-range statistics (stored in the manifest).

    >>> normaliser = Normaliser(("ret_1", "rsi_14"), np.array([0.0, 50.0]), np.array([0.01, 10.0]))
    >>> normaliser.transform([[0.02, 45.0], [1.0, 50.0]]).tolist()  # a once-in-a-decade bar is clipped at 5
    [[2.0, -0.5], [5.0, 0.0]]
    >>> again = Normaliser.from_manifest(normaliser.to_manifest())
    >>> again.feature_names, again.std.tolist()
    (('ret_1', 'rsi_14'), [0.01, 10.0])
    """

    feature_names: tuple[str, ...]
    mean: FloatArray
    std: FloatArray

    @classmethod
    def fit(cls, feature_names: Sequence[str], series: Sequence[AssetSeries]) -> Normaliser:
        rows = np.concatenate([_select(s, feature_names) for s in series])
        rows = rows[np.all(np.isfinite(rows), axis=1)]
        if len(rows) < 2:
            raise DataError("too few complete feature rows in the training range to fit the normalisation")
        std = rows.std(axis=0)
        return cls(tuple(feature_names), rows.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, raw: npt.ArrayLike) -> FloatArray:
        x = (np.asarray(raw, dtype="float64") - self.mean) / self.std
        return np.clip(x, -CLIP, CLIP)

    def to_manifest(self) -> dict[str, Any]:
        return {"features": list(self.feature_names), "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_manifest(cls, data: Mapping[str, Any]) -> Normaliser:
        names = tuple(str(n) for n in data["features"])
        mean, std = np.asarray(data["mean"], dtype="float64"), np.asarray(data["std"], dtype="float64")
        if mean.shape != (len(names),) or std.shape != (len(names),):
            raise DataError("normalisation statistics do not match the feature list")
        return cls(names, mean, std)


def check_feature_names(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in FEATURE_NAMES]
    if unknown:
        raise DataError(f"unknown feature(s) {', '.join(unknown)} (feature set {FEATURE_SET_VERSION})")
    if not names:
        raise DataError("select at least one feature")


def _select(series: AssetSeries, names: Sequence[str]) -> FloatArray:
    return series.features.loc[:, list(names)].to_numpy(dtype="float64")


@dataclass(frozen=True)
class Segment:
    """A prepared stretch of one asset: complete rows only, features normalised."""

    symbol: str
    times: npt.NDArray[np.datetime64]
    close: FloatArray
    features: FloatArray
    session_end: npt.NDArray[np.bool_] | None
    time_to_close: FloatArray | None

    def __len__(self) -> int:
        return len(self.close)


def prepare(series: AssetSeries, normaliser: Normaliser) -> Segment:
    """Drop rows whose selected features are incomplete (the warm-up) and normalise the rest."""
    raw = _select(series, normaliser.feature_names)
    keep = np.all(np.isfinite(raw), axis=1)
    return Segment(
        symbol=series.symbol,
        times=series.times[keep],
        close=series.close[keep],
        features=normaliser.transform(raw[keep]),
        session_end=None if series.session_end is None else series.session_end[keep],
        time_to_close=None if series.time_to_close is None else series.time_to_close[keep],
    )


def data_fingerprint(series: Sequence[AssetSeries]) -> str:
    """SHA-256 over symbols, times and closes: which data a model saw."""
    digest = hashlib.sha256()
    for s in series:
        digest.update(s.symbol.encode())
        digest.update(s.times.astype("int64").tobytes())
        digest.update(s.close.tobytes())
    return digest.hexdigest()
