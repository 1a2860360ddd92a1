"""Training the LSTM forecaster: features → windows → data-parallel training → validation scores and band.

:func:`train_lstm` fits the normalisation on the training series, builds the windows (the target is the next
``horizon`` bars' return divided by the training returns' standard deviation, so the MSE is of order 1), trains
on ``workers`` processes (:mod:`tapewatch.signals.lstm.distributed`), keeps the epoch with the lowest validation loss,
and then, on the validation range only: scores the forecasts against the naive forecast, measures the
residual RMSE that defines the live confidence, and chooses the trading rule's band.

Validation series may carry history before ``val_start`` (e.g. ``series.window(None, val_end)``): it fills the
first validation windows, and only windows ending on or after ``val_start`` are scored.

>>> import pandas as pd
>>> from tapewatch.signals.dqn.data import bars_from_daily, series_from_bars
>>> close = 50 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 200)))
>>> daily = pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=200), "open": close, "high": close * 1.01,
...                       "low": close * 0.99, "close": close, "volume": np.linspace(1e6, 2e6, 200)})
>>> series = series_from_bars("TEST", "synthetic", bars_from_daily(daily))
>>> config = LstmConfig(window=10, units=4, batch_size=16, max_epochs=2, features=("ret_1", "bias_6"))
>>> result = train_lstm([series.window(None, "2020-07-01")], [series], config, val_start="2020-07-01")
>>> result.epochs, result.train_windows, result.val_windows
(2, 115, 69)
>>> sorted(k for k in result.validation if k.endswith("ratio")), result.forecaster().model
(['rmse_price_ratio', 'rmse_return_ratio'], 'lstm')
>>> train_lstm([series.window(None, "2020-01-20")], [series], config)
Traceback (most recent call last):
...
tapewatch.signals.forecast.windows.HistoryError: too little history: no 10-bar window of complete features with a \
known next return in the training data (13 bars in 1 series)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from tapewatch.signals.dqn.costs import CostModel, cost_preset
from tapewatch.signals.dqn.data import AssetSeries, DataError, Normaliser, check_feature_names
from tapewatch.signals.forecast.windows import HistoryError
from tapewatch.signals.lstm.config import LstmConfig
from tapewatch.signals.lstm.distributed import TrainingData, train_data_parallel
from tapewatch.signals.lstm.forecaster import FittedLstm, choose_band, since
from tapewatch.signals.lstm.model import Weights, network_from_weights
from tapewatch.signals.lstm.samples import Samples, build_samples

__all__ = ["LstmResult", "fit_lstm", "train_lstm"]

#: the rule's band is chosen after these costs unless told otherwise (0.1 % a side)
DEFAULT_COSTS = "crypto"


@dataclass
class LstmResult:
    """A trained model and how it did on validation (``validation``: forecast scores vs the naive forecast;
    ``band_sharpe``: each band candidate's mean validation Sharpe)."""

    weights: Weights
    config: LstmConfig
    normaliser: Normaliser
    target_scale: float
    residual_rmse: float
    band: float
    costs: CostModel
    validation: dict[str, float]
    band_sharpe: dict[float, float]
    seconds: float
    epochs: int
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    workers: int
    train_windows: int
    val_windows: int
    history: list[dict[str, float]] = field(default_factory=list)

    def forecaster(self) -> FittedLstm:
        network = network_from_weights(len(self.config.features), self.config.units, self.weights)
        return FittedLstm(network, self.normaliser, self.config, self.target_scale, self.band)


def _check_defined(series: Sequence[AssetSeries], names: Sequence[str]) -> None:
    """Name the features that never have a value in the training data (e.g. ``volume_z_30`` of a flat volume)."""
    empty = [n for n in names if not any(np.isfinite(s.features[n].to_numpy(dtype="float64")).any() for s in series)]
    if empty:
        raise DataError(f"feature(s) {', '.join(empty)} have no finite value in the training data: choose others")


def _samples(
    series: Sequence[AssetSeries], normaliser: Normaliser, c: LstmConfig, what: str, start: date | str | None
) -> Samples:
    samples = build_samples(series, normaliser, c.window, c.horizon, start)
    if len(samples) == 0:
        bars = sum(len(s.close) for s in series)
        raise HistoryError(
            f"too little history: no {c.window}-bar window of complete features with a known next return in the "
            f"{what} data ({bars} bars in {len(series)} series)"
        )
    return samples


def train_lstm(
    train: Sequence[AssetSeries],
    val: Sequence[AssetSeries],
    config: LstmConfig | None = None,
    workers: int = 1,
    *,
    val_start: date | str | None = None,
    costs: CostModel | None = None,
) -> LstmResult:
    """Train on ``train``, early-stop and choose the band on ``val`` (from ``val_start`` on, if given)."""
    c = config or LstmConfig()
    check_feature_names(c.features)
    cost_model = costs or cost_preset(DEFAULT_COSTS)
    _check_defined(train, c.features)
    normaliser = Normaliser.fit(c.features, train)
    train_samples = _samples(train, normaliser, c, "training", None)
    val_samples = _samples(val, normaliser, c, "validation", val_start)
    scale = float(np.std(train_samples.returns))
    data = TrainingData(train_samples, val_samples, scale if scale > 0 else 1.0)
    started = time.perf_counter()
    outcome = train_data_parallel(data, c, workers)
    seconds = time.perf_counter() - started
    network = network_from_weights(len(c.features), c.units, outcome.weights)
    fitted = FittedLstm(network, normaliser, c, data.target_scale)
    cut = [since(s, fitted.predict(s), val_start) for s in val]
    validation = fitted.diagnostics([s for s, _ in cut], [f for _, f in cut])
    band, band_sharpe = choose_band([s for s, _ in cut], [f for _, f in cut], cost_model)
    return LstmResult(
        weights=outcome.weights,
        config=c,
        normaliser=normaliser,
        target_scale=data.target_scale,
        residual_rmse=validation["rmse_return"],
        band=band,
        costs=cost_model,
        validation=validation,
        band_sharpe=band_sharpe,
        seconds=seconds,
        epochs=outcome.epochs,
        best_epoch=outcome.best_epoch,
        best_val_loss=outcome.best_val_loss,
        stopped_early=outcome.stopped_early,
        workers=workers,
        train_windows=len(train_samples),
        val_windows=len(val_samples),
        history=outcome.history,
    )


def fit_lstm(
    train: Sequence[AssetSeries],
    val: Sequence[AssetSeries],
    config: LstmConfig | None = None,
    workers: int = 1,
    *,
    val_start: date | str | None = None,
    costs: CostModel | None = None,
) -> FittedLstm:
    """:func:`train_lstm`, as the lab's ``TrainedForecaster``."""
    return train_lstm(train, val, config, workers, val_start=val_start, costs=costs).forecaster()
