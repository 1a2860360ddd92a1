"""Double DQN (van Hasselt et al. 2016) in torch, and its training loop.

* The **online** network chooses the next action, the **target** network evaluates it:
  ``y = r + γ · Q_target(s', argmax_a Q_online(s', a))``. The target follows the online network by a hard copy
  every ``target_sync`` updates, or by Polyak averaging ``θ' ← τθ + (1 - τ)θ'`` when ``tau`` is set.
* Uniform replay buffer, linear ε schedule, Huber loss, gradient-norm clipping, Adam; optional dueling head
  ``Q = V + A - mean(A)``; optional reward clipping (``reward_clip``, in the scaled reward's units).
* Optional data augmentation of the training segments (:mod:`tapewatch.signals.dqn.augment`: time shifting by
  sub-sampling, stretching, feature noise), as TDQN (Théate & Ernst 2021) does; validation data is never
  augmented.
* An ensemble (``ensemble = k``): :func:`train_ensemble` trains ``k`` networks with seeds ``seed … seed + k - 1``
  and :class:`EnsembleQNetwork` averages their Q-values.
* Seeded and reproducible: one numpy generator and ``torch.manual_seed`` drive everything, and training runs
  on ``threads`` CPU threads, so the same seed gives bit-identical weights.
* Early stopping: every ``eval_every`` steps the greedy policy runs over the validation segments; the weights
  with the best mean validation Sharpe are kept, and training stops after ``patience`` evaluations without
  improvement.

Episodes are ``episode_bars``-long windows drawn from the training segments (assets pooled: one network for
every symbol, as the stream serves them all).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from tapewatch.signals.dqn.augment import augment
from tapewatch.signals.dqn.backtest import TRADING_DAYS, greedy, make_env, metrics, run_policy
from tapewatch.signals.dqn.costs import CostModel
from tapewatch.signals.dqn.data import Segment
from tapewatch.signals.dqn.env import Act, observation_width

Weights = dict[str, npt.NDArray[Any]]


@dataclass(frozen=True)
class AgentConfig:
    """The network and its training; recorded in the model's manifest.

    >>> config = AgentConfig(hidden=(32,), tau=0.01)
    >>> config.to_manifest()["hidden"], AgentConfig.from_manifest(config.to_manifest()) == config
    ([32], True)
    >>> AgentConfig.from_manifest({"hidden": [32]}).ensemble  # an old manifest: one network
    1
    >>> AgentConfig(gamma=1.0)
    Traceback (most recent call last):
    ...
    ValueError: gamma must be within [0, 1)
    """

    hidden: tuple[int, ...] = (64, 64)
    dueling: bool = True
    gamma: float = 0.9
    learning_rate: float = 5e-4
    batch_size: int = 64
    buffer_size: int = 50_000
    learning_starts: int = 1_000
    train_every: int = 1
    target_sync: int = 500
    tau: float | None = None
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_steps: int = 15_000
    huber_delta: float = 1.0
    grad_clip: float = 1.0
    #: rewards are fractions of portfolio value (~1e-2 a day); scaled to percent for the network
    reward_scale: float = 100.0
    #: clip of the scaled reward (``None``: no clipping)
    reward_clip: float | None = None
    #: augmentation of the training segments (see :mod:`tapewatch.signals.dqn.augment`); defaults: none
    augment_subsample: int = 1
    augment_stretch: tuple[float, ...] = ()
    augment_noise: float = 0.0
    #: networks in the published model (seeds ``seed … seed + ensemble - 1``), their Q-values averaged; the
    #: walk-forward's "ensemble" policy is this over its seeds. :func:`train` trains one of them.
    ensemble: int = 5
    total_steps: int = 40_000
    episode_bars: int = 252
    eval_every: int = 2_000
    patience: int = 6
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if self.tau is not None and not 0.0 < self.tau <= 1.0:
            raise ValueError("tau must be within (0, 1]")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError("gamma must be within [0, 1)")
        if self.total_steps < 1 or self.batch_size < 1 or self.episode_bars < 2:
            raise ValueError("total_steps, batch_size must be ≥ 1 and episode_bars ≥ 2")
        if self.ensemble < 1 or self.augment_subsample < 1 or self.augment_noise < 0:
            raise ValueError("ensemble and augment_subsample must be ≥ 1, augment_noise ≥ 0")
        if self.reward_clip is not None and self.reward_clip <= 0:
            raise ValueError("reward_clip must be > 0")

    def to_manifest(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        data["augment_stretch"] = list(self.augment_stretch)
        return data

    @classmethod
    def from_manifest(cls, data: Mapping[str, Any]) -> AgentConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["hidden"] = tuple(int(h) for h in known.get("hidden", (64, 64)))
        known["augment_stretch"] = tuple(float(f) for f in known.get("augment_stretch", ()))
        known.setdefault("ensemble", 1)  # a manifest from before ensembles describes one network
        return cls(**known)


class QNetwork(nn.Module):
    """MLP over the observation; a dueling head splits state value and action advantages.

    With the dueling head, ``Q = V + A - mean(A)``: the mean of a state's Q-values is its value.

    >>> _ = torch.manual_seed(0)
    >>> network = QNetwork(obs_dim=3, hidden=(8,), dueling=True)
    >>> obs = torch.randn(5, 3)
    >>> q = network(obs)
    >>> tuple(q.shape), torch.allclose(q.mean(dim=1), network.value(network.body(obs)).squeeze(1))
    ((5, 3), True)
    """

    def __init__(self, obs_dim: int, hidden: Sequence[int], dueling: bool, n_actions: int = len(Act)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.dueling = dueling
        if dueling:
            self.value = nn.Linear(width, 1)
            self.advantage = nn.Linear(width, n_actions)
        else:
            self.head = nn.Linear(width, n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        z = self.body(obs)
        if self.dueling:
            adv = self.advantage(z)
            out: torch.Tensor = self.value(z) + adv - adv.mean(dim=1, keepdim=True)
            return out
        head: torch.Tensor = self.head(z)
        return head


class EnsembleQNetwork(nn.Module):
    """Several Q-networks as one: the Q-values are the mean of the members'.

    >>> _ = torch.manual_seed(0)
    >>> members = [QNetwork(obs_dim=3, hidden=(8,), dueling=True) for _ in range(3)]
    >>> ensemble = EnsembleQNetwork(members)
    >>> obs = torch.randn(4, 3)
    >>> torch.allclose(ensemble(obs), torch.stack([m(obs) for m in members]).mean(dim=0))
    True
    >>> sorted(network_weights(ensemble))[:2]  # the members' state dicts, each under its index
    ['members.0.advantage.bias', 'members.0.advantage.weight']
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(obs) for member in self.members]).mean(dim=0)


