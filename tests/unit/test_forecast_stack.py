"""stack_requests: the vectorised path for a clean batch and the per-row path for a bad one agree."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.signals.forecast.contract import ForecastRequest, _window_rows, stack_requests

NAMES = ("a", "b")
value = st.one_of(st.floats(-1e6, 1e6), st.just(math.nan), st.none(), st.just(math.inf))
row = st.fixed_dictionaries({"a": value}, optional={"b": value})
clean_row = st.fixed_dictionaries({"a": st.floats(-1e6, 1e6), "b": st.floats(-1e6, 1e6)})


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.one_of(row, clean_row), min_size=0, max_size=5), min_size=0, max_size=6), st.integers(1, 3))
def test_every_request_is_answered_as_the_per_row_check_says(
    rows: list[list[dict[str, float | None]]], window: int
) -> None:
    requests = [ForecastRequest(f"S{i}", r) for i, r in enumerate(rows)]
    stack = stack_requests(requests, NAMES, window)
    expected = [_window_rows(r, NAMES, window) for r in requests]
    assert stack.index == [i for i, e in enumerate(expected) if not isinstance(e, str)]
    assert [(i, r.reason) for i, r in stack.rejected] == [(i, e) for i, e in enumerate(expected) if isinstance(e, str)]
    good = [e for e in expected if not isinstance(e, str)]
    assert stack.windows.shape == (len(good), window, len(NAMES))
    np.testing.assert_array_equal(stack.windows, np.array(good, dtype=np.float64).reshape(len(good), window, 2))
    # the same rows as one array per request (how the stream hands them over; other column order, NaN if missing)
    columns = ("b", "a")
    arrays = [ForecastRequest(f"S{i}", _as_array(r, columns), columns) for i, r in enumerate(rows)]
    from_arrays = stack_requests(arrays, NAMES, window)
    assert from_arrays.index == stack.index
    np.testing.assert_array_equal(from_arrays.windows, stack.windows)


def _as_array(rows: list[dict[str, float | None]], columns: tuple[str, ...]) -> npt.NDArray[np.float64]:
    values = [[row.get(c) for c in columns] for row in rows]
    return np.array(values, dtype=np.float64).reshape(len(rows), len(columns))


def test_a_single_feature_is_stacked_as_a_column() -> None:
    rows = [{"a": 1.0}, {"a": 2.0}, {"a": 3.0}]
    stack = stack_requests([ForecastRequest("X", rows)], ("a",), window=2)
    assert stack.windows.tolist() == [[[2.0], [3.0]]]
