"""Live inference API: artifacts, batched decisions equal to the backtest's, bad input, hot reload, state."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
import torch

from tapewatch.artifacts import ArtifactError
from tapewatch.detectors.features import FEATURE_SET_VERSION
from tapewatch.signals.dqn.agent import AgentConfig, train
from tapewatch.signals.dqn.backtest import q_table
from tapewatch.signals.dqn.costs import cost_preset
from tapewatch.signals.dqn.data import DEFAULT_FEATURES, AssetSeries, Normaliser, Segment, prepare
from tapewatch.signals.dqn.inference import (
    Decision,
    DecisionRequest,
    DqnPolicy,
    ModelError,
    PositionState,
    Rejected,
    SessionClock,
    save_model,
)
from tests.unit.test_dqn_env import synthetic_series

torch.set_num_threads(1)
Published = tuple[Path, Normaliser, tuple[AssetSeries, Segment]]
CONFIG = AgentConfig(
    hidden=(8,), total_steps=120, learning_starts=30, batch_size=8, eval_every=60, episode_bars=40, ensemble=1
)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Normaliser, tuple[AssetSeries, Segment]]:
    root = tmp_path_factory.mktemp("models")
    series = synthetic_series("A", 300, 4)
    normaliser = Normaliser.fit(DEFAULT_FEATURES, [series.window(None, "2004-09-01")])
    train_seg = prepare(series.window(None, "2004-09-01"), normaliser)
    val_seg = prepare(series.window("2004-09-01", None), normaliser)
    result = train([train_seg], [val_seg], cost_preset("crypto"), CONFIG)
    save_model(
        root,
        result,
        config=CONFIG,
        normaliser=normaliser,
        costs=cost_preset("crypto"),
        max_units=1,
        intraday=False,
        training={"train": ["2004-01-01", "2004-09-01"]},
        data_hash="ab" * 32,
    )
    return root, normaliser, (series, val_seg)


def test_decisions_match_the_backtest_q_values(published: Published) -> None:
    root, _, (series, val_seg) = published
    policy = DqnPolicy.load(root)
    rows = series.window("2004-09-01", None).features.loc[:, list(DEFAULT_FEATURES)].dropna()
    requests = [
        DecisionRequest("A", dict(zip(DEFAULT_FEATURES, values, strict=True)), position=i % 2)
        for i, values in enumerate(rows.to_numpy().tolist())
    ]
    out = policy.decide(requests)
    table = q_table(policy.network, val_seg, 1)
    for i, decision in enumerate(out):
        assert not isinstance(decision, Rejected)
        expected = table[i, i % 2]
        # the backtest's table is one batched pass, a decision its own row's pass (batch-invariant serving): they
        # agree to float32 rounding relative to the terms summed, so a Q-value near zero agrees in absolute terms
        assert list(decision.q_values.values()) == pytest.approx(expected.tolist(), rel=1e-5, abs=1e-7)
        assert decision.chosen == ("HOLD", "BUY", "SELL")[int(expected.argmax())]
        assert decision.model_version == policy.version
    record = out[0].to_action(ts=1, venue="sim")  # type: ignore[union-attr]
    assert record.q_values == out[0].q_values  # type: ignore[union-attr]


def test_bad_rows_are_rejected_and_the_rest_decided(published: Published) -> None:
    policy = DqnPolicy.load(published[0])
    good = dict.fromkeys(DEFAULT_FEATURES, 0.1)
    requests = [
        DecisionRequest("OK", good, 0),
        DecisionRequest("NAN", {**good, "rsi_14": math.nan}, 0),
        DecisionRequest("MISSING", {k: v for k, v in good.items() if k != "ret_1"}, 0),
        DecisionRequest("NONE", {**good, "kd_k": None}, 0),
        DecisionRequest("POS", good, 5),
        DecisionRequest("OK2", good, 1),
    ]
    out = policy.decide(requests)
    assert [type(o).__name__ for o in out] == ["Decision", "Rejected", "Rejected", "Rejected", "Rejected", "Decision"]
    reasons = [o.reason for o in out if isinstance(o, Rejected)]
    assert "rsi_14" in reasons[0] and "ret_1" in reasons[1] and "kd_k" in reasons[2] and "position" in reasons[3]


def test_manifest_mismatch_is_a_clear_model_error(published: Published, tmp_path: Path) -> None:
    root = published[0]
    policy = DqnPolicy.load(root)
    with pytest.raises(ModelError, match="feature set"):
        policy.check_features("bar1m-v0", DEFAULT_FEATURES)
    with pytest.raises(ModelError, match="lacks feature"):
        policy.check_features(FEATURE_SET_VERSION, DEFAULT_FEATURES[1:])
    with pytest.raises(ModelError, match="no dqn model"):
        DqnPolicy.load(tmp_path)
    # a manifest for another feature set: refused at load
    folder = root / "dqn" / policy.version
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    (folder / "manifest.json").write_bytes(orjson.dumps({**manifest, "feature_set_version": "other-v9"}))
    try:
        with pytest.raises(ModelError, match="other-v9"):
            DqnPolicy.load(root)
        assert issubclass(ModelError, ArtifactError)
    finally:
        (folder / "manifest.json").write_bytes(orjson.dumps(manifest))


def test_hot_reload_sees_a_newer_version(published: Published) -> None:
    root, _normaliser, _ = published
    policy = DqnPolicy.load(root)
    assert policy.newer_version() is None
    weights = {k: np.asarray(v) for k, v in policy.network.state_dict().items()}
    from tapewatch.artifacts import ArtifactStore

    later = ArtifactStore(root).save(
        "dqn", policy.manifest, weights, hash_hex="cd" * 32, created=datetime(2100, 1, 1, tzinfo=UTC)
    )
    assert policy.newer_version() == later.version
    assert DqnPolicy.load(root).version == later.version
    assert DqnPolicy.load(root, version=policy.version).version == policy.version


def test_position_state_round_trip_and_intraday_close() -> None:
    state = PositionState(1, "v1", 123)
    assert PositionState.from_state(orjson.loads(orjson.dumps(state.to_state()))) == state
    with pytest.raises(ValueError, match="position"):
        PositionState.from_state({"v": 1, "position": -1})
    clock = SessionClock()
    close_ms = int(datetime(2024, 1, 2, 5, 30, tzinfo=UTC).timestamp() * 1000)  # 13:30 Taipei
    assert clock.at_close(close_ms) and not clock.at_close(close_ms - 60_000)
    assert clock.time_to_close(close_ms - 27 * 60_000) == pytest.approx(0.1)


def test_intraday_model_goes_flat_at_the_close(tmp_path: Path) -> None:
    from tapewatch.signals.dqn.agent import QNetwork, TrainResult, network_weights
    from tapewatch.signals.dqn.env import observation_width

    k = len(DEFAULT_FEATURES)
    obs_dim = observation_width(k, intraday=True)
    network = QNetwork(obs_dim, CONFIG.hidden, CONFIG.dueling)
    result = TrainResult(network_weights(network), obs_dim, 0.0, 0, 0, 0, 0.0, False)
    save_model(
        tmp_path,
        result,
        config=CONFIG,
        normaliser=Normaliser(DEFAULT_FEATURES, np.zeros(k), np.ones(k)),
        costs=cost_preset("taiwan-daytrade"),
        max_units=1,
        intraday=True,
        training={},
        data_hash="ef" * 32,
    )
    policy = DqnPolicy.load(tmp_path)
    close_ms = int(datetime(2024, 1, 2, 5, 30, tzinfo=UTC).timestamp() * 1000)  # 13:30 Taipei
    values = dict.fromkeys(DEFAULT_FEATURES, 0.0)
    at_close, no_clock = policy.decide(
        [DecisionRequest("L", values, 1, bar_end_ms=close_ms), DecisionRequest("N", values, 1)]
    )
    assert isinstance(at_close, Decision) and at_close.action == "SELL" and at_close.position == 0
    assert isinstance(no_clock, Rejected) and "bar_end_ms" in no_clock.reason


def _ensemble_model(root: Path) -> tuple[Normaliser, AssetSeries, Segment, list[np.ndarray]]:
    """An ensemble of 3 trained on synthetic data, published under ``root``; also each member's Q-table of the
    validation segment."""
    from tapewatch.signals.dqn.agent import network_from_weights, train_ensemble

    series = synthetic_series("E", 300, 7)
    normaliser = Normaliser.fit(DEFAULT_FEATURES, [series.window(None, "2004-09-01")])
    train_seg = prepare(series.window(None, "2004-09-01"), normaliser)
    val_seg = prepare(series.window("2004-09-01", None), normaliser)
    config = replace(CONFIG, ensemble=3, seed=5)
    result = train_ensemble([train_seg], [val_seg], cost_preset("crypto"), config)
    members = []
    for i in range(3):  # each member is the single agent of its seed
        single = train([train_seg], [val_seg], cost_preset("crypto"), replace(CONFIG, seed=5 + i))
        assert all(np.array_equal(result.weights[f"members.{i}.{k}"], v) for k, v in single.weights.items())
        members.append(q_table(network_from_weights(single.obs_dim, CONFIG, single.weights), val_seg, 1))
    save_model(
        root,
        result,
        config=config,
        normaliser=normaliser,
        costs=cost_preset("crypto"),
        max_units=1,
        intraday=False,
        training={},
        data_hash="12" * 32,
    )
    return normaliser, series, val_seg, members


def test_ensemble_artifact_round_trip_and_live_equals_backtest(tmp_path: Path) -> None:
    from tapewatch.signals.dqn.agent import EnsembleQNetwork
    from tapewatch.signals.dqn.backtest import greedy, run_policy

    _, series, val_seg, members = _ensemble_model(tmp_path)
    policy = DqnPolicy.load(tmp_path)
    assert policy.manifest["ensemble"] == 3 and isinstance(policy.network, EnsembleQNetwork)
    table = q_table(policy.network, val_seg, 1)
    assert np.allclose(table, np.mean(members, axis=0), atol=1e-6)  # ensemble Q = mean of the members'
    # live, bar by bar with the position the backtest's greedy run held, decides what the backtest did
    run = run_policy(val_seg, cost_preset("crypto"), greedy(policy.network, val_seg, 1))
    held = [0, *run.positions.tolist()]
    rows = series.window("2004-09-01", None).features.loc[:, list(DEFAULT_FEATURES)].dropna().to_numpy()
    requests = [
        DecisionRequest("E", dict(zip(DEFAULT_FEATURES, values, strict=True)), position=held[t])
        for t, values in enumerate(rows.tolist()[: len(val_seg) - 1])
    ]
    decisions = policy.decide(requests)
    assert all(isinstance(d, Decision) for d in decisions)
    assert [d.position for d in decisions] == run.positions.tolist()  # type: ignore[union-attr]
    for t, d in enumerate(decisions):
        assert isinstance(d, Decision)
        assert list(d.q_values.values()) == pytest.approx(table[t, held[t]].tolist(), rel=1e-5, abs=1e-6)


def test_old_single_network_manifest_still_loads(published: Published, tmp_path: Path) -> None:
    """An artifact from before ensembles and augmentation (no such keys in its manifest) loads as one network."""
    from tapewatch.artifacts import ArtifactStore
    from tapewatch.signals.dqn.agent import QNetwork

    policy = DqnPolicy.load(published[0])
    new_keys = ("reward_clip", "augment_subsample", "augment_stretch", "augment_noise", "ensemble")
    old_agent = {k: v for k, v in policy.manifest["agent"].items() if k not in new_keys}
    old = {k: v for k, v in policy.manifest.items() if k not in ("ensemble", "name", "version", "created")}
    weights = {k: np.asarray(v) for k, v in policy.network.state_dict().items()}
    ArtifactStore(tmp_path).save("dqn", {**old, "agent": old_agent}, weights, hash_hex="0a" * 32)
    loaded = DqnPolicy.load(tmp_path)
    assert "ensemble" not in loaded.manifest and isinstance(loaded.network, QNetwork)
    assert loaded.config.ensemble == 1 and loaded.config.augment_stretch == ()
    request = [DecisionRequest("A", dict.fromkeys(DEFAULT_FEATURES, 0.3), 0)]
    before, after = policy.decide(request)[0], loaded.decide(request)[0]
    assert isinstance(before, Decision) and after == replace(before, model_version=loaded.version)


def test_weights_that_do_not_fit_the_config_are_not_published(published: Published, tmp_path: Path) -> None:
    from tapewatch.signals.dqn.agent import TrainResult

    policy = DqnPolicy.load(published[0])
    weights = {k: np.asarray(v) for k, v in policy.network.state_dict().items()}
    single = TrainResult(weights, int(policy.manifest["obs_dim"]), 0.0, 0, 0, 0, 0.0, False)
    with pytest.raises(ValueError, match="do not fit"):
        save_model(
            tmp_path,
            single,
            config=replace(CONFIG, ensemble=3),
            normaliser=policy.normaliser,
            costs=cost_preset("crypto"),
            max_units=1,
            intraday=False,
            training={},
            data_hash="34" * 32,
        )
    assert not (tmp_path / "dqn").exists()
