"""Trading environment: accounting, costs, position rule, intraday close, and no look-ahead."""

from __future__ import annotations

import math
import warnings

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.bars import pct_change
from tapewatch.signals.dqn.agent import QNetwork
from tapewatch.signals.dqn.backtest import (
    always,
    greedy,
    metrics,
    momentum_rule,
    run_policy,
)
from tapewatch.signals.dqn.costs import COST_PRESETS, CostModel, cost_preset
from tapewatch.signals.dqn.data import (
    DEFAULT_FEATURES,
    AssetSeries,
    Normaliser,
    Segment,
    bars_from_daily,
    prepare,
    series_from_bars,
)
from tapewatch.signals.dqn.env import Act, TradingEnv, Wallet, next_position

torch.set_num_threads(1)


def synthetic_daily(n: int = 400, seed: int = 0, start: str = "2004-01-01") -> pd.DataFrame:
    """A seeded daily OHLCV random walk (business days)."""
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n)))
    spread = np.abs(rng.normal(0, 0.01, n)) * close
    return pd.DataFrame(
        {
            "date": pd.bdate_range(start, periods=n),
            "open": close * (1 + rng.normal(0, 0.003, n)),
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.integers(1_000, 50_000, n).astype(float),
        }
    )


def synthetic_series(symbol: str = "SYN", n: int = 400, seed: int = 0, start: str = "2004-01-01") -> AssetSeries:
    return series_from_bars(symbol, "synthetic", bars_from_daily(synthetic_daily(n, seed, start)))


def segment_of(close: np.ndarray, features: np.ndarray | None = None) -> Segment:
    n = len(close)
    return Segment(
        symbol="X",
        times=np.arange(n).astype("datetime64[D]"),
        close=np.asarray(close, dtype=float),
        features=np.zeros((n, 2)) if features is None else features,
        session_end=None,
        time_to_close=None,
    )


prices = st.lists(st.floats(0.5, 500.0), min_size=2, max_size=60)


def buy_and_hold_equity(close: list[float], costs: CostModel, initial_cash: float = 1.0) -> npt.NDArray[np.float64]:
    """Closed form of buy-and-hold: all in at the first close (paying the buy commission), marked at each close.

    An independent definition that the always-long policy through the environment must reproduce exactly.
    """
    path = np.asarray(close, dtype=np.float64)
    shares = initial_cash / (path[0] * (1.0 + costs.buy_rate))
    equity: npt.NDArray[np.float64] = shares * path
    equity[0] = initial_cash
    return equity


@settings(max_examples=60, deadline=None)
@given(prices, st.sampled_from(sorted(COST_PRESETS)))
def test_always_long_reproduces_buy_and_hold_exactly(path: list[float], preset: str) -> None:
    costs = cost_preset(preset)
    run = run_policy(segment_of(np.array(path)), costs, always(Act.BUY))
    expected = buy_and_hold_equity(path, costs)
    assert np.array_equal(run.equity, expected)
    assert metrics(run).trades == 1


def test_a_short_run_that_grew_twentyfold_annualises_to_inf_without_an_overflow_warning() -> None:
    costs = cost_preset("crypto")
    run = run_policy(segment_of(np.array([1.0, 20.0])), costs, always(Act.BUY))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics(run).annual_return == math.inf


def test_round_trip_pays_commission_and_tax() -> None:
    taiwan = cost_preset("taiwan")
    wallet = Wallet(taiwan)
    wallet.move_to(1, 100.0)
    wallet.move_to(0, 100.0)
    assert wallet.cash == pytest.approx((1 - 0.001425 - 0.003) / (1 + 0.001425), rel=1e-12)
    assert cost_preset("taiwan-daytrade").sell_rate == pytest.approx(0.001425 + 0.0015)
    assert cost_preset("crypto").buy_rate == cost_preset("crypto").sell_rate == 0.001
    with pytest.raises(ValueError, match="unknown cost preset"):
        cost_preset("nasdaq")


def test_reward_is_net_change_in_value_from_this_close_to_the_next() -> None:
    costs = cost_preset("crypto")
    env = TradingEnv([10.0, 11.0, 9.9], np.zeros((3, 1)), costs)
    env.reset(options={"start": 0})
    _, reward, _, _, info = env.step(Act.BUY)
    assert reward == pytest.approx(1 / (1 + 0.001) * 1.1 - 1)
    assert info["executed"] == Act.BUY and info["position"] == 1
    _, reward2, _, truncated, info2 = env.step(Act.SELL)  # sold at 11: the move to 9.9 is not earned
    assert reward2 == pytest.approx(-0.001)
    assert truncated and info2["position"] == 0


