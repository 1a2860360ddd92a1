"""The signals lab's report: ``report.md`` (one table of every policy, the quality bars, the forecasters' own
scores per test year), ``equity.png``, ``sharpe.png``, ``runs.csv`` and ``diagnostics.csv``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tapewatch.evaluation.reporting import pct, save_chart
from tapewatch.machine import describe
from tapewatch.training.dqn.report import chained
from tapewatch.training.lab.lab import LabResult
from tapewatch.training.lab.stats import Interval, sharpe_difference_ci

METRICS: Final = ("sharpe", "sortino", "max_drawdown", "annual_return", "turnover", "hit_rate", "trades")
REFERENCE: Final = "buy_and_hold"
ANCHORS: Final = (
    "Anchors: Théate & Ernst (2021) TDQN, mean Sharpe 0.404 vs 0.369 for buy-and-hold (30 assets, 2018–2019); "
    "Sezer & Ozbayoglu (2018) CNN-TA, accuracy 0.58 and buy F1 0.34 on the Dow-30."
)


def summary(result: LabResult) -> pd.DataFrame:
    """Per policy: each metric's mean over assets × windows (× seeds) and the std across seeds of the per-seed
    mean (0 for the deterministic baselines)."""
    rows = result.rows
    out = []
    for policy in result.policies:
        part = rows[rows["policy"] == policy]
        if part.empty:
            continue
        per_seed = part.groupby("seed")[list(METRICS)].mean()
        entry: dict[str, object] = {"policy": policy}
        for column in METRICS:
            entry[column] = float(part[column].mean())
            entry[f"{column}_std"] = float(per_seed[column].std(ddof=0)) if len(per_seed) > 1 else 0.0
        out.append(entry)
    return pd.DataFrame(out).set_index("policy")


def sharpe_intervals(result: LabResult, replicates: int = 2000) -> dict[str, Interval]:
    """Each policy's Sharpe difference to buy-and-hold with its 95 % paired block-bootstrap interval."""
    keys = sorted({(w, s) for (p, w, _, s) in result.returns if p == REFERENCE})
    out: dict[str, Interval] = {}
    for policy in result.policies:
        if policy == REFERENCE:
            continue
        runs = [[r for (p, w2, _, s2), r in result.returns.items() if p == policy and (w2, s2) == key] for key in keys]
        if any(not r for r in runs):
            continue
        hold = [result.returns[(REFERENCE, w, -1, s)] for w, s in keys]
        out[policy] = sharpe_difference_ci(
            runs, hold, periods_per_year=result.config.periods_per_year, replicates=replicates
        )
    return out


@dataclass(frozen=True)
class QualityBar:
    name: str
    target: str
    value: str
    passed: bool


def quality_bars(result: LabResult) -> list[QualityBar]:
    table = summary(result)
    hold = table.loc[REFERENCE]
    bars: list[QualityBar] = []
    for policy in ("dqn", "dqn_ensemble", "ensemble"):
        if policy not in table.index:
            continue
        row = table.loc[policy]
        passed = bool(row["sharpe"] >= hold["sharpe"] and row["max_drawdown"] <= 0.7 * hold["max_drawdown"])
        bars.append(
            QualityBar(
                f"{policy}: Sharpe and drawdown vs buy-and-hold",
                "Sharpe ≥ buy-and-hold's and max drawdown ≤ 0.7 × buy-and-hold's",
                f"Sharpe {row['sharpe']:.3f} vs {hold['sharpe']:.3f}; max drawdown {row['max_drawdown']:.3f} vs "
                f"0.7 × {hold['max_drawdown']:.3f} = {0.7 * hold['max_drawdown']:.3f}",
                passed,
            )
        )
    return bars + _forecaster_bars(result.diagnostics)


