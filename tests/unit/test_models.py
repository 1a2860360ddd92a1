"""Artifact store: versioned directories, atomic publication, validation of what is loaded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest

from tapewatch.artifacts import MANIFEST_FILE, WEIGHTS_FILE, ArtifactError, ArtifactStore, data_hash
from tapewatch.machine import describe, machine_info

T0 = datetime(2024, 1, 2, 1, 0, 0, tzinfo=UTC)
T1 = datetime(2024, 1, 2, 1, 0, 5, tzinfo=UTC)


def _save(store: ArtifactStore, created: datetime, payload: float = 1.0) -> str:
    weights = {"w": np.array([payload, 2.0]), "flags": np.array([True, False])}
    manifest = {"kind": "toy", "feature_set_version": "fs-1", "feature_names": ["a", "b"]}
    return store.save("toy", manifest, weights, hash_hex=data_hash(weights["w"]), created=created).version


def test_save_load_round_trip_and_latest(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    assert store.latest_version("toy") is None
    v0 = _save(store, T0)
    v1 = _save(store, T1, payload=3.0)
    assert v0 < v1
    assert store.versions("toy") == [v0, v1]
    assert store.latest_version("toy") == v1
    loaded = store.load("toy")
    assert loaded.version == v1
    np.testing.assert_array_equal(loaded.weights["w"], [3.0, 2.0])
    assert loaded.manifest["feature_names"] == ["a", "b"]
    assert store.load("toy", v0).weights["w"][0] == 1.0
    assert store.has_newer("toy", v0) == v1
    assert store.has_newer("toy", v1) is None


def test_same_data_same_second_is_one_version(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    assert _save(store, T0) == _save(store, T0)
    assert len(store.versions("toy")) == 1


def test_hidden_temporaries_are_not_versions(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    v0 = _save(store, T0)
    (tmp_path / "toy" / ".20990101T000000Z-abcdef0123.xyz").mkdir()
    (tmp_path / "toy" / "20990101T000000Z-abcdef0123").mkdir()  # no manifest: not published
    assert store.versions("toy") == [v0]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("weights", "checksum"),
        ("no-weights", "missing weights"),
        ("manifest", "unreadable manifest"),
    ],
)
def test_corrupted_artifacts_raise_clear_errors(tmp_path: Path, damage: str, message: str) -> None:
    store = ArtifactStore(tmp_path)
    version = _save(store, T0)
    folder = tmp_path / "toy" / version
    if damage == "weights":
        (folder / WEIGHTS_FILE).write_bytes(b"garbage")
    elif damage == "no-weights":
        (folder / WEIGHTS_FILE).unlink()
    else:
        (folder / MANIFEST_FILE).write_bytes(b"{not json")
    with pytest.raises(ArtifactError, match=message):
        store.load("toy", version)


def test_unknown_version_missing_model_and_feature_set_mismatch(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(ArtifactError, match="train one first"):
        store.load("toy")
    _save(store, T0)
    with pytest.raises(ArtifactError, match="unknown toy model version"):
        store.load("toy", "20200101T000000Z-0000000000")
    with pytest.raises(ArtifactError, match="not a model version"):
        store.load("toy", "../etc")
    with pytest.raises(ArtifactError, match="feature set"):
        store.load("toy", feature_set_version="fs-2")
    with pytest.raises(ArtifactError, match="expected 'kmeans'"):
        store.load("toy", kind="kmeans")


def test_manifest_records_hash_and_format(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    version = _save(store, T0)
    manifest = orjson.loads((tmp_path / "toy" / version / MANIFEST_FILE).read_bytes())
    assert manifest["data_hash"].startswith(version.split("-")[1])
    assert manifest["created"] == "2024-01-02T01:00:00+00:00"
    assert manifest["machine"] == machine_info()  # where it was trained: reruns repeat per instruction set


def test_the_machine_records_kernel_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "SSE4_2")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    info = machine_info()
    assert info["MKL_ENABLE_INSTRUCTIONS"] == "SSE4_2" and "ATEN_CPU_CAPABILITY" not in info
    assert info["isa"] in {"avx512", "avx2", "avx", "sse4_2", "unknown"} and info["cpu"]
    assert describe(info).endswith("; MKL_ENABLE_INSTRUCTIONS=SSE4_2")
