"""The CNN's artifact and live serving: round trip, refused manifests, batches equal to the offline forecast."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import torch

from tapewatch.artifacts import MANIFEST_FILE
from tapewatch.detectors.features import FEATURE_NAMES, FEATURE_SET_VERSION
from tapewatch.signals.cnn.config import CnnConfig
from tapewatch.signals.cnn.forecaster import CnnModel
from tapewatch.signals.cnn.serving import CnnForecaster, save_cnn
from tapewatch.signals.cnn.training import CnnResult, train_cnn
from tapewatch.signals.dqn.data import AssetSeries
from tapewatch.signals.forecast.contract import ForecastRequest, ForecastResult, ModelError, Rejected
from tests.unit.test_dqn_env import synthetic_series

torch.set_num_threads(1)
CONFIG = CnnConfig(window=30, stem_channels=4, branch_channels=(2, 4), epochs=2, batch_size=32)
Published = tuple[Path, CnnResult, AssetSeries]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    root = tmp_path_factory.mktemp("models")
    series = [synthetic_series(s, 500, i) for i, s in enumerate("AB")]
    result = train_cnn(
        [s.window(None, "2005-06-01") for s in series], [s.window("2005-06-01", None) for s in series], CONFIG
    )
    save_cnn(
        root,
        result.model,
        result.weights,
        training={"train": ["2004-01-01", "2005-06-01"]},
        data_hash="cd" * 32,
        validation=result.validation,
    )
    return root, result, series[0]


def _requests(series: AssetSeries, names: tuple[str, ...], ends: list[int]) -> list[ForecastRequest]:
    frame = series.features.loc[:, list(names)]
    rows: list[dict[str, float | None]] = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
    return [ForecastRequest(f"S{t}", rows[: t + 1]) for t in ends]


def test_the_manifest_says_what_the_weights_mean(published: Published) -> None:
    root, result, _ = published
    cnn = CnnForecaster.load(root)
    m = cnn.manifest
    assert m["kind"] == "cnn" and m["feature_set_version"] == FEATURE_SET_VERSION
    assert m["feature_names"] == list(CONFIG.features) and (m["window"], m["horizon"]) == (30, 14)
    assert m["class_thresholds"] == result.model.thresholds.to_manifest()
    assert m["config"] == CONFIG.to_manifest() and m["metrics"]["validation"] == result.validation
    assert m["training"] == {"train": ["2004-01-01", "2005-06-01"]}
    assert (cnn.model, cnn.window, cnn.feature_names) == ("cnn", 30, CONFIG.features)


def test_a_batch_forecast_equals_the_offline_forecast_of_the_same_window(published: Published) -> None:
    root, result, series = published
    cnn = CnnForecaster.load(root)
    offline = result.model.predict(series)
    assert offline.classes is not None
    ends = [120, 250, 499]
    out = cnn.forecast(_requests(series, cnn.feature_names, ends))
    for t, forecast in zip(ends, out, strict=True):
        assert isinstance(forecast, ForecastResult)
        assert forecast.prediction == pytest.approx(offline.prediction[t], abs=1e-6)
        p = forecast.probabilities
        assert list(p) == ["down", "flat", "up"] and sum(p.values()) == pytest.approx(1.0)
        assert forecast.prediction == pytest.approx(p["up"] - p["down"]) and forecast.confidence == max(p.values())
        assert CnnModel.model == forecast.model and forecast.version == cnn.version and forecast.target == "class"
        assert int(np.argmax(list(p.values()))) == offline.classes[t]


def test_bad_requests_are_rejected_one_by_one(published: Published) -> None:
    root, _, series = published
    cnn = CnnForecaster.load(root)
    good, short = _requests(series, cnn.feature_names, [200, 20])
    nan_rows: list[dict[str, Any]] = [dict(good.named(i)) for i in range(len(good.rows))]
    nan_rows[-3]["rsi_14"] = math.nan
    missing = [dict(good.named(i)) for i in range(len(good.rows))]
    del missing[-1]["kd_k"]
    out = cnn.forecast([good, short, ForecastRequest("NAN", nan_rows), ForecastRequest("GAP", missing), good])
    assert [type(o) for o in out] == [ForecastResult, Rejected, Rejected, Rejected, ForecastResult]
    reasons = [o.reason for o in out if isinstance(o, Rejected)]
    assert reasons == [
        "needs 30 rows of history, has 21",
        "feature rsi_14 is not a finite number (nan) at 2 rows back",
        "missing feature kd_k at the newest row",
    ]
    assert out[0] == out[4]


def _rewrite(root: Path, change: dict[str, Any]) -> Path:
    (folder,) = (root / "cnn").iterdir()
    manifest = orjson.loads((folder / MANIFEST_FILE).read_bytes())
    (folder / MANIFEST_FILE).write_bytes(orjson.dumps({**manifest, **change}))
    return root


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"feature_set_version": "bar1m-v0"}, "trained on feature set 'bar1m-v0'"),
        ({"kind": "dqn"}, "is a 'dqn' model, expected 'cnn'"),
        ({"feature_names": [*CONFIG.features[:-1], "not_a_feature"]}, "not_a_feature are not in bar1m-v1"),
        ({"feature_names": list(reversed(CONFIG.features))}, "does not match the feature list"),
        ({"window": 56}, "window, horizon or classes do not match"),
        ({"config": {**CONFIG.to_manifest(), "branch_channels": [3, 4]}}, "weights do not fit the network"),
        ({"class_thresholds": {"down": 0.1, "up": -0.1}}, "manifest is incomplete or malformed"),
        ({"normalisation": {"features": ["ret_1"], "mean": [0.0, 1.0], "std": [1.0]}}, "incomplete or malformed"),
    ],
)
def test_a_manifest_that_does_not_match_is_refused(
    published: Published, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    result = published[1]
    save_cnn(tmp_path, result.model, result.weights, training={}, data_hash="ef" * 32)
    with pytest.raises(ModelError, match=message):
        CnnForecaster.load(_rewrite(tmp_path, change))


def test_the_stream_must_compute_the_models_features(published: Published) -> None:
    cnn = CnnForecaster.load(published[0])
    cnn.check_features(FEATURE_SET_VERSION, FEATURE_NAMES)
    with pytest.raises(ModelError, match="lacks feature"):
        cnn.check_features(FEATURE_SET_VERSION, [n for n in FEATURE_NAMES if n != "macd_hist"])
    with pytest.raises(ModelError, match="trained on feature set"):
        cnn.check_features("bar1m-v2", FEATURE_NAMES)


def test_a_newer_version_is_seen_and_loads(published: Published, tmp_path: Path) -> None:
    _, result, _ = published
    from datetime import UTC, datetime

    from tapewatch.artifacts import ArtifactStore

    first = save_cnn(tmp_path, result.model, result.weights, training={}, data_hash="01" * 32)
    cnn = CnnForecaster.load(tmp_path)
    assert cnn.newer_version() is None
    later = ArtifactStore(tmp_path).save(
        "cnn",
        dict(first.manifest),
        result.weights,
        hash_hex="02" * 32,
        created=datetime(2100, 1, 1, tzinfo=UTC),
    )
    assert cnn.newer_version() == later.version
    assert CnnForecaster.load(tmp_path).version == later.version
    assert CnnForecaster.load(tmp_path, first.version).version == first.version
    with pytest.raises(ModelError, match="unknown cnn model version"):
        CnnForecaster.load(tmp_path, "20000101T000000Z-0000000000")
    with pytest.raises(ModelError, match="no cnn model"):
        CnnForecaster.load(tmp_path / "empty")


def test_the_cnn_serves_both_protocols(published: Published) -> None:
    """Checked by mypy too: the lab's TrainedForecaster and the stream's Forecaster."""
    from tapewatch.signals.forecast.contract import Forecaster, TrainedForecaster

    root, result, series = published
    lab: TrainedForecaster = result.model
    live: Forecaster = CnnForecaster.load(root)
    assert (lab.model, lab.horizon) == (live.model, 14)
    forecast = lab.predict(series)
    assert set(lab.targets(forecast).tolist()) <= {0, 1}
    assert {"balanced_accuracy", "majority_balanced_accuracy", "f1_up"} <= set(lab.diagnostics([series], [forecast]))
