"""The LSTM's artifact and its live serving: publish, load with validation, forecast batches, hot-reload.

Typical use in a stream worker (pure computation; the worker owns Kafka and the per-symbol row tables)::

    forecaster = LstmForecaster.load(settings.local.models_path)        # "latest"; ModelError if unusable
    forecaster.check_features(FEATURE_SET_VERSION, FEATURE_NAMES)  # the stream can feed it
    for item in forecaster.forecast([ForecastRequest(symbol, last_rows) for symbol, last_rows in batch]):
        if isinstance(item, Rejected): dead-letter(item.reason)   # too little history, missing/NaN feature
        else: emit(item.to_record(ts=bar.end, venue=bar.venue))
    if forecaster.newer_version(): forecaster = LstmForecaster.load(settings.local.models_path)

Artifacts live in ``<models_path>/lstm/<version>/`` (:mod:`tapewatch.artifacts`): ``weights.npz`` and
``manifest.json`` — kind ``lstm``, features and feature-set version, normalisation, window, horizon, the
config, the target scale, the confidence's definition and residual RMSE, the trading band and its costs,
the training range and data hash, and the validation scores.

**Confidence** (in ``[0, 1]``): ``erf(|prediction| / (√2 · residual_rmse))`` = ``2 Φ(|prediction| / σ) - 1``,
where ``σ`` is the model's return RMSE on its validation year: 0 for a zero forecast, 0.68 for a forecast one
validation RMSE away from zero. Next-day returns are mostly noise, so it is small for daily models.

A model published and loaded back; one batch forecasts one symbol, refuses one with too little history and one
with a NaN feature:

>>> import tempfile
>>> from pathlib import Path
>>> import numpy as np
>>> import torch
>>> from tapewatch.signals.dqn.costs import cost_preset
>>> from tapewatch.signals.forecast.contract import ForecastRequest
>>> from tapewatch.signals.lstm.config import LstmConfig
>>> from tapewatch.signals.lstm.model import LstmNet, network_weights
>>> config = LstmConfig(window=2, units=4, features=("ret_1", "rsi_14"))
>>> _ = torch.manual_seed(0)
>>> weights = network_weights(LstmNet(features=2, units=4))
>>> models = tempfile.TemporaryDirectory()
>>> artifact = publish(Path(models.name), weights, config=config,
...                      normaliser=Normaliser(("ret_1", "rsi_14"), np.array([0.0, 50.0]), np.array([0.01, 10.0])),
...                      target_scale=0.01, residual_rmse=0.02, band=0.0, costs=cost_preset("crypto"),
...                      training={}, metrics={}, data_hash="0" * 64)
>>> forecaster = LstmForecaster.load(Path(models.name))
>>> forecaster.version == artifact.version, forecaster.window, forecaster.newer_version()
(True, 2, None)
>>> rows = [{"ret_1": 0.01, "rsi_14": 55.0}, {"ret_1": -0.02, "rsi_14": 45.0}]
>>> good, short, bad = forecaster.forecast([ForecastRequest("2330", rows), ForecastRequest("2317", rows[:1]),
...     ForecastRequest("2454", [rows[0], {"ret_1": float("nan"), "rsi_14": 50.0}])])
>>> good.model, good.target, good.horizon, 0.0 <= good.confidence <= 1.0
('lstm', 'return', 1, True)
>>> short.reason, bad.reason
('needs 2 rows of history, has 1', 'feature ret_1 is not a finite number (nan) at the newest row')
>>> forecaster.check_features("bar1m-v1", ("ret_1",))
Traceback (most recent call last):
...
tapewatch.signals.forecast.contract.ModelError: lstm ...: the stream lacks feature(s) rsi_14
>>> models.cleanup()
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from tapewatch.artifacts import LATEST, Artifact, ArtifactStore
from tapewatch.detectors.features import FEATURE_SET_VERSION
from tapewatch.signals.dqn.costs import CostModel
from tapewatch.signals.dqn.data import Normaliser
from tapewatch.signals.fixed_shape import serving_rows
from tapewatch.signals.forecast.contract import (
    ForecastRequest,
    ForecastResult,
    ModelError,
    Rejected,
    stack_requests,
)
from tapewatch.signals.lstm.config import LstmConfig
from tapewatch.signals.lstm.model import LstmNet, Weights, network_from_weights, serve_windows
from tapewatch.signals.lstm.training import LstmResult
from tapewatch.signals.manifest import (
    check_feature_list,
    check_features,
    fitting_weights,
    load_artifact,
    manifest_fields,
)

__all__ = ["CONFIDENCE", "MODEL_KIND", "LstmForecaster", "publish", "save_lstm"]

MODEL_NAME: Final = "lstm"
MODEL_KIND: Final = "lstm"
CONFIDENCE: Final = (
    "erf(|prediction| / (sqrt(2) * residual_rmse)) = 2 Phi(|prediction| / residual_rmse) - 1, residual_rmse = the "
    "return forecast's RMSE on the validation range"
)


def save_lstm(models_path: Path, result: LstmResult, *, training: Mapping[str, Any], data_hash: str) -> Artifact:
    """Publish :func:`~tapewatch.signals.lstm.training.train_lstm`'s result as a new version under
    ``<models_path>/lstm/``; ``training`` says on what (date ranges, assets), ``data_hash`` which data exactly."""
    metrics = {
        "validation": result.validation,
        "band_sharpe": {f"{band:.8g}": sharpe for band, sharpe in result.band_sharpe.items()},
        "best_val_loss": result.best_val_loss,
        "best_epoch": result.best_epoch,
        "epochs": result.epochs,
        "stopped_early": result.stopped_early,
        "train_seconds": round(result.seconds, 2),
        "workers": result.workers,
        "train_windows": result.train_windows,
        "val_windows": result.val_windows,
    }
    return publish(
        models_path,
        result.weights,
        config=result.config,
        normaliser=result.normaliser,
        target_scale=result.target_scale,
        residual_rmse=result.residual_rmse,
        band=result.band,
        costs=result.costs,
        training=training,
        metrics=metrics,
        data_hash=data_hash,
    )


def publish(
    models_path: Path,
    weights: Weights,
    *,
    config: LstmConfig,
    normaliser: Normaliser,
    target_scale: float,
    residual_rmse: float,
    band: float,
    costs: CostModel,
    training: Mapping[str, Any],
    metrics: Mapping[str, Any],
    data_hash: str,
) -> Artifact:
    """Publish an LSTM's weights with everything serving needs to know about them (see the module docstring)."""
    manifest = {
        "kind": MODEL_KIND,
        "feature_names": list(normaliser.feature_names),
        "feature_set_version": FEATURE_SET_VERSION,
        "normalisation": normaliser.to_manifest(),
        "window": config.window,
        "horizon": config.horizon,
        "config": config.to_manifest(),
        "target": {"what": f"return over the next {config.horizon} bar(s)", "scale": target_scale},
        "confidence": {"definition": CONFIDENCE, "residual_rmse": residual_rmse},
        "rule": {
            "band": band,
            "costs": {"preset": costs.name, "buy_rate": costs.buy_rate, "sell_rate": costs.sell_rate},
        },
        "training": dict(training),
        "metrics": dict(metrics),
    }
    return ArtifactStore(models_path).save(MODEL_NAME, manifest, weights, hash_hex=data_hash)


