"""`tapewatch train dqn` and `tapewatch backtest dqn`.

:func:`train_dqn` joins the ``train`` group of :mod:`tapewatch.cli.detect` (beside ``train kmeans``);
:mod:`tapewatch.cli.app` wires it there, so importing this module registers nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tapewatch.errors import TapewatchError, user_errors
from tapewatch.extras import require

if TYPE_CHECKING:  # typing only: the commands import these when run, so the CLI starts without loading torch
    from tapewatch.artifacts import Artifact
    from tapewatch.signals.dqn.agent import AgentConfig, TrainProgress, TrainResult
    from tapewatch.signals.dqn.costs import CostModel
    from tapewatch.signals.dqn.data import AssetSeries, Normaliser, Segment
    from tapewatch.training.dqn.walkforward import BacktestResult, Window

backtest_app = typer.Typer(help="Out-of-sample backtests with reports.", no_args_is_help=True)
console = Console()

Csv = Annotated[str, typer.Option(help="Comma-separated list")]
#: the daily-data and date-range options every `train` command of a daily model takes
DailyData = Annotated[
    Path | None,
    typer.Option(help="Daily OHLCV Parquet/CSV (e.g. from `fetch twse-daily`) instead of the packaged assets"),
]
TrainStart = Annotated[str, typer.Option(help="First training day")]
ValStart = Annotated[str, typer.Option(help="First validation day = end of training")]
ValEnd = Annotated[str, typer.Option(help="End of validation, exclusive")]


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _stats(p: object) -> str:
    from tapewatch.signals.dqn.agent import TrainProgress

    assert isinstance(p, TrainProgress)
    val = f"{p.val_sharpe:+.2f}" if p.val_sharpe is not None else "—"
    best = f"{p.best_val_sharpe:+.2f}" if p.best_val_sharpe is not None else "—"
    return (
        f"ep {p.episode} reward {p.episode_reward * 100:+.1f}% loss {p.loss:.4f} ε {p.epsilon:.2f} "
        f"val Sharpe {val} (best {best})"
    )


def _load_series(data: Path | None, assets: Sequence[str], mode: str, sim_days: int, sim_symbols: int, seed: int):  # type: ignore[no-untyped-def]
    from tapewatch.training.dqn import data as dqn_data

    if mode == "intraday":
        with console.status(f"simulating {sim_days} sessions × {sim_symbols} symbols…"):
            return dqn_data.load_simulated_intraday(days=sim_days, symbols=sim_symbols, seed=seed)
    if mode != "daily":
        raise TapewatchError(f"unknown mode {mode!r}; choose daily or intraday")
    with console.status("loading daily bars and computing features…"):
        if data is not None:
            series = dqn_data.load_daily_file(data)
            return [s for s in series if not assets or s.symbol in assets] or series
        return dqn_data.load_packaged(assets or dqn_data.DEFAULT_ASSETS)


@dataclass(frozen=True)
class _Split:
    """The series cut into training and validation data, and what the manifest records about the cut."""

    series: list[AssetSeries]
    train: list[AssetSeries]
    validation: list[AssetSeries]
    ranges: dict[str, Any]
    periods_per_year: float

    def manifest(self) -> dict[str, Any]:
        """The model manifest's ``training`` entry: the date ranges, the assets and their sources."""
        assets = [s.symbol for s in self.series]
        return {**self.ranges, "assets": assets, "sources": sorted({s.source for s in self.series})}


def _intraday_split(series: Sequence[AssetSeries]) -> _Split:
    """The sessions split in time: first 70 % train, the rest validation."""
    from tapewatch.signals.dqn.inference import training_range

    cut = series[0].times[int(len(series[0].times) * 0.7)]
    return _Split(
        series=list(series),
        train=[s.window(None, cut) for s in series],
        validation=[s.window(cut, None) for s in series],
        ranges=training_range({"train": (None, str(cut)), "validation": (str(cut), None)}),
        periods_per_year=252 * 270.0,
    )


def _daily_split(series: Sequence[AssetSeries], train_start: str, val_start: str, val_end: str) -> _Split:
    from tapewatch.signals.dqn.inference import training_range

    return _Split(
        series=list(series),
        train=[s.window(train_start, val_start) for s in series],
        validation=[s.window(val_start, val_end) for s in series],
        ranges=training_range({"train": (train_start, val_start), "validation": (val_start, val_end)}),
        periods_per_year=252.0,
    )


def _segments(names: Sequence[str], split: _Split) -> tuple[Normaliser, list[Segment], list[Segment]]:
    """The normalisation (fitted on the training data only) and the segments to train and validate on."""
    from tapewatch.signals.dqn.data import Normaliser, prepare

    normaliser = Normaliser.fit(names, split.train)
    train_segments = [seg for seg in (prepare(s, normaliser) for s in split.train) if len(seg) >= 2]
    val_segments = [seg for seg in (prepare(s, normaliser) for s in split.validation) if len(seg) >= 20]
    if not train_segments or not val_segments:
        raise TapewatchError("no data in the training or validation range: check the dates and assets")
    return normaliser, train_segments, val_segments