def _forecaster_bars(diagnostics: pd.DataFrame) -> list[QualityBar]:
    """Per forecaster, its own bar on every test year: a return forecaster against the naive forecast, a
    classifier's balanced accuracy against the majority class (means over seeds)."""
    bars: list[QualityBar] = []
    if diagnostics.empty:
        return bars
    per_year = diagnostics.groupby(["model", "test_year"]).mean(numeric_only=True)
    for model in per_year.index.get_level_values("model").unique():
        part = per_year.loc[model]
        if "rmse_return_ratio" in part.columns and part["rmse_return_ratio"].notna().all():
            ratios = part["rmse_return_ratio"]
            text = ", ".join(f"{year}: {value:.4f}" for year, value in ratios.items())
            bars.append(
                QualityBar(
                    f"{model}: return RMSE / naive, per test year",
                    "< 1 (beats tomorrow = today)",
                    text,
                    bool((ratios < 1).all()),
                )
            )
        if "balanced_accuracy" in part.columns and part["balanced_accuracy"].notna().all():
            pairs = part[["balanced_accuracy", "majority_balanced_accuracy"]]
            text = ", ".join(f"{year}: {a:.3f} vs {m:.3f}" for year, (a, m) in pairs.iterrows())
            above = bool((pairs["balanced_accuracy"] > pairs["majority_balanced_accuracy"]).all())
            bars.append(
                QualityBar(
                    f"{model}: balanced accuracy vs the majority class, per test year",
                    "above it every year",
                    text,
                    above,
                )
            )
    return bars


def ran_on(machines: Sequence[Mapping[str, str]]) -> str:
    """Where the tasks ran, most tasks first: a seeded rerun repeats bit for bit only on the same kernels.

    >>> cpu = {"cpu": "EPYC", "isa": "avx512"}
    >>> ran_on([cpu, cpu, {}])
    'Trained on (tasks): EPYC (avx512) — 2; not recorded — 1. A rerun on other kernels can give other weights.'
    """
    counts: dict[str, int] = {}
    for info in machines:
        key = describe(info) if info else "not recorded"
        counts[key] = counts.get(key, 0) + 1
    parts = [f"{name} — {n}" for name, n in sorted(counts.items(), key=lambda item: -item[1])]
    return f"Trained on (tasks): {'; '.join(parts)}. A rerun on other kernels can give other weights."


