"""`tapewatch train cnn`: the Inception CNN over indicator images, published under <models>/cnn/<version>/.

:func:`train_cnn_command` joins the ``train`` group beside ``train dqn``; :mod:`tapewatch.cli.app` wires it there, so
importing this module registers nothing. Data loading, the date split and the error handling are the DQN
command's (:mod:`tapewatch.cli.dqn`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tapewatch.cli.dqn import (
    Csv,
    DailyData,
    TrainStart,
    ValEnd,
    ValStart,
    _daily_split,
    _split,
    console,
)
from tapewatch.errors import TapewatchError, user_errors
from tapewatch.extras import require

if TYPE_CHECKING:  # typing only: the command imports these when run, so the CLI starts without loading torch
    from tapewatch.artifacts import Artifact
    from tapewatch.signals.cnn.config import CnnConfig
    from tapewatch.signals.cnn.training import CnnResult
    from tapewatch.signals.dqn.data import AssetSeries


def _series(data: Path | None, assets: Sequence[str]) -> list[AssetSeries]:
    """The packaged assets (an unknown name is an error), or a daily file's symbols (all, or the named ones)."""
    from tapewatch.training.dqn import data as dqn_data

    with console.status("loading daily bars and computing features…"):
        if data is None:
            return dqn_data.load_packaged(assets or dqn_data.DEFAULT_ASSETS)
        series = dqn_data.load_daily_file(data)
    missing = sorted(set(assets) - {s.symbol for s in series})
    if missing:
        known = ", ".join(s.symbol for s in series[:10]) + (" …" if len(series) > 10 else "")
        raise TapewatchError(f"{data}: no symbol {', '.join(missing)} (it has {known})")
    return [s for s in series if not assets or s.symbol in assets]


def _train_with_progress(train: list[AssetSeries], validation: list[AssetSeries], config: CnnConfig) -> CnnResult:
    from tapewatch.signals.cnn.training import EpochProgress, train_cnn

    console.print(
        f"training on {len(train)} asset(s): images of {len(config.features)} indicators × {config.window} bars, "
        f"classes of the {config.horizon}-bar move; at most {config.epochs} epochs"
    )
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("train cnn", total=config.epochs, stats="")

        def report(p: EpochProgress) -> None:
            best = p.best_balanced_accuracy
            stats = f"loss {p.loss:.4f} val balanced accuracy {p.val_balanced_accuracy:.3f} (best {best:.3f})"
            progress.update(task, completed=p.epoch, stats=stats)

        result = train_cnn(train, validation, config, progress=report)
        progress.update(task, completed=result.epochs)
    return result


def _print_scores(result: CnnResult, artifact: Artifact) -> None:
    from tapewatch.signals.forecast.contract import CLASS_NAMES

    v = result.validation
    majority = CLASS_NAMES[int(v["majority_class"])]
    table = Table("validation", "cnn", f"majority class ({majority})", title=f"{int(v['n']):,} validation images")
    table.add_row("balanced accuracy", f"{v['balanced_accuracy']:.3f}", f"{v['majority_balanced_accuracy']:.3f}")
    table.add_row("accuracy", f"{v['accuracy']:.3f}", f"{v['majority_accuracy']:.3f}")
    for name in CLASS_NAMES:
        table.add_row(
            f"F1 {name} ({v[f'share_{name}']:.0%} of moves)",
            f"{v[f'f1_{name}']:.3f}",
            f"{v[f'majority_f1_{name}']:.3f}",
        )
    console.print(table)
    thresholds = result.model.thresholds
    console.print(
        f"classes: down below {thresholds.down:+.2%}, up above {thresholds.up:+.2%} over {result.model.horizon} bars "
        f"({thresholds.method} of the training moves)"
    )
    console.print(
        f"published cnn {artifact.version} at {artifact.path}; best epoch {result.best_epoch} of {result.epochs}"
        f"{' (early stop)' if result.stopped_early else ''}, {result.train_images:,} training images, "
        f"{result.seconds:.1f} s"
    )


def train_cnn_command(
    assets: Csv = "",
    data: DailyData = None,
    train_start: TrainStart = "2008-01-01",
    val_start: ValStart = "2012-01-01",
    val_end: ValEnd = "2013-01-01",
    features: Csv = "",
    window: Annotated[int, typer.Option(help="Bars per image")] = 56,
    horizon: Annotated[int, typer.Option(help="Bars of the predicted move")] = 14,
    epochs: Annotated[int, typer.Option(help="Most epochs (early stop on validation balanced accuracy)")] = 30,
    seed: int = 0,
    threads: Annotated[int, typer.Option(help="torch CPU threads")] = 1,
) -> None:
    """Train the Inception CNN on indicator images (classes of the next move), early-stopped on validation
    balanced accuracy, and publish it under <models>/cnn/<version>/."""
    require("signals", "tapewatch train cnn")
    from tapewatch.settings import load_settings
    from tapewatch.signals.cnn.config import CnnConfig
    from tapewatch.signals.cnn.serving import save_cnn
    from tapewatch.signals.dqn.data import check_feature_names, data_fingerprint

    settings = load_settings()
    with user_errors():
        config = CnnConfig(window=window, horizon=horizon, epochs=epochs, seed=seed, threads=threads)
        if features:
            config = replace(config, features=tuple(_split(features)))
        check_feature_names(config.features)  # before loading data: a typo is the first thing said
        split = _daily_split(_series(data, [a.upper() for a in _split(assets)]), train_start, val_start, val_end)
        result = _train_with_progress(split.train, split.validation, config)
        artifact = save_cnn(
            settings.local.models_path,
            result.model,
            result.weights,
            training=split.manifest(),
            data_hash=data_fingerprint(split.train + split.validation),
            validation=result.validation,
            fit={"best_epoch": result.best_epoch, "epochs": result.epochs, "train_seconds": round(result.seconds, 1)},
        )
    _print_scores(result, artifact)