def _train_with_progress(
    train_segments: list[Segment],
    val_segments: list[Segment],
    cost_model: CostModel,
    config: AgentConfig,
    max_units: int,
    periods_per_year: float,
) -> TrainResult:
    """Say what the agent trains on, and train it (each member of an ensemble in turn) with a progress bar over
    ``config.total_steps`` steps per member."""
    from tapewatch.signals.dqn.agent import TrainProgress, train_ensemble

    steps, members = config.total_steps, config.ensemble
    console.print(
        f"training on {len(train_segments)} asset(s), {sum(map(len, train_segments)):,} bars; validating on "
        f"{sum(map(len, val_segments)):,} bars; costs {cost_model.name}; {steps:,} steps"
        + (f" × {members} ensemble members" if members > 1 else "")
    )
    with _progress() as progress:
        task = progress.add_task("train dqn", total=steps * members, stats="")

        def report(member: int, p: object) -> None:
            assert isinstance(p, TrainProgress)
            label = f"member {member + 1}/{members}: " if members > 1 else ""
            progress.update(task, completed=member * steps + p.step, stats=label + _stats(p))

        result = train_ensemble(
            train_segments,
            val_segments,
            cost_model,
            config,
            max_units=max_units,
            periods_per_year=periods_per_year,
            progress=report,
        )
        progress.update(task, completed=steps * members)
    return result


def _print_model(artifact: Artifact, result: TrainResult) -> None:
    table = Table("model", "value")
    table.add_row("version", artifact.version)
    table.add_row("path", str(artifact.path))
    table.add_row("best validation Sharpe", f"{result.best_val_sharpe:.3f} (step {result.best_step:,})")
    table.add_row(
        "steps / episodes",
        f"{result.steps:,} / {result.episodes:,}" + (" (early stop)" if result.stopped_early else ""),
    )
    table.add_row("training time", f"{result.seconds:.1f} s")
    console.print(table)


def train_dqn(
    assets: Csv = "",
    data: Annotated[
        Path | None,
        typer.Option(help="Daily OHLCV Parquet/CSV (e.g. from `fetch twse-daily`) instead of the packaged assets"),
    ] = None,
    mode: Annotated[str, typer.Option(help="daily (real data) or intraday (simulated 1-minute sessions)")] = "daily",
    train_start: Annotated[str, typer.Option(help="First training day (daily mode)")] = "2008-01-01",
    val_start: Annotated[str, typer.Option(help="First validation day = end of training (daily mode)")] = "2012-01-01",
    val_end: Annotated[str, typer.Option(help="End of validation, exclusive (daily mode)")] = "2013-01-01",
    costs: Annotated[str, typer.Option(help="taiwan, taiwan-daytrade, crypto (0.1%/side) or none")] = "",
    features: Csv = "",
    steps: Annotated[int, typer.Option(help="Environment steps per ensemble member (as the backtest)")] = 15_000,
    seed: int = 0,
    dueling: Annotated[bool, typer.Option("--dueling/--no-dueling")] = True,
    tau: Annotated[float | None, typer.Option(help="Polyak τ (default: hard target sync)")] = None,
    max_units: Annotated[int, typer.Option(help="Position limit in units")] = 1,
    threads: Annotated[int, typer.Option(help="torch CPU threads")] = 1,
    ensemble: Annotated[int | None, typer.Option(help="Networks averaged, seeds seed … seed+N-1 (default 5)")] = None,
    sim_days: Annotated[int, typer.Option(help="Simulated sessions (intraday)")] = 30,
    sim_symbols: Annotated[int, typer.Option(help="Simulated symbols (intraday)")] = 4,
) -> None:
    """Train a Double DQN, early-stopped on validation Sharpe, and publish it under <models>/dqn/<version>/."""
    require("signals", "tapewatch train dqn")
    from tapewatch.settings import load_settings
    from tapewatch.signals.dqn.agent import AgentConfig
    from tapewatch.signals.dqn.costs import cost_preset
    from tapewatch.signals.dqn.data import DEFAULT_FEATURES, check_feature_names, data_fingerprint
    from tapewatch.signals.dqn.inference import save_model

    settings = load_settings()
    with user_errors():
        names = tuple(_split(features)) or DEFAULT_FEATURES
        check_feature_names(names)
        cost_model = cost_preset(costs or ("taiwan-daytrade" if mode == "intraday" else "crypto"))
        config = AgentConfig(total_steps=steps, seed=seed, dueling=dueling, tau=tau, threads=threads)
        config = config if ensemble is None else replace(config, ensemble=ensemble)
        series = _load_series(data, [a.upper() for a in _split(assets)], mode, sim_days, sim_symbols, seed)
        if mode == "intraday":  # an episode is one session of 270 one-minute bars
            split = _intraday_split(series)
            config = replace(config, episode_bars=270, gamma=0.95)
        else:
            split = _daily_split(series, train_start, val_start, val_end)
        normaliser, train_segments, val_segments = _segments(names, split)
        result = _train_with_progress(
            train_segments, val_segments, cost_model, config, max_units, split.periods_per_year
        )
        artifact = save_model(
            settings.local.models_path,
            result,
            config=config,
            normaliser=normaliser,
            costs=cost_model,
            max_units=max_units,
            intraday=mode == "intraday",
            training=split.manifest(),
            data_hash=data_fingerprint(split.train + split.validation),
        )
    _print_model(artifact, result)


