"""The backtest report: ``report.md`` (tables, quality bars), ``equity.png`` (curves per asset), ``runs.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tapewatch.training.dqn.walkforward import POLICIES, BacktestResult, quality_bars, summary

COLOURS: Final = {
    "agent": "tab:blue",
    "ensemble": "tab:green",
    "buy_and_hold": "black",
    "momentum": "tab:orange",
    "random": "tab:gray",
}
ANCHOR: Final = (
    "Anchor: Théate & Ernst (2021), TDQN (a Double-DQN variant), 30 assets, test 2018–2019: mean Sharpe 0.404 "
    "vs 0.369 for buy-and-hold."
)


def chained(parts: list[np.ndarray]) -> np.ndarray:
    """Equity curves of consecutive test windows joined end to start (each window starts at 1)."""
    out = [np.asarray([1.0])]
    level = 1.0
    for equity in parts:
        scaled = level * equity / equity[0]
        out.append(scaled[1:])
        level = float(scaled[-1])
    return np.concatenate(out)


def equity_chart(result: BacktestResult, path: Path) -> Path:
    symbols = result.symbols
    cols = min(3, len(symbols))
    rows = (len(symbols) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    for ax, symbol in zip(axes.flat, symbols, strict=False):
        for (sym, policy, seed), parts in sorted(result.curves.items()):
            if sym != symbol or (policy == "random" and seed != result.seeds[0]):
                continue
            curve = chained(parts)
            label = policy if policy != "agent" or seed == result.seeds[0] else None
            ax.plot(
                curve,
                color=COLOURS[policy],
                linewidth=1.6 if policy == "buy_and_hold" else 0.9,
                alpha=0.55 if policy == "agent" else 0.9,
                label=label,
            )
        ax.set_title(f"{symbol}: test {result.windows[0].test_start.year}–{result.windows[-1].test_start.year}")
        ax.set_xlabel("trading days")
        ax.set_ylabel("equity")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(symbols) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False)
    fig.suptitle(f"Out-of-sample equity, costs {result.costs.name} (agent: one line per seed)", y=1.07)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _fmt(value: float, pct: bool = False) -> str:
    return f"{value * 100:.1f}%" if pct else f"{value:.3f}"


def _header(result: BacktestResult) -> list[str]:
    """What was run, and the quality bars."""
    return [
        "# Double-DQN walk-forward backtest",
        "",
        f"Assets: {', '.join(result.symbols)}. Seeds: {', '.join(map(str, result.seeds))}. "
        f"Costs: `{result.costs.name}` (buy {result.costs.buy_rate:.4%}, sell {result.costs.sell_rate:.4%}). "
        f"Policies act at each bar's close and earn the next bar's return; all run through the same environment.",
        "",
        "Windows (normalisation fitted on the training years only; early stopping on the validation year):",
        "",
        *[f"- {w.label}" for w in result.windows],
        "",
        "## Quality bars",
        "",
        "| bar | target | measured | met |",
        "|---|---|---|---|",
        *[f"| {q.name} | {q.target} | {q.value} | {'yes' if q.passed else '**no**'} |" for q in quality_bars(result)],
        "",
        ANCHOR,
        "",
    ]


def _policy_table(result: BacktestResult) -> list[str]:
    """Each policy's mean metrics, ± their std across seeds where there is one."""
    table = summary(result)
    lines = [
        "## Mean over assets × windows (± std across seeds)",
        "",
        "| policy | total return | annual return | Sharpe | Sortino | max drawdown | win rate | trades | turnover/yr |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for policy in POLICIES:
        if policy not in table.index:
            continue
        r = table.loc[policy]
        assert isinstance(r, pd.Series)

        def cell(column: str, pct: bool = False, r: pd.Series = r) -> str:
            std = float(r[f"{column}_std"])
            text = _fmt(float(r[column]), pct)
            return f"{text} ± {_fmt(std, pct)}" if std > 0 else text

        lines.append(
            f"| {policy} | {cell('total_return', True)} | {cell('annual_return', True)} | {cell('sharpe')} | "
            f"{cell('sortino')} | {cell('max_drawdown', True)} | {cell('win_rate', True)} | "
            f"{float(r['trades']):.1f} | {float(r['turnover']):.1f} |"
        )
    return lines


def _sharpe_table(rows: pd.DataFrame, by: str, title: str, heading: str) -> list[str]:
    """Mean Sharpe per policy for each value of the runs' column ``by``."""
    lines = [
        "",
        f"## {title}",
        "",
        f"| {heading} | " + " | ".join(POLICIES) + " |",
        "|---|" + "---|" * len(POLICIES),
    ]
    means = rows.pivot_table(index=by, columns="policy", values="sharpe", aggfunc="mean")
    for value, r in means.iterrows():
        lines.append(f"| {value} | " + " | ".join(_fmt(float(r.get(p, np.nan))) for p in POLICIES) + " |")
    return lines


def _run_notes(result: BacktestResult) -> list[str]:
    """Timings, the agent's configuration and how the baselines act."""
    seconds = result.train_seconds
    return [
        "",
        "## Run",
        "",
        f"- agent trainings: {len(seconds)}, {np.mean(seconds):.1f} s each on average (max {np.max(seconds):.1f} s); "
        f"whole backtest {result.seconds:.0f} s"
        if seconds
        else f"- whole backtest {result.seconds:.0f} s",
        f"- agent config: `{result.config.to_manifest()}`",
        "- momentum: long while the close is above the close 20 bars earlier (flat for the first 20 bars of each "
        "test year); random: uniform HOLD/BUY/SELL, seeded.",
        "",
        "![equity curves](equity.png)",
        "",
    ]


def markdown(result: BacktestResult) -> str:
    return "\n".join(
        [
            *_header(result),
            *_policy_table(result),
            *_sharpe_table(result.rows, "symbol", "Sharpe per asset (mean over windows and seeds)", "asset"),
            *_sharpe_table(result.rows, "test_year", "Sharpe per test year (mean over assets and seeds)", "test year"),
            *_run_notes(result),
        ]
    )


def write_report(result: BacktestResult, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": out_dir / "report.md",
        "chart": out_dir / "equity.png",
        "runs": out_dir / "runs.csv",
    }
    equity_chart(result, paths["chart"])
    paths["report"].write_text(markdown(result), encoding="utf-8")
    result.rows.to_csv(paths["runs"], index=False)
    return paths