def network_weights(network: nn.Module) -> Weights:
    """The state dict as numpy arrays (what an artifact stores)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in network.state_dict().items()}


def network_from_weights(
    obs_dim: int, config: AgentConfig, weights: Mapping[str, npt.ArrayLike]
) -> QNetwork | EnsembleQNetwork:
    """The network the weights are for: one :class:`QNetwork`, or ``config.ensemble`` of them averaged."""
    network: QNetwork | EnsembleQNetwork = QNetwork(obs_dim, config.hidden, config.dueling)
    if config.ensemble > 1:
        network = EnsembleQNetwork([QNetwork(obs_dim, config.hidden, config.dueling) for _ in range(config.ensemble)])
    state = {k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()}
    network.load_state_dict(state, strict=True)
    network.eval()
    return network


class ReplayBuffer:
    """Uniform replay of transitions in a ring of ``capacity`` (the oldest overwritten first).

    >>> buffer = ReplayBuffer(capacity=4, obs_dim=2)
    >>> for i in range(6):
    ...     buffer.add(np.full(2, i, dtype=np.float32), i % 3, float(i), np.full(2, i + 1, dtype=np.float32), False)
    >>> buffer.size, sorted(buffer.rewards.tolist())  # transitions 0 and 1 overwritten
    (4, [2.0, 3.0, 4.0, 5.0])
    >>> obs, actions, rewards, next_obs, done = buffer.sample(np.random.default_rng(0), 3)
    >>> tuple(obs.shape), bool((next_obs == obs + 1).all())
    ((3, 2), True)
    """

    def __init__(self, capacity: int, obs_dim: int) -> None:
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.done = np.zeros(capacity, dtype=np.float32)
        self.capacity = capacity
        self.size = 0
        self._next = 0

    def add(
        self, obs: npt.NDArray[np.float32], action: int, reward: float, next_obs: npt.NDArray[np.float32], done: bool
    ) -> None:
        i = self._next
        self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i], self.done[i] = (
            obs,
            action,
            reward,
            next_obs,
            done,
        )
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[torch.Tensor, ...]:
        idx = rng.integers(0, self.size, size=n)
        return (
            torch.from_numpy(self.obs[idx]),
            torch.from_numpy(self.actions[idx]),
            torch.from_numpy(self.rewards[idx]),
            torch.from_numpy(self.next_obs[idx]),
            torch.from_numpy(self.done[idx]),
        )


class DoubleDqnAgent:
    """The online and target networks, the ε schedule and one Double-DQN update.

    >>> agent = DoubleDqnAgent(obs_dim=3, config=AgentConfig(hidden=(8,), epsilon_decay_steps=100, target_sync=2))
    >>> agent.epsilon(0), agent.epsilon(50), round(agent.epsilon(1_000), 6)  # linear, then held at the end
    (1.0, 0.525, 0.05)
    >>> rng = np.random.default_rng(0)
    >>> greedy = agent.act(np.zeros(3, dtype=np.float32), epsilon=0.0, rng=rng)
    >>> greedy == int(agent.online(torch.zeros(1, 3)).argmax())
    True
    >>> buffer = ReplayBuffer(capacity=16, obs_dim=3)
    >>> for i in range(16):
    ...     buffer.add(np.full(3, i, dtype=np.float32), i % 3, 1.0, np.full(3, i + 1, dtype=np.float32), False)
    >>> def synced() -> bool:
    ...     return all(torch.equal(a, b) for a, b in zip(agent.online.parameters(), agent.target.parameters()))
    >>> agent.update(buffer.sample(rng, 8)) > 0, synced()  # a Huber loss; the target lags the online network …
    (True, False)
    >>> agent.update(buffer.sample(rng, 8)) > 0, synced()  # … until every target_sync updates
    (True, True)
    """

    def __init__(self, obs_dim: int, config: AgentConfig) -> None:
        torch.manual_seed(config.seed)
        self.config = config
        self.online = QNetwork(obs_dim, config.hidden, config.dueling)
        self.target = copy.deepcopy(self.online)
        self.target.eval()
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.learning_rate)
        self.updates = 0

    def epsilon(self, step: int) -> float:
        c = self.config
        frac = min(1.0, step / max(1, c.epsilon_decay_steps))
        return c.epsilon_start + frac * (c.epsilon_end - c.epsilon_start)

    def act(self, obs: npt.NDArray[np.float32], epsilon: float, rng: np.random.Generator) -> int:
        if rng.random() < epsilon:
            return int(rng.integers(0, len(Act)))
        with torch.no_grad():
            return int(self.online(torch.from_numpy(obs).unsqueeze(0)).argmax(dim=1).item())

    def update(self, batch: tuple[torch.Tensor, ...]) -> float:
        obs, actions, rewards, next_obs, done = batch
        c = self.config
        q = self.online(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            chosen = self.online(next_obs).argmax(dim=1, keepdim=True)  # online network chooses …
            evaluated = self.target(next_obs).gather(1, chosen).squeeze(1)  # … target network evaluates
            y = rewards + c.gamma * (1.0 - done) * evaluated
        loss = nn.functional.huber_loss(q, y, delta=c.huber_delta)
        self.optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(self.online.parameters(), c.grad_clip)
        self.optimizer.step()
        self.updates += 1
        self._sync_target()
        return float(loss.item())

    def _sync_target(self) -> None:
        c = self.config
        if c.tau is not None:
            with torch.no_grad():
                for t, o in zip(self.target.parameters(), self.online.parameters(), strict=True):
                    t.mul_(1.0 - c.tau).add_(o, alpha=c.tau)
        elif self.updates % c.target_sync == 0:
            self.target.load_state_dict(self.online.state_dict())


@dataclass(frozen=True)
class TrainProgress:
    step: int
    total_steps: int
    episode: int
    episode_reward: float
    loss: float
    epsilon: float
    val_sharpe: float | None
    best_val_sharpe: float | None


@dataclass
class TrainResult:
    weights: Weights
    obs_dim: int
    best_val_sharpe: float
    best_step: int
    steps: int
    episodes: int
    seconds: float
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)


def validation_sharpe(
    network: nn.Module, segments: Sequence[Segment], costs: CostModel, max_units: int, periods_per_year: float
) -> float:
    """Mean Sharpe of the greedy policy over the validation segments."""
    network.eval()
    scores = [
        metrics(run_policy(s, costs, greedy(network, s, max_units), max_units), periods_per_year).sharpe
        for s in segments
    ]
    network.train()
    return float(np.mean(scores))


def train(
    train_segments: Sequence[Segment],
    val_segments: Sequence[Segment],
    costs: CostModel,
    config: AgentConfig,
    *,
    max_units: int = 1,
    periods_per_year: float = TRADING_DAYS,
    progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Train one Double DQN (whatever ``config.ensemble`` says: :func:`train_ensemble` trains an ensemble) on the
    pooled training segments; keep the weights best on validation Sharpe."""
    usable = [s for s in train_segments if len(s) >= 2]
    if not usable:
        raise ValueError("no training segment with at least 2 bars")
    if not val_segments:
        raise ValueError("early stopping needs at least one validation segment")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(usable, val_segments, costs, config, max_units, periods_per_year, progress)
    finally:
        torch.set_num_threads(previous_threads)


