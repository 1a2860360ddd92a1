"""The forecaster families the signals lab walks forward, each with its default configuration and a seed.

A family is ``(training-years series, validation-year series, seed) → TrainedForecaster``; its defaults are
the models ``tapewatch train lstm`` and ``tapewatch train cnn`` publish, so the lab reports on what is served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Final

from tapewatch.signals.dqn.costs import CostModel
from tapewatch.signals.dqn.data import AssetSeries, DataError
from tapewatch.signals.forecast.contract import TrainedForecaster
from tapewatch.training.lab.lab import FitForecaster

FAMILIES: Final = ("lstm", "cnn")


def _lstm(costs: CostModel) -> FitForecaster:
    from tapewatch.signals.lstm.config import LstmConfig
    from tapewatch.signals.lstm.training import fit_lstm

    def fit(train: Sequence[AssetSeries], val: Sequence[AssetSeries], val_start: date, seed: int) -> TrainedForecaster:
        return fit_lstm(train, val, replace(LstmConfig(), seed=seed), val_start=val_start, costs=costs)

    return fit


def _cnn(costs: CostModel) -> FitForecaster:
    from tapewatch.signals.cnn.config import CnnConfig
    from tapewatch.signals.cnn.training import train_cnn

    def fit(train: Sequence[AssetSeries], val: Sequence[AssetSeries], val_start: date, seed: int) -> TrainedForecaster:
        # the CNN's validation images start a window into the validation year (it reads no earlier history)
        year = [s.window(val_start, None) for s in val]
        return train_cnn(train, year, replace(CnnConfig(), seed=seed)).model

    return fit


def forecaster_families(names: Sequence[str], costs: CostModel) -> dict[str, FitForecaster]:
    """The named families (in the order given); :class:`DataError` for a name that is not one."""
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise DataError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    builders = {"lstm": _lstm, "cnn": _cnn}
    return {name: builders[name](costs) for name in names}
