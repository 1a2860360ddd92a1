"""The signals lab on synthetic daily data: every policy on every window, seed and asset through the same
environment; the ensemble is the members' majority; the report carries the table, the bars and the charts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from tapewatch.machine import describe, machine_info
from tapewatch.signals.dqn.agent import AgentConfig
from tapewatch.signals.dqn.costs import cost_preset
from tapewatch.signals.dqn.data import AssetSeries, bars_from_daily, series_from_bars
from tapewatch.signals.forecast.contract import SeriesForecast
from tapewatch.signals.forecast.metrics import regression_scores
from tapewatch.signals.forecast.rules import band_targets
from tapewatch.signals.forecast.windows import forward_returns
from tapewatch.training.dqn.walkforward import yearly_windows
from tapewatch.training.lab.cache import TaskCache, TaskOutput, fingerprint
from tapewatch.training.lab.lab import LabConfig, LabResult, run_lab
from tapewatch.training.lab.report import quality_bars, ran_on, summary, write_report


def _series(symbol: str, seed: int) -> AssetSeries:
    days = pd.bdate_range("2003-01-01", "2008-12-31")
    rng = np.random.default_rng(seed)
    close = 40 * np.exp(np.cumsum(rng.normal(0.0003, 0.012, len(days))))
    frame = pd.DataFrame(
        {
            "date": days,
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.uniform(5e5, 2e6, len(days)),
        }
    )
    return series_from_bars(symbol, "synthetic", bars_from_daily(frame))


@dataclass(frozen=True)
class _Trend:
    """A forecaster of the next return as the last five days' mean return (known at each close)."""

    seed: int
    model: str = "trend"
    horizon: int = 1

    def predict(self, series: AssetSeries) -> SeriesForecast:
        return SeriesForecast(series.features["ret_5"].to_numpy(dtype="float64") / 5.0)

    def targets(self, forecast: SeriesForecast) -> npt.NDArray[np.int64]:
        return band_targets(forecast.prediction, 0.0)

    def diagnostics(self, series: Sequence[AssetSeries], forecasts: Sequence[SeriesForecast]) -> dict[str, float]:
        pred = np.concatenate([f.prediction for f in forecasts])
        true = np.concatenate([forward_returns(s.close, 1) for s in series])
        return regression_scores(pred, true, np.concatenate([s.close for s in series])).as_dict()


def _fit(train: Sequence[AssetSeries], val: Sequence[AssetSeries], val_start: date, seed: int) -> _Trend:
    first = np.datetime64(val_start)
    assert all(s.times.max() < first <= v.times.max() for s, v in zip(train, val, strict=True))
    return _Trend(seed)


@pytest.fixture(scope="module")
def lab() -> LabResult:
    series = [_series(f"S{i}", i) for i in range(3)]
    config = LabConfig(
        windows=yearly_windows(2007, 2, train_years=2),
        seeds=[0, 1],
        costs=cost_preset("crypto"),
        dqn=AgentConfig(hidden=(8,), total_steps=200, learning_starts=50, eval_every=100, episode_bars=60),
        dqn_features=("ret_1", "ret_5", "rsi_14"),
    )
    return run_lab(series, config, {"trend": _fit, "again": _fit})


def test_every_policy_trades_every_asset_of_every_window_and_seed(lab: LabResult) -> None:
    rows = lab.rows
    assert lab.policies == [
        "dqn",
        "dqn_ensemble",
        "trend",
        "again",
        "ensemble",
        "buy_and_hold",
        "momentum",
        "random",
    ]
    per_seed = rows[rows["seed"] >= 0].groupby("policy").size()
    assert {p: per_seed[p] for p in ("dqn", "trend", "ensemble", "random")} == dict.fromkeys(
        ("dqn", "trend", "ensemble", "random"), 2 * 2 * 3
    )
    for once_per_window in ("buy_and_hold", "momentum", "dqn_ensemble"):
        assert (rows[rows["policy"] == once_per_window].groupby("window").size() == 3).all()
    assert set(rows["test_year"]) == {2007, 2008}


