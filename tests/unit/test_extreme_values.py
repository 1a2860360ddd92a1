"""Values the record contract accepts stay finite through every computation: bars, bar features, order-flow
features and the pattern detectors, driven with the most extreme prices, sizes and time stamps it allows."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.detectors.bars import BarBuilder, LateQuoteError
from tapewatch.detectors.features import FeatureState
from tapewatch.detectors.flow import FlowConfig, FlowState, LateRecordError
from tapewatch.detectors.patterns import SymbolDetector
from tapewatch.records import MAX_EPOCH_MS, MAX_PRICE, MAX_SIZE, MIN_PRICE, MIN_SIZE, Alert, Bar, Book, Quote, Side

prices = st.one_of(
    st.sampled_from([MIN_PRICE, 1e-8, 1.0, MAX_PRICE]),
    st.floats(min_value=MIN_PRICE, max_value=MAX_PRICE, allow_nan=False, allow_infinity=False),
)
sizes = st.one_of(
    st.sampled_from([0.0, MIN_SIZE, 1.0, MAX_SIZE]),
    st.floats(min_value=MIN_SIZE, max_value=MAX_SIZE, allow_nan=False, allow_infinity=False),
)
steps = st.integers(min_value=0, max_value=400_000)
events = st.lists(
    st.tuples(st.booleans(), steps, prices, sizes, st.sampled_from([None, Side.BUY, Side.SELL])),
    min_size=1,
    max_size=120,
)
starts = st.sampled_from([0, 1_700_000_000_000, MAX_EPOCH_MS - 10**9])
CONFIG = FlowConfig(chunk_ms=1000, long_chunks=2, baseline_chunks=6, baseline_min_chunks=2, grace_ms=0)


def finite(values: dict[str, Any]) -> bool:
    return all(v is None or (isinstance(v, int | float) and math.isfinite(v)) for v in values.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=starts, stream=events)
def test_extreme_but_valid_records_keep_every_output_finite(start: int, stream: list[Any]) -> None:
    bars = BarBuilder("X")
    features = FeatureState()
    flow = FlowState("X", CONFIG)
    detector = SymbolDetector("X", "sim", None)
    ts = start
    outputs: list[Bar | Alert] = []
    for is_book, step, price, size, side in stream:
        ts = min(ts + step, MAX_EPOCH_MS - 1)
        if is_book:
            record: Quote | Book = Book(
                symbol="X", venue="sim", ts=ts, bids=[(price, size)], asks=[(min(price * 2, MAX_PRICE), size)]
            )
        else:
            record = Quote(symbol="X", venue="sim", ts=ts, price=price, size=size, side=side)
            try:
                closed = bars.on_quote(record)
            except LateQuoteError:
                closed = []
            for bar in closed:
                values = features.on_bar(bar)
                assert finite(values), values
                _, alerts = detector.on_bar(bar.end, values)
                outputs += [bar, *alerts]
        try:
            chunks = flow.on_quote(record) if isinstance(record, Quote) else flow.on_book(record)
        except LateRecordError:
            chunks = []
        for chunk in chunks:
            assert finite(chunk.values), chunk.values
            outputs += detector.on_chunk(chunk.ts, chunk.values)
    for chunk in flow.flush():
        assert finite(chunk.values), chunk.values
    for bar in bars.flush():
        assert finite(features.on_bar(bar))
    for out in outputs:  # every output is a valid record again (what the sinks decode)
        assert type(out).from_json(out.to_json()) == out