class LstmForecaster:
    """A loaded LSTM: CPU forecasts without gradients, in forward passes of one fixed shape (:func:`serve_windows`)."""

    def __init__(self, artifact: Artifact, store: ArtifactStore) -> None:
        m = artifact.manifest
        self.store = store
        self.version = artifact.version
        self.manifest = m
        with manifest_fields(MODEL_NAME, self.version):
            self.feature_names: tuple[str, ...] = tuple(str(n) for n in m["feature_names"])
            self.normaliser = Normaliser.from_manifest(m["normalisation"])
            self.config = LstmConfig.from_manifest(m["config"])
            self.window = int(m["window"])
            self.horizon = int(m["horizon"])
            self.target_scale = float(m["target"]["scale"])
            self.residual_rmse = float(m["confidence"]["residual_rmse"])
        self._check_layout()
        with fitting_weights(MODEL_NAME, self.version):
            self.network: LstmNet = network_from_weights(len(self.feature_names), self.config.units, artifact.weights)
        window = (self.window, len(self.feature_names))
        self.serving_rows = serving_rows(self.network, window, f"lstm {self.version}")

    def _check_layout(self) -> None:
        check_feature_list(
            MODEL_NAME, self.version, self.feature_names, self.normaliser.feature_names, self.config.features
        )
        if self.window != self.config.window or self.horizon != self.config.horizon:
            raise ModelError(f"lstm {self.version}: window/horizon do not match the config")
        if not (self.target_scale > 0 and self.residual_rmse > 0):
            raise ModelError(f"lstm {self.version}: target scale and residual RMSE must be positive")

    @classmethod
    def load(cls, models_path: Path, version: str = LATEST) -> LstmForecaster:
        """Load ``version`` (default the newest) and validate it against this code's feature set."""
        return cls(*load_artifact(models_path, MODEL_NAME, MODEL_KIND, version))

    @property
    def model(self) -> str:
        return MODEL_NAME

    def newer_version(self) -> str | None:
        """The newest published version when it is not the loaded one (a directory listing: poll freely)."""
        return self.store.has_newer(MODEL_NAME, self.version)

    def check_features(self, feature_set_version: str, names: Sequence[str]) -> None:
        check_features(MODEL_NAME, self.version, self.manifest, feature_set_version, names)

    def forecast(self, requests: Sequence[ForecastRequest]) -> list[ForecastResult | Rejected]:
        """One forecast (or refusal) per request, in order, from batched forward passes."""
        stack = stack_requests(requests, self.feature_names, self.window)
        out: list[ForecastResult | Rejected | None] = [None] * len(requests)
        for i, rejected in stack.rejected:
            out[i] = rejected
        if stack.index:
            windows = self.normaliser.transform(stack.windows)
            prediction = serve_windows(self.network, windows, self.serving_rows) * self.target_scale
            spread = math.sqrt(2.0) * self.residual_rmse
            for i, p in zip(stack.index, prediction.tolist(), strict=True):
                confidence = math.erf(abs(p) / spread)  # per value: no vector kernel's tail in the path
                out[i] = ForecastResult(
                    requests[i].symbol, MODEL_NAME, self.version, self.horizon, "return", p, confidence
                )
        return [item for item in out if item is not None]
