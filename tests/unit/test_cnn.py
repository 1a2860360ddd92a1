"""The CNN's images, labels, network and training: layout, no look-ahead, training-range thresholds, determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.signals.cnn.config import CnnConfig
from tapewatch.signals.cnn.forecaster import CnnModel
from tapewatch.signals.cnn.images import (
    IMAGE_FEATURES,
    ClassThresholds,
    labelled_images,
    series_images,
)
from tapewatch.signals.cnn.model import InceptionCnn, InceptionModule, folded_for_inference
from tapewatch.signals.cnn.training import class_weights, train_cnn
from tapewatch.signals.dqn.data import (
    DEFAULT_FEATURES,
    AssetSeries,
    DataError,
    Normaliser,
    bars_from_daily,
    series_from_bars,
)
from tapewatch.signals.forecast.windows import forward_returns
from tests.unit.test_dqn_env import synthetic_daily, synthetic_series

torch.set_num_threads(1)
SMALL = CnnConfig(window=20, stem_channels=4, branch_channels=(2, 4), epochs=2, batch_size=32)


def _normaliser(series: AssetSeries, names: tuple[str, ...] = IMAGE_FEATURES) -> Normaliser:
    return Normaliser.fit(names, [series])


def test_the_image_features_are_the_dqn_features_in_family_order() -> None:
    assert sorted(IMAGE_FEATURES) == sorted(DEFAULT_FEATURES)


def test_an_image_is_the_last_window_rows_standardised_indicators_by_bars() -> None:
    series = synthetic_series("A", 300, 1)
    normaliser = _normaliser(series)
    found = series_images(series, normaliser, window=56)
    raw = series.features.loc[:, list(IMAGE_FEATURES)].to_numpy()
    first_complete = int(np.flatnonzero(np.isfinite(raw).all(axis=1))[0])
    assert found.ends[0] == first_complete + 55
    assert np.array_equal(found.ends, np.arange(found.ends[0], 300))
    assert found.images.shape == (len(found.ends), 1, len(IMAGE_FEATURES), 56)
    for j in (0, 17, len(found.ends) - 1):
        t = int(found.ends[j])
        expected = normaliser.transform(raw[t - 55 : t + 1]).T  # rows: indicators, columns: bars oldest first
        assert np.allclose(found.images[j, 0], expected, atol=1e-6)


def test_a_missing_value_removes_every_image_whose_window_holds_it() -> None:
    series = synthetic_series("A", 300, 2)
    normaliser = _normaliser(series)
    before = series_images(series, normaliser, window=30)
    features = series.features.copy()
    features.loc[features.index[200], "rsi_14"] = np.nan
    after = series_images(replace(series, features=features), normaliser, window=30)
    assert set(before.ends) - set(after.ends) == set(range(200, 230))
    assert series_images(series.window(None, "2004-02-01"), normaliser, window=56).images.shape[0] == 0


@settings(max_examples=10, deadline=None)
@given(cut=st.integers(150, 280), shock=st.floats(-0.3, 0.3).filter(lambda x: abs(x) > 0.01))
def test_changing_future_bars_changes_no_past_image_or_forecast(cut: int, shock: float) -> None:
    daily = synthetic_daily(300, 3, "2004-01-01")
    changed = daily.copy()
    for column in ("open", "high", "low", "close"):
        changed.loc[cut:, column] = changed.loc[cut:, column] * (1 + shock)
    changed.loc[cut:, "volume"] = changed.loc[cut:, "volume"] * 3
    a = series_from_bars("A", "synthetic", bars_from_daily(daily))
    b = series_from_bars("A", "synthetic", bars_from_daily(changed))
    normaliser = _normaliser(a)
    images_a, images_b = series_images(a, normaliser, 56), series_images(b, normaliser, 56)
    past = images_a.ends < cut
    assert np.array_equal(images_a.images[past], images_b.images[images_b.ends < cut])
    torch.manual_seed(0)
    model = CnnModel(InceptionCnn(CnnConfig()), normaliser, ClassThresholds(-0.02, 0.02), CnnConfig())
    forecast_a, forecast_b = model.predict(a), model.predict(b)
    assert np.array_equal(forecast_a.prediction[:cut], forecast_b.prediction[:cut], equal_nan=True)
    assert not np.allclose(forecast_a.prediction[cut:], forecast_b.prediction[cut:])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-0.5, 0.5), min_size=30, max_size=200, unique=True))
def test_tercile_thresholds_split_the_training_moves_in_thirds_and_order_them(values: list[float]) -> None:
    returns = np.array(values)
    thresholds = ClassThresholds.fit([returns])
    labels = thresholds.label(returns)
    shares = np.bincount(labels, minlength=3) / len(labels)
    assert np.all(np.abs(shares - 1 / 3) <= 2 / len(labels) + 1e-9)
    order = np.argsort(returns)
    assert np.all(np.diff(labels[order]) >= 0)  # a larger move never gets a lower class


def test_label_thresholds_and_normalisation_come_from_the_training_range_only() -> None:
    series = [synthetic_series(s, 600, i) for i, s in enumerate("ABC")]
    train = [s.window(None, "2005-06-01") for s in series]
    val = [s.window("2005-06-01", None) for s in series]
    wild = [replace(v, close=v.close * np.linspace(1.0, 3.0, len(v.close))) for v in val]  # validation soars
    config = replace(SMALL, epochs=1)
    a, b = train_cnn(train, val, config), train_cnn(train, wild, config)
    expected = ClassThresholds.fit([forward_returns(s.close, config.horizon) for s in train])
    assert a.model.thresholds == b.model.thresholds == expected
    assert np.array_equal(a.model.normaliser.mean, Normaliser.fit(config.features, train).mean)
    assert np.array_equal(a.model.normaliser.std, b.model.normaliser.std)
    assert a.validation != b.validation


def test_no_training_label_reaches_past_the_end_of_the_training_range() -> None:
    series = synthetic_series("A", 400, 4)
    train = series.window(None, "2005-01-01")
    normaliser = _normaliser(train)
    thresholds = ClassThresholds(-0.01, 0.01)
    labelled = labelled_images([train], normaliser, 56, 14, thresholds)
    ends = series_images(train, normaliser, 56).ends
    assert len(labelled.labels) == int(np.sum(ends < len(train.close) - 14))


def test_an_inception_module_concatenates_its_four_branches() -> None:
    torch.manual_seed(0)
    module = InceptionModule(in_channels=6, branch_channels=5).eval()
    x = torch.randn(3, 6, 15, 14)
    out = module(x)
    assert tuple(out.shape) == (3, 20, 15, 14)  # 4 branches × 5 channels, size kept
    assert isinstance(module.norm, torch.nn.BatchNorm2d)
    with torch.no_grad():
        module.one.weight.zero_()
        module.norm.bias.zero_()
        assert module.one.bias is not None
        module.one.bias.zero_()
        silenced = module(x)
    # the first branch's channels are now constant (ReLU of the normalised zero), the other branches' unchanged
    assert torch.equal(silenced[:, :5], torch.zeros_like(silenced[:, :5]))
    assert torch.equal(silenced[:, 5:], out[:, 5:])


@pytest.mark.parametrize(("indicators", "window"), [(15, 56), (3, 20), (8, 5)])
def test_the_network_gives_three_logits_for_any_image_size(indicators: int, window: int) -> None:
    network = InceptionCnn(CnnConfig(branch_channels=(4, 8, 8)))
    assert tuple(network(torch.zeros(4, 1, indicators, window)).shape) == (4, 3)


def test_folding_the_batch_norms_into_the_convolutions_keeps_the_function() -> None:
    """Every norm gets distinct per-channel statistics, so a branch folded with another branch's slice (or a
    norm left in place beside its folded copy) changes the output by far more than float32 rounding."""
    torch.manual_seed(1)
    network = InceptionCnn(CnnConfig(branch_channels=(4, 8, 8))).eval()
    norms = [m for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            assert norm.running_mean is not None and norm.running_var is not None
            norm.running_mean.uniform_(-1.0, 1.0)
            norm.running_var.uniform_(0.2, 3.0)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-1.0, 1.0)
        folded = folded_for_inference(network)
        x = torch.randn(64, 1, 15, 56)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        torch.testing.assert_close(folded(x), network(x), rtol=1e-4, atol=1e-5)
        assert norms[1].running_mean is not None and len(norms) == 4  # stem + 3 modules; the original is intact
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules())


def test_class_weights_make_every_class_cost_the_same_in_total() -> None:
    labels = np.array([0] * 10 + [1] * 30 + [2] * 60)
    weights = class_weights(labels).numpy()
    totals = weights * np.bincount(labels)
    assert np.allclose(totals, totals[0])
    assert class_weights(np.array([0, 0, 2])).numpy()[1] == 0.0


def test_training_is_deterministic_for_a_seed() -> None:
    series = [synthetic_series(s, 500, i) for i, s in enumerate("AB")]
    train = [s.window(None, "2005-06-01") for s in series]
    val = [s.window("2005-06-01", None) for s in series]
    a, b = train_cnn(train, val, SMALL), train_cnn(train, val, SMALL)
    c = train_cnn(train, val, replace(SMALL, seed=1))
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert a.validation == b.validation and a.history == b.history
    assert not all(np.array_equal(a.weights[k], c.weights[k]) for k in a.weights)
    assert np.array_equal(a.model.predict(series[0]).prediction, b.model.predict(series[0]).prediction, equal_nan=True)


def test_training_refuses_too_little_history_and_unknown_features() -> None:
    series = synthetic_series("A", 500, 5)
    with pytest.raises(DataError, match="too little history"):
        train_cnn([series.window(None, "2004-05-01")], [series.window("2005-01-01", None)], SMALL)
    with pytest.raises(DataError, match="no validation image"):
        train_cnn([series.window(None, "2005-06-01")], [series.window("2005-06-01", "2005-07-01")], SMALL)
    with pytest.raises(DataError, match="unknown feature"):
        train_cnn([series], [series], replace(SMALL, features=("ret_1", "nope")))


def test_diagnostics_score_the_models_classes_against_its_own_labels() -> None:
    series = synthetic_series("A", 300, 6)
    normaliser = _normaliser(series)
    config = CnnConfig()
    model = CnnModel(InceptionCnn(config), normaliser, ClassThresholds(-0.01, 0.01), config)
    forecast = model.predict(series)
    assert forecast.classes is not None
    truth = model.thresholds.label(forward_returns(series.close, 14))
    perfect = replace(forecast, classes=np.where(forecast.classes >= 0, truth, -1))
    scores = model.diagnostics([series], [perfect])
    assert scores["accuracy"] == scores["balanced_accuracy"] == 1.0
    assert scores["n"] == np.sum((truth >= 0) & (forecast.classes >= 0))
    assert scores["majority_balanced_accuracy"] == pytest.approx(1 / 3)


def test_the_class_rule_goes_long_on_up_flat_on_down_and_holds_otherwise() -> None:
    config = CnnConfig(rule_band=None)
    model = CnnModel(
        InceptionCnn(config), Normaliser(("ret_1",), np.zeros(1), np.ones(1)), ClassThresholds(0, 0), config
    )
    from tapewatch.signals.forecast.contract import SeriesForecast

    classes = np.array([-1, 1, 2, 1, -1, 0, 1, 2])
    forecast = SeriesForecast(np.zeros(8), classes)
    assert model.targets(forecast).tolist() == [0, 0, 1, 1, 1, 0, 0, 1]
    banded = CnnModel(model.network, model.normaliser, model.thresholds, replace(config, rule_band=0.2))
    assert banded.targets(SeriesForecast(np.array([0.1, 0.3, 0.0, -0.3, np.nan]))).tolist() == [0, 1, 1, 0, 0]


def test_a_frame_with_a_flat_volume_has_no_complete_image() -> None:
    daily = synthetic_daily(300, 7, "2004-01-01").assign(volume=1e6)
    series = series_from_bars("FLAT", "synthetic", bars_from_daily(daily))
    assert series.features["volume_z_30"].isna().all()
    with pytest.raises(DataError, match="too few complete feature rows"):
        train_cnn([series], [series], SMALL)
