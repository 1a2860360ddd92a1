"""The LSTM forecaster: windows without look-ahead, deterministic and worker-count-independent training, the
artifact round trip and its validation, live forecasts equal to the offline ones, and refusals of bad input."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.signals.dqn.data import AssetSeries, DataError, Normaliser, bars_from_daily, series_from_bars
from tapewatch.signals.forecast.contract import ForecastRequest, ForecastResult, ModelError, Rejected
from tapewatch.signals.forecast.windows import HistoryError, forward_returns
from tapewatch.signals.lstm.config import LstmConfig
from tapewatch.signals.lstm.distributed import TrainingData, train_data_parallel
from tapewatch.signals.lstm.forecaster import choose_band
from tapewatch.signals.lstm.samples import Samples, build_samples, window_ends
from tapewatch.signals.lstm.serving import LstmForecaster, save_lstm
from tapewatch.signals.lstm.training import LstmResult, train_lstm
from tests.unit.test_dqn_env import synthetic_daily

torch.set_num_threads(1)
SMALL = LstmConfig(window=12, units=6, batch_size=16, max_epochs=2, features=("ret_1", "bias_6", "rvol_30"))
VAL_START = "2020-10-01"


def series(symbol: str = "A", n: int = 260, seed: int = 1) -> AssetSeries:
    return series_from_bars(symbol, "synthetic", bars_from_daily(synthetic_daily(n, seed, "2020-01-01")))


@pytest.fixture(scope="module")
def trained() -> tuple[list[AssetSeries], LstmResult]:
    assets = [series("A", seed=1), series("B", seed=2)]
    result = train_lstm([s.window(None, VAL_START) for s in assets], assets, SMALL, val_start=VAL_START)
    return assets, result


# -- windows and samples ----------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=0, max_size=40), st.integers(1, 8))
def test_window_ends_are_the_bars_whose_whole_window_is_complete(complete: list[bool], window: int) -> None:
    rows = np.where(np.array(complete, dtype=bool)[:, None], 1.0, np.nan).reshape(len(complete), 1)
    expected = [t for t in range(window - 1, len(complete)) if all(complete[t - window + 1 : t + 1])]
    assert window_ends(rows, window).tolist() == expected


def test_samples_pair_each_window_with_the_return_that_followed_it() -> None:
    s = series()
    normaliser = Normaliser.fit(SMALL.features, [s])
    samples = build_samples([s], normaliser, SMALL.window, horizon=2, start="2020-06-01")
    rows = normaliser.transform(s.features.loc[:, list(SMALL.features)].to_numpy()).astype(np.float32)
    ends = samples.starts + SMALL.window - 1
    assert len(samples) > 0 and (s.times[ends] >= np.datetime64("2020-06-01")).all()
    np.testing.assert_array_equal(samples.returns, forward_returns(s.close, 2)[ends])
    np.testing.assert_array_equal(samples.windows(np.arange(len(samples)))[:, -1], rows[ends])
    assert np.isfinite(samples.windows(np.arange(len(samples)))).all()


# -- the fitted model -------------------------------------------------------------------------------------------
def test_changing_future_bars_does_not_change_past_forecasts(trained: tuple[list[AssetSeries], LstmResult]) -> None:
    _, result = trained
    fitted = result.forecaster()
    daily = synthetic_daily(260, 5, "2020-01-01")
    cut = 150
    changed = daily.copy()
    changed.loc[cut + 1 :, ["open", "high", "low", "close"]] *= 1.3  # a jump after bar `cut`
    changed.loc[cut + 1 :, "volume"] *= 7.0
    before = fitted.predict(series_from_bars("X", "t", bars_from_daily(daily))).prediction
    after = fitted.predict(series_from_bars("X", "t", bars_from_daily(changed))).prediction
    np.testing.assert_allclose(after[: cut + 1], before[: cut + 1], rtol=1e-6, equal_nan=True)
    assert not np.allclose(after[cut + 1 :], before[cut + 1 :])
    warm = 30 + SMALL.window - 1  # rvol_30 needs 30 returns (31 bars), then a full window
    assert np.isnan(before[: warm - 1]).all() and np.isfinite(before[warm:]).all()


def test_diagnostics_score_against_the_naive_forecast(trained: tuple[list[AssetSeries], LstmResult]) -> None:
    assets, result = trained
    fitted = result.forecaster()
    forecasts = [fitted.predict(s) for s in assets]
    scores = fitted.diagnostics(assets, forecasts)
    truth = np.concatenate([forward_returns(s.close, 1) for s in assets])
    pred = np.concatenate([f.prediction for f in forecasts])
    keep = np.isfinite(truth) & np.isfinite(pred)
    assert scores["n"] == keep.sum()
    assert scores["rmse_return"] == pytest.approx(np.sqrt(np.mean((pred[keep] - truth[keep]) ** 2)))
    assert scores["rmse_return_naive"] == pytest.approx(np.sqrt(np.mean(truth[keep] ** 2)))
    assert set(fitted.targets(forecasts[0]).tolist()) <= {0, 1}


def test_the_band_is_the_validation_sharpe_maximiser(trained: tuple[list[AssetSeries], LstmResult]) -> None:
    _, result = trained
    assert result.band in result.band_sharpe
    assert result.band_sharpe[result.band] == max(result.band_sharpe.values())
    assert 0.0 in result.band_sharpe and len(result.band_sharpe) >= 2
    with pytest.raises(ValueError):
        choose_band([series()], [], result.costs)  # one forecast per series


# -- training ---------------------------------------------------------------------------------------------------
def small_data(seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)

    def samples(n: int) -> Samples:
        rows = rng.normal(size=(n + 9, 3)).astype(np.float32)
        return Samples(rows, np.arange(n), rng.normal(0, 0.01, n), np.ones(n), window=10)

    return TrainingData(samples(70), samples(20), target_scale=0.01)


TINY = LstmConfig(window=10, units=8, batch_size=16, max_epochs=2, features=("a", "b", "c"))


def equal_weights(a: dict[str, npt.NDArray[np.float32]], b: dict[str, npt.NDArray[np.float32]]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_training_is_deterministic_for_a_seed() -> None:
    data = small_data()
    first = train_data_parallel(data, TINY)
    again = train_data_parallel(data, TINY)
    other = train_data_parallel(data, replace(TINY, seed=1))
    assert equal_weights(first.weights, again.weights)
    assert first.history[-1]["val_loss"] == again.history[-1]["val_loss"]
    assert not equal_weights(first.weights, other.weights)


def test_two_workers_train_the_model_of_one() -> None:
    """70 examples in batches of 16: the last batch (6 rows) is split 3 + 3, the others 8 + 8. The two runs
    differ only in float32 summation order (a shard's gradient summed apart, then all-reduced), i.e. by a few
    ulps per step (~1e-8 on weights of order 0.1 after 10 Adam steps); 1e-6 leaves room for that, while a
    different batch order or dropout mask moves weights by ~1e-3 (the learning rate)."""
    data = small_data()
    one = train_data_parallel(data, TINY, workers=1)
    two = train_data_parallel(data, TINY, workers=2)
    assert one.weights.keys() == two.weights.keys()
    for name in one.weights:
        np.testing.assert_allclose(two.weights[name], one.weights[name], rtol=0, atol=1e-6, err_msg=name)
    initial = train_data_parallel(data, replace(TINY, learning_rate=1e-12), workers=1).weights  # ~ untrained
    assert max(np.abs(one.weights[k] - initial[k]).max() for k in one.weights) > 1e-4  # training moved them
    assert [h["val_loss"] for h in two.history] == pytest.approx([h["val_loss"] for h in one.history], rel=1e-6)


def test_too_little_history_or_undefined_features_are_data_errors() -> None:
    short = series(n=40)
    with pytest.raises(HistoryError, match="too little history: no 12-bar window"):
        train_lstm([short], [short], SMALL)
    flat = synthetic_daily(200, 3, "2020-01-01").assign(volume=1000.0)  # volume_z_30 is never defined
    flat_series = series_from_bars("F", "t", bars_from_daily(flat))
    with pytest.raises(DataError, match="volume_z_30 have no finite value"):
        train_lstm([flat_series], [flat_series], replace(SMALL, features=("ret_1", "volume_z_30")))
    with pytest.raises(DataError, match="unknown feature"):
        train_lstm([flat_series], [flat_series], replace(SMALL, features=("ret_1", "close_price")))


# -- artifact and live serving ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def published(trained: tuple[list[AssetSeries], LstmResult], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    save_lstm(root, trained[1], training={"assets": ["A", "B"]}, data_hash="ab" * 32)
    return root


def requests_at(s: AssetSeries, bars: list[int], names: tuple[str, ...], window: int) -> list[ForecastRequest]:
    """Requests as a stream worker sends them: each bar's raw feature rows by name, a few more than a window."""
    values = s.features.loc[:, list(names)].to_numpy().tolist()
    return [
        ForecastRequest(
            f"{s.symbol}@{t}", [dict(zip(names, row, strict=True)) for row in values[t - window - 4 : t + 1]]
        )
        for t in bars
    ]


def test_live_forecasts_equal_the_offline_predictions(
    trained: tuple[list[AssetSeries], LstmResult], published: Path
) -> None:
    assets, result = trained
    forecaster = LstmForecaster.load(published)
    assert (forecaster.model, forecaster.window, forecaster.feature_names) == ("lstm", 12, SMALL.features)
    bars = [100, 150, 200, 259]
    out = forecaster.forecast(requests_at(assets[0], bars, SMALL.features, SMALL.window))
    offline = result.forecaster().predict(assets[0]).prediction
    assert all(isinstance(f, ForecastResult) for f in out)
    got = np.array([f.prediction for f in out if isinstance(f, ForecastResult)])
    np.testing.assert_allclose(got, offline[bars], rtol=1e-5, atol=1e-9)
    assert all(0.0 <= f.confidence <= 1.0 and f.horizon == 1 for f in out if isinstance(f, ForecastResult))
    manifest = orjson.loads((published / "lstm" / forecaster.version / "manifest.json").read_bytes())
    assert manifest["target"]["scale"] == pytest.approx(result.target_scale)
    assert manifest["confidence"]["residual_rmse"] == pytest.approx(result.validation["rmse_return"])
    assert manifest["metrics"]["validation"]["rmse_return_ratio"] == pytest.approx(
        result.validation["rmse_return_ratio"]
    )


def test_live_batch_refuses_short_or_nan_history_and_answers_the_rest(
    trained: tuple[list[AssetSeries], LstmResult], published: Path
) -> None:
    assets, _ = trained
    forecaster = LstmForecaster.load(published)
    good = requests_at(assets[1], [200], SMALL.features, SMALL.window)[0]
    short = ForecastRequest("SHORT", good.rows[-5:])
    nan_rows = [dict(good.named(i)) for i in range(len(good.rows))]
    nan_rows[-3]["bias_6"] = float("nan")
    out = forecaster.forecast([short, good, ForecastRequest("NAN", nan_rows)])
    assert [type(x).__name__ for x in out] == ["Rejected", "ForecastResult", "Rejected"]
    assert isinstance(out[0], Rejected) and out[0].reason == "needs 12 rows of history, has 5"
    assert isinstance(out[2], Rejected) and "bias_6 is not a finite number (nan) at 2 rows back" in out[2].reason
    assert forecaster.forecast([]) == []


def tampered(published: Path, tmp_path: Path, change: dict[str, object]) -> Path:
    """A copy of the published model with manifest entries replaced (checksums stay valid: only the manifest)."""
    root = tmp_path / "models"
    shutil.copytree(published, root)
    [version] = list((root / "lstm").iterdir())
    path = version / "manifest.json"
    manifest = orjson.loads(path.read_bytes())
    manifest.update(change)
    path.write_bytes(orjson.dumps(manifest))
    return root


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "dqn"}, "is a 'dqn' model, expected 'lstm'"),
        ({"feature_set_version": "bar1m-v0"}, "trained on feature set 'bar1m-v0'"),
        ({"feature_names": ["ret_1", "bias_6", "ret_5"]}, "does not match the feature list"),
        ({"feature_names": ["ret_1", "bias_6", "nope"]}, "features nope are not in"),
        ({"window": 13}, "window/horizon do not match"),
        ({"config": {**SMALL.to_manifest(), "units": 7}}, "weights do not fit the network"),
        ({"target": {}}, "manifest is incomplete"),
    ],
)
def test_a_manifest_that_does_not_match_is_a_model_error(
    published: Path, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LstmForecaster.load(tampered(published, tmp_path, change))


def test_a_stream_without_the_features_is_refused_and_a_new_version_is_seen(
    trained: tuple[list[AssetSeries], LstmResult], published: Path, tmp_path: Path
) -> None:
    root = tampered(published, tmp_path, {})
    forecaster = LstmForecaster.load(root)
    forecaster.check_features("bar1m-v1", ("ret_1", "bias_6", "rvol_30", "rsi_14"))
    with pytest.raises(ModelError, match="lacks feature"):
        forecaster.check_features("bar1m-v1", ("ret_1",))
    with pytest.raises(ModelError, match="no lstm model"):
        LstmForecaster.load(tmp_path / "empty")
    assert forecaster.newer_version() is None
    newer = save_lstm(root, trained[1], training={}, data_hash="cd" * 32)
    assert forecaster.newer_version() == newer.version
