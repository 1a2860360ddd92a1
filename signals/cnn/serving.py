"""The CNN's artifact and live serving: publish a trained model, load it with validation, forecast batches.

Typical use in the stream worker (pure computation; the worker owns Kafka and each symbol's last rows)::

    cnn = CnnForecaster.load(settings.local.models_path)          # "latest"; ModelError if unusable
    cnn.check_features(FEATURE_SET_VERSION, FEATURE_NAMES)  # the stream can feed it, or ModelError
    for item in cnn.forecast([ForecastRequest("2330", rows), …]):
        Rejected → dead-letter(item.reason); ForecastResult → emit(item.to_record(ts, venue))
    if cnn.newer_version(): cnn = CnnForecaster.load(settings.local.models_path)

``<models_path>/cnn/<version>/`` holds ``weights.npz`` (the state dict as numpy arrays, loaded without pickle)
and ``manifest.json``: kind ``cnn``, feature names and feature-set version, normalisation, window, horizon,
class thresholds, the whole :class:`CnnConfig`, the training range, the data hash, the validation class scores.
A :class:`ForecastResult` is ``target="class"``, ``prediction = P(up) - P(down)``, ``confidence`` the largest class
probability, and every class's probability.

>>> import tempfile
>>> import numpy as np, torch
>>> from tapewatch.signals.cnn.model import InceptionCnn, network_weights
>>> _ = torch.manual_seed(0)
>>> config = CnnConfig(features=("ret_1", "rsi_14"), window=5)
>>> normaliser = Normaliser(("ret_1", "rsi_14"), np.array([0.0, 50.0]), np.array([0.01, 10.0]))
>>> model = CnnModel(InceptionCnn(config), normaliser, ClassThresholds(-0.02, 0.03), config)
>>> models = tempfile.TemporaryDirectory()
>>> artifact = save_cnn(Path(models.name), model, network_weights(model.network), training={}, data_hash="0" * 64)
>>> cnn = CnnForecaster.load(Path(models.name))
>>> cnn.version == artifact.version, cnn.window, cnn.feature_names, cnn.newer_version()
(True, 5, ('ret_1', 'rsi_14'), None)
>>> rows = [{"ret_1": 0.001 * i, "rsi_14": 50.0 + i} for i in range(6)]
>>> made, short = cnn.forecast([ForecastRequest("2330", rows), ForecastRequest("2317", rows[:3])])
>>> made.target, made.horizon, round(sum(made.probabilities.values()), 6), -1 <= made.prediction <= 1
('class', 14, 1.0, True)
>>> short
Rejected(symbol='2317', reason='needs 5 rows of history, has 3')
>>> cnn.check_features("bar1m-v1", ["ret_1"])
Traceback (most recent call last):
...
tapewatch.signals.forecast.contract.ModelError: cnn ...: the stream lacks feature(s) rsi_14
>>> models.cleanup()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from tapewatch.artifacts import LATEST, Artifact, ArtifactStore
from tapewatch.detectors.features import FEATURE_SET_VERSION
from tapewatch.signals.cnn.config import CnnConfig
from tapewatch.signals.cnn.forecaster import MODEL_NAME, CnnModel
from tapewatch.signals.cnn.images import ClassThresholds, window_images
from tapewatch.signals.cnn.model import network_from_weights
from tapewatch.signals.dqn.agent import Weights
from tapewatch.signals.dqn.data import Normaliser
from tapewatch.signals.fixed_shape import serving_rows
from tapewatch.signals.forecast.contract import (
    CLASS_NAMES,
    ForecastRequest,
    ForecastResult,
    ModelError,
    Rejected,
    stack_requests,
)
from tapewatch.signals.manifest import (
    check_feature_list,
    check_features,
    fitting_weights,
    load_artifact,
    manifest_fields,
)

__all__ = ["MODEL_KIND", "CnnForecaster", "save_cnn"]

MODEL_KIND: Final = "cnn"


def save_cnn(
    models_path: Path,
    model: CnnModel,
    weights: Weights,
    *,
    training: Mapping[str, Any],
    data_hash: str,
    validation: Mapping[str, float] | None = None,
    fit: Mapping[str, Any] | None = None,
) -> Artifact:
    """Publish a trained CNN as a new version under ``<models_path>/cnn/``.

    ``training``: the date ranges, assets and sources; ``validation``: the kept weights' validation class
    scores; ``fit``: how training went (epochs, best epoch, seconds).
    """
    config = model.config
    manifest = {
        "kind": MODEL_KIND,
        "feature_names": list(config.features),
        "feature_set_version": FEATURE_SET_VERSION,
        "normalisation": model.normaliser.to_manifest(),
        "window": config.window,
        "horizon": config.horizon,
        "classes": list(CLASS_NAMES),
        "class_thresholds": model.thresholds.to_manifest(),
        "config": config.to_manifest(),
        "prediction": "P(up) - P(down)",
        "confidence": "the largest class probability",
        "training": dict(training),
        "metrics": {"validation": dict(validation or {}), **dict(fit or {})},
    }
    return ArtifactStore(models_path).save(MODEL_NAME, manifest, weights, hash_hex=data_hash)


def _model_from_artifact(artifact: Artifact) -> CnnModel:
    """The :class:`CnnModel` an artifact describes; :class:`ModelError` with one sentence when it cannot be."""
    m, version = artifact.manifest, artifact.version
    with manifest_fields(MODEL_NAME, version):
        names = tuple(str(n) for n in m["feature_names"])
        normaliser = Normaliser.from_manifest(m["normalisation"])
        thresholds = ClassThresholds.from_manifest(m["class_thresholds"])
        config = CnnConfig.from_manifest(m["config"])
        window, horizon = int(m["window"]), int(m["horizon"])
    check_feature_list(MODEL_NAME, version, names, normaliser.feature_names, config.features)
    if (window, horizon) != (config.window, config.horizon) or tuple(m.get("classes", ())) != CLASS_NAMES:
        raise ModelError(f"cnn {version}: window, horizon or classes do not match its config")
    with fitting_weights(MODEL_NAME, version):
        network = network_from_weights(config, artifact.weights)
    return CnnModel(network, normaliser, thresholds, config)


class CnnForecaster:
    """A loaded CNN: forecasts without gradients, in forward passes of one fixed shape
    (:meth:`CnnModel.serving_probabilities`)."""

    model: Final = MODEL_NAME

    def __init__(self, artifact: Artifact, store: ArtifactStore) -> None:
        self.store = store
        self.version = artifact.version
        self.manifest = artifact.manifest
        self.fitted = _model_from_artifact(artifact)
        self.window = self.fitted.config.window
        self.horizon = self.fitted.config.horizon
        self.feature_names = self.fitted.config.features
        image = (1, len(self.feature_names), self.window)
        self.serving_rows = serving_rows(self.fitted.softmax_pass, image, f"cnn {self.version}")

    @classmethod
    def load(cls, models_path: Path, version: str = LATEST) -> CnnForecaster:
        """Load ``version`` (default the newest) and validate it against this code's feature set."""
        return cls(*load_artifact(models_path, MODEL_NAME, MODEL_KIND, version))

    def newer_version(self) -> str | None:
        """The newest published version when it is not the loaded one (a directory listing: poll freely)."""
        return self.store.has_newer(MODEL_NAME, self.version)

    def check_features(self, feature_set_version: str, names: Sequence[str]) -> None:
        """Raise :class:`ModelError` unless a feature stream of this version and these names can feed the model."""
        check_features(self.model, self.version, self.manifest, feature_set_version, names)

    def forecast(self, requests: Sequence[ForecastRequest]) -> list[ForecastResult | Rejected]:
        """One forecast (or rejection) per request, in order; the rejected do not hold up the others."""
        stack = stack_requests(requests, self.feature_names, self.window)
        out: list[ForecastResult | Rejected | None] = [None] * len(requests)
        for i, rejected in stack.rejected:
            out[i] = rejected
        if stack.index:
            images = window_images(self.fitted.normaliser.transform(stack.windows))
            probabilities = self.fitted.serving_probabilities(images, self.serving_rows)
            for j, i in enumerate(stack.index):
                out[i] = self._forecast(requests[i].symbol, probabilities[j].tolist())
        return [item for item in out if item is not None]

    def _forecast(self, symbol: str, p: list[float]) -> ForecastResult:
        probabilities = dict(zip(CLASS_NAMES, p, strict=True))
        return ForecastResult(
            symbol=symbol,
            model=self.model,
            version=self.version,
            horizon=self.horizon,
            target="class",
            prediction=probabilities["up"] - probabilities["down"],
            confidence=max(p),
            probabilities=probabilities,
        )
