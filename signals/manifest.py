"""The one check of a served model's manifest, for the Double DQN, the LSTM and the CNN alike.

A served model is loaded from the model store only when it is of the expected kind and made for this code's
feature set (:func:`load_artifact`); its manifest's fields are read inside :func:`manifest_fields`, its feature
list is held to this code's features and to its own normalisation and config (:func:`check_feature_list`), its
weights are put into the network inside :func:`fitting_weights`, and a feature stream is held to what the model
was trained on (:func:`check_features`). Every failure is one :class:`~tapewatch.signals.forecast.contract.ModelError`
that names the model and its version:

>>> with manifest_fields("lstm", "v1"):
...     window = int({"horizon": 5}["window"])
Traceback (most recent call last):
tapewatch.signals.forecast.contract.ModelError: lstm v1: manifest is incomplete or malformed ('window')
>>> check_feature_list("cnn", "v2", ("ret_1", "nope"), ("ret_1", "nope"))
Traceback (most recent call last):
tapewatch.signals.forecast.contract.ModelError: cnn v2: features nope are not in bar1m-v1
>>> check_feature_list("dqn", "v3", ("ret_1", "rsi_14"), ("rsi_14", "ret_1"))
Traceback (most recent call last):
tapewatch.signals.forecast.contract.ModelError: dqn v3: normalisation does not match the feature list
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tapewatch.artifacts import Artifact, ArtifactError, ArtifactStore
from tapewatch.detectors.features import FEATURE_NAMES, FEATURE_SET_VERSION
from tapewatch.signals.dqn.data import DataError
from tapewatch.signals.forecast.contract import ModelError

__all__ = ["check_feature_list", "check_features", "fitting_weights", "load_artifact", "manifest_fields"]


def load_artifact(models_path: Path, name: str, kind: str, version: str) -> tuple[Artifact, ArtifactStore]:
    """A published model of ``kind`` made for this code's feature set, and its store (for hot-reload checks);
    :class:`ModelError` for anything that cannot be served."""
    store = ArtifactStore(models_path)
    try:
        artifact = store.load(name, version, kind=kind, feature_set_version=FEATURE_SET_VERSION)
    except ModelError:
        raise
    except ArtifactError as exc:
        raise ModelError(str(exc)) from None
    return artifact, store


@contextmanager
def manifest_fields(model: str, version: str) -> Iterator[None]:
    """Reading the manifest's fields: one that is missing or malformed is a :class:`ModelError`."""
    try:
        yield
    except (KeyError, TypeError, ValueError, DataError) as exc:
        raise ModelError(f"{model} {version}: manifest is incomplete or malformed ({exc})") from None


def check_feature_list(
    model: str,
    version: str,
    names: tuple[str, ...],
    normalisation: tuple[str, ...],
    config: tuple[str, ...] | None = None,
) -> None:
    """Raise :class:`ModelError` unless every one of the model's feature ``names`` is one of this code's and its
    normalisation (and its config, where it names the features) lists the same features in the same order."""
    unknown = [n for n in names if n not in FEATURE_NAMES]
    if unknown:
        raise ModelError(f"{model} {version}: features {', '.join(unknown)} are not in {FEATURE_SET_VERSION}")
    if normalisation != names or (config is not None and config != names):
        what = "normalisation" if config is None else "normalisation or config"
        raise ModelError(f"{model} {version}: {what} does not match the feature list")


@contextmanager
def fitting_weights(model: str, version: str) -> Iterator[None]:
    """Putting the artifact's weights into the network: weights of another shape are a :class:`ModelError`."""
    try:
        yield
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelError(f"{model} {version}: weights do not fit the network ({str(exc).splitlines()[0]})") from None


def check_features(
    model: str, version: str, manifest: Mapping[str, Any], feature_set_version: str, names: Sequence[str]
) -> None:
    """Raise :class:`ModelError` unless a stream of ``feature_set_version`` with ``names`` can feed the model."""
    if feature_set_version != manifest.get("feature_set_version"):
        raise ModelError(
            f"{model} {version}: trained on feature set {manifest.get('feature_set_version')!r}, "
            f"the stream computes {feature_set_version!r}"
        )
    missing = [n for n in manifest.get("feature_names", ()) if n not in names]
    if missing:
        raise ModelError(f"{model} {version}: the stream lacks feature(s) {', '.join(missing)}")
