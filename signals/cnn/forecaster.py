"""A trained CNN as the signals lab uses it (:class:`~tapewatch.signals.forecast.contract.TrainedForecaster`).

:class:`CnnModel` holds the network, the normalisation, the class thresholds and the config. It forecasts every
bar of a series at once (``P(up) - P(down)`` and the chosen class), turns a forecast into the trading rule's
desired positions, and scores its classes against the move classes of its own thresholds beside the majority
class. Live serving (:mod:`tapewatch.signals.cnn.serving`) computes the same probabilities from a batch of requests.

A network whose head always says *up* forecasts +1 wherever a series has a full window:

>>> import pandas as pd
>>> from tapewatch.signals.cnn.config import CnnConfig
>>> from tapewatch.signals.cnn.images import ClassThresholds
>>> from tapewatch.signals.dqn.data import AssetSeries, Normaliser
>>> config = CnnConfig(features=("ret_1",), window=5, horizon=2, epochs=1)
>>> network = InceptionCnn(config).eval()
>>> with torch.no_grad():
...     _ = network.head.weight.zero_()
...     _ = network.head.bias.copy_(torch.tensor([0.0, 0.0, 30.0]))
>>> model = CnnModel(network, Normaliser(("ret_1",), np.zeros(1), np.ones(1)), ClassThresholds(-0.01, 0.01), config)
>>> close = np.array([10.0, 10.2, 10.1, 10.4, 10.5, 10.3, 10.0, 10.6, 10.2, 10.4])
>>> ret_1 = pd.DataFrame({"ret_1": np.r_[np.nan, np.diff(np.log(close))]})
>>> series = AssetSeries("TEST", "synthetic", np.arange(10).astype("datetime64[D]"), close, ret_1)
>>> forecast = model.predict(series)
>>> forecast.prediction.round(3).tolist(), forecast.classes.tolist()
([nan, nan, nan, nan, nan, 1.0, 1.0, 1.0, 1.0, 1.0], [-1, -1, -1, -1, -1, 2, 2, 2, 2, 2])
>>> model.targets(forecast).tolist()  # long from the first forecast of *up*
[0, 0, 0, 0, 0, 1, 1, 1, 1, 1]

Bars 5 and 6 then rose by more than 1 % over two bars (*up*), bar 7 fell (*down*); the last two are unknown:

>>> scores = model.diagnostics([series], [forecast])
>>> scores["n"], round(scores["accuracy"], 3), scores["balanced_accuracy"], scores["f1_up"], scores["f1_down"]
(3.0, 0.667, 0.5, 0.8, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import torch

from tapewatch.signals.cnn.config import CnnConfig
from tapewatch.signals.cnn.images import ClassThresholds, ImageArray, series_images
from tapewatch.signals.cnn.model import InceptionCnn, folded_for_inference
from tapewatch.signals.dqn.data import AssetSeries, Normaliser
from tapewatch.signals.fixed_shape import fixed_shape_forward
from tapewatch.signals.forecast.contract import CLASS_NAMES, SeriesForecast
from tapewatch.signals.forecast.metrics import class_scores
from tapewatch.signals.forecast.rules import band_targets
from tapewatch.signals.forecast.windows import forward_returns

__all__ = ["MODEL_NAME", "CnnModel"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MODEL_NAME: Final = "cnn"
#: images per forward pass: its activations stay in the core's cache (256: ~1.5x the forward passes of 1,000 or more)
CHUNK: Final = 256
_DOWN, _UP = CLASS_NAMES.index("down"), CLASS_NAMES.index("up")


class CnnModel:
    """A trained CNN: network (eval mode), training-range normalisation and class thresholds, config.

    The network's weights are taken as they are at construction (forecasts use a copy with the batch norms
    folded in): a network trained further needs a new :class:`CnnModel`."""

    model: Final = MODEL_NAME

    def __init__(
        self, network: InceptionCnn, normaliser: Normaliser, thresholds: ClassThresholds, config: CnnConfig
    ) -> None:
        self.network = network.eval()
        self._serving = folded_for_inference(self.network)  # the same function, fewer passes; weights stay unfolded
        self.normaliser = normaliser
        self.thresholds = thresholds
        self.config = config

    @property
    def horizon(self) -> int:
        return self.config.horizon

    def probabilities(self, images: ImageArray, chunk: int = CHUNK) -> FloatArray:
        """Class probabilities ``(k, 3)`` of images ``(k, 1, indicators, window)``, ``chunk`` images per forward
        pass, without gradients."""
        if len(images) == 0:
            return np.zeros((0, len(CLASS_NAMES)))
        parts = []
        with torch.no_grad():
            for start in range(0, len(images), chunk):
                logits = self._serving(torch.from_numpy(images[start : start + chunk]))
                parts.append(torch.softmax(logits, dim=1).numpy().astype(np.float64))
        return np.concatenate(parts)

    def softmax_pass(self, images: torch.Tensor) -> torch.Tensor:
        """One forward pass to class probabilities (the softmax inside the pass, so of the pass's shape too)."""
        return torch.softmax(self._serving(images), dim=1)

    def serving_probabilities(self, images: ImageArray, rows: int) -> FloatArray:
        """Class probabilities ``(k, 3)`` in passes of ``rows`` rows each: each image's probabilities are its own,
        whatever else is served with it (:mod:`tapewatch.signals.fixed_shape`)."""
        return fixed_shape_forward(self.softmax_pass, torch.from_numpy(images), rows).numpy().astype(np.float64)

    def predict(self, series: AssetSeries) -> SeriesForecast:
        """``P(up) - P(down)`` and the most probable class at every bar with a full window (NaN / -1 elsewhere)."""
        found = series_images(series, self.normaliser, self.config.window)
        probabilities = self.probabilities(found.images)
        prediction = np.full(len(series.close), np.nan)
        classes = np.full(len(series.close), -1, dtype=np.int64)
        prediction[found.ends] = probabilities[:, _UP] - probabilities[:, _DOWN]
        classes[found.ends] = probabilities.argmax(axis=1)
        return SeriesForecast(prediction, classes)

    def targets(self, forecast: SeriesForecast) -> IntArray:
        """The trading rule: desired position (0 or 1) at each bar, starting flat (see :class:`CnnConfig`)."""
        if self.config.rule_band is not None:
            return band_targets(forecast.prediction, self.config.rule_band)
        classes = forecast.classes if forecast.classes is not None else np.full(len(forecast.prediction), -1)
        signal = np.where(classes == _UP, 1.0, np.where(classes == _DOWN, -1.0, 0.0))
        return band_targets(signal, band=0.5)  # up → long, down → flat, flat or none → unchanged

    def diagnostics(self, series: Sequence[AssetSeries], forecasts: Sequence[SeriesForecast]) -> dict[str, float]:
        """Class scores of the bars with both a forecast and a known move, pooled over the series."""
        truth: list[IntArray] = []
        guess: list[IntArray] = []
        for s, forecast in zip(series, forecasts, strict=True):
            labels = self.thresholds.label(forward_returns(s.close, self.horizon))
            classes = forecast.classes if forecast.classes is not None else np.full(len(labels), -1)
            keep = (labels >= 0) & (classes >= 0)
            truth.append(labels[keep])
            guess.append(classes[keep])
        return flat_scores(np.concatenate(truth), np.concatenate(guess))


def flat_scores(truth: IntArray, guess: IntArray) -> dict[str, float]:
    """:func:`~tapewatch.signals.forecast.metrics.class_scores` as flat ``name → number`` pairs (and each class's
    share).

    >>> flat_scores(np.array([0, 2, 2]), np.array([0, 2, 1]))["majority_class"]  # the index of "up"
    2.0
    """
    scores = class_scores(truth, guess)
    counts = np.bincount(truth, minlength=len(CLASS_NAMES))
    out = {
        "n": float(scores.n),
        "accuracy": round(scores.accuracy, 6),
        "balanced_accuracy": round(scores.balanced_accuracy, 6),
        "majority_class": float(CLASS_NAMES.index(scores.majority_class)),
        "majority_accuracy": round(scores.majority_accuracy, 6),
        "majority_balanced_accuracy": round(scores.majority_balanced_accuracy, 6),
    }
    for i, name in enumerate(CLASS_NAMES):
        out[f"f1_{name}"] = scores.f1[name]
        out[f"majority_f1_{name}"] = scores.majority_f1[name]
        out[f"share_{name}"] = round(float(counts[i] / max(1, len(truth))), 6)
    return out
