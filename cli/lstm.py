"""`tapewatch train lstm`: the LSTM next-bar return forecaster, trained, scored against the naive forecast, published.

:func:`train_lstm` joins the ``train`` group of :mod:`tapewatch.cli.detect` (beside ``train dqn``);
:mod:`tapewatch.cli.app` wires it there, so importing this module registers nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tapewatch.cli.dqn import Csv, DailyData, TrainStart, ValEnd, ValStart, _split, console
from tapewatch.errors import TapewatchError, user_errors
from tapewatch.extras import require

if TYPE_CHECKING:  # typing only: the command imports these when run, so the CLI starts without loading torch
    from tapewatch.artifacts import Artifact
    from tapewatch.signals.dqn.data import AssetSeries
    from tapewatch.signals.lstm.training import LstmResult


def _load_series(
    data: Path | None, assets: Sequence[str], spark: bool, spark_out: Path, master: str, driver_memory: str
) -> tuple[list[AssetSeries], str]:
    """The requested assets' series (features by pandas, or by Spark through ``spark_out``) and how they were made."""
    if spark:
        require("spark", "tapewatch train lstm --spark")
    from tapewatch.training.dqn.data import DEFAULT_ASSETS, daily_file_bars, packaged_bars, series_of
    from tapewatch.training.lstm_data import select_assets, spark_feature_series

    if data is not None:
        daily = select_assets(daily_file_bars(data), assets, str(data))
    else:
        daily = packaged_bars(assets or DEFAULT_ASSETS)
    if not spark:
        with console.status(f"computing features of {len(daily)} asset(s)…"):
            return series_of(daily), "pandas"
    with console.status(f"Spark ({master}): features of {len(daily)} asset(s) → {spark_out}…"):
        return spark_feature_series(daily, spark_out, master, driver_memory), f"spark → {spark_out}"


def _print_result(artifact: Artifact, result: LstmResult) -> None:
    table = Table("model", "value")
    table.add_row("version", artifact.version)
    table.add_row("path", str(artifact.path))
    table.add_row("windows", f"{result.train_windows:,} training, {result.val_windows:,} validation")
    table.add_row(
        "epochs", f"{result.epochs} (best {result.best_epoch}" + (", early stop)" if result.stopped_early else ")")
    )
    table.add_row("training time", f"{result.seconds:.1f} s on {result.workers} worker(s)")
    table.add_row("trading band", f"±{result.band:.4%} (chosen on validation after {result.costs.name} costs)")
    console.print(table)
    v = result.validation
    scores = Table("validation", "LSTM", "naive (tomorrow = today)", "ratio", title=f"{v['n']:,.0f} forecasts")
    for label, key in (("return RMSE", "rmse_return"), ("return MAE", "mae_return")):
        scores.add_row(label, f"{v[key]:.6f}", f"{v[key + '_naive']:.6f}", f"{v[key] / v[key + '_naive']:.4f}")
    for label, key in (("price RMSE", "rmse_price"), ("price MAE", "mae_price")):
        scores.add_row(label, f"{v[key]:.4f}", f"{v[key + '_naive']:.4f}", f"{v[key] / v[key + '_naive']:.4f}")
    scores.add_row("direction accuracy", f"{v['direction_accuracy']:.1%}", "—", "")
    console.print(scores)
    ratio = v["rmse_return_ratio"]
    if ratio < 1.0:
        console.print(f"[green]beats the naive forecast[/] on validation return RMSE (ratio {ratio:.4f})")
    else:
        console.print(
            f"[yellow]does not beat the naive forecast[/] (tomorrow = today) on validation return RMSE: "
            f"ratio {ratio:.4f}"
        )


def _training_manifest(
    series: Sequence[AssetSeries], ranges: dict[str, tuple[str, str]], features_from: str
) -> dict[str, Any]:
    from tapewatch.signals.dqn.inference import training_range

    return {
        **training_range(ranges),
        "assets": [s.symbol for s in series],
        "sources": sorted({s.source for s in series}),
        "features_from": features_from,
    }


def train_lstm(
    assets: Csv = "",
    data: DailyData = None,
    train_start: TrainStart = "2008-01-01",
    val_start: ValStart = "2012-01-01",
    val_end: ValEnd = "2013-01-01",
    features: Csv = "",
    window: Annotated[int, typer.Option(help="Bars per input window")] = 50,
    units: Annotated[int, typer.Option(help="LSTM units")] = 128,
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping on validation loss)")] = 60,
    batch_size: int = 64,
    horizon: Annotated[int, typer.Option(help="Forecast horizon in bars")] = 1,
    seed: int = 0,
    workers: Annotated[int, typer.Option(help="Data-parallel training processes (torch.distributed, gloo)")] = 1,
    costs: Annotated[str, typer.Option(help="Costs the trading band is chosen after")] = "crypto",
    spark: Annotated[bool, typer.Option("--spark", help="Compute the features on Spark, through Parquet")] = False,
    spark_out: Annotated[Path | None, typer.Option(help="Feature Parquet (--spark)")] = None,
    master: Annotated[str, typer.Option(help="Spark master (--spark)")] = "local[2]",
) -> None:
    """Train the LSTM next-bar return forecaster, early-stopped on validation loss; compare it with the naive
    forecast on validation and publish it under <models>/lstm/<version>/."""
    require("signals", "tapewatch train lstm")
    from tapewatch.settings import load_settings
    from tapewatch.signals.dqn.costs import cost_preset
    from tapewatch.signals.dqn.data import data_fingerprint
    from tapewatch.signals.lstm.config import DEFAULT_FEATURES, LstmConfig
    from tapewatch.signals.lstm.serving import save_lstm
    from tapewatch.signals.lstm.training import train_lstm as fit

    settings = load_settings()
    with user_errors():
        config = LstmConfig(
            window=window,
            units=units,
            max_epochs=epochs,
            batch_size=batch_size,
            horizon=horizon,
            seed=seed,
            features=tuple(_split(features)) or DEFAULT_FEATURES,
        )
        cost_model = cost_preset(costs)
        if workers < 1:
            raise TapewatchError("--workers must be at least 1")
        out = spark_out or settings.local.var_dir / "lstm" / "features.parquet"
        series, made = _load_series(data, _split(assets), spark, out, master, settings.local.spark_driver_memory)
        train = [s.window(train_start, val_start) for s in series]
        val = [s.window(None, val_end) for s in series]  # the history before val_start fills the first windows
        with console.status(f"training the LSTM on {workers} worker(s)…"):
            result = fit(train, val, config, workers, val_start=val_start, costs=cost_model)
        artifact = save_lstm(
            settings.local.models_path,
            result,
            training=_training_manifest(
                series, {"train": (train_start, val_start), "validation": (val_start, val_end)}, made
            ),
            data_hash=data_fingerprint([*train, *(s.window(val_start, val_end) for s in series)]),
        )
    _print_result(artifact, result)