def test_position_limits_and_partial_units() -> None:
    env = TradingEnv(np.full(6, 10.0), np.zeros((6, 1)), cost_preset("none"), max_units=2)
    env.reset(options={"start": 0})
    positions = [env.step(a)[4]["position"] for a in (Act.BUY, Act.BUY, Act.BUY, Act.SELL, Act.SELL)]
    assert positions == [1, 2, 2, 1, 0]
    assert env.wallet.cash == pytest.approx(1.0) and env.wallet.shares == 0.0
    assert next_position(0, Act.SELL, 1) == 0 and next_position(1, Act.BUY, 1) == 1


def test_intraday_is_flat_at_every_close_and_sees_time_to_close() -> None:
    n = 12
    session_end = np.zeros(n, dtype=bool)
    session_end[[3, 7, 11]] = True
    ttc = np.tile([0.75, 0.5, 0.25, 0.0], 3)
    env = TradingEnv(
        np.linspace(10, 12, n),
        np.zeros((n, 2)),
        cost_preset("taiwan-daytrade"),
        session_end=session_end,
        time_to_close=ttc,
    )
    obs, _ = env.reset(options={"start": 0})
    assert obs.shape == (4,) and obs[-1] == pytest.approx(0.75)
    for t in range(n - 1):
        obs, _, _, _, info = env.step(Act.BUY)
        if session_end[t]:
            assert info["position"] == 0 and info["executed"] in (Act.SELL, Act.HOLD)
        else:
            assert info["position"] == 1
        assert obs[-2] == info["position"]


def test_gymnasium_api_conformance() -> None:
    env = TradingEnv(np.linspace(10, 20, 30), np.zeros((30, 3)), cost_preset("crypto"), episode_bars=10)
    check_env(env, skip_render_check=True)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        TradingEnv([1.0, 2.0], [[np.nan], [0.0]], cost_preset("none"))
    with pytest.raises(ValueError, match="positive"):
        TradingEnv([1.0, -2.0], [[0.0], [0.0]], cost_preset("none"))


def test_daily_bars_use_the_bar_library_definitions() -> None:
    frame = synthetic_daily(30)
    bars = bars_from_daily(frame)
    assert np.isnan(bars["price_change_pct"].iloc[0])
    assert bars["price_change_pct"].iloc[5] == pct_change(frame["close"].iloc[5], frame["close"].iloc[4])
    assert bars["vwap"].iloc[3] == pytest.approx((frame["high"] + frame["low"] + frame["close"]).iloc[3] / 3)


@pytest.mark.parametrize("cut", [150, 260, 330])
def test_no_look_ahead_future_bars_do_not_change_past_decisions(cut: int) -> None:
    """Rewrite every bar after ``cut`` (prices and volumes): features, observations, the agent's greedy
    decisions, the momentum rule and the equity up to ``cut`` must not change."""
    frame = synthetic_daily(400, seed=3)
    perturbed = frame.copy()
    rng = np.random.default_rng(99)
    factor = np.exp(np.cumsum(rng.normal(0, 0.05, len(frame) - cut - 1)))
    for column in ("open", "high", "low", "close"):
        perturbed.loc[cut + 1 :, column] = perturbed.loc[cut + 1 :, column].to_numpy() * factor
    perturbed.loc[cut + 1 :, "volume"] = rng.integers(1, 10**6, len(frame) - cut - 1).astype(float)

    original = series_from_bars("A", "t", bars_from_daily(frame))
    changed = series_from_bars("A", "t", bars_from_daily(perturbed))
    normaliser = Normaliser.fit(DEFAULT_FEATURES, [original.window(None, "2004-06-01")])
    torch.manual_seed(0)
    network = QNetwork(len(DEFAULT_FEATURES) + 1, (16,), dueling=True)
    costs = cost_preset("taiwan")
    runs = []
    for series in (original, changed):
        segment = prepare(series, normaliser)
        runs.append(
            (
                segment,
                run_policy(segment, costs, greedy(network, segment, 1)),
                run_policy(segment, costs, momentum_rule(segment)),
            )
        )
    (seg_a, agent_a, mom_a), (seg_b, agent_b, mom_b) = runs
    k = int(np.searchsorted(seg_a.times, original.times[cut], side="right"))  # rows up to bar `cut`
    assert np.array_equal(seg_a.features[:k], seg_b.features[:k])
    assert not np.array_equal(seg_a.features[k:], seg_b.features[k:])  # the perturbation did bite
    for a, b in ((agent_a, agent_b), (mom_a, mom_b)):
        assert np.array_equal(a.executed[:k], b.executed[:k])  # decisions at bars ≤ cut
        assert np.array_equal(a.equity[:k], b.equity[:k])  # value up to bar cut's close
