"""A served action or forecast depends on its own inputs alone: the same window gives bit-identical output
whatever else is in the batch (other symbols, how many, where it sits).

The stream decides every symbol whose bar closed in one batch, and which symbols share a batch depends on
batching, a restart, or how partitions are spread over workers; a batched forward pass rounds each row
according to the batch's shape, so without passes of one fixed shape (:mod:`tapewatch.signals.fixed_shape`) the
published Q-values and forecasts changed in the last bits with the batch. Nor may the thread count change them:
workers run on machines with other core counts. Untrained networks of the published sizes: the arithmetic is
under test, not what was learnt.
"""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given, settings

from tapewatch.signals.cnn.config import CnnConfig
from tapewatch.signals.cnn.forecaster import CnnModel
from tapewatch.signals.cnn.images import ClassThresholds
from tapewatch.signals.cnn.model import InceptionCnn
from tapewatch.signals.cnn.serving import CnnForecaster, save_cnn
from tapewatch.signals.dqn.agent import AgentConfig, QNetwork, TrainResult, network_weights
from tapewatch.signals.dqn.costs import cost_preset
from tapewatch.signals.dqn.data import DEFAULT_FEATURES, Normaliser
from tapewatch.signals.dqn.env import observation_width
from tapewatch.signals.dqn.inference import DecisionRequest, DqnPolicy, save_model
from tapewatch.signals.fixed_shape import SERVING_ROWS, fixed_shape_forward, serving_rows
from tapewatch.signals.forecast.contract import ForecastRequest
from tapewatch.signals.lstm.config import LstmConfig
from tapewatch.signals.lstm.model import LstmNet
from tapewatch.signals.lstm.serving import LstmForecaster, publish

LSTM = LstmConfig(window=20, units=32, features=DEFAULT_FEATURES)
CNN = CnnConfig(window=30, stem_channels=4, branch_channels=(2, 4))


def _normaliser(names: tuple[str, ...]) -> Normaliser:
    return Normaliser(names, np.zeros(len(names)), np.ones(len(names)))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[DqnPolicy, LstmForecaster, CnnForecaster]:
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(7)
    config = AgentConfig(ensemble=1)
    width = observation_width(len(DEFAULT_FEATURES), intraday=False)
    weights = network_weights(QNetwork(width, config.hidden, config.dueling))
    result = TrainResult(weights, width, 0.0, 0, 0, 0, 0.0, False)
    save_model(root, result, config=config, normaliser=_normaliser(DEFAULT_FEATURES), costs=cost_preset("crypto"),
               max_units=1, intraday=False, training={}, data_hash="ab" * 32)  # fmt: skip
    publish(root, network_weights(LstmNet(features=len(DEFAULT_FEATURES), units=LSTM.units)), config=LSTM,
            normaliser=_normaliser(DEFAULT_FEATURES), target_scale=0.01, residual_rmse=0.02, band=0.0,
            costs=cost_preset("crypto"), training={}, metrics={}, data_hash="0" * 64)  # fmt: skip
    network = InceptionCnn(CNN)
    cnn = CnnModel(network, _normaliser(CNN.features), ClassThresholds(-0.01, 0.01), CNN)
    save_cnn(root, cnn, network_weights(network), training={}, data_hash="cd" * 32)
    return DqnPolicy.load(root), LstmForecaster.load(root), CnnForecaster.load(root)


@st.composite
def batches(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(seed of the target's values, seed of the others', where the target sits among how many others)."""
    others = draw(st.integers(0, 80))  # up to three serving passes
    return draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, others)), others


def _rows(seed: int, count: int, names: tuple[str, ...], window: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, 2.0, size=(window, len(names))) for _ in range(count)]


@settings(max_examples=40, deadline=None)
@given(case=batches())
def test_an_action_depends_on_its_own_features_alone(
    models: tuple[DqnPolicy, LstmForecaster, CnnForecaster], case: tuple[int, int, int, int]
) -> None:
    policy = models[0]
    target_seed, others_seed, at, others = case
    names = policy.feature_names

    def request(row: np.ndarray, n: int) -> DecisionRequest:
        return DecisionRequest(f"S{n}", dict(zip(names, row[0].tolist(), strict=True)), position=n % 2)

    target = request(_rows(target_seed, 1, names, 1)[0], 0)
    batch = [request(row, n + 1) for n, row in enumerate(_rows(others_seed, others, names, 1))]
    batch.insert(at, target)
    assert policy.decide(batch)[at] == policy.decide([target])[0]


def _forecast_requests(
    model: LstmForecaster | CnnForecaster, seed: int, count: int, prefix: str = "S"
) -> list[ForecastRequest]:
    names, window = model.feature_names, model.window
    return [ForecastRequest(f"{prefix}{n}", rows, names) for n, rows in enumerate(_rows(seed, count, names, window))]


@settings(max_examples=30, deadline=None)
@given(case=batches(), which=st.sampled_from([1, 2]))
def test_a_forecast_depends_on_its_own_window_alone(
    models: tuple[DqnPolicy, LstmForecaster, CnnForecaster], case: tuple[int, int, int, int], which: int
) -> None:
    model = models[which]
    assert isinstance(model, LstmForecaster | CnnForecaster)
    target_seed, others_seed, at, others = case
    target = _forecast_requests(model, target_seed, 1, "T")[0]
    batch = _forecast_requests(model, others_seed, others)
    batch.insert(at, target)
    assert model.forecast(batch)[at] == model.forecast([target])[0]


@settings(max_examples=10, deadline=None)
@given(case=batches(), which=st.sampled_from([1, 2]))
def test_a_forecast_does_not_depend_on_the_thread_count(
    models: tuple[DqnPolicy, LstmForecaster, CnnForecaster], case: tuple[int, int, int, int], which: int
) -> None:
    model = models[which]
    assert isinstance(model, LstmForecaster | CnnForecaster)
    batch = _forecast_requests(model, case[1], case[3])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = model.forecast(batch)
        torch.set_num_threads(2)
        assert model.forecast(batch) == one
    finally:
        torch.set_num_threads(threads)


def test_a_network_whose_rows_depend_on_their_place_is_served_one_window_per_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def by_place(x: torch.Tensor) -> torch.Tensor:  # what an edge tile's other rounding would look like
        return x.sum(dim=1) + torch.arange(len(x)) * 1e-7

    assert serving_rows(lambda x: x.sum(dim=1), (4,), "row-wise") == SERVING_ROWS > 1
    assert not caplog.records
    assert serving_rows(by_place, (4,), "by place") == 1
    assert "by place: a row's output depends on its place in a pass here" in caplog.text
    x = torch.arange(12.0).reshape(3, 4)
    assert torch.equal(fixed_shape_forward(by_place, x, 1), x.sum(dim=1))
