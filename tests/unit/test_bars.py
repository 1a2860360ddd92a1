"""The incremental bar builder against its pandas batch twin, and the edge cases of the bar definitions."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.detectors.bars import (
    MINUTE_MS,
    BarBuilder,
    LateQuoteError,
    MultiBarBuilder,
    bars_from_quotes,
    bars_to_frame,
    build_bars,
    minute_start,
    quotes_to_frame,
)
from tapewatch.records import Bar, Quote

T0 = 1_763_700_000_000 - 1_763_700_000_000 % MINUTE_MS  # a minute boundary


def trade(ts: int, price: float, size: float = 1.0, symbol: str = "AAA", venue: str = "test") -> Quote:
    return Quote(symbol=symbol, venue=venue, ts=ts, price=price, size=size)


def tick(ts: int, symbol: str = "AAA", venue: str = "test") -> Quote:
    """A quote without a trade (bid/ask update)."""
    return Quote(symbol=symbol, venue=venue, ts=ts, bid=1.0, ask=2.0)


def assert_same_bars(stream: pd.DataFrame, batch: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(stream, batch, check_exact=False, rtol=1e-9, atol=1e-9)


def assert_twins_agree(quotes: list[Quote], grace_ms: int = 0) -> list[Bar]:
    """Incremental and batch agree, with and without flushing the open minutes; returns the closed bars."""
    closed = build_bars(quotes, grace_ms=grace_ms)
    frame = quotes_to_frame(quotes)
    assert_same_bars(bars_to_frame(closed), bars_from_quotes(frame, grace_ms=grace_ms))
    assert_same_bars(
        bars_to_frame(build_bars(quotes, include_open=True, grace_ms=grace_ms)),
        bars_from_quotes(frame, include_open=True, grace_ms=grace_ms),
    )
    return closed


# --- hand-made series ---------------------------------------------------------------------------
def test_minute_start() -> None:
    assert minute_start(T0) == T0
    assert minute_start(T0 + MINUTE_MS - 1) == T0
    assert minute_start(T0 + MINUTE_MS) == T0 + MINUTE_MS


def test_hand_made_series() -> None:
    quotes = [
        trade(T0 + 1_000, 10.0, 100),
        tick(T0 + 2_000),
        trade(T0 + 30_000, 12.0, 50),
        trade(T0 + 59_999, 11.0, 50),  # last millisecond of minute 0
        trade(T0 + 60_000, 11.5, 300),  # first millisecond of minute 1: closes minute 0
        trade(T0 + 61_000, 11.0, 100),
        tick(T0 + 3 * MINUTE_MS + 5),  # a quote without trade in minute 3 closes minute 1; minute 2 is empty
        trade(T0 + 4 * MINUTE_MS, 9.0, 0),  # closes minute 3, which had no trade: no bar
    ]
    builder = BarBuilder("AAA", grace_ms=0)
    emitted = [[bar.start for bar in builder.on_quote(q)] for q in quotes]
    assert emitted == [[], [], [], [], [T0], [], [T0 + MINUTE_MS], []]

    bars = assert_twins_agree(quotes)
    assert len(bars) == 2
    first, second = bars
    assert (first.start, first.end) == (T0, T0 + MINUTE_MS)
    assert (first.open, first.high, first.low, first.close) == (10.0, 12.0, 10.0, 11.0)
    assert first.volume == 200.0 and first.trades == 3
    assert first.vwap == pytest.approx((10.0 * 100 + 12.0 * 50 + 11.0 * 50) / 200)
    assert first.price_change_pct is None and first.volume_change_pct is None  # first bar of the symbol
    assert (second.open, second.high, second.low, second.close) == (11.5, 11.5, 11.0, 11.0)
    assert second.volume == 400.0 and second.trades == 2
    assert second.price_change_pct == pytest.approx(0.0)
    assert second.volume_change_pct == pytest.approx(100.0)

    # flushing the minute-4 trade: size 0 everywhere → VWAP is the mean price; change vs the minute-1 bar
    (last,) = builder.flush()
    assert last.start == T0 + 4 * MINUTE_MS
    assert last.vwap == 9.0 and last.volume == 0.0 and last.trades == 1
    assert last.price_change_pct == pytest.approx((9.0 - 11.0) / 11.0 * 100)
    assert last.volume_change_pct == pytest.approx(-100.0)


def test_previous_volume_zero_gives_no_volume_change() -> None:
    quotes = [trade(T0, 10.0, 0), trade(T0 + MINUTE_MS, 11.0, 5), tick(T0 + 2 * MINUTE_MS)]
    first, second = assert_twins_agree(quotes)
    assert first.vwap == 10.0
    assert second.volume_change_pct is None
    assert second.price_change_pct == pytest.approx(10.0)


def test_only_no_trade_quotes_make_no_bars() -> None:
    quotes = [tick(T0 + i * 20_000) for i in range(10)]
    assert assert_twins_agree(quotes) == []
    assert build_bars(quotes, include_open=True, grace_ms=0) == []


def test_first_quote_and_empty_input() -> None:
    builder = BarBuilder("AAA", grace_ms=0)
    assert builder.flush() == []
    assert builder.on_quote(trade(T0, 10.0)) == []
    assert bars_from_quotes(quotes_to_frame([])).empty
    assert bars_to_frame([]).columns.tolist() == bars_from_quotes(quotes_to_frame([])).columns.tolist()


def test_late_quote_is_rejected_and_changes_nothing() -> None:
    builder = BarBuilder("AAA", grace_ms=0)
    builder.on_quote(trade(T0 + 10, 10.0))
    builder.on_quote(trade(T0 + MINUTE_MS + 10, 11.0))  # closes minute 0
    before = builder.to_state()
    with pytest.raises(LateQuoteError) as info:
        builder.on_quote(trade(T0 + 20, 99.0))
    assert info.value.clock == T0 + MINUTE_MS + 10
    with pytest.raises(LateQuoteError):
        builder.on_quote(tick(T0 + 30))  # a late quote without trade is late too
    assert builder.to_state() == before
    # out of order within the open minute is fine
    assert builder.on_quote(trade(T0 + MINUTE_MS + 5, 12.0)) == []

    quotes = [trade(T0 + 10, 10.0), trade(T0 + MINUTE_MS + 10, 11.0), trade(T0 + 20, 99.0), tick(T0 + 2 * MINUTE_MS)]
    multi = MultiBarBuilder(grace_ms=0)
    bars = [bar for q in quotes for bar in multi.on_quote(q)]
    assert [q.price for q in multi.late] == [99.0]
    assert [bar.high for bar in bars] == [10.0, 11.0]
    assert_twins_agree(quotes)


def test_flush_closes_the_minute_for_good() -> None:
    builder = BarBuilder("AAA", grace_ms=0)
    builder.on_quote(trade(T0 + 5, 10.0))
    assert [bar.start for bar in builder.flush()] == [T0]
    with pytest.raises(LateQuoteError):
        builder.on_quote(trade(T0 + 6, 10.0))
    assert builder.on_quote(trade(T0 + MINUTE_MS, 10.0)) == []


def test_symbols_are_independent() -> None:
    quotes = [
        trade(T0, 10.0, symbol="AAA"),
        trade(T0 + 1, 20.0, symbol="BBB"),
        trade(T0 + MINUTE_MS, 11.0, symbol="AAA"),  # closes AAA's minute 0 only
        trade(T0 + 5, 21.0, symbol="BBB"),  # not late: BBB is still in minute 0
        tick(T0 + 2 * MINUTE_MS, symbol="BBB"),
    ]
    bars = assert_twins_agree(quotes)
    assert [(b.symbol, b.start, b.close) for b in bars] == [("AAA", T0, 10.0), ("BBB", T0, 21.0)]


def test_grace_keeps_minutes_open_for_out_of_order_quotes() -> None:
    builder = BarBuilder("AAA", grace_ms=5_000)
    assert builder.on_quote(trade(T0 + 10_000, 10.0)) == []
    assert builder.on_quote(trade(T0 + MINUTE_MS + 1_000, 11.0)) == []  # minute 0 stays open: watermark < its end
    assert builder.on_quote(trade(T0 + 59_000, 12.0)) == []  # 2 s out of order: still counts in minute 0
    assert builder.on_quote(trade(T0 + 5_000, 9.0)) == []  # earlier than the open trade: becomes the open
    assert builder.open_bar_start == T0
    (bar,) = builder.on_quote(tick(T0 + MINUTE_MS + 5_000))  # watermark reaches minute 0's end
    assert (bar.open, bar.high, bar.low, bar.close, bar.trades) == (9.0, 12.0, 9.0, 12.0, 3)
    with pytest.raises(LateQuoteError, match="grace 5000 ms"):
        builder.on_quote(trade(T0 + 59_999, 1.0))
    # two minutes closed by one jump, oldest first
    builder.on_quote(trade(T0 + 2 * MINUTE_MS + 1, 13.0))
    bars = builder.on_quote(tick(T0 + 10 * MINUTE_MS))
    assert [b.start for b in bars] == [T0 + MINUTE_MS, T0 + 2 * MINUTE_MS]
    assert bars[1].price_change_pct == pytest.approx((13.0 - 11.0) / 11.0 * 100)


def test_open_and_close_follow_event_time_with_ties_in_arrival_order() -> None:
    quotes = [
        trade(T0 + 500, 10.0, venue="late-open"),
        trade(T0 + 100, 11.0, venue="v-open"),
        trade(T0 + 100, 12.0, venue="v-tie"),
        trade(T0 + 900, 13.0),
        trade(T0 + 900, 14.0),
        trade(T0 + 800, 15.0),
    ]
    (bar,) = build_bars(quotes, include_open=True, grace_ms=1_000)
    assert (bar.open, bar.close, bar.venue) == (11.0, 14.0, "v-open")
    assert_twins_agree(quotes, grace_ms=1_000)


def test_wrong_symbol_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="BBB"):
        BarBuilder("AAA", grace_ms=0).on_quote(trade(T0, 1.0, symbol="BBB"))


def test_venue_is_the_first_trades() -> None:
    quotes = [tick(T0, venue="quotes-only"), trade(T0 + 1, 10.0, venue="v1"), trade(T0 + 2, 10.0, venue="v2")]
    (bar,) = build_bars(quotes, include_open=True, grace_ms=0)
    assert bar.venue == "v1"
    assert_twins_agree(quotes)


def test_state_round_trip_through_json() -> None:
    quotes = [trade(T0 + i * 7_001, 10.0 + i * 0.1, i % 3) for i in range(40)]
    whole = BarBuilder("AAA", grace_ms=0)
    split = BarBuilder("AAA", grace_ms=0)
    out_whole = [bar for q in quotes for bar in whole.on_quote(q)]
    out_split = [bar for q in quotes[:17] for bar in split.on_quote(q)]
    split = BarBuilder.from_state(json.loads(json.dumps(split.to_state())))
    out_split += [bar for q in quotes[17:] for bar in split.on_quote(q)]
    assert out_split == out_whole
    assert split.to_state() == whole.to_state()


def test_unknown_state_version() -> None:
    state = BarBuilder("AAA", grace_ms=0).to_state()
    state["v"] = 999
    with pytest.raises(ValueError, match="version"):
        BarBuilder.from_state(state)


def test_batch_twin_accepts_none_prices_and_missing_size() -> None:
    frame = pd.DataFrame(
        {"symbol": ["AAA"] * 3, "venue": ["v"] * 3, "ts": [T0, T0 + 1, T0 + MINUTE_MS], "price": [10.0, None, None]}
    )
    bars = bars_from_quotes(frame, grace_ms=0)
    assert bars["vwap"].tolist() == [10.0] and bars["volume"].tolist() == [0.0]
    with pytest.raises(ValueError, match="price"):
        bars_from_quotes(frame.drop(columns=["price"]))


# --- generated series ---------------------------------------------------------------------------
SYMBOLS = ("AAA", "BBB.TW", "ETHUSDT")


@st.composite
def time_step(draw: st.DrawFn) -> int:
    """Mostly forward by seconds, sometimes by minutes (closing bars, leaving gaps), rarely backwards."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.integers(-2 * MINUTE_MS, 0))  # out of order within the minute, or late
    if kind <= 3:
        return draw(st.integers(MINUTE_MS // 2, 3 * MINUTE_MS))
    return draw(st.integers(0, 20_000))


steps = st.tuples(
    st.sampled_from(SYMBOLS),
    time_step(),
    # realistic magnitudes: prices and sizes from 1e-4 (crypto lots) to 1e6, or no size at all
    st.one_of(st.none(), st.floats(1e-4, 1e6)),
    st.one_of(st.just(0.0), st.floats(1e-4, 1e6)),
)


@st.composite
def quote_series(draw: st.DrawFn) -> list[Quote]:
    start = draw(st.integers(0, 2_000_000_000_000))
    clock = dict.fromkeys(SYMBOLS, start)
    quotes = []
    length = draw(st.integers(1, 150))
    for symbol, delta, price, size in draw(st.lists(steps, min_size=length, max_size=length)):
        clock[symbol] = max(0, clock[symbol] + delta)
        venue = "v" + str(clock[symbol] % 2)
        if price is None:
            quotes.append(Quote(symbol=symbol, venue=venue, ts=clock[symbol]))
        else:
            quotes.append(Quote(symbol=symbol, venue=venue, ts=clock[symbol], price=price, size=size))
    return quotes


GRACES = st.sampled_from((0, 1, 2_000, 45_000, 90_000))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quote_series(), GRACES)
def test_incremental_equals_batch(quotes: list[Quote], grace_ms: int) -> None:
    bars = assert_twins_agree(quotes, grace_ms)
    for bar in bars:
        assert bar.low <= bar.vwap * (1 + 1e-12) and bar.vwap <= bar.high * (1 + 1e-12)
        assert bar.end - bar.start == MINUTE_MS and bar.start % MINUTE_MS == 0
        assert bar.trades >= 1
        assert bar.price_change_pct is None or math.isfinite(bar.price_change_pct)


@settings(max_examples=100, deadline=None)
@given(quote_series(), GRACES, st.data())
def test_resuming_from_state_changes_nothing(quotes: list[Quote], grace_ms: int, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(quotes)))
    uninterrupted = MultiBarBuilder(grace_ms)
    expected = [bar for q in quotes for bar in uninterrupted.on_quote(q)]
    resumed = MultiBarBuilder(grace_ms)
    got = [bar for q in quotes[:cut] for bar in resumed.on_quote(q)]
    resumed.builders = {
        symbol: BarBuilder.from_state(json.loads(json.dumps(b.to_state())), grace_ms)
        for symbol, b in resumed.builders.items()
    }
    got += [bar for q in quotes[cut:] for bar in resumed.on_quote(q)]
    assert got == expected
