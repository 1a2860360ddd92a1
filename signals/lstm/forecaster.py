"""The fitted LSTM as the signals lab uses it (:class:`tapewatch.signals.forecast.contract.TrainedForecaster`).

* :meth:`FittedLstm.predict` — the expected next-bar return at every bar of a series, from the window ending
  there (NaN where there is no full window of complete feature rows); all windows in batched forward passes.
* :meth:`FittedLstm.targets` — the trading rule: :func:`tapewatch.signals.forecast.rules.band_targets` with the model's
  band (long once the forecast exceeds ``+band``, flat once it falls below ``-band``). The band is chosen on
  the **validation** year by :func:`choose_band` (never on a test year): among 0 and quantiles of the
  validation forecasts' magnitude, the one whose rule has the best mean validation Sharpe after costs.
* :meth:`FittedLstm.diagnostics` — :func:`forecast_scores`: return and price RMSE/MAE beside the naive
  forecast (tomorrow = today), their ratios, and direction accuracy, pooled over the series.

A network that always answers the same scaled return ``0.5`` (scale 1 %): the forecast is ``+0.5 %`` wherever
a window of complete rows exists, and the rule with a band of 0.1 % is long from the first forecast on:

>>> import torch
>>> from tapewatch.signals.dqn.data import Normaliser
>>> from tapewatch.signals.lstm.model import LstmNet
>>> network = LstmNet(features=1, units=2)
>>> with torch.no_grad():
...     for parameter in network.parameters():
...         _ = parameter.zero_()
...     _ = network.head.bias.fill_(0.5)
>>> config = LstmConfig(window=3, units=2, features=("ret_1",))
>>> fitted = FittedLstm(network.eval(), Normaliser(("ret_1",), np.zeros(1), np.ones(1)), config, 0.01, band=0.001)
>>> close = np.array([10.0, 10.1, 10.0, 10.2, 10.1, 10.3])
>>> series = AssetSeries("X", "test", np.arange(6).astype("datetime64[D]"), close,
...                      pd.DataFrame({"ret_1": [np.nan, 0.01, -0.01, 0.02, -0.01, 0.02]}))
>>> forecast = fitted.predict(series)
>>> forecast.prediction.round(4).tolist(), fitted.targets(forecast).tolist()
([nan, nan, nan, 0.005, 0.005, 0.005], [0, 0, 0, 1, 1, 1])
>>> scores = fitted.diagnostics([series], [forecast])
>>> scores["n"], round(scores["direction_accuracy"], 3), scores["rmse_return_ratio"] < 1.0
(2.0, 0.5, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

from tapewatch.signals.dqn.backtest import metrics, run_policy
from tapewatch.signals.dqn.costs import CostModel
from tapewatch.signals.dqn.data import AssetSeries, Normaliser, Segment
from tapewatch.signals.forecast.contract import SeriesForecast
from tapewatch.signals.forecast.metrics import regression_scores
from tapewatch.signals.forecast.rules import band_targets, chooser_from_targets
from tapewatch.signals.forecast.windows import forward_returns, sliding_windows
from tapewatch.signals.lstm.config import LstmConfig
from tapewatch.signals.lstm.model import LstmNet, predict_windows
from tapewatch.signals.lstm.samples import normalised_rows, window_ends

__all__ = ["BAND_QUANTILES", "FittedLstm", "choose_band", "forecast_scores", "since"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: band candidates besides 0: these quantiles of |validation forecast|
BAND_QUANTILES = (0.25, 0.5, 0.75, 0.9)
MODEL = "lstm"


@dataclass(frozen=True)
class FittedLstm:
    """A trained network with its normalisation, configuration, target scale and trading band."""

    network: LstmNet
    normaliser: Normaliser
    config: LstmConfig
    target_scale: float
    band: float = 0.0

    @property
    def model(self) -> str:
        return MODEL

    @property
    def horizon(self) -> int:
        return self.config.horizon

    def predict(self, series: AssetSeries) -> SeriesForecast:
        """The expected return over the next ``horizon`` bars at every bar (NaN without a full window)."""
        rows = normalised_rows(series, self.normaliser)
        ends = window_ends(rows, self.config.window)
        out = np.full(len(rows), np.nan)
        if len(ends):
            windows = sliding_windows(rows, self.config.window)[ends - self.config.window + 1]
            out[ends] = predict_windows(self.network, windows) * self.target_scale
        return SeriesForecast(out)

    def targets(self, forecast: SeriesForecast) -> IntArray:
        return band_targets(forecast.prediction, self.band)

    def diagnostics(self, series: Sequence[AssetSeries], forecasts: Sequence[SeriesForecast]) -> dict[str, float]:
        return forecast_scores(series, forecasts, self.horizon)

    def with_band(self, band: float) -> FittedLstm:
        return replace(self, band=band)


def forecast_scores(
    series: Sequence[AssetSeries], forecasts: Sequence[SeriesForecast], horizon: int
) -> dict[str, float]:
    """:func:`~tapewatch.signals.forecast.metrics.regression_scores` of the return forecasts, pooled over the series."""
    if len(series) != len(forecasts):
        raise ValueError("one forecast per series")
    for s, f in zip(series, forecasts, strict=True):
        if len(f.prediction) != len(s.close):
            raise ValueError(f"{s.symbol}: the forecast has {len(f.prediction)} bars, the series {len(s.close)}")
    if not series:
        return regression_scores([], [], []).as_dict()
    return regression_scores(
        np.concatenate([f.prediction for f in forecasts]),
        np.concatenate([forward_returns(s.close, horizon) for s in series]),
        np.concatenate([s.close for s in series]),
    ).as_dict()


def since(
    series: AssetSeries, forecast: SeriesForecast, start: date | str | None
) -> tuple[AssetSeries, SeriesForecast]:
    """The bars from ``start`` on, of the series and of its forecast (made on the whole series)."""
    if start is None:
        return series, forecast
    keep = series.times >= np.datetime64(pd.Timestamp(start))
    return series.window(start, None), SeriesForecast(forecast.prediction[keep])


def choose_band(
    series: Sequence[AssetSeries],
    forecasts: Sequence[SeriesForecast],
    costs: CostModel,
    quantiles: Sequence[float] = BAND_QUANTILES,
) -> tuple[float, dict[float, float]]:
    """The band (0 or a quantile of |forecast|) whose rule has the best mean Sharpe over ``series`` after
    ``costs``; on a tie the wider band (fewer trades). Also every candidate's mean Sharpe."""
    magnitudes = np.abs(np.concatenate([f.prediction for f in forecasts])) if forecasts else np.zeros(0)
    magnitudes = magnitudes[np.isfinite(magnitudes)]
    candidates = sorted({0.0, *(float(np.quantile(magnitudes, q)) for q in quantiles if len(magnitudes))})
    sharpe: dict[float, float] = {}
    for band in candidates:
        scores = [
            _rule_sharpe(s, band_targets(f.prediction, band), costs)
            for s, f in zip(series, forecasts, strict=True)
            if len(s.close) >= 2
        ]
        sharpe[band] = float(np.mean(scores)) if scores else math.nan
    best = max(candidates, key=lambda b: (np.nan_to_num(sharpe[b], nan=-np.inf), b))
    return best, sharpe


def _rule_sharpe(series: AssetSeries, targets: IntArray, costs: CostModel) -> float:
    """Sharpe of trading ``targets`` over the series through the environment (the rule reads no features)."""
    n = len(series.close)
    segment = Segment(series.symbol, series.times, series.close, np.zeros((n, 1)), None, None)
    return metrics(run_policy(segment, costs, chooser_from_targets(targets))).sharpe
