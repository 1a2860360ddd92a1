"""A symbol's session records (tapewatch.detectors.session_records) and the outliers held to them by the materiality
gate."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.patterns import PatternParams
from tapewatch.detectors.patterns.context import TapeContext
from tapewatch.detectors.patterns.materiality import Materiality
from tapewatch.detectors.session_records import RecordParams, SessionRecords
from tapewatch.records import AlertKind

DAY = 86_400_000
CHUNK = 5_000


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 30_000), st.none() | st.floats(-1e6, 1e6)), min_size=1, max_size=80),
    st.integers(1, 4),
    st.integers(0, 80),
)
def test_the_record_is_the_largest_value_of_the_last_sessions_and_today(
    steps: list[tuple[int, float | None]], memory: int, cut: int
) -> None:
    """Against a brute force over every value kept with its session; the state round-trips at any point."""
    params = RecordParams(memory_sessions=memory)
    records = SessionRecords(("x",), params, utc_offset_min=-300)
    seen: list[tuple[int, float | None]] = []
    ts = 0
    for i, (gap_chunks, value) in enumerate(steps):
        if i == cut:
            state = orjson.loads(orjson.dumps(records.to_state()))
            records = SessionRecords.from_state(state, ("x",), params, utc_offset_min=-300)
        ts += gap_chunks * CHUNK
        records.observe(ts, (value,))
        day = (ts - 1 - 300 * 60_000) // DAY
        seen.append((day, value))
        sessions = sorted({d for d, _ in seen if d < day})[-memory:]
        expected = [x for d, x in seen if x is not None and (d == day or d in sessions)]
        assert records.record(0).value == (max(expected) if expected else None)
        assert records.record(0).sessions == len(sessions)


def test_a_state_of_other_series_starts_empty() -> None:
    records = SessionRecords(("a",), RecordParams(), 0)
    records.observe(CHUNK, (3.0,))
    other = SessionRecords.from_state(records.to_state(), ("b",), RecordParams(), 0)
    assert other.record(0).value is None


def test_memory_is_validated() -> None:
    for bad in (0, 251):
        with pytest.raises(ValueError, match="memory_sessions"):
            RecordParams(memory_sessions=bad)


def _burst(ts: int, ret_long: float) -> Hit:
    return Hit(AlertKind.PRICE_BURST, ts, ts - CHUNK, ts, 0.8, {"ret_bps_long": ret_long}, "test")


def test_a_fat_tailed_market_beats_its_records_about_once_a_memory() -> None:
    """Ten days of a market whose 25-s moves are Student-t with 2 degrees of freedom (infinite variance: moves of
    ten times the usual happen every hour). Judged in multiples of the usual move it would burst all day; held to
    its records, a burst after the first day is rare, whatever the tails; a move beyond anything before is one."""
    params = PatternParams().with_values({"tape.close_time": None})
    gate, tape = Materiality(params.tape, params.materiality), TapeContext(params.tape)
    noise = random.Random(11)
    chunks_a_day = DAY // CHUNK
    bursts_by_day = [0] * 10
    for i in range(1, 10 * chunks_a_day + 1):
        ts = i * CHUNK
        ret_long = 5.0 * noise.gauss(0, 1) / max(1e-9, (noise.gammavariate(1.0, 1.0)) ** 0.5)  # t(2) scaled
        values = {"ret_bps_long": ret_long}
        ctx = tape.on_chunk(ts, values)
        gate.on_chunk(ctx, values)
        if abs(ret_long) >= 50.0 and gate.as_outlier(_burst(ts, ret_long), values) is not None:
            bursts_by_day[(ts - 1) // DAY] += 1
    assert bursts_by_day[0] == 0  # the first session cannot tell what is rare for the symbol
    assert sum(bursts_by_day[1:]) <= 9, bursts_by_day  # about once a day at most, where 10x moves come hourly
    record = gate.records.record(0).value
    assert record is not None
    ts = 10 * chunks_a_day * CHUNK + CHUNK
    values = {"ret_bps_long": 2 * record}
    gate.on_chunk(tape.on_chunk(ts, values), values)
    judged = gate.as_outlier(_burst(ts, 2 * record), values)
    assert judged is not None and judged.evidence["session_record"] == record
    assert judged.evidence["outlier_value"] == 2 * record
    assert judged.evidence["record_sessions"] == params.materiality.records.memory_sessions


def _ignition(ts: int, ret: float) -> Hit:
    return Hit(AlertKind.MOMENTUM_IGNITION, ts, ts - CHUNK, ts, 0.8, {"ret_bps": ret}, "test")


def test_an_ignition_must_be_a_record_only_where_the_sides_are_inferred() -> None:
    """With the sides inferred, every sweep looks one-sided and followed: only its size speaks for it, against the
    symbol's earlier ignitions (not against every chunk: a pump's or the open's moves are not sweeps)."""
    params = PatternParams().with_values({"tape.close_time": None})
    gate, tape = Materiality(params.tape, params.materiality), TapeContext(params.tape)
    gate.on_chunk(tape.on_chunk(CHUNK, {}), {})
    inferred, sided = {"inferred_share_long": 1.0}, {"inferred_share_long": 0.0}
    first = _ignition(CHUNK, 80.0)
    assert gate.as_outlier(first, inferred) is not None  # the symbol's first: nothing to beat
    smaller = _ignition(2 * CHUNK, -60.0)
    assert gate.as_outlier(smaller, inferred) is None
    assert gate.as_outlier(smaller, sided) is smaller
    judged = gate.as_outlier(_ignition(3 * CHUNK, -90.0), inferred)
    assert judged is not None and judged.evidence["outlier_value"] == 90.0
    assert judged.evidence["session_record"] == 80.0 and judged.evidence["record_sessions"] == 0