class _Episodes:
    """Training episodes: a segment drawn with probability proportional to its length, then an
    ``episode_bars``-long window of it at a random start."""

    def __init__(
        self, segments: Sequence[Segment], costs: CostModel, max_units: int, bars: int, rng: np.random.Generator
    ) -> None:
        self.segments = segments
        self.envs = [make_env(s, costs, max_units) for s in segments]
        self.weights = np.array([len(s) for s in segments], dtype=np.float64)
        self.weights /= self.weights.sum()
        self.bars = bars
        self.rng = rng

    def draw(self) -> tuple[int, npt.NDArray[np.float32]]:
        """A new episode: its segment's index and first observation."""
        k = int(self.rng.choice(len(self.envs), p=self.weights))
        n = len(self.segments[k])
        length = min(self.bars, n)
        start = int(self.rng.integers(0, n - length + 1))
        obs, _ = self.envs[k].reset(options={"start": start, "end": start + length})
        return k, obs


@dataclass
class _Best:
    """Early stopping: the best validation Sharpe once learning started, its weights and step, and the
    evaluations since that did not beat it."""

    weights: Weights
    sharpe: float = -np.inf
    step: int = 0
    stale: int = 0

    def observe(self, val: float, step: int, learning: bool, online: nn.Module) -> None:
        """An evaluation at ``step``: once learning started, a new best or one more that is not."""
        if val > self.sharpe and learning:
            self.sharpe, self.step, self.stale = val, step, 0
            self.weights = network_weights(online)
        elif learning:
            self.stale += 1

    def keep(self, online: nn.Module, step: int, sharpe: float) -> None:
        """Take ``online``'s weights at ``step`` as the best, whatever they score."""
        self.weights = network_weights(online)
        self.sharpe, self.step = sharpe, step


