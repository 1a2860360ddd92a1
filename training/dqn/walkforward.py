"""Walk-forward evaluation: train on years A, early-stop on year B, test on year C, roll forward one year.

In each window the normalisation is fitted on the training years only, one agent per seed is trained on all
assets pooled, and every policy (agent, buy-and-hold, momentum, random) is run on each asset's unseen test
year through the same environment and costs. With two or more seeds the window's agents also act together as
an **ensemble** (the mean of their Q-values, :class:`~tapewatch.signals.dqn.agent.EnsembleQNetwork`), which is what a
model published with ``ensemble = len(seeds)`` serves. Features are computed once over each full series (they only look
back), so the test year's first bars have their warm-up from the years before, as a live stream would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd

from tapewatch.signals.dqn.agent import (
    AgentConfig,
    EnsembleQNetwork,
    QNetwork,
    TrainProgress,
    TrainResult,
    network_from_weights,
    train,
)
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
from tapewatch.signals.dqn.data import AssetSeries, DataError, Normaliser, Segment, prepare
from tapewatch.signals.dqn.env import Act

POLICIES = ("agent", "ensemble", "buy_and_hold", "momentum", "random")
MIN_TEST_BARS = 20


@dataclass(frozen=True)
class Window:
    train_start: date
    val_start: date
    test_start: date
    test_end: date

    @property
    def label(self) -> str:
        return (
            f"train {self.train_start.year}–{self.val_start.year - 1}, val {self.val_start.year}, "
            f"test {self.test_start.year}"
        )


def yearly_windows(first_test_year: int, count: int, train_years: int = 4) -> list[Window]:
    """``count`` windows testing on consecutive years from ``first_test_year``."""
    if count < 1 or train_years < 1:
        raise ValueError("need at least one window and one training year")
    return [
        Window(date(y - 1 - train_years, 1, 1), date(y - 1, 1, 1), date(y, 1, 1), date(y + 1, 1, 1))
        for y in range(first_test_year, first_test_year + count)
    ]


@dataclass
class BacktestResult:
    rows: pd.DataFrame  # window, test_year, seed, symbol, policy, metrics…
    curves: dict[tuple[str, str, int], list[np.ndarray]]  # (symbol, policy, seed) → equity per window
    windows: list[Window]
    seeds: list[int]
    symbols: list[str]
    costs: CostModel
    config: AgentConfig
    train_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0


ProgressFn = Callable[[str, TrainProgress | None], None]


@dataclass(frozen=True)
class Splits:
    """One window's prepared segments (normalised on its training years only)."""

    train: list[Segment]
    val: list[Segment]
    test: list[Segment]


def window_splits(series: Sequence[AssetSeries], feature_names: Sequence[str], window: Window) -> Splits:
    train_raw = [s.window(window.train_start, window.val_start) for s in series]
    normaliser = Normaliser.fit(feature_names, train_raw)

    def seg(start: date, end: date) -> list[Segment]:
        return [prepare(s.window(start, end), normaliser) for s in series]

    splits = Splits(
        train=[s for s in seg(window.train_start, window.val_start) if len(s) >= 2],
        val=[s for s in seg(window.val_start, window.test_start) if len(s) >= MIN_TEST_BARS],
        test=[s for s in seg(window.test_start, window.test_end) if len(s) >= MIN_TEST_BARS],
    )
    if not splits.train or not splits.val or not splits.test:
        raise DataError(f"window {window.label}: some split has no data for any asset")
    return splits


@dataclass
class _Runs:
    """The policy runs collected so far: metric rows and equity curves, as :class:`BacktestResult` holds them."""

    periods_per_year: float
    rows: list[dict[str, object]] = field(default_factory=list)
    curves: dict[tuple[str, str, int], list[np.ndarray]] = field(default_factory=dict)

    def record(self, index: int, window: Window, symbol: str, policy: str, seed: int, run: PolicyRun) -> None:
        m = metrics(run, self.periods_per_year)
        self.rows.append(
            {
                "window": index,
                "test_year": window.test_start.year,
                "seed": seed,
                "symbol": symbol,
                "policy": policy,
                **m.as_dict(),
            }
        )
        self.curves.setdefault((symbol, policy, seed), []).append(run.equity)


def _train_agent(
    splits: Splits,
    costs: CostModel,
    config: AgentConfig,
    label: str,
    max_units: int,
    periods_per_year: float,
    progress: ProgressFn | None,
) -> TrainResult:
    """One agent trained on the window's training years, early-stopped on its validation year."""
    if progress is not None:
        progress(label, None)
    forward = None if progress is None else (lambda p: progress(label, p))
    return train(
        splits.train,
        splits.val,
        costs,
        config,
        max_units=max_units,
        periods_per_year=periods_per_year,
        progress=forward,
    )