# -- markdown ------------------------------------------------------------------------------------------------
def _policy_table(result: LabResult, intervals: dict[str, Interval]) -> list[str]:
    table = summary(result)
    lines = [
        "| policy | Sharpe (± seeds) | Sortino | max drawdown | annual return | turnover /yr | hit rate | trades /yr "
        "| Sharpe − buy-and-hold [95 % CI] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for policy, row in table.iterrows():
        ci = intervals.get(str(policy))
        diff = "—" if ci is None else f"{ci.difference:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]"
        seeds = f" ± {row['sharpe_std']:.3f}" if row["sharpe_std"] > 0 else ""
        lines.append(
            f"| {policy} | {row['sharpe']:.3f}{seeds} | {row['sortino']:.3f} | {pct(row['max_drawdown'])} | "
            f"{pct(row['annual_return'])} | {row['turnover']:.1f} | {pct(row['hit_rate'])} | {row['trades']:.0f} "
            f"| {diff} |"
        )
    return lines


def _diagnostics_table(diagnostics: pd.DataFrame) -> list[str]:
    if diagnostics.empty:
        return []
    numbers = diagnostics.drop(columns=["window", "seed"]).groupby(["model", "test_year"]).mean(numeric_only=True)
    columns = [c for c in numbers.columns if numbers[c].notna().any()]
    lines = ["| model | test year | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for index, row in numbers.iterrows():
        labels = " | ".join(str(part) for part in index)  # type: ignore[attr-defined]  # (model, test_year)
        cells = " | ".join("–" if pd.isna(row[c]) else f"{row[c]:.4g}" for c in columns)
        lines.append(f"| {labels} | {cells} |")
    return lines


def _replicates(intervals: dict[str, Interval]) -> int:
    return next(iter(intervals.values())).replicates if intervals else 0


#: why the models here take no news: the seed's news indicator exists in the stream, not in these markets' history
NO_NEWS: Final = (
    "News is not an input here: these markets' daily histories come with no news, so there is no history of the news "
    "indicator (signals.news, the `news` cadence of features.1m) to train or test on. It exists from the day a news "
    "source runs; a forecaster can take it once a test year of it has been stored."
)


def markdown(result: LabResult, intervals: dict[str, Interval]) -> str:
    config = result.config
    years = [w.test_start.year for w in config.windows]
    seconds = {m: f"{np.mean(v):.0f} s" for m, v in result.train_seconds.items()}
    lines = [
        "# Signals lab",
        "",
        f"Walk-forward over test years {years[0]}–{years[-1]} (first window: {config.windows[0].label}), "
        f"assets {', '.join(result.symbols)}, seeds {', '.join(map(str, config.seeds))}, costs {config.costs.name} "
        f"(buy {100 * config.costs.buy_rate:.3g} %, sell {100 * config.costs.sell_rate:.3g} %). Means over assets × "
        "test years (× seeds); ± is the std across seeds of the per-seed mean. The interval is a paired circular "
        f"block bootstrap (10-day blocks, {_replicates(intervals):,} replicates) of the mean Sharpe difference to "
        "buy-and-hold.",
        "",
        *_policy_table(result, intervals),
        "",
        "## Quality bars",
        "",
        "| bar | target | value | met |",
        "|---|---|---|---|",
        *(f"| {b.name} | {b.target} | {b.value} | {'yes' if b.passed else '**no**'} |" for b in quality_bars(result)),
        "",
        "## The forecasters on the test years (means over seeds)",
        "",
        *_diagnostics_table(result.diagnostics),
        "",
        f"Mean training time per model and window: {', '.join(f'{m} {t}' for m, t in seconds.items())}; "
        f"this run {result.seconds:.0f} s (finished tasks read back from the cache count their training above, "
        "not here).",
        "",
        ran_on(result.machines),
        "",
        NO_NEWS,
        "",
        ANCHORS,
        "",
        "![equity](equity.png)",
        "",
        "![sharpe](sharpe.png)",
        "",
    ]
    return "\n".join(lines)


# -- charts --------------------------------------------------------------------------------------------------
def equity_chart(result: LabResult, path: Path) -> Path:
    """Each policy's equity over the test years joined, averaged over assets and seeds."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    windows = range(len(result.config.windows))
    for policy in result.policies:
        curves = []
        for symbol in result.symbols:
            seeds = sorted({k[2] for k in result.equity if k[0] == policy and k[3] == symbol})
            for seed in seeds:
                parts = [result.equity[(policy, w, seed, symbol)] for w in windows]
                curves.append(chained(parts))
        if curves:
            length = min(len(c) for c in curves)
            width = 2.0 if policy in ("buy_and_hold", "ensemble") else 1.1
            ax.plot(np.mean([c[:length] for c in curves], axis=0), label=policy, linewidth=width)
    ax.set_xlabel("trading days")
    ax.set_ylabel("equity (mean over assets and seeds)")
    ax.grid(alpha=0.3)
    ax.legend(ncol=4, fontsize=8)
    return save_chart(fig, path)


def sharpe_chart(result: LabResult, intervals: dict[str, Interval], path: Path) -> Path:
    """Each policy's Sharpe difference to buy-and-hold with its interval."""
    names = list(intervals)
    diffs = np.array([intervals[n].difference for n in names])
    errors = np.array(
        [
            [intervals[n].difference - intervals[n].low for n in names],
            [intervals[n].high - intervals[n].difference for n in names],
        ]
    )
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(names, diffs, yerr=errors, capsize=4, color=["tab:green" if d >= 0 else "tab:red" for d in diffs])
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylabel("mean Sharpe − buy-and-hold (95 % CI)")
    ax.grid(axis="y", alpha=0.3)
    return save_chart(fig, path)


def write_report(result: LabResult, out_dir: Path, replicates: int = 2000) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    intervals = sharpe_intervals(result, replicates)
    paths = {
        "report": out_dir / "report.md",
        "equity": equity_chart(result, out_dir / "equity.png"),
        "sharpe": sharpe_chart(result, intervals, out_dir / "sharpe.png"),
        "runs": out_dir / "runs.csv",
        "diagnostics": out_dir / "diagnostics.csv",
    }
    paths["report"].write_text(markdown(result, intervals), encoding="utf-8")
    result.rows.to_csv(paths["runs"], index=False)
    result.diagnostics.to_csv(paths["diagnostics"], index=False)
    return paths