def _walk_forward_with_progress(
    series: Sequence[AssetSeries],
    names: Sequence[str],
    plan: list[Window],
    seeds: int,
    cost_model: CostModel,
    config: AgentConfig,
) -> BacktestResult:
    """The walk-forward backtest with one progress bar over all its trainings' steps."""
    from tapewatch.training.dqn.walkforward import walk_forward

    steps, trainings = config.total_steps, len(plan) * seeds
    with _progress() as progress:
        task = progress.add_task("backtest dqn", total=trainings * steps, stats="")
        done = {"trainings": -1}

        def report(label: str, p: TrainProgress | None) -> None:
            if p is None:
                done["trainings"] += 1
                progress.update(task, completed=done["trainings"] * steps, description=label)
            else:
                progress.update(task, completed=done["trainings"] * steps + p.step, stats=_stats(p))

        result = walk_forward(series, names, plan, list(range(seeds)), cost_model, config, progress=report)
        progress.update(task, completed=trainings * steps)
    return result


def _print_backtest(result: BacktestResult, paths: dict[str, Path], started: float) -> None:
    from tapewatch.training.dqn.walkforward import quality_bars, summary

    table = Table(
        "policy",
        "Sharpe",
        "Sortino",
        "max drawdown",
        "annual return",
        "trades",
        title="mean over assets × windows × seeds",
    )
    for policy, r in summary(result).iterrows():
        table.add_row(
            str(policy),
            f"{r['sharpe']:.3f}",
            f"{r['sortino']:.3f}",
            f"{r['max_drawdown']:.1%}",
            f"{r['annual_return']:.1%}",
            f"{r['trades']:.1f}",
        )
    console.print(table)
    for bar in quality_bars(result):
        console.print(f"{'[green]met[/]' if bar.passed else '[red]not met[/]'}  {bar.name}: {bar.value} ({bar.target})")
    console.print(
        f"wrote {paths['report']}, {paths['chart']}, {paths['runs']} in {time.perf_counter() - started:.0f} s"
    )


@backtest_app.command("dqn")
def backtest_dqn(
    out: Annotated[Path, typer.Option(help="Directory for report.md, equity.png, runs.csv")] = Path("reports/dqn"),
    assets: Csv = "",
    data: Annotated[Path | None, typer.Option(help="Daily OHLCV Parquet/CSV instead of the packaged assets")] = None,
    seeds: Annotated[int, typer.Option(help="Seeds per window (0 … N-1)")] = 5,
    first_test_year: int = 2010,
    windows: Annotated[int, typer.Option(help="Walk-forward windows (consecutive test years)")] = 3,
    train_years: int = 4,
    costs: Annotated[str, typer.Option(help="Cost preset")] = "crypto",
    features: Csv = "",
    steps: Annotated[int, typer.Option(help="Environment steps per training")] = 15_000,
    dueling: Annotated[bool, typer.Option("--dueling/--no-dueling")] = True,
    tau: Annotated[float | None, typer.Option(help="Polyak τ (default: hard target sync)")] = None,
    threads: Annotated[int, typer.Option(help="torch CPU threads")] = 1,
) -> None:
    """Walk-forward backtest on held-out years over several assets and seeds, against buy-and-hold, momentum and
    random; writes a markdown report and PNG equity curves."""
    require("signals", "tapewatch backtest dqn")
    from tapewatch.signals.dqn.agent import AgentConfig
    from tapewatch.signals.dqn.costs import cost_preset
    from tapewatch.signals.dqn.data import DEFAULT_FEATURES, check_feature_names
    from tapewatch.training.dqn.report import write_report
    from tapewatch.training.dqn.walkforward import yearly_windows

    started = time.perf_counter()
    with user_errors():
        names = tuple(_split(features)) or DEFAULT_FEATURES
        check_feature_names(names)
        cost_model = cost_preset(costs)
        config = AgentConfig(total_steps=steps, dueling=dueling, tau=tau, threads=threads)
        series = _load_series(data, [a.upper() for a in _split(assets)], "daily", 0, 0, 0)
        plan = yearly_windows(first_test_year, windows, train_years)
        result = _walk_forward_with_progress(series, names, plan, seeds, cost_model, config)
        paths = write_report(result, out)
    _print_backtest(result, paths, started)
