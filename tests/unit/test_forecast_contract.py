"""The forecasters' shared contract: batch validation, windows, the band rule, the feature history the stream
keeps, and one batch of forecasts per model."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapewatch.signals.dqn.backtest import run_policy
from tapewatch.signals.dqn.costs import cost_preset
from tapewatch.signals.dqn.data import Segment
from tapewatch.signals.forecast.contract import ForecastRequest, ForecastResult, Rejected, stack_requests
from tapewatch.signals.forecast.history import FeatureHistory
from tapewatch.signals.forecast.rules import band_targets, chooser_from_targets
from tapewatch.signals.forecast.windows import HistoryError, forward_returns, sliding_windows
from tapewatch.streams.forecasting import PendingForecast, forecast_batch

NAMES = ("a", "b")
values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5))
rows = st.lists(st.fixed_dictionaries({"a": values, "b": values}), max_size=6)


@given(st.lists(rows, max_size=5), st.integers(1, 4))
def test_a_batch_is_split_into_windows_and_refusals_whatever_it_holds(
    batch: list[list[dict[str, float | None]]], window: int
) -> None:
    requests = [ForecastRequest(f"S{i}", r) for i, r in enumerate(batch)]
    stack = stack_requests(requests, NAMES, window)
    assert sorted([*stack.index, *(i for i, _ in stack.rejected)]) == list(range(len(requests)))
    assert stack.windows.shape == (len(stack.index), window, len(NAMES))
    assert np.isfinite(stack.windows).all()
    for j, i in enumerate(stack.index):  # each window is the request's newest rows, in order
        expected = [[float(row[n] or 0.0) for n in NAMES] for row in batch[i][-window:]]
        assert stack.windows[j].tolist() == expected
    for i, rejected in stack.rejected:
        assert rejected.symbol == f"S{i}" and rejected.reason
    # the same rows as value tuples in another column order (the stream worker's form) stack to the same windows
    columns = ("b", "x", "a")
    as_values = [ForecastRequest(r.symbol, [(row["b"], 0.0, row["a"]) for row in batch[i]], columns)
                 for i, r in enumerate(requests)]  # fmt: skip
    again = stack_requests(as_values, NAMES, window)
    assert again.index == stack.index and np.array_equal(again.windows, stack.windows)
    assert [(i, r.reason) for i, r in again.rejected] == [(i, r.reason) for i, r in stack.rejected]


def test_a_window_never_reads_a_later_row() -> None:
    data = np.random.default_rng(3).normal(size=(30, 3))
    before = sliding_windows(data, 5)[:10].copy()
    data[15:] = 99.0
    assert np.array_equal(sliding_windows(data, 5)[:10], before)
    with pytest.raises(HistoryError):
        sliding_windows(data[:4], 5)
    assert math.isnan(forward_returns(np.array([1.0, 2.0]), 1)[-1])


@given(st.lists(st.floats(-0.01, 0.01), min_size=1, max_size=40), st.floats(0.0, 0.005))
def test_the_band_rule_trades_only_when_the_forecast_leaves_the_band(forecast: list[float], band: float) -> None:
    targets = band_targets(np.array(forecast), band)
    previous = 0
    for value, target in zip(forecast, targets.tolist(), strict=True):
        if target != previous:
            assert (value > band) if target == 1 else (value < -band)
        previous = target


def test_targets_become_the_positions_the_environment_holds() -> None:
    close = np.linspace(10, 12, 12)
    targets = np.array([0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0])
    segment = Segment("X", np.arange(12).astype("datetime64[D]"), close, np.zeros((12, 1)), None, None)
    run = run_policy(segment, cost_preset("crypto"), chooser_from_targets(targets))
    assert run.positions.tolist() == targets[:-1].tolist()


@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.floats(-1, 1)), max_size=20), st.integers(0, 6))
def test_the_history_keeps_the_newest_rows_and_survives_its_state(
    appended: list[dict[str, float]], capacity: int
) -> None:
    history = FeatureHistory(NAMES, capacity)
    for row in appended:
        history.append(row)
    expected = [{n: row.get(n) for n in NAMES} for row in appended][max(len(appended) - capacity, 0) :]
    assert history.rows(capacity) == (expected if capacity else [])
    again = FeatureHistory.from_state(history.to_state())
    assert again.rows(capacity) == history.rows(capacity)
    narrower = history.resized(("b",), capacity)
    assert [r["b"] for r in narrower.rows(capacity)] == [r["b"] for r in history.rows(capacity)]
    frozen = history.snapshot()
    history.append({"a": 9.0})  # a later bar changes neither the snapshot's rows nor its window
    for kept in (history, frozen, again, narrower):
        for count in range(capacity + 2):  # the window is the tail, one array: None as NaN
            tail = [[np.nan if row[n] is None else row[n] for n in kept.names] for row in kept.rows(count)]
            np.testing.assert_array_equal(kept.window(count), np.array(tail).reshape(len(tail), len(kept.names)))


class _Mean:
    """A forecaster of the window's mean of ``a`` (refuses a window whose newest ``a`` is above 100)."""

    model, version, window, feature_names = "mean", "v1", 3, ("a",)

    def forecast(self, requests: Sequence[ForecastRequest]) -> list[ForecastResult | Rejected]:
        out: list[ForecastResult | Rejected] = []
        for r in requests:
            last = [r.named(i)["a"] for i in range(len(r.rows) - self.window, len(r.rows))]
            if last[-1] is not None and last[-1] > 100:
                out.append(Rejected(r.symbol, "too large"))
            else:
                mean = sum(v for v in last if v is not None) / 3
                out.append(ForecastResult(r.symbol, self.model, self.version, 1, "return", mean, 0.5))
        return out


def test_one_batch_answers_every_ready_bar_close_and_counts_the_warming_ones() -> None:
    history = FeatureHistory(("a", "b"), 3)
    pending = []
    for ref, a in enumerate([1.0, 2.0, 3.0, 4.0, 500.0]):
        history.append({"a": a, "b": None})
        pending.append(PendingForecast(ref, "X", history.snapshot()))
    outcomes = forecast_batch({"mean": _Mean()}, pending)  # type: ignore[dict-item]
    assert outcomes.warming == 2  # the first two bar closes have no full window yet
    assert [(ref, f.prediction) for ref, f in outcomes.forecasts] == [(2, 2.0), (3, 3.0)]
    assert outcomes.rejected == [(4, "mean: too large")]


class _Other(_Mean):
    model = "other"


def test_forecasts_come_out_in_bar_order_whatever_the_models() -> None:
    """A symbol's forecasts of several bar closes in one batch go out bar by bar (each bar's models together):
    model by model, a bar's second model came after the next bar's first, and a consumer merging by event time
    read it as late."""
    history = FeatureHistory(("a",), 3)
    pending = []
    for ref, a in enumerate([1.0, 2.0, 3.0, 4.0, 5.0]):
        history.append({"a": a})
        pending.append(PendingForecast(ref, "X", history.snapshot()))
    outcomes = forecast_batch({"mean": _Mean(), "other": _Other()}, pending)  # type: ignore[dict-item]
    assert [(ref, f.model) for ref, f in outcomes.forecasts] == [
        (2, "mean"), (2, "other"), (3, "mean"), (3, "other"), (4, "mean"), (4, "other"),
    ]  # fmt: skip
