"""`tapewatch backtest signals` (the signals lab: every policy over the same held-out years, one report) and
`tapewatch forecast` (what each published model says now for some symbols).

:func:`backtest_signals` joins the ``backtest`` group of :mod:`tapewatch.cli.dqn`; :mod:`tapewatch.cli.app`
wires both, so importing this module registers nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tapewatch.cli.dqn import Csv, _load_series, _split, console
from tapewatch.errors import TapewatchError, user_errors
from tapewatch.extras import require

if TYPE_CHECKING:  # typing only: the commands import these when run, so the CLI starts without loading torch
    from tapewatch.signals.dqn.data import AssetSeries
    from tapewatch.signals.forecast.contract import ForecastRequest, ForecastResult, Rejected
    from tapewatch.training.lab.lab import FitForecaster, LabConfig, LabResult


def _print_lab(result: LabResult, paths: dict[str, Path], started: float) -> None:
    from tapewatch.training.lab.report import quality_bars, summary

    table = Table("policy", "Sharpe", "Sortino", "max drawdown", "annual return", "hit rate", "trades /yr",
                  title="mean over assets × test years × seeds")  # fmt: skip
    for policy, r in summary(result).iterrows():
        table.add_row(
            str(policy),
            f"{r['sharpe']:.3f}",
            f"{r['sortino']:.3f}",
            f"{r['max_drawdown']:.1%}",
            f"{r['annual_return']:.1%}",
            f"{r['hit_rate']:.1%}",
            f"{r['trades']:.1f}",
        )
    console.print(table)
    for bar in quality_bars(result):
        console.print(f"{'[green]met[/]' if bar.passed else '[red]not met[/]'}  {bar.name}: {bar.value} ({bar.target})")
    files = ", ".join(str(p) for p in paths.values())
    console.print(f"wrote {files} in {time.perf_counter() - started:.0f} s")


def backtest_signals(
    out: Annotated[Path, typer.Option(help="Directory for report.md, the PNG charts and the CSVs")] = Path(
        "reports/signals"
    ),
    assets: Csv = "",
    data: Annotated[Path | None, typer.Option(help="Daily OHLCV Parquet/CSV instead of the packaged assets")] = None,
    seeds: Annotated[int, typer.Option(help="Seeds per window (0 … N-1)")] = 5,
    first_test_year: int = 2010,
    windows: Annotated[int, typer.Option(help="Walk-forward windows (consecutive test years)")] = 3,
    train_years: int = 4,
    costs: Annotated[str, typer.Option(help="Cost preset (crypto: 0.1 % per side)")] = "crypto",
    models: Annotated[str, typer.Option(help="Forecaster families beside the DQN (comma-separated; '' for none)")] = (
        "lstm,cnn"
    ),
    dqn_steps: Annotated[int, typer.Option(help="Environment steps per DQN training")] = 15_000,
    threads: Annotated[int, typer.Option(help="torch CPU threads")] = 1,
) -> None:
    """Walk the DQN, the LSTM and CNN trading rules, their ensemble, buy-and-hold, momentum and random forward
    over held-out years, assets and seeds; writes one markdown report with PNG charts. Each finished
    (window, seed) is kept under OUT/cache: run the same command again after a stop and it resumes."""
    require("signals", "tapewatch backtest signals")
    import torch

    from tapewatch.signals.dqn.agent import AgentConfig
    from tapewatch.signals.dqn.costs import cost_preset
    from tapewatch.signals.dqn.data import DEFAULT_FEATURES
    from tapewatch.training.dqn.walkforward import yearly_windows
    from tapewatch.training.lab.families import forecaster_families
    from tapewatch.training.lab.lab import LabConfig
    from tapewatch.training.lab.report import write_report

    torch.set_num_threads(threads)  # the LSTM trains on torch's threads; the DQN and the CNN set their own
    started = time.perf_counter()
    with user_errors():
        cost_model = cost_preset(costs)
        families = forecaster_families(_split(models), cost_model)
        series = _load_series(data, [a.upper() for a in _split(assets)], "daily", 0, 0, 0)
        config = LabConfig(
            windows=yearly_windows(first_test_year, windows, train_years),
            seeds=list(range(seeds)),
            costs=cost_model,
            dqn=AgentConfig(total_steps=dqn_steps, threads=threads),
            dqn_features=DEFAULT_FEATURES,
        )
        result = _run_resumable(series, config, families, out)
        paths = write_report(result, out)
    _print_lab(result, paths, started)


def _run_resumable(
    series: list[AssetSeries], config: LabConfig, families: Mapping[str, FitForecaster], out: Path
) -> LabResult:
    """The lab with its finished tasks kept under ``out/cache`` and its numbers so far written after each one."""
    import pandas as pd

    from tapewatch.training.lab.cache import TaskCache, fingerprint
    from tapewatch.training.lab.lab import run_lab

    out.mkdir(parents=True, exist_ok=True)

    def checkpoint(rows: pd.DataFrame, diagnostics: pd.DataFrame) -> None:
        rows.to_csv(out / "runs.partial.csv", index=False)
        diagnostics.to_csv(out / "diagnostics.partial.csv", index=False)

    parts = {"costs": config.costs, "dqn": config.dqn, "dqn_features": config.dqn_features, "models": sorted(families)}
    cache = TaskCache(out / "cache", fingerprint(series, parts))
    with console.status("signals lab…") as status:
        return run_lab(
            series,
            config,
            families,
            progress=lambda line: status.update(f"signals lab: {line}"),
            checkpoint=checkpoint,
            cache=cache,
        )


def _history_requests(series: list[AssetSeries], symbols: list[str], window: int) -> list[ForecastRequest]:
    """Each symbol's newest ``window`` bars of raw features, as the stream would ask at its last bar close."""
    from tapewatch.signals.forecast.contract import ForecastRequest

    by_symbol = {s.symbol: s for s in series}
    unknown = [s for s in symbols if s not in by_symbol]
    if unknown:
        raise TapewatchError(f"unknown symbol(s) {', '.join(unknown)}; the data has {', '.join(sorted(by_symbol))}")
    requests = []
    for symbol in symbols:
        frame = by_symbol[symbol].features.iloc[-window:]
        values = frame.to_numpy(dtype="float64")
        rows = [
            {str(name): (float(v) if math.isfinite(v) else None) for name, v in zip(frame.columns, row, strict=True)}
            for row in values
        ]  # NaN (a feature still warming up) → missing, as on the wire
        requests.append(ForecastRequest(symbol, rows))
    return requests


