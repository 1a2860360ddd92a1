"""The detect stage's forecasters: which are loaded, the feature history they need, and one batch per poll.

:class:`ForecastSlot` loads every published forecasting model (``lstm``, ``cnn``: :data:`default_loaders`),
checks it against the stream's feature set and hot-reloads newer versions; a model that cannot be loaded is
logged once and the worker keeps what it has. :meth:`ForecastSlot.history_shape` is the union of the loaded
models' features and their longest window: each symbol's :class:`~tapewatch.signals.forecast.history.FeatureHistory`
in the detect table keeps exactly that.

At each bar close the stage queues one :class:`PendingForecast` (the symbol's rows up to that bar); after the
batch, :func:`forecast_batch` asks each model once for all of them. Per model and bar close the outcome is a
forecast, *warming* (the window is not full yet or still holds features that are warming up, as every symbol
does for its first bars: expected, not bad input), or a refusal to dead-letter (values the model cannot take).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tapewatch import extras
from tapewatch.artifacts import ArtifactError, ArtifactStore
from tapewatch.detectors.features import FEATURE_NAMES, FEATURE_SET_VERSION
from tapewatch.signals.forecast.contract import Forecaster, ForecastRequest, ForecastResult, Rejected
from tapewatch.signals.forecast.history import FeatureHistory

log = logging.getLogger(__name__)

#: model name → loader of one version from the models path
ForecasterLoader = Callable[[Path, str], Forecaster]


def default_loaders() -> dict[str, ForecasterLoader]:
    """The forecasting models this code serves (imported here: torch is loaded only by a worker); none without the
    ``signals`` extra (the detect stage's :class:`~tapewatch.streams.detect.ModelSlot` says so in the log)."""
    if not extras.available("signals"):
        return {}
    from tapewatch.signals.cnn.serving import CnnForecaster
    from tapewatch.signals.lstm.serving import LstmForecaster

    return {"lstm": LstmForecaster.load, "cnn": CnnForecaster.load}


class ForecastSlot:
    """The worker's current forecasters by model name, reloaded when the store publishes newer versions."""

    def __init__(self, store: ArtifactStore, loaders: Mapping[str, ForecasterLoader] | None = None) -> None:
        self.store = store
        self.loaders = dict(default_loaders() if loaders is None else loaders)
        self.models: dict[str, Forecaster] = {}
        self._tried: dict[str, str] = {}  # name → version that failed to load (not retried)
        self.refresh()

    def refresh(self) -> bool:
        """Load newer versions; True when some model changed."""
        changed = False
        for name, loader in self.loaders.items():
            current = self.models.get(name)
            newer = self.store.has_newer(name, current.version if current else None)
            if newer is None or self._tried.get(name) == newer:
                continue
            try:
                model = loader(self.store.root, newer)
                model.check_features(FEATURE_SET_VERSION, FEATURE_NAMES)
            except ArtifactError as exc:
                self._tried[name] = newer
                log.error("%s model %s not loaded, keeping the current one: %s", name, newer, exc)
                continue
            self.models[name] = model
            changed = True
            log.info("%s forecaster %s loaded", name, newer)
        return changed

    def history_shape(self) -> tuple[tuple[str, ...], int]:
        """The features and the number of bars every loaded model's window needs (sorted names: stable)."""
        names = sorted({n for model in self.models.values() for n in model.feature_names})
        return tuple(names), max((model.window for model in self.models.values()), default=0)


@dataclass(frozen=True, slots=True)
class PendingForecast:
    """A bar close awaiting forecasts: its position in the stage's batch and the symbol's rows up to it."""

    ref: int
    symbol: str
    history: FeatureHistory


@dataclass(frozen=True, slots=True)
class Outcomes:
    forecasts: list[tuple[int, ForecastResult]]
    rejected: list[tuple[int, str]]
    warming: int


def forecast_batch(models: Mapping[str, Forecaster], pending: Sequence[PendingForecast]) -> Outcomes:
    """Every model's forecast for every pending bar close, one call per model; the forecasts in the order of
    their bar closes (the models' order within one). A symbol's partition must carry its forecasts in event
    time: a consumer merging by event time (the paper trader) reads a forecast behind one of a later bar as
    late — which a batch of several bar closes of one symbol (a worker catching up) did, model by model."""
    forecasts: list[tuple[int, ForecastResult]] = []
    rejected: list[tuple[int, str]] = []
    warming = 0
    for name, model in models.items():
        ready = [p for p in pending if p.history.complete(model.window, model.feature_names)]
        warming += len(pending) - len(ready)
        if not ready:
            continue
        requests = [ForecastRequest(p.symbol, p.history.window(model.window), p.history.names) for p in ready]
        for item, outcome in zip(ready, model.forecast(requests), strict=True):
            if isinstance(outcome, Rejected):
                rejected.append((item.ref, f"{name}: {outcome.reason}"))
            else:
                forecasts.append((item.ref, outcome))
    forecasts.sort(key=lambda pair: pair[0])  # stable: the models' order within a bar close stays
    return Outcomes(forecasts, rejected, warming)
