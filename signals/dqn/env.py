"""The trading environment (gymnasium API): one asset, HOLD / BUY / SELL, long or flat, net of costs.

Timing (the no-look-ahead contract): the observation at bar ``t`` is built from the features of bar ``t``
(computed from bars up to and including ``t``'s close) and the current position. The action chosen on it is
executed at bar ``t``'s close, and its reward is the change in portfolio value from ``t``'s close to
``t + 1``'s close, net of the costs paid at ``t``. Nothing of bar ``t + 1`` is visible before the action.

Positions are whole *units* ``0 … max_units`` of the portfolio (long or flat; no shorting): BUY adds one unit
(spends ``1 / (max_units - position)`` of the cash), SELL removes one (sells ``1 / position`` of the shares),
HOLD keeps it, and an action beyond the limit is a no-op. With ``max_units = 1`` BUY goes all in and SELL all
out. In intraday mode the last bar of each session forces the position flat whatever the action (day trades
never carry overnight); the same rule, :func:`next_position`, drives live inference.

Reward: ``(V_{t+1} - V_t) / V_t`` where ``V`` is cash plus shares marked at the close — the change in portfolio
value per unit of value, costs included (a buy pays commission, a sell commission plus tax).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from tapewatch.signals.dqn.costs import CostModel
from tapewatch.signals.dqn.data import CLIP

FloatArray = npt.NDArray[np.float64]
ObsArray = npt.NDArray[np.float32]


class Act(IntEnum):
    HOLD = 0
    BUY = 1
    SELL = 2


ACTION_NAMES: Final[tuple[str, ...]] = tuple(a.name for a in Act)


def next_position(position: int, action: int, max_units: int, *, at_close: bool = False) -> int:
    """The position after ``action``; flat at a session's close in intraday mode (``at_close``).

    >>> next_position(1, Act.BUY, 2), next_position(2, Act.BUY, 2), next_position(2, Act.HOLD, 2, at_close=True)
    (2, 2, 0)
    """
    if at_close:
        return 0
    if action == Act.BUY:
        return min(position + 1, max_units)
    if action == Act.SELL:
        return max(position - 1, 0)
    return position


def executed(before: int, after: int) -> Act:
    """What was actually done: a BUY at the limit or a forced flat at the close are reported as such."""
    return Act.BUY if after > before else Act.SELL if after < before else Act.HOLD


def observation_width(n_features: int, intraday: bool) -> int:
    return n_features + 1 + (1 if intraday else 0)


def observations(
    features: npt.ArrayLike, positions: npt.ArrayLike, max_units: int, time_to_close: npt.ArrayLike | None = None
) -> ObsArray:
    """Observation rows: normalised features, position as a fraction of the limit, (time to close).

    The one definition of the observation layout, used by the environment, training and live inference.
    """
    feats = np.atleast_2d(np.asarray(features, dtype=np.float32))
    pos = np.asarray(positions, dtype=np.float32).reshape(-1, 1) / np.float32(max_units)
    parts = [feats, np.broadcast_to(pos, (feats.shape[0], 1))]
    if time_to_close is not None:
        parts.append(np.asarray(time_to_close, dtype=np.float32).reshape(-1, 1))
    return np.concatenate(parts, axis=1)


@dataclass(slots=True)
class Wallet:
    """Cash and shares of one asset; positions in units of ``max_units``.

    A round trip at an unchanged price in Taiwan pays the commission twice and the tax once:

    >>> from tapewatch.signals.dqn.costs import cost_preset
    >>> wallet = Wallet(cost_preset("taiwan"))
    >>> [round(x, 6) for x in wallet.move_to(1, 100.0)]  # all in: traded notional, commission
    [0.998577, 0.001423]
    >>> [round(x, 6) for x in wallet.move_to(0, 100.0)]  # all out: commission and tax
    [0.998577, 0.004419]
    >>> round(wallet.cash, 6)
    0.994158
    >>> halves = Wallet(cost_preset("none"), max_units=2)
    >>> halves.move_to(1, 10.0), halves.cash, halves.shares  # one unit of two: half the cash
    ((0.5, 0.0), 0.5, 0.05)
    """

    costs: CostModel
    max_units: int = 1
    cash: float = 1.0
    shares: float = 0.0
    position: int = 0

    def value(self, price: float) -> float:
        return self.cash + self.shares * price

    def move_to(self, target: int, price: float) -> tuple[float, float]:
        """Trade at ``price`` to ``target`` units; returns (traded notional, costs paid)."""
        if target > self.position:
            spend = (
                self.cash
                if target == self.max_units
                else self.cash * (target - self.position) / (self.max_units - self.position)
            )
            bought = spend / (price * (1.0 + self.costs.buy_rate))
            self.cash = 0.0 if target == self.max_units else self.cash - spend
            self.shares += bought
            self.position = target
            notional = bought * price
            return notional, spend - notional
        if target < self.position:
            sold = self.shares if target == 0 else self.shares * (self.position - target) / self.position
            notional = sold * price
            proceeds = notional * (1.0 - self.costs.sell_rate)
            self.shares = 0.0 if target == 0 else self.shares - sold
            self.cash += proceeds
            self.position = target
            return notional, notional - proceeds
        return 0.0, 0.0


class TradingEnv(gym.Env[ObsArray, int]):
    """One asset's bars as an episode. See the module docstring for timing, positions and reward.

    ``features`` are already normalised (training-range statistics); ``session_end`` marks each session's last
    bar and ``time_to_close`` its remaining fraction (both only in intraday mode). ``reset`` starts at
    ``options["start"]`` (default: a random start when ``episode_bars`` is set, else 0) and runs to
    ``options["end"]`` (default: ``start + episode_bars`` or the last bar).

    >>> from tapewatch.signals.dqn.costs import cost_preset
    >>> env = TradingEnv(close=[10.0, 11.0, 12.1, 11.0], features=np.zeros((4, 1)), costs=cost_preset("none"))
    >>> obs, info = env.reset()
    >>> obs.tolist(), info  # the features, then the position as a fraction of the limit
    ([0.0, 0.0], {'t': 0, 'equity': 1.0, 'position': 0})
    >>> _, reward, terminated, truncated, info = env.step(Act.BUY)  # bought at 10, marked at 11
    >>> round(reward, 6), info["position"], info["executed"].name, terminated, truncated
    (0.1, 1, 'BUY', False, False)
    >>> obs, _, _, _, info = env.step(Act.BUY)  # at the limit: done as HOLD
    >>> obs.tolist(), round(info["equity"], 6), info["executed"].name
    ([0.0, 1.0], 1.21, 'HOLD')
    >>> _, reward, _, truncated, info = env.step(Act.SELL)  # out at 12.1, before the fall to 11
    >>> round(reward, 6), round(info["equity"], 6), truncated
    (0.0, 1.21, True)

    Intraday, the observation ends with the time to the close, and the session's last bar forces the position
    flat whatever the action:

    >>> day = TradingEnv([10.0, 11.0, 12.0, 13.0], np.zeros((4, 1)), cost_preset("none"),
    ...                  session_end=[False, True, False, True], time_to_close=[0.5, 0.0, 0.5, 0.0])
    >>> day.reset()[0].tolist()
    [0.0, 0.0, 0.5]
    >>> [day.step(Act.BUY)[4]["position"] for _ in range(3)]
    [1, 0, 1]
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's class attribute)

    def __init__(
        self,
        close: npt.ArrayLike,
        features: npt.ArrayLike,
        costs: CostModel,
        *,
        max_units: int = 1,
        session_end: npt.ArrayLike | None = None,
        time_to_close: npt.ArrayLike | None = None,
        episode_bars: int | None = None,
        initial_cash: float = 1.0,
    ) -> None:
        self.prices: FloatArray = np.asarray(close, dtype=np.float64)  # not `close`: gymnasium's Env.close()
        self.features: ObsArray = np.asarray(features, dtype=np.float32)
        n = len(self.prices)
        if self.features.ndim != 2 or self.features.shape[0] != n:
            raise ValueError(f"features must be (bars, k) with {n} rows, got {self.features.shape}")
        if n < 2:
            raise ValueError("an episode needs at least 2 bars")
        if not np.all(np.isfinite(self.prices)) or np.any(self.prices <= 0):
            raise ValueError("close prices must be finite and positive")
        if not np.all(np.isfinite(self.features)):
            raise ValueError("features contain NaN or inf (drop the warm-up rows first)")
        if max_units < 1:
            raise ValueError("max_units must be ≥ 1")
        self.intraday = session_end is not None
        if self.intraday != (time_to_close is not None):
            raise ValueError("intraday mode needs both session_end and time_to_close")
        self.session_end = np.asarray(session_end, dtype=bool) if session_end is not None else np.zeros(n, bool)
        self.time_to_close = np.asarray(time_to_close, dtype=np.float32) if time_to_close is not None else None
        self.costs = costs
        self.max_units = max_units
        self.episode_bars = episode_bars
        self.initial_cash = initial_cash
        width = observation_width(self.features.shape[1], self.intraday)
        self.observation_space = gym.spaces.Box(-CLIP, CLIP, shape=(width,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(len(Act))  # type: ignore[assignment]  # Space[np.int64]
        self.wallet = Wallet(costs, max_units, initial_cash)
        self.t = 0
        self.end = n

    def _obs(self) -> ObsArray:
        ttc = None if self.time_to_close is None else self.time_to_close[self.t : self.t + 1]
        rows = observations(self.features[self.t : self.t + 1], [self.wallet.position], self.max_units, ttc)
        row: ObsArray = rows[0]
        return row

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsArray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        n = len(self.prices)
        if "start" in options:
            start = int(options["start"])
        elif self.episode_bars is not None and n > self.episode_bars:
            start = int(self.np_random.integers(0, n - self.episode_bars))
        else:
            start = 0
        default_end = n if self.episode_bars is None else min(n, start + self.episode_bars)
        end = int(options.get("end", default_end))
        if not 0 <= start < end - 1 < n:
            raise ValueError(f"episode [{start}, {end}) must hold at least 2 of the {n} bars")
        self.t, self.end = start, end
        self.wallet = Wallet(self.costs, self.max_units, self.initial_cash)
        return self._obs(), {"t": self.t, "equity": self.initial_cash, "position": 0}

    def step(self, action: int) -> tuple[ObsArray, float, bool, bool, dict[str, Any]]:
        t = self.t
        if t >= self.end - 1:
            raise RuntimeError("episode is over: call reset()")
        price, next_price = float(self.prices[t]), float(self.prices[t + 1])
        before_value = self.wallet.value(price)
        before = self.wallet.position
        target = next_position(before, int(action), self.max_units, at_close=bool(self.session_end[t]))
        notional, cost = self.wallet.move_to(target, price)
        after_value = self.wallet.value(next_price)
        reward = (after_value - before_value) / before_value
        self.t = t + 1
        # the data window ends, the market does not: a truncation (bootstrap from the last state), never terminal
        truncated = self.t >= self.end - 1
        info = {
            "t": self.t,
            "equity": after_value,
            "position": target,
            "executed": executed(before, target),
            "traded_value": notional,
            "cost": cost,
        }
        return self._obs(), reward, False, truncated, info