def forecast(
    symbols: Annotated[str, typer.Argument(help="Comma-separated symbols of the data")],
    models: Annotated[str, typer.Option(help="Models to ask (comma-separated)")] = "lstm,cnn",
    data: Annotated[Path | None, typer.Option(help="Daily OHLCV Parquet/CSV instead of the packaged assets")] = None,
) -> None:
    """Each published model's forecast for the symbols' newest daily bar (the packaged assets by default)."""
    require("signals", "tapewatch forecast")
    from tapewatch.settings import get_settings
    from tapewatch.streams.forecasting import default_loaders

    models_path = get_settings().local.models_path
    with user_errors():
        loaders = default_loaders()
        unknown = [m for m in _split(models) if m not in loaders]
        if unknown:
            raise TapewatchError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(loaders)}")
        series = _load_series(data, [], "daily", 0, 0, 0)
        names = [s.upper() for s in _split(symbols)]
        table = Table("symbol", "as of", "model", "version", "horizon", "forecast", "confidence")
        for name in _split(models):
            model = loaders[name](models_path, "latest")
            requests = _history_requests(series, names, model.window)
            for request, outcome in zip(requests, model.forecast(requests), strict=True):
                as_of = str(next(s for s in series if s.symbol == request.symbol).times[-1])[:10]
                table.add_row(request.symbol, as_of, name, model.version, *_outcome_cells(outcome))
    console.print(table)


def _outcome_cells(outcome: ForecastResult | Rejected) -> tuple[str, str, str]:
    """Horizon, forecast and confidence of one answer (a refusal says why)."""
    from tapewatch.signals.forecast.contract import Rejected

    if isinstance(outcome, Rejected):
        return "—", f"[red]refused: {outcome.reason}[/]", "—"
    if outcome.target == "return":
        text = f"return {100 * outcome.prediction:+.3f} %"
    else:
        text = " / ".join(f"{k} {v:.2f}" for k, v in outcome.probabilities.items())
    return f"{outcome.horizon} bars", text, f"{outcome.confidence:.2f}"
