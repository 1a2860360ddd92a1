"""Bars as the flow's 1-minute chunks (tapewatch.detectors.bar_chunks): the same minutes as trades give the flow's
values, one definition of each feature."""

from __future__ import annotations

import math

import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.bar_chunks import BAR_FEATURES, BarChunks
from tapewatch.detectors.bars import MINUTE_MS, bars_from_quotes
from tapewatch.detectors.flow import BOOK_COLUMNS, FLOW_FEATURE_NAMES, FlowConfig, compute_flow_frame

#: a baseline longer than the trades' gaps (30 minutes at most): within one session
CONFIG = FlowConfig(chunk_ms=MINUTE_MS, long_chunks=3, baseline_chunks=40, baseline_min_chunks=4)

#: one trade: minutes after the previous one (0: the same minute), ms into its minute, price, size
_trade = st.tuples(
    st.sampled_from([0, 0, 0, 1, 1, 2, 30]),
    st.integers(0, 59_999),
    st.floats(95.0, 105.0).map(lambda p: round(p, 2)),
    st.integers(1, 50).map(float),
)


def _quotes(trades: list[tuple[int, int, float, float]]) -> pd.DataFrame:
    minute, rows = 1_000, []
    for gap, ms, price, size in trades:
        minute += gap
        rows.append((minute * MINUTE_MS + ms, price, size))
    rows.sort(key=lambda row: row[0])
    frame = pd.DataFrame(rows, columns=["ts", "price", "size"])
    return frame.assign(symbol="S", venue="v", side=None)


def _bar_values(bars: pd.DataFrame) -> list[dict[str, float | None]]:
    chunks = BarChunks(CONFIG)
    columns = (bars[name].tolist() for name in ("start", "open", "high", "low", "close", "volume", "trades"))
    return [chunks.on_bar(int(s), o, h, lo, c, v, int(n)) for s, o, h, lo, c, v, n in zip(*columns, strict=True)]


@settings(max_examples=60, deadline=None)
@given(st.lists(_trade, min_size=1, max_size=120))
def test_bars_give_the_flows_values_over_one_minute_chunks(trades: list[tuple[int, int, float, float]]) -> None:
    quotes = _quotes(trades)
    flow = compute_flow_frame(
        quotes[["symbol", "ts", "price", "size", "side"]], pd.DataFrame(columns=BOOK_COLUMNS), CONFIG
    )
    bars = bars_from_quotes(quotes[["symbol", "venue", "ts", "price", "size"]], include_open=True)
    flow = flow[flow["trades"] > 0].reset_index(drop=True)  # a bar is a minute that traded
    assert flow["ts"].tolist() == (bars["start"] + MINUTE_MS).tolist()
    for row, values in zip(flow.to_dict("records"), _bar_values(bars), strict=True):
        for name in BAR_FEATURES:
            expected = row[name]
            expected = None if expected is None or (isinstance(expected, float) and math.isnan(expected)) else expected
            got = values[name]
            assert (got is None) == (expected is None), (name, got, expected)
            if got is not None:
                assert got == pytest.approx(expected, rel=1e-9, abs=1e-9), name


def test_a_session_starts_after_a_gap_longer_than_the_baseline_from_its_own_open() -> None:
    """The night's gap is the opening auction's, not a move in the first minute; the baseline starts again."""
    chunks = BarChunks(CONFIG)
    for m in range(30):
        chunks.on_bar(m * MINUTE_MS, 10.0, 10.1, 9.9, 10.0, 100.0 + m)
    late = chunks.on_bar(60 * MINUTE_MS, 10.0, 10.1, 9.9, 10.0, 100.0)  # 31 minutes later: the same session
    assert late["volume_z"] is not None
    morning = chunks.on_bar(2_000 * MINUTE_MS, 11.0, 11.2, 10.9, 11.1, 300.0)
    assert morning["ret_bps"] == pytest.approx(1e4 * math.log(11.1 / 11.0))  # not from last night's 10.0
    assert morning["ret_bps_long"] == morning["ret_bps"] and morning["volume_z"] is None


def test_no_feature_that_needs_prints_sides_or_books() -> None:
    chunks = BarChunks(CONFIG)
    values = chunks.on_bar(0, 10.0, 10.5, 9.9, 10.2, 500.0)
    assert {name for name, x in values.items() if x is not None} <= BAR_FEATURES
    assert values["trades"] is None and values["trades_long"] is None  # the bars did not count them
    assert set(values) == set(FLOW_FEATURE_NAMES)


def test_restored_goes_on_where_the_original_is() -> None:
    original = BarChunks(CONFIG)
    for m in range(40):
        original.on_bar(m * MINUTE_MS, 10.0, 10.3, 9.8, 10.0 + 0.01 * (m % 7), 100.0 + 13 * (m % 5), 5 + m % 3)
    restored = BarChunks.from_state(orjson.loads(orjson.dumps(original.to_state())), CONFIG)
    for m in range(40, 50):
        bar = (m * MINUTE_MS, 10.0, 10.3, 9.8, 10.05, 400.0 + m, 9)
        assert restored.on_bar(*bar) == original.on_bar(*bar)


def test_bar_chunks_are_one_minute() -> None:
    with pytest.raises(ValueError, match="chunk_ms"):
        BarChunks(FlowConfig())