def test_the_ensemble_is_the_members_majority(lab: LabResult) -> None:
    # two identical trend members outvote the DQN: the ensemble trades exactly as the trend rule does
    returns = lab.returns
    for (policy, w, seed, symbol), r in returns.items():
        if policy == "ensemble":
            assert np.array_equal(r, returns[("trend", w, seed, symbol)])


def test_the_report_has_the_table_the_bars_and_the_charts(lab: LabResult, tmp_path: Path) -> None:
    paths = write_report(lab, tmp_path, replicates=200)
    text = paths["report"].read_text()
    for policy in ("dqn", "trend", "ensemble", "buy_and_hold", "momentum", "random"):
        assert f"| {policy} |" in text
    assert "Sharpe − buy-and-hold [95 % CI]" in text and "trend: return RMSE / naive" in text
    assert f"Trained on (tasks): {describe(machine_info())} — {len(lab.machines)}." in text
    assert paths["equity"].stat().st_size > 10_000 and paths["sharpe"].stat().st_size > 5_000
    table = summary(lab)
    assert table.loc["buy_and_hold", "trades"] == 1.0
    assert sorted(b.name.split(":")[0] for b in quality_bars(lab)) == [
        "again",
        "dqn",
        "dqn_ensemble",
        "ensemble",
        "trend",
    ]


def test_a_resumed_lab_reads_its_finished_tasks_back_and_reports_the_same(tmp_path: Path) -> None:
    series = [_series(f"S{i}", i) for i in range(2)]
    config = LabConfig(
        windows=yearly_windows(2008, 1, train_years=2),
        seeds=[0, 1],
        costs=cost_preset("crypto"),
        dqn=AgentConfig(hidden=(8,), total_steps=200, learning_starts=50, eval_every=100, episode_bars=60),
        dqn_features=("ret_1", "ret_5", "rsi_14"),
    )
    fits: list[int] = []

    def counted(train: Sequence[AssetSeries], val: Sequence[AssetSeries], val_start: date, seed: int) -> _Trend:
        fits.append(seed)
        return _fit(train, val, val_start, seed)

    cache = TaskCache(tmp_path, fingerprint(series, {"config": config}))
    first = run_lab(series, config, {"trend": counted}, cache=cache)
    again = run_lab(series, config, {"trend": counted}, cache=cache)
    assert fits == [0, 1]  # the second run trained nothing
    pd.testing.assert_frame_equal(first.rows, again.rows)
    pd.testing.assert_frame_equal(first.diagnostics, again.diagnostics)
    assert first.returns.keys() == again.returns.keys()
    assert all(np.array_equal(first.returns[k], again.returns[k]) for k in first.returns)
    other = TaskCache(tmp_path, fingerprint(series, {"config": replace(config, costs=cost_preset("taiwan"))}))
    assert other.load(0, config.windows[0], 0) is None  # other costs: another fingerprint, nothing reused
    assert first.machines == again.machines == [machine_info(), machine_info()]  # where each task ran, kept


def test_a_cached_task_from_before_machines_were_recorded_still_loads(tmp_path: Path) -> None:
    window = yearly_windows(2008, 1, train_years=2)[0]
    cache = TaskCache(tmp_path, "print")
    cache.save(window, 0, TaskOutput([], [], {}, {}, {}, 3, {"w": np.zeros(2)}))
    task_json = next(tmp_path.glob("print/*/task.json"))
    meta = json.loads(task_json.read_text())
    assert meta.pop("machine") == {}
    task_json.write_text(json.dumps(meta))
    loaded = cache.load(0, window, 0)
    assert loaded is not None and loaded.machine == {} and loaded.dqn_obs_dim == 3
    assert ran_on([loaded.machine]).startswith("Trained on (tasks): not recorded — 1.")
