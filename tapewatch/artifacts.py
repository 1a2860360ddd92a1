"""Versioned model artifacts: ``<model_dir>/<name>/<version>/`` with ``weights.npz`` and ``manifest.json``.

* **Weights** are plain numpy arrays in an ``.npz`` loaded with ``allow_pickle=False``: no code objects, so an
  artifact from elsewhere cannot run anything when loaded.
* **Manifest** (JSON) says what the weights mean: ``name``, ``version``, ``created`` (ISO UTC), ``kind`` (the
  model family, e.g. ``kmeans``), ``format`` (:data:`ARTIFACT_FORMAT`), ``feature_names``,
  ``feature_set_version``, plus whatever the model family adds (scaler, k, silhouette, cluster labels,
  calibration, training range, data hash, metrics). ``weights_sha256`` guards the weights against corruption;
  ``machine`` says on which CPU and kernels (:func:`tapewatch.machine.machine_info`: a seeded training
  repeats bit for bit per instruction set, not across them).
* **Version** strings are ``YYYYmmddTHHMMSSZ-<data hash[:10]>``: they sort by creation time, so ``latest`` is
  the greatest one, and the same data trained twice in one second gives the same version.
* **Atomic publication**: a version is written into a hidden temporary directory and renamed into place, so a
  reader (a stream worker checking for a new version) never sees half an artifact.

Loading validates: an unknown version, a missing or corrupted manifest or weights file, a checksum mismatch, or
a feature-set version other than the caller expects raise :class:`ArtifactError` with one clear sentence.
Pure file I/O: no Kafka, no database.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from tapewatch.errors import TapewatchError
from tapewatch.machine import machine_info

ARTIFACT_FORMAT: Final = 1
MANIFEST_FILE: Final = "manifest.json"
WEIGHTS_FILE: Final = "weights.npz"
LATEST: Final = "latest"
_VERSION_RE: Final = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4,64}$")
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]+$")


class ArtifactError(TapewatchError, ValueError):
    """A model artifact that cannot be used: unknown version, missing or corrupted files, wrong feature set."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """A loaded artifact: its directory, manifest and weights."""

    path: Path
    manifest: dict[str, Any]
    weights: dict[str, npt.NDArray[Any]]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


def data_hash(*arrays: npt.ArrayLike) -> str:
    """SHA-256 of the training data (dtype, shape and bytes of each array), hex."""
    digest = hashlib.sha256()
    for array in arrays:
        a = np.ascontiguousarray(np.asarray(array))
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def make_version(created: datetime, hash_hex: str) -> str:
    return f"{created.astimezone(UTC):%Y%m%dT%H%M%SZ}-{hash_hex[:10]}"


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise ArtifactError(f"model name {name!r} must be letters, digits, '.', '_' or '-'")


def _weights_bytes(weights: Mapping[str, npt.ArrayLike]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **{key: np.asarray(value) for key, value in weights.items()})
    return buffer.getvalue()


class ArtifactStore:
    """The artifacts under one model directory (``settings.local.models_path``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def versions(self, name: str) -> list[str]:
        """Published versions of ``name``, oldest first (hidden temporaries and stray files ignored)."""
        _check_name(name)
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(
            entry.name
            for entry in folder.iterdir()
            if _VERSION_RE.match(entry.name) and (entry / MANIFEST_FILE).is_file()
        )

    def latest_version(self, name: str) -> str | None:
        """The newest version, or ``None``: a cheap directory listing, meant for hot-reload polling."""
        found = self.versions(name)
        return found[-1] if found else None

    def resolve(self, name: str, version: str = LATEST) -> str:
        if version == LATEST:
            latest = self.latest_version(name)
            if latest is None:
                raise ArtifactError(f"no {name} model in {self.root / name}: train one first")
            return latest
        if not _VERSION_RE.match(version):
            raise ArtifactError(f"{version!r} is not a model version (expected e.g. 20240102T090000Z-0123abcd45)")
        if not (self.root / name / version / MANIFEST_FILE).is_file():
            raise ArtifactError(f"unknown {name} model version {version} (none in {self.root / name})")
        return version

    def save(
        self,
        name: str,
        manifest: Mapping[str, Any],
        weights: Mapping[str, npt.ArrayLike],
        *,
        hash_hex: str,
        created: datetime | None = None,
    ) -> Artifact:
        """Publish a new version atomically and return it. ``manifest`` must be JSON-serialisable."""
        _check_name(name)
        created = created or datetime.now(UTC)
        version = make_version(created, hash_hex)
        blob = _weights_bytes(weights)
        full = {
            **manifest,
            "name": name,
            "version": version,
            "created": created.astimezone(UTC).isoformat(timespec="seconds"),
            "format": ARTIFACT_FORMAT,
            "data_hash": hash_hex,
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
            "machine": machine_info(),
        }
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / version
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=folder))
        try:
            (tmp / WEIGHTS_FILE).write_bytes(blob)
            (tmp / MANIFEST_FILE).write_bytes(orjson.dumps(full, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            if final.exists():  # same data, same second: identical content, keep the published one
                shutil.rmtree(tmp)
            else:
                tmp.replace(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.load(name, version)

    def load(
        self, name: str, version: str = LATEST, *, kind: str | None = None, feature_set_version: str | None = None
    ) -> Artifact:
        """Load and validate one version (``latest`` by default)."""
        resolved = self.resolve(name, version)
        path = self.root / name / resolved
        try:
            manifest = orjson.loads((path / MANIFEST_FILE).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ArtifactError(f"{name} {resolved}: unreadable manifest ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("version") != resolved:
            raise ArtifactError(f"{name} {resolved}: manifest is corrupted (no matching version field)")
        if manifest.get("format") != ARTIFACT_FORMAT:
            raise ArtifactError(f"{name} {resolved}: artifact format {manifest.get('format')!r} is not supported")
        if kind is not None and manifest.get("kind") != kind:
            raise ArtifactError(f"{name} {resolved}: is a {manifest.get('kind')!r} model, expected {kind!r}")
        if feature_set_version is not None and manifest.get("feature_set_version") != feature_set_version:
            raise ArtifactError(
                f"{name} {resolved}: trained on feature set {manifest.get('feature_set_version')!r}, "
                f"this code computes {feature_set_version!r}: retrain the model"
            )
        try:
            blob = (path / WEIGHTS_FILE).read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{name} {resolved}: missing weights ({exc.strerror})") from None
        if hashlib.sha256(blob).hexdigest() != manifest.get("weights_sha256"):
            raise ArtifactError(f"{name} {resolved}: weights checksum mismatch (corrupted artifact)")
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
                weights = {key: npz[key] for key in npz.files}
        except (ValueError, OSError) as exc:
            raise ArtifactError(f"{name} {resolved}: unreadable weights ({exc})") from None
        return Artifact(path, manifest, weights)

    def has_newer(self, name: str, current: str | None) -> str | None:
        """The latest version when it differs from ``current`` (the hot-reload check), else ``None``."""
        latest = self.latest_version(name)
        return latest if latest is not None and latest != current else None
