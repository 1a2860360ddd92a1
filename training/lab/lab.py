"""The signals lab's walk-forward: train on years A, stop on year B, trade year C, roll forward one year.

In each window and for each seed, every policy trades every asset's unseen test year through the same
environment and costs (:func:`tapewatch.signals.dqn.backtest.run_policy`):

* ``dqn`` — the Double DQN (:mod:`tapewatch.signals.dqn`), one network per seed trained on all assets pooled, greedy;
  ``dqn_ensemble`` — the window's networks of every seed on their mean Q-values (what ``train dqn`` publishes);
* one policy per forecaster family (``lstm``, ``cnn``): the family's fitted model forecasts every bar from the
  bars before it (its window may reach back before the test year, as a live stream's would) and its own rule
  turns the forecasts into positions;
* ``ensemble`` — per seed, the majority vote of the DQN's and the forecasters' positions (long when more than
  half are);
* ``buy_and_hold`` and ``momentum`` (deterministic: once per window) and ``random`` (per seed).

Nothing is tuned on a test year: each model fits its normalisation on its training years and stops on its
validation year. The forecasters' own scores on the test years (errors against the naive forecast, class scores
against the majority class) are kept beside the trading metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from torch import nn

from tapewatch.machine import machine_info
from tapewatch.signals.dqn.agent import AgentConfig, EnsembleQNetwork, network_from_weights, network_weights, train
from tapewatch.signals.dqn.backtest import (
    TRADING_DAYS,
    PolicyRun,
    always,
    greedy,
    metrics,
    momentum_rule,
    random_policy,
    run_policy,
)
from tapewatch.signals.dqn.costs import CostModel
from tapewatch.signals.dqn.data import AssetSeries, Segment
from tapewatch.signals.dqn.env import Act, observation_width
from tapewatch.signals.forecast.contract import SeriesForecast, TrainedForecaster
from tapewatch.signals.forecast.rules import chooser_from_targets
from tapewatch.training.dqn.walkforward import Splits, Window, window_splits
from tapewatch.training.lab.cache import TaskCache, TaskOutput

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: a forecaster family: (training-years series, series up to the test year, first validation day, seed) → a fitted
#: model; the validation series keep their history so that the validation year's first bars have full windows
FitForecaster = Callable[[Sequence[AssetSeries], Sequence[AssetSeries], date, int], TrainedForecaster]
ProgressFn = Callable[[str], None]

BASELINES: Final = ("buy_and_hold", "momentum", "random")


@dataclass(frozen=True)
class LabConfig:
    windows: Sequence[Window]
    seeds: Sequence[int]
    costs: CostModel
    dqn: AgentConfig
    dqn_features: Sequence[str]
    max_units: int = 1
    periods_per_year: float = TRADING_DAYS


@dataclass
class LabResult:
    """Per (window, seed, symbol, policy): metrics in ``rows`` and the bar returns in ``returns``."""

    config: LabConfig
    policies: list[str]
    symbols: list[str]
    rows: pd.DataFrame
    returns: dict[tuple[str, int, int, str], FloatArray]  # (policy, window, seed, symbol) → bar returns
    equity: dict[tuple[str, int, int, str], FloatArray]
    diagnostics: pd.DataFrame  # model, window, test_year, seed, then the model's own scores
    train_seconds: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    machines: list[dict[str, str]] = field(default_factory=list)  # where each (window, seed) task ran, in order


def hit_rate(run: PolicyRun) -> float:
    """The fraction of bars held long whose return was positive (0 when never invested)."""
    returns = run.equity[1:] / run.equity[:-1] - 1.0
    held = run.positions > 0
    return float(np.mean(returns[held] > 0)) if held.any() else 0.0


@dataclass
class _Collector:
    periods_per_year: float
    rows: list[dict[str, object]] = field(default_factory=list)
    returns: dict[tuple[str, int, int, str], FloatArray] = field(default_factory=dict)
    equity: dict[tuple[str, int, int, str], FloatArray] = field(default_factory=dict)
    diagnostics: list[dict[str, object]] = field(default_factory=list)
    train_seconds: dict[str, list[float]] = field(default_factory=dict)
    machines: list[dict[str, str]] = field(default_factory=list)

    def record(self, w: int, window: Window, seed: int, symbol: str, policy: str, run: PolicyRun) -> None:
        m = metrics(run, self.periods_per_year).as_dict()
        year = window.test_start.year
        self.rows.append({"window": w, "test_year": year, "seed": seed, "symbol": symbol, "policy": policy, **m})
        self.rows[-1]["hit_rate"] = hit_rate(run)
        self.returns[(policy, w, seed, symbol)] = run.equity[1:] / run.equity[:-1] - 1.0
        self.equity[(policy, w, seed, symbol)] = run.equity


def _aligned(series: AssetSeries, forecast: SeriesForecast, times: npt.NDArray[np.datetime64]) -> SeriesForecast:
    """The forecast at ``times`` (a test segment's bars, all of them bars of ``series``)."""
    idx = np.searchsorted(series.times, times)
    if np.any(idx >= len(series.times)) or not np.array_equal(series.times[idx], times):
        raise ValueError(f"{series.symbol}: the test bars are not bars of the forecast series")
    classes = None if forecast.classes is None else forecast.classes[idx]
    return SeriesForecast(forecast.prediction[idx], classes)


def majority(positions: Sequence[IntArray]) -> IntArray:
    """Long where more than half of the members are long.

    >>> majority([np.array([1, 1, 0]), np.array([1, 0, 0]), np.array([0, 1, 1])]).tolist()
    [1, 1, 0]
    """
    stacked = np.vstack([np.minimum(np.asarray(p), 1) for p in positions])
    long: IntArray = (2 * stacked.sum(axis=0) > len(positions)).astype(np.int64)
    return long


def _baselines(out: _Collector, w: int, window: Window, test: Sequence[Segment], config: LabConfig) -> None:
    for segment in test:
        run = run_policy(segment, config.costs, always(Act.BUY), config.max_units)
        out.record(w, window, -1, segment.symbol, "buy_and_hold", run)
        run = run_policy(segment, config.costs, momentum_rule(segment), config.max_units)
        out.record(w, window, -1, segment.symbol, "momentum", run)


def _random(out: _Collector, w: int, window: Window, seed: int, test: Sequence[Segment], config: LabConfig) -> None:
    for segment in test:
        run = run_policy(segment, config.costs, random_policy(seed), config.max_units)
        out.record(w, window, seed, segment.symbol, "random", run)


Positions = dict[str, IntArray]  # symbol → position held after each bar's action


def _run_dqn(
    out: _Collector, w: int, window: Window, seed: int, splits: Splits, config: LabConfig
) -> tuple[Positions, nn.Module]:
    agent = replace(config.dqn, seed=seed, ensemble=1)
    result = train(
        splits.train,
        splits.val,
        config.costs,
        agent,
        max_units=config.max_units,
        periods_per_year=config.periods_per_year,
    )
    out.train_seconds.setdefault("dqn", []).append(result.seconds)
    network = network_from_weights(result.obs_dim, agent, result.weights)
    positions: Positions = {}
    for segment in splits.test:
        run = run_policy(segment, config.costs, greedy(network, segment, config.max_units), config.max_units)
        out.record(w, window, seed, segment.symbol, "dqn", run)
        positions[segment.symbol] = run.positions
    return positions, network


def _run_dqn_ensemble(
    out: _Collector, w: int, window: Window, members: Sequence[nn.Module], test: Sequence[Segment], config: LabConfig
) -> None:
    """The window's DQNs of every seed acting together on their mean Q-values (what ``train dqn`` publishes)."""
    ensemble = EnsembleQNetwork(list(members))
    for segment in test:
        run = run_policy(segment, config.costs, greedy(ensemble, segment, config.max_units), config.max_units)
        out.record(w, window, -1, segment.symbol, "dqn_ensemble", run)


@dataclass(frozen=True)
class _Family:
    name: str
    fit: FitForecaster


def _run_forecaster(
    out: _Collector,
    family: _Family,
    w: int,
    window: Window,
    seed: int,
    series: Sequence[AssetSeries],
    test: Sequence[Segment],
    config: LabConfig,
) -> Positions:
    started = time.perf_counter()
    model = family.fit(
        [s.window(window.train_start, window.val_start) for s in series],
        [s.window(None, window.test_start) for s in series],
        window.val_start,
        seed,
    )
    out.train_seconds.setdefault(family.name, []).append(time.perf_counter() - started)
    by_symbol = {s.symbol: s for s in series}
    positions: Positions = {}
    tested: list[AssetSeries] = []
    forecasts: list[SeriesForecast] = []
    for segment in test:
        history = by_symbol[segment.symbol].window(None, window.test_end)
        forecast = model.predict(history)
        targets = model.targets(_aligned(history, forecast, segment.times))
        run = run_policy(segment, config.costs, chooser_from_targets(targets, config.max_units), config.max_units)
        out.record(w, window, seed, segment.symbol, family.name, run)
        positions[segment.symbol] = run.positions
        year = history.window(window.test_start, window.test_end)
        tested.append(year)
        forecasts.append(_aligned(history, forecast, year.times))
    scores = model.diagnostics(tested, forecasts)
    out.diagnostics.append(
        {"model": family.name, "window": w, "test_year": window.test_start.year, "seed": seed, **scores}
    )
    return positions


def _run_ensemble(
    out: _Collector,
    w: int,
    window: Window,
    seed: int,
    test: Sequence[Segment],
    members: Mapping[str, Positions],
    config: LabConfig,
) -> None:
    for segment in test:
        targets = majority([member[segment.symbol] for member in members.values()])
        run = run_policy(segment, config.costs, chooser_from_targets(targets, config.max_units), config.max_units)
        out.record(w, window, seed, segment.symbol, "ensemble", run)


def _seed_task(
    w: int, window: Window, seed: int, series: Sequence[AssetSeries], splits: Splits, config: LabConfig,
    families: Mapping[str, FitForecaster], say: ProgressFn,
) -> TaskOutput:  # fmt: skip
    """Every policy of one seed on one window (its DQN, forecasters, their ensemble, the random policy)."""
    part = _Collector(config.periods_per_year)
    say(f"{window.label}, seed {seed}: dqn")
    dqn_positions, network = _run_dqn(part, w, window, seed, splits, config)
    members = {"dqn": dqn_positions}
    for name, fit in families.items():
        say(f"{window.label}, seed {seed}: {name}")
        members[name] = _run_forecaster(part, _Family(name, fit), w, window, seed, series, splits.test, config)
    if len(members) > 1:
        _run_ensemble(part, w, window, seed, splits.test, members, config)
    _random(part, w, window, seed, splits.test, config)
    obs_dim = observation_width(len(config.dqn_features), intraday=False)
    return TaskOutput(part.rows, part.diagnostics, part.returns, part.equity, part.train_seconds, obs_dim,
                      network_weights(network), machine_info())  # fmt: skip


def _merge(out: _Collector, task: TaskOutput) -> None:
    out.rows.extend(task.rows)
    out.diagnostics.extend(task.diagnostics)
    out.returns.update(task.returns)
    out.equity.update(task.equity)
    for name, seconds in task.train_seconds.items():
        out.train_seconds.setdefault(name, []).extend(seconds)
    out.machines.append(task.machine)


def run_lab(
    series: Sequence[AssetSeries],
    config: LabConfig,
    families: Mapping[str, FitForecaster],
    progress: ProgressFn | None = None,
    checkpoint: Callable[[pd.DataFrame, pd.DataFrame], None] | None = None,
    cache: TaskCache | None = None,
) -> LabResult:
    """Every policy over every window, seed and asset (see the module docstring). ``checkpoint`` gets the metric
    rows and the forecasters' scores so far after each seed; with a ``cache``, finished (window, seed) tasks are
    read back instead of run again, and new ones are stored as they finish."""
    started = time.perf_counter()
    out = _Collector(config.periods_per_year)
    say = progress or (lambda line: None)
    single = replace(config.dqn, ensemble=1)
    for w, window in enumerate(config.windows):
        splits = window_splits(series, config.dqn_features, window)
        _baselines(out, w, window, splits.test, config)
        networks: list[nn.Module] = []
        for seed in config.seeds:
            task = cache.load(w, window, seed) if cache is not None else None
            if task is None:
                task = _seed_task(w, window, seed, series, splits, config, families, say)
                if cache is not None:
                    cache.save(window, seed, task)
            _merge(out, task)
            networks.append(network_from_weights(task.dqn_obs_dim, single, task.dqn_weights))
            if checkpoint is not None:
                checkpoint(pd.DataFrame(out.rows), pd.DataFrame(out.diagnostics))
        if len(networks) > 1:
            _run_dqn_ensemble(out, w, window, networks, splits.test, config)
    return _result(series, config, families, out, time.perf_counter() - started)


def _result(
    series: Sequence[AssetSeries], config: LabConfig, families: Mapping[str, FitForecaster], out: _Collector,
    seconds: float,
) -> LabResult:  # fmt: skip
    policies = [
        "dqn",
        *(["dqn_ensemble"] if len(config.seeds) > 1 else []),
        *families,
        *(["ensemble"] if families else []),
        *BASELINES,
    ]
    return LabResult(
        config=config,
        policies=policies,
        symbols=sorted({s.symbol for s in series}),
        rows=pd.DataFrame(out.rows),
        returns=out.returns,
        equity=out.equity,
        diagnostics=pd.DataFrame(out.diagnostics),
        train_seconds=out.train_seconds,
        seconds=seconds,
        machines=out.machines,
    )
