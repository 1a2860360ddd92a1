"""Double DQN agent: the target rule, target sync, reproducibility; walk-forward and report on small data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tapewatch.signals.dqn.agent import AgentConfig, DoubleDqnAgent, train
from tapewatch.signals.dqn.backtest import PolicyRun, metrics
from tapewatch.signals.dqn.costs import cost_preset
from tapewatch.signals.dqn.data import DEFAULT_FEATURES, Normaliser, prepare
from tapewatch.training.dqn.report import write_report
from tapewatch.training.dqn.walkforward import quality_bars, summary, walk_forward, yearly_windows
from tests.unit.test_dqn_env import synthetic_series

torch.set_num_threads(1)
TINY = AgentConfig(
    hidden=(8,),
    total_steps=300,
    learning_starts=50,
    batch_size=16,
    eval_every=100,
    episode_bars=60,
    epsilon_decay_steps=200,
    seed=1,
    ensemble=1,
)


def _batch(obs_dim: int, n: int = 8) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(5)
    return (
        torch.randn(n, obs_dim, generator=g),
        torch.randint(0, 3, (n,), generator=g),
        torch.randn(n, generator=g),
        torch.randn(n, obs_dim, generator=g),
        torch.zeros(n),
    )


def test_online_network_chooses_and_target_network_evaluates() -> None:
    agent = DoubleDqnAgent(4, AgentConfig(hidden=(8,), dueling=False, gamma=0.9, seed=0))
    with torch.no_grad():  # make the target differ from the online network
        for p in agent.target.parameters():
            p.add_(torch.randn_like(p))
    obs, actions, rewards, next_obs, _done = batch = _batch(4)
    with torch.no_grad():
        chosen = agent.online(next_obs).argmax(dim=1)
        y = rewards + 0.9 * agent.target(next_obs)[torch.arange(8), chosen]
        q = agent.online(obs)[torch.arange(8), actions]
        expected = torch.nn.functional.huber_loss(q, y).item()
        vanilla = torch.nn.functional.huber_loss(q, rewards + 0.9 * agent.target(next_obs).max(dim=1).values).item()
    assert agent.update(batch) == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(vanilla)  # the test tells Double DQN from DQN


def test_polyak_and_hard_target_sync() -> None:
    soft = DoubleDqnAgent(4, AgentConfig(hidden=(8,), tau=0.1, seed=0))
    before = [p.clone() for p in soft.target.parameters()]
    soft.update(_batch(4))
    for t, o, b in zip(soft.target.parameters(), soft.online.parameters(), before, strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * o, atol=1e-6)
    hard = DoubleDqnAgent(4, AgentConfig(hidden=(8,), target_sync=2, seed=0))
    hard.update(_batch(4))
    assert not all(torch.equal(t, o) for t, o in zip(hard.target.parameters(), hard.online.parameters(), strict=True))
    hard.update(_batch(4))
    assert all(torch.equal(t, o) for t, o in zip(hard.target.parameters(), hard.online.parameters(), strict=True))


def _segments() -> tuple[list, list]:  # type: ignore[type-arg]
    series = [synthetic_series("A", 500, 1), synthetic_series("B", 500, 2)]
    train_raw = [s.window(None, "2005-06-01") for s in series]
    normaliser = Normaliser.fit(DEFAULT_FEATURES, train_raw)
    return [prepare(s, normaliser) for s in train_raw], [
        prepare(s.window("2005-06-01", None), normaliser) for s in series
    ]


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    train_segments, val_segments = _segments()
    costs = cost_preset("crypto")
    a = train(train_segments, val_segments, costs, TINY)
    b = train(train_segments, val_segments, costs, TINY)
    c = train(train_segments, val_segments, costs, replace(TINY, seed=2))
    assert a.weights.keys() == b.weights.keys()
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert a.best_val_sharpe == b.best_val_sharpe and a.history == b.history
    assert not all(np.array_equal(a.weights[k], c.weights[k]) for k in a.weights)
    assert a.steps <= TINY.total_steps and a.history[-1]["step"] == a.steps


def test_early_stopping_stops_after_patience() -> None:
    train_segments, val_segments = _segments()
    config = AgentConfig(
        hidden=(8,),
        total_steps=5_000,
        learning_starts=10,
        batch_size=8,
        eval_every=20,
        patience=1,
        episode_bars=40,
        seed=0,
    )
    result = train(train_segments, val_segments, cost_preset("none"), config)
    assert result.stopped_early and result.steps < config.total_steps


def test_metrics_of_a_known_curve() -> None:
    equity = np.array([1.0, 1.1, 0.99, 1.2, 1.08])
    run = PolicyRun(
        equity, np.array([1, 0, 1, 1]), np.array([1, 2, 1, 0]), np.array([1.0, 1.1, 0.99, 0.0]), np.zeros(4)
    )
    m = metrics(run, periods_per_year=252)
    assert m.total_return == pytest.approx(0.08)
    assert m.max_drawdown == pytest.approx(0.1)  # 1.2 → 1.08 and 1.1 → 0.99 are both −10 %
    assert m.trades == 3 and m.round_trips == 2
    assert m.win_rate == pytest.approx(0.5)  # 1.0 → 0.99 lost, 0.99 (entry at t=2) → 1.08 won
    returns = equity[1:] / equity[:-1] - 1
    assert m.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1) * np.sqrt(252))


def test_walk_forward_report_on_small_data(tmp_path: Path) -> None:
    series = [synthetic_series(s, 1400, i, start="2000-01-03") for i, s in enumerate(("A", "B", "C"))]
    windows = yearly_windows(2004, 1, train_years=2)
    result = walk_forward(series, DEFAULT_FEATURES[:5], windows, [0, 1], cost_preset("crypto"), TINY)
    table = summary(result)
    assert set(table.index) == {"agent", "ensemble", "buy_and_hold", "momentum", "random"}
    # baselines and the ensemble of the seeds once per asset, agent and random per seed
    assert len(result.rows) == 3 * 3 + 3 * 2 * 2
    bars = quality_bars(result)
    assert bars[0].passed is False  # 3 assets × 2 seeds is below the bar
    assert [b.name for b in bars[1:]] == [
        "mean Sharpe vs buy-and-hold",
        "mean max drawdown vs buy-and-hold",
        "ensemble: mean Sharpe vs buy-and-hold",
        "ensemble: mean max drawdown vs buy-and-hold",
    ]
    paths = write_report(result, tmp_path)
    text = paths["report"].read_text()
    assert "| buy_and_hold |" in text and "| ensemble |" in text and "Théate" in text
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ensemble_q_is_the_mean_of_its_members_and_survives_its_weights() -> None:
    from tapewatch.signals.dqn.agent import EnsembleQNetwork, QNetwork, network_from_weights, network_weights

    torch.manual_seed(3)
    members = [QNetwork(5, (8,), dueling) for dueling in (True, True)]
    ensemble = EnsembleQNetwork(members)
    obs = torch.randn(16, 5)
    with torch.no_grad():
        expected = (members[0](obs) + members[1](obs)) / 2
        assert torch.allclose(ensemble(obs), expected, atol=1e-6)
        again = network_from_weights(5, AgentConfig(hidden=(8,), ensemble=2), network_weights(ensemble))
        assert torch.equal(again(obs), ensemble(obs))
    with pytest.raises(RuntimeError):  # two members' weights do not fit three
        network_from_weights(5, AgentConfig(hidden=(8,), ensemble=3), network_weights(ensemble))


def test_config_manifest_round_trip_with_the_new_options() -> None:
    config = AgentConfig(augment_stretch=(0.5, 2.0), augment_subsample=3, reward_clip=1.0, ensemble=4, gamma=0.4)
    manifest = config.to_manifest()
    assert manifest["augment_stretch"] == [0.5, 2.0]
    assert AgentConfig.from_manifest(manifest) == config
    old = AgentConfig.from_manifest({"hidden": [8]})  # a manifest from before the new options: one network
    assert old == AgentConfig(hidden=(8,), ensemble=1)