def _train(
    segments: Sequence[Segment],
    val_segments: Sequence[Segment],
    costs: CostModel,
    c: AgentConfig,
    max_units: int,
    periods_per_year: float,
    progress: Callable[[TrainProgress], None] | None,
) -> TrainResult:
    started = time.perf_counter()
    rng = np.random.default_rng(c.seed)
    pool = augment(segments, subsample=c.augment_subsample, stretch=c.augment_stretch, noise=c.augment_noise, rng=rng)
    episodes = _Episodes(pool, costs, max_units, c.episode_bars, rng)
    obs_dim = observation_width(segments[0].features.shape[1], segments[0].session_end is not None)
    agent = DoubleDqnAgent(obs_dim, c)
    buffer = ReplayBuffer(min(c.buffer_size, c.total_steps), obs_dim)
    best = _Best(network_weights(agent.online))
    history: list[dict[str, float]] = []
    episode, episode_reward, loss, step = 0, 0.0, float("nan"), 0
    stopped_early = False

    k, obs = episodes.draw()
    while step < c.total_steps:
        epsilon = agent.epsilon(step)
        action = agent.act(obs, epsilon, rng)
        next_obs, reward, terminated, truncated, _ = episodes.envs[k].step(action)
        buffer.add(obs, action, _scaled(reward, c), next_obs, terminated)
        episode_reward += reward
        obs = next_obs
        step += 1
        if step >= c.learning_starts and step % c.train_every == 0:
            loss = agent.update(buffer.sample(rng, c.batch_size))
        val: float | None = None
        if step % c.eval_every == 0 or step == c.total_steps:
            val = validation_sharpe(agent.online, val_segments, costs, max_units, periods_per_year)
            history.append({"step": step, "episode": episode, "loss": loss, "epsilon": epsilon, "val_sharpe": val})
            best.observe(val, step, step >= c.learning_starts, agent.online)
        # reported at the end of every episode and after every evaluation (once when both)
        if progress is not None and (terminated or truncated or val is not None):
            progress(_progress(step, c, episode, episode_reward, loss, epsilon, val, best.sharpe))
        if terminated or truncated:
            episode += 1
            episode_reward = 0.0
            k, obs = episodes.draw()
        if best.stale >= c.patience:
            stopped_early = True
            break
    if not np.isfinite(best.sharpe):  # never evaluated after learning started: keep the final weights
        best.keep(agent.online, step, validation_sharpe(agent.online, val_segments, costs, max_units, periods_per_year))
    return TrainResult(
        weights=best.weights,
        obs_dim=obs_dim,
        best_val_sharpe=float(best.sharpe),
        best_step=best.step,
        steps=step,
        episodes=episode,
        seconds=time.perf_counter() - started,
        stopped_early=stopped_early,
        history=history,
    )