def walk_forward(
    series: Sequence[AssetSeries],
    feature_names: Sequence[str],
    windows: Sequence[Window],
    seeds: Sequence[int],
    costs: CostModel,
    config: AgentConfig,
    *,
    max_units: int = 1,
    periods_per_year: float = TRADING_DAYS,
    progress: ProgressFn | None = None,
) -> BacktestResult:
    started = time.perf_counter()
    runs = _Runs(periods_per_year)
    train_seconds: list[float] = []
    symbols = sorted({s.symbol for s in series})
    for w_index, window in enumerate(windows):
        splits = window_splits(series, feature_names, window)
        for segment in splits.test:  # deterministic baselines: once per window
            run = run_policy(segment, costs, always(Act.BUY), max_units)
            runs.record(w_index, window, segment.symbol, "buy_and_hold", -1, run)
            run = run_policy(segment, costs, momentum_rule(segment), max_units)
            runs.record(w_index, window, segment.symbol, "momentum", -1, run)
        members: list[QNetwork | EnsembleQNetwork] = []
        for seed in seeds:
            seeded = replace(config, seed=seed, ensemble=1)
            label = f"{window.label}, seed {seed}"
            result = _train_agent(splits, costs, seeded, label, max_units, periods_per_year, progress)
            train_seconds.append(result.seconds)
            network = network_from_weights(result.obs_dim, seeded, result.weights)
            members.append(network)
            for segment in splits.test:
                run = run_policy(segment, costs, greedy(network, segment, max_units), max_units)
                runs.record(w_index, window, segment.symbol, "agent", seed, run)
                run = run_policy(segment, costs, random_policy(seed), max_units)
                runs.record(w_index, window, segment.symbol, "random", seed, run)
        if len(members) > 1:
            ensemble = EnsembleQNetwork(members)
            for segment in splits.test:
                run = run_policy(segment, costs, greedy(ensemble, segment, max_units), max_units)
                runs.record(w_index, window, segment.symbol, "ensemble", -1, run)
    return BacktestResult(
        rows=pd.DataFrame(runs.rows),
        curves=runs.curves,
        windows=list(windows),
        seeds=list(seeds),
        symbols=symbols,
        costs=costs,
        config=config,
        train_seconds=train_seconds,
        seconds=time.perf_counter() - started,
    )


METRIC_COLUMNS = (
    "total_return",
    "annual_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "trades",
    "turnover",
)


def summary(result: BacktestResult) -> pd.DataFrame:
    """Per policy: mean of each metric over assets × windows (× seeds), and the std across seeds of the
    per-seed mean (0 for the deterministic baselines)."""
    rows = result.rows
    out = []
    for policy in POLICIES:
        part = rows[rows["policy"] == policy]
        if part.empty:
            continue
        entry: dict[str, object] = {"policy": policy}
        per_seed = part.groupby("seed")[list(METRIC_COLUMNS)].mean()
        for column in METRIC_COLUMNS:
            entry[column] = float(part[column].mean())
            entry[f"{column}_std"] = float(per_seed[column].std(ddof=0)) if len(per_seed) > 1 else 0.0
        out.append(entry)
    return pd.DataFrame(out).set_index("policy")


@dataclass(frozen=True)
class QualityBar:
    name: str
    target: str
    value: str
    passed: bool


def quality_bars(result: BacktestResult) -> list[QualityBar]:
    """Enough assets and seeds; then Sharpe and drawdown against buy-and-hold for the agent and, when there is
    one, the ensemble."""
    table = summary(result)
    bh = table.loc["buy_and_hold"]
    n_assets = result.rows["symbol"].nunique()
    n_seeds = len(result.seeds)
    bars = [QualityBar("assets × seeds", "≥ 5 × ≥ 5", f"{n_assets} × {n_seeds}", n_assets >= 5 and n_seeds >= 5)]
    for policy in ("agent", "ensemble"):
        if policy not in table.index:
            continue
        r = table.loc[policy]
        prefix = "" if policy == "agent" else "ensemble: "
        bars += [
            QualityBar(
                f"{prefix}mean Sharpe vs buy-and-hold",
                f"{policy} ≥ buy-and-hold",
                f"{r['sharpe']:.3f} vs {bh['sharpe']:.3f}",
                bool(r["sharpe"] >= bh["sharpe"]),
            ),
            QualityBar(
                f"{prefix}mean max drawdown vs buy-and-hold",
                f"{policy} ≤ 0.7 × buy-and-hold",
                f"{r['max_drawdown']:.3f} vs 0.7 × {bh['max_drawdown']:.3f} = {0.7 * bh['max_drawdown']:.3f}",
                bool(r["max_drawdown"] <= 0.7 * bh["max_drawdown"]),
            ),
        ]
    return bars
