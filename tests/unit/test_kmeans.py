"""K-means training, labelling, calibration, scoring and artifacts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.artifacts import ArtifactError, ArtifactStore
from tapewatch.detectors.features import FEATURE_SET_VERSION
from tapewatch.detectors.kmeans import FeatureError, KMeansModel, KMeansParams, train

NAMES = ("a", "b", "c")


def _frame(n: int = 2000, outliers: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    normal = rng.normal(0.0, 1.0, size=(n, 3))
    far = rng.normal(12.0, 0.5, size=(outliers, 3))
    x = np.vstack([normal, far])
    frame = pd.DataFrame(x, columns=list(NAMES))
    frame["ts"] = np.arange(len(frame), dtype=np.int64) * 60_000
    frame["symbol"] = "S"
    return frame


@pytest.fixture(scope="module")
def model() -> KMeansModel:
    return train(_frame(), NAMES, KMeansParams(seed=1))


def test_small_far_cluster_is_abnormal_and_scores_high(model: KMeansModel) -> None:
    assert model.abnormal.any()
    assert not model.abnormal.all()
    assert 2 <= model.k <= 4
    scored = model.score_matrix(np.array([[0.0, 0.0, 0.0], [12.0, 12.0, 12.0]]))
    assert scored.score[0] < 0.5
    assert scored.score[1] > 0.99
    assert scored.distance[1] > scored.distance[0]


@given(st.lists(st.floats(-50, 50), min_size=2, max_size=2))
@settings(max_examples=50, deadline=None)
def test_score_is_monotone_in_distance(model: KMeansModel, pair: list[float]) -> None:
    scored = model.score_matrix(np.array([[v, 0.0, 0.0] for v in pair]))
    assert ((scored.score >= 0) & (scored.score <= 1)).all()
    order = np.argsort(scored.distance)
    assert scored.score[order[0]] <= scored.score[order[1]]


def test_top_features_name_the_culprit(model: KMeansModel) -> None:
    scored = model.score_values({"a": 0.0, "b": 30.0, "c": None})
    assert scored.top_features[0][0] == "b"
    assert scored.top_features[0][1] > 0.9
    assert scored.score > 0.99


def test_nan_is_the_median_and_inf_is_an_error(model: KMeansModel) -> None:
    nan_row = model.score_matrix(np.array([[np.nan, np.nan, np.nan]]))
    median_row = model.score_matrix(model.center[None, :])
    assert nan_row.distance[0] == pytest.approx(median_row.distance[0])
    with pytest.raises(FeatureError, match="b is infinite"):
        model.score_matrix(np.array([[0.0, np.inf, 0.0]]))
    with pytest.raises(FeatureError, match="shape"):
        model.score_matrix(np.zeros((2, 5)))


def test_artifact_round_trip_scores_identically(model: KMeansModel, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    version = model.save(store, created=datetime(2024, 1, 2, tzinfo=UTC))
    loaded = KMeansModel.load(store)
    assert loaded.version == version
    x = _frame(200, 5, seed=9)[list(NAMES)].to_numpy()
    np.testing.assert_array_equal(loaded.score_matrix(x).score, model.score_matrix(x).score)
    manifest = store.load("kmeans").manifest
    assert manifest["feature_set_version"] == FEATURE_SET_VERSION
    assert manifest["training_range"]["rows"] == 2040
    assert "abnormal" in manifest["cluster_labels"]


def test_feature_set_mismatch_is_refused(model: KMeansModel, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    model.save(store)
    version = store.latest_version("kmeans")
    assert version is not None
    path = tmp_path / "kmeans" / version / "manifest.json"
    path.write_text(path.read_text().replace(FEATURE_SET_VERSION, "bar1m-v0"))
    with pytest.raises(ArtifactError, match="retrain"):
        KMeansModel.load(store)


def test_training_refuses_bad_input() -> None:
    frame = _frame(50, 0)
    with pytest.raises(FeatureError, match="too few"):
        train(frame.head(10), NAMES)
    with pytest.raises(FeatureError, match="lacks column"):
        train(frame, ("a", "zz"))
    frame.loc[3, "a"] = np.inf
    with pytest.raises(FeatureError, match="infinite"):
        train(frame, NAMES)


def test_batch_scoring_is_fast_enough(model: KMeansModel) -> None:
    # Not a benchmark: a guard that scoring stays vectorised (the bar is 50,000/s; 200k rows in well under 4 s).
    import time

    x = np.random.default_rng(0).normal(size=(200_000, 3))
    started = time.perf_counter()
    model.score_matrix(x)
    assert time.perf_counter() - started < 4.0