def _scaled(reward: float, c: AgentConfig) -> float:
    """The reward the network learns from: in percent, clipped when ``reward_clip`` is set."""
    scaled = reward * c.reward_scale
    return scaled if c.reward_clip is None else min(max(scaled, -c.reward_clip), c.reward_clip)


def train_ensemble(
    train_segments: Sequence[Segment],
    val_segments: Sequence[Segment],
    costs: CostModel,
    config: AgentConfig,
    *,
    max_units: int = 1,
    periods_per_year: float = TRADING_DAYS,
    progress: Callable[[int, TrainProgress], None] | None = None,
) -> TrainResult:
    """``config.ensemble`` agents trained with seeds ``seed, seed + 1, …``, as one result.

    With one member this is :func:`train`. Otherwise the weights are the :class:`EnsembleQNetwork`'s (each
    member under ``members.<i>.``), the validation Sharpe is the ensemble's, steps, episodes and seconds are
    summed and ``history`` holds every member's evaluations with its ``member`` index. ``progress`` gets the
    member's index with each report.
    """
    results: list[TrainResult] = []
    for member in range(config.ensemble):
        single = replace(config, seed=config.seed + member, ensemble=1)
        forward = None if progress is None else (lambda p, m=member: progress(m, p))
        results.append(
            train(
                train_segments,
                val_segments,
                costs,
                single,
                max_units=max_units,
                periods_per_year=periods_per_year,
                progress=forward,
            )
        )
    if len(results) == 1:
        return results[0]
    single = replace(config, ensemble=1)
    obs_dim = results[0].obs_dim
    ensemble = EnsembleQNetwork([network_from_weights(obs_dim, single, r.weights) for r in results])
    return TrainResult(
        weights=network_weights(ensemble),
        obs_dim=obs_dim,
        best_val_sharpe=validation_sharpe(ensemble, val_segments, costs, max_units, periods_per_year),
        best_step=max(r.best_step for r in results),
        steps=sum(r.steps for r in results),
        episodes=sum(r.episodes for r in results),
        seconds=sum(r.seconds for r in results),
        stopped_early=all(r.stopped_early for r in results),
        history=[{**h, "member": float(m)} for m, r in enumerate(results) for h in r.history],
    )


def _progress(
    step: int, c: AgentConfig, episode: int, reward: float, loss: float, epsilon: float, val: float | None, best: float
) -> TrainProgress:
    return TrainProgress(
        step=step,
        total_steps=c.total_steps,
        episode=episode,
        episode_reward=reward,
        loss=loss,
        epsilon=epsilon,
        val_sharpe=val,
        best_val_sharpe=float(best) if np.isfinite(best) else None,
    )
