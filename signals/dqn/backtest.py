"""Policy runs through :class:`~tapewatch.signals.dqn.env.TradingEnv`, their metrics, and the baselines.

Every policy — the agent, buy-and-hold, the momentum rule, the random policy — is run through the same
environment, so costs, timing and the position rule are identical for all of them. A policy is a function
``choose(t, position) -> action`` called at bar ``t`` of the segment; it may only read the segment's data up to
``t`` (the agent reads the observation of bar ``t``; the rules read closes up to ``t``).

Metrics (``P`` periods per year, 252 for daily bars; ``r`` the per-bar returns of the equity curve):

* total return ``E_end / E_0 - 1``; annual return ``(E_end / E_0)^(P / len(r)) - 1``;
* Sharpe ``mean(r) / std(r) · √P`` (sample std; 0 for a flat curve), Sortino
  ``mean(r) / √mean(min(r, 0)²) · √P``; max drawdown ``max(1 - E / running max E)``;
* trades: executed BUYs and SELLs; win rate: fraction of round trips (flat → long → flat; an open one at the
  end is marked to market) whose equity rose; turnover: traded notional / mean equity, annualised.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import torch

from tapewatch.signals.dqn.costs import CostModel
from tapewatch.signals.dqn.data import Segment
from tapewatch.signals.dqn.env import Act, TradingEnv, observations

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Chooser = Callable[[int, int], int]

TRADING_DAYS: Final = 252
MOMENTUM_LOOKBACK: Final = 20


@dataclass(frozen=True)
class PolicyRun:
    """One policy over one segment: equity at every bar close (``equity[0]`` before the first action).

    Buy-and-hold over four closes, without costs and in Taiwan (the buy's commission is paid once; the position
    is still open at the end, marked to market):

    >>> from tapewatch.signals.dqn.costs import cost_preset
    >>> close = np.array([10.0, 11.0, 12.1, 11.0])
    >>> segment = Segment("TEST", np.arange(4).astype("datetime64[D]"), close, np.zeros((4, 1)), None, None)
    >>> run = run_policy(segment, cost_preset("none"), always(Act.BUY))
    >>> run.equity.round(6).tolist(), run.positions.tolist()
    ([1.0, 1.1, 1.21, 1.1], [1, 1, 1])
    >>> m = metrics(run)
    >>> round(m.total_return, 6), round(m.max_drawdown, 6), m.trades, m.round_trips, m.win_rate
    (0.1, 0.090909, 1, 1, 1.0)
    >>> taiwan = run_policy(segment, cost_preset("taiwan"), always(Act.BUY))
    >>> round(float(taiwan.equity[-1]), 6), round(float(taiwan.costs_paid.sum()), 6)
    (1.098435, 0.001423)
    """

    equity: FloatArray
    positions: IntArray
    executed: IntArray
    traded_value: FloatArray
    costs_paid: FloatArray


@dataclass(frozen=True)
class Metrics:
    total_return: float
    annual_return: float
    sharpe: float
    sortino: float
    max_drawdown: float
    win_rate: float
    trades: int
    round_trips: int
    turnover: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def make_env(segment: Segment, costs: CostModel, max_units: int = 1, episode_bars: int | None = None) -> TradingEnv:
    return TradingEnv(
        segment.close,
        segment.features,
        costs,
        max_units=max_units,
        session_end=segment.session_end,
        time_to_close=segment.time_to_close,
        episode_bars=episode_bars,
    )


def run_policy(segment: Segment, costs: CostModel, choose: Chooser, max_units: int = 1) -> PolicyRun:
    env = make_env(segment, costs, max_units)
    _, info = env.reset(options={"start": 0, "end": len(segment)})
    n = len(segment)
    equity = np.empty(n)
    equity[0] = info["equity"]
    positions = np.zeros(n - 1, dtype=np.int64)
    acts = np.zeros(n - 1, dtype=np.int64)
    traded = np.zeros(n - 1)
    paid = np.zeros(n - 1)
    position = 0
    for t in range(n - 1):
        _, _, _, _, info = env.step(choose(t, position))
        position = info["position"]
        equity[t + 1] = info["equity"]
        positions[t], acts[t] = position, int(info["executed"])
        traded[t], paid[t] = info["traded_value"], info["cost"]
    return PolicyRun(equity, positions, acts, traded, paid)


def metrics(run: PolicyRun, periods_per_year: float = TRADING_DAYS) -> Metrics:
    equity = run.equity
    returns = equity[1:] / equity[:-1] - 1.0
    n = len(returns)
    growth = equity[-1] / equity[0]
    std = float(returns.std(ddof=1)) if n > 1 else 0.0
    mean = float(returns.mean()) if n else 0.0
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2))) if n else 0.0
    drawdown = 1.0 - equity / np.maximum.accumulate(equity)
    return Metrics(
        total_return=float(growth - 1.0),
        annual_return=annualised(float(growth), periods_per_year, n),
        sharpe=mean / std * math.sqrt(periods_per_year) if std > 1e-15 else 0.0,
        sortino=mean / downside * math.sqrt(periods_per_year) if downside > 1e-15 else 0.0,
        max_drawdown=float(drawdown.max()),
        win_rate=_win_rate(run),
        trades=int(np.count_nonzero(run.executed != Act.HOLD)),
        round_trips=len(_round_trips(run)),
        turnover=float(run.traded_value.sum() / equity.mean() * periods_per_year / n) if n else 0.0,
    )


def annualised(growth: float, periods_per_year: float, periods: int) -> float:
    """``growth ** (periods_per_year / periods) - 1`` in log space: a run of a few bars that grew a thousandfold
    annualises past the largest float, which is ``inf`` said plainly rather than an overflow warning from a power
    (hypothesis found one in ``test_always_long_reproduces_buy_and_hold_exactly``).

    >>> round(annualised(1.1, 252, 252), 12), annualised(1e3, 252, 1), annualised(0.0, 252, 5), annualised(1.5, 252, 0)
    (0.1, inf, -1.0, 0.0)
    """
    if periods == 0:
        return 0.0
    if growth <= 0.0:
        return -1.0
    exponent = periods_per_year / periods * math.log(growth)
    return math.expm1(exponent) if exponent < _MAX_EXPONENT else math.inf


#: the largest x for which exp(x) is a finite float
_MAX_EXPONENT: Final = math.log(np.finfo(np.float64).max)


def _round_trips(run: PolicyRun) -> list[float]:
    """Equity growth of each flat → long → flat trip (an open one at the end is marked to market)."""
    trips: list[float] = []
    entry: float | None = None
    for t, position in enumerate(run.positions.tolist()):
        if entry is None and position > 0:
            entry = float(run.equity[t])  # before the buy's cost: the trip pays for its own entry
        elif entry is not None and position == 0:
            trips.append(float(run.equity[t + 1]) / entry - 1.0)
            entry = None
    if entry is not None:
        trips.append(float(run.equity[-1]) / entry - 1.0)
    return trips


def _win_rate(run: PolicyRun) -> float:
    trips = _round_trips(run)
    return sum(1 for r in trips if r > 0) / len(trips) if trips else 0.0


# -- policies -----------------------------------------------------------------------------------------------
def always(action: Act) -> Chooser:
    """A constant policy; ``always(Act.BUY)`` is buy-and-hold (BUY at the limit is a no-op)."""
    return lambda t, position: int(action)


def momentum_rule(segment: Segment, lookback: int = MOMENTUM_LOOKBACK) -> Chooser:
    """Long while the close is above the close ``lookback`` bars earlier (within the segment), flat otherwise."""
    close = segment.close

    def choose(t: int, position: int) -> int:
        if t < lookback:
            return int(Act.HOLD)
        return int(Act.BUY if close[t] > close[t - lookback] else Act.SELL)

    return choose


def random_policy(seed: int) -> Chooser:
    rng = np.random.default_rng(seed)
    return lambda t, position: int(rng.integers(0, len(Act)))


def q_table(network: torch.nn.Module, segment: Segment, max_units: int) -> npt.NDArray[np.float32]:
    """Q-values of every bar for every possible position, ``(bars, max_units + 1, actions)``, in one batch.

    The observation is features + position (+ time to close), so this table is all a greedy run needs.
    """
    n = len(segment)
    with torch.no_grad():
        tables = [
            network(
                torch.from_numpy(observations(segment.features, np.full(n, p), max_units, segment.time_to_close))
            ).numpy()
            for p in range(max_units + 1)
        ]
    return np.stack(tables, axis=1)


def greedy(network: torch.nn.Module, segment: Segment, max_units: int) -> Chooser:
    table = q_table(network, segment, max_units)
    best = table.argmax(axis=2)
    return lambda t, position: int(best[t, position])
