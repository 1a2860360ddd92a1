"""Training the CNN: images of the training range, class-weighted cross-entropy, Adam, early stopping.

Everything fitted is fitted on the training series only: the normalisation, the class thresholds (terciles of
the training forward returns) and the class weights (``n / (3 · count)``, so a rarer class costs as much in
total as a common one). Each series is cut at the end of its range, so its last ``horizon`` bars have no label
and no training label reaches into the validation range (14-day labels of neighbouring bars overlap: a label
that did would leak the validation year's moves into training).

After every epoch the network forecasts the validation images; the weights with the best balanced accuracy
are kept, and training stops after ``patience`` epochs without a better one. One numpy generator (the batch
order) and ``torch.manual_seed`` (the initial weights, dropout) on ``threads`` CPU threads: the same seed gives
the same weights.

>>> from tapewatch.signals.dqn.data import bars_from_daily, series_from_bars
>>> import pandas as pd
>>> rng = np.random.default_rng(3)
>>> close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
>>> daily = pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=400), "open": close, "high": close * 1.01,
...                       "low": close * 0.99, "close": close, "volume": rng.lognormal(13, 0.3, 400)})
>>> series = series_from_bars("TEST", "synthetic", bars_from_daily(daily))
>>> config = CnnConfig(window=20, epochs=2, batch_size=32)
>>> result = train_cnn([series.window(None, "2021-01-01")], [series.window("2021-01-01", None)], config)
>>> result.epochs, 0.0 <= result.validation["balanced_accuracy"] <= 1.0, result.model.model
(2, True, 'cnn')
>>> again = train_cnn([series.window(None, "2021-01-01")], [series.window("2021-01-01", None)], config)
>>> all(np.array_equal(result.weights[k], again.weights[k]) for k in result.weights)  # same seed, same weights
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from tapewatch.signals.cnn.config import CnnConfig
from tapewatch.signals.cnn.forecaster import CnnModel, flat_scores
from tapewatch.signals.cnn.images import ClassThresholds, LabelledImages, labelled_images
from tapewatch.signals.cnn.model import InceptionCnn, network_from_weights, network_weights
from tapewatch.signals.dqn.agent import Weights
from tapewatch.signals.dqn.data import AssetSeries, DataError, Normaliser, check_feature_names
from tapewatch.signals.forecast.contract import CLASS_NAMES
from tapewatch.signals.forecast.windows import forward_returns

__all__ = ["CnnResult", "EpochProgress", "train_cnn"]


@dataclass(frozen=True)
class EpochProgress:
    epoch: int
    epochs: int
    loss: float
    val_balanced_accuracy: float
    best_balanced_accuracy: float


@dataclass
class CnnResult:
    """A trained CNN and how it got there (``validation``: the kept weights' class scores, flat)."""

    model: CnnModel
    weights: Weights
    validation: dict[str, float]
    best_epoch: int
    epochs: int
    seconds: float
    stopped_early: bool
    train_images: int
    val_images: int
    history: list[dict[str, float]] = field(default_factory=list)


def _datasets(
    train: Sequence[AssetSeries], val: Sequence[AssetSeries], config: CnnConfig
) -> tuple[Normaliser, ClassThresholds, LabelledImages, LabelledImages]:
    check_feature_names(config.features)
    normaliser = Normaliser.fit(config.features, train)
    thresholds = ClassThresholds.fit([forward_returns(s.close, config.horizon) for s in train], config.threshold_sigma)
    train_set = labelled_images(train, normaliser, config.window, config.horizon, thresholds)
    val_set = labelled_images(val, normaliser, config.window, config.horizon, thresholds)
    need = f"a full window of {config.window} bars with complete features and a known {config.horizon}-bar move"
    if len(train_set.labels) < config.batch_size:
        raise DataError(f"{len(train_set.labels)} training images: too little history ({need} per image)")
    if len(val_set.labels) == 0:
        raise DataError(f"no validation image: too little history in the validation range ({need})")
    return normaliser, thresholds, train_set, val_set


def train_cnn(
    train: Sequence[AssetSeries],
    val: Sequence[AssetSeries],
    config: CnnConfig,
    *,
    progress: Callable[[EpochProgress], None] | None = None,
) -> CnnResult:
    """Train on the training series' images; keep the weights best on validation balanced accuracy."""
    normaliser, thresholds, train_set, val_set = _datasets(train, val, config)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(normaliser, thresholds, train_set, val_set, config, progress)
    finally:
        torch.set_num_threads(previous_threads)


def class_weights(labels: npt.NDArray[np.int64]) -> torch.Tensor:
    """``n / (classes · count)`` per class (a class absent from training weighs 0).

    >>> [round(w, 4) for w in class_weights(np.array([0, 0, 1, 2, 2, 2])).tolist()]
    [1.0, 2.0, 0.6667]
    """
    counts = np.bincount(labels, minlength=len(CLASS_NAMES)).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (len(CLASS_NAMES) * np.maximum(counts, 1.0)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def _epoch(
    network: InceptionCnn,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    data: LabelledImages,
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    network.train()
    order = rng.permutation(len(data.labels))
    images, labels = torch.from_numpy(data.images), torch.from_numpy(data.labels)
    total = 0.0
    for start in range(0, len(order), batch_size):
        batch = torch.from_numpy(order[start : start + batch_size])
        loss = loss_fn(network(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += float(loss.item()) * len(batch)
    network.eval()
    return total / len(order)


def _train(
    normaliser: Normaliser,
    thresholds: ClassThresholds,
    train_set: LabelledImages,
    val_set: LabelledImages,
    config: CnnConfig,
    progress: Callable[[EpochProgress], None] | None,
) -> CnnResult:
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    network = InceptionCnn(config)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(train_set.labels))
    best_weights, best_score, best_epoch, history = network_weights(network), -1.0, 0, []
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        loss = _epoch(network, optimizer, loss_fn, train_set, config.batch_size, rng)
        guess = CnnModel(network, normaliser, thresholds, config).probabilities(val_set.images).argmax(axis=1)
        score = flat_scores(val_set.labels, guess)["balanced_accuracy"]
        history.append({"epoch": epoch, "loss": loss, "val_balanced_accuracy": score})
        if score > best_score:
            best_weights, best_score, best_epoch = network_weights(network), score, epoch
        if progress is not None:
            progress(EpochProgress(epoch, config.epochs, loss, score, best_score))
        if epoch - best_epoch >= config.patience:
            break
    best = CnnModel(network_from_weights(config, best_weights), normaliser, thresholds, config)
    validation = flat_scores(val_set.labels, best.probabilities(val_set.images).argmax(axis=1))
    return CnnResult(
        model=best,
        weights=best_weights,
        validation=validation,
        best_epoch=best_epoch,
        epochs=epoch,
        seconds=time.perf_counter() - started,
        stopped_early=epoch < config.epochs,
        train_images=len(train_set.labels),
        val_images=len(val_set.labels),
        history=history,
    )
