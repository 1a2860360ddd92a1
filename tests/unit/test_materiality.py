"""The materiality gate and the time-of-day baselines it reads (tapewatch.detectors.patterns.materiality,
tapewatch.detectors.seasonal)."""

from __future__ import annotations

import math
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.flow import FlowConfig
from tapewatch.detectors.patterns import FlowPatterns, PatternParams
from tapewatch.detectors.patterns.context import TapeContext
from tapewatch.detectors.patterns.materiality import Materiality, MaterialityParams
from tapewatch.detectors.seasonal import SeasonalParams, TimeOfDayProfile
from tapewatch.feeds import FeedProfiles
from tapewatch.records import AlertKind

DAY = 86_400_000
MINUTE = 60_000
CHUNK = 5_000


def _hit(kind: AlertKind, ts: int, evidence: dict[str, float] | None = None) -> Hit:
    return Hit(kind, ts, ts - CHUNK, ts, 0.9, evidence or {}, "test")


def _gate_on(params: PatternParams) -> tuple[TapeContext, Materiality]:
    return TapeContext(params.tape), Materiality(params.tape, params.materiality)


def test_a_few_bps_never_alert_however_quiet_the_hour() -> None:
    """A thin hour's σ is tiny: 3 bps is many of them, and under the floor."""
    params = PatternParams().with_values({"tape.close_time": None})
    tape, gate = _gate_on(params)
    for i in range(1, 721):  # an hour of 0.1-bps wiggles: the session's typical drift is a fraction of a bps
        ctx = tape.on_chunk(i * CHUNK, {"ret_bps": 0.1 if i % 2 else -0.1})
        gate.on_chunk(ctx, {"volume": 10.0})
    ctx = tape.on_chunk(722 * CHUNK, {"ret_bps": 3.0})
    gate.on_chunk(ctx, {"volume": 10.0})
    for kind in (AlertKind.PUMP_AND_DUMP, AlertKind.MARKING_THE_CLOSE, AlertKind.MOMENTUM_IGNITION):
        assert gate.judge(ctx, {}, _hit(kind, ctx.ts)) is None
    # spoofing and wash trading are not about a price move
    for kind in (AlertKind.SPOOFING, AlertKind.WASH_TRADING):
        assert gate.judge(ctx, {}, _hit(kind, ctx.ts)) is not None


def test_the_floor_is_the_venues() -> None:
    profiles = FeedProfiles({"thin": {"material_bps": 60.0}})
    params = PatternParams().for_feed(FlowConfig(), profiles("thin"))
    assert params.materiality.floor_bps == 60.0
    assert PatternParams().for_feed(FlowConfig(), profiles("sim")).materiality.floor_bps == 25.0
    with pytest.raises(ValueError, match="material_bps"):
        FeedProfiles({"bad": {"material_bps": -1}})
    with pytest.raises(ValueError, match="floor_bps"):
        MaterialityParams(floor_bps=math.nan)


def _open_every_day(days: int, open_ret: float) -> tuple[TapeContext, Materiality, PatternParams]:
    """Days of a 24-hour tape, quiet (a random walk of ±0.5 bps a chunk) but for 09:00-09:30 each day, when the
    steps are ±``open_ret`` and it trades ten times the volume."""
    params = PatternParams().with_values({"tape.close_time": None})
    tape, gate = _gate_on(params)
    coin = random.Random(7)
    for ts in range(CHUNK, days * DAY + 1, CHUNK):
        minute_of_day = (ts - 1) % DAY // MINUTE
        busy = 9 * 60 <= minute_of_day < 9 * 60 + 30
        sign = coin.choice((1.0, -1.0))
        values = {"ret_bps": sign * (open_ret if busy else 0.5), "volume": 1_000.0 if busy else 100.0}
        gate.on_chunk(tape.on_chunk(ts, values), values)
    return tape, gate, params


def test_what_every_open_does_is_the_opens_baseline() -> None:
    tape, gate, params = _open_every_day(3, open_ret=20.0)
    at_open, at_night = 3 * DAY + 9 * 60 * MINUTE + 10 * MINUTE, 3 * DAY + 3 * 60 * MINUTE
    open_move = gate.profile.typical(at_open, 0)
    night_move = gate.profile.typical(at_night, 0)
    assert open_move.sessions == 3 and night_move.sessions == 3
    assert open_move.value is not None and night_move.value is not None
    assert math.sqrt(open_move.value) > 5 * math.sqrt(night_move.value)
    # a 40 bps move at the open is inside what the open does; at night it is material
    for ts, material in ((at_open, False), (at_night, True)):
        ctx = tape.on_chunk(ts, {"ret_bps": 40.0})
        judged = gate.judge(ctx, {}, _hit(AlertKind.PUMP_AND_DUMP, ts))
        assert (judged is not None) is material
    # the open's volume is what the open trades: no burst at ten times the night's
    values = {"volume_long": 5 * 1_000.0}
    ctx = tape.on_chunk(at_open + CHUNK, values)
    gate.on_chunk(ctx, values)  # the largest long-window volume yet: a record, so only the baseline judges it
    assert gate.judge(ctx, values, _hit(AlertKind.VOLUME_BURST, ctx.ts, values)) is None
    burst = {"volume_long": 5 * 1_000.0 * params.materiality.volume_multiple}
    ctx = tape.on_chunk(at_open + 2 * CHUNK, burst)
    gate.on_chunk(ctx, burst)
    judged = gate.judge(ctx, burst, _hit(AlertKind.VOLUME_BURST, ctx.ts, burst))
    assert judged is not None and judged.evidence["usual_volume_long"] == pytest.approx(5_000.0)


def test_one_session_cannot_teach_a_bucket_more_than_max_growth() -> None:
    params = SeasonalParams(bucket_minutes=60, min_chunks=1, max_growth=4.0)
    profile = TimeOfDayProfile(("x",), params, utc_offset_min=0)
    for day, value in ((0, 1.0), (1, 1_000.0)):
        for ts in range(day * DAY + CHUNK, day * DAY + 2 * 60 * MINUTE + 1, CHUNK):
            profile.observe(ts, (value,))
    learnt = profile.typical(2 * DAY + 30 * MINUTE, 0)
    assert learnt.sessions == 2 and learnt.value == pytest.approx(1.0 + 0.5 * (4.0 - 1.0))


def test_a_bucket_seen_too_briefly_teaches_nothing() -> None:
    profile = TimeOfDayProfile(("x",), SeasonalParams(min_chunks=24), utc_offset_min=0)
    for ts in range(CHUNK, 10 * CHUNK + 1, CHUNK):
        profile.observe(ts, (5.0,))
    profile.observe(DAY + CHUNK, (1.0,))  # leaves the bucket after 10 chunks
    assert profile.typical(2 * DAY + CHUNK, 0).value is None


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 400), st.floats(0, 1e4), st.none() | st.floats(0, 1e6)), min_size=1, max_size=80),
    st.integers(0, 80),
)
def test_the_profile_restored_from_its_state_goes_on_where_the_original_is(
    steps: list[tuple[int, float, float | None]], cut: int
) -> None:
    """Chunks a few minutes to hours apart: the state round-trips through JSON at any point."""
    params = SeasonalParams(bucket_minutes=15, min_chunks=2)
    original = TimeOfDayProfile(("a", "b"), params, utc_offset_min=480)
    restored: TimeOfDayProfile | None = None
    ts = 0
    for i, (gap_chunks, a, b) in enumerate(steps):
        ts += gap_chunks * CHUNK
        if i == cut:
            state = orjson.loads(orjson.dumps(original.to_state()))
            restored = TimeOfDayProfile.from_state(state, ("a", "b"), params, utc_offset_min=480)
        for profile in (original, restored):
            if profile is not None:
                profile.observe(ts, (a, b))
    if restored is not None:
        assert restored.to_state() == original.to_state()
        assert restored.typical(ts, 0) == original.typical(ts, 0)


def test_a_state_of_another_layout_starts_empty() -> None:
    profile = TimeOfDayProfile(("x",), SeasonalParams(), 0)
    profile.learnt = {3: [1.0, 2.0]}
    other = TimeOfDayProfile.from_state(profile.to_state(), ("x",), SeasonalParams(bucket_minutes=15), 0)
    assert other.learnt == {}


def test_flow_patterns_keep_the_profile_in_their_state() -> None:
    patterns = FlowPatterns(PatternParams().with_values({"tape.close_time": None}))
    for i in range(1, 400):
        patterns.on_chunk(i * CHUNK, {"ret_bps": 1.0, "volume": 10.0})
    restored = FlowPatterns.from_state(
        orjson.loads(orjson.dumps(patterns.to_state())), PatternParams().with_values({"tape.close_time": None})
    )
    assert restored.materiality.profile.to_state() == patterns.materiality.profile.to_state()
    assert patterns.materiality.profile.learnt  # the first half hour was folded


@pytest.mark.parametrize(
    "bad",
    [
        {"bucket_minutes": 7},
        {"bucket_minutes": 0},
        {"memory_sessions": 0},
        {"min_chunks": 0},
        {"max_growth": 1.0},
    ],
)
def test_seasonal_parameters_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SeasonalParams(**bad)  # type: ignore[arg-type]


def test_an_immaterial_pump_is_held_and_raised_when_its_run_up_turns_material() -> None:
    """The onset fires before the price has moved: the hit is held, and raised (dated from its first window) in the
    chunk the rise clears the bar; a fall does not raise a held pump, and a held hit expires."""
    params = PatternParams().with_values({"tape.close_time": None})
    tape, gate = _gate_on(params)
    onset = Hit(AlertKind.PUMP_AND_DUMP, 2 * CHUNK, CHUNK, 2 * CHUNK, 0.8, {"onset_chunks": 2}, "test")
    raised: list[Hit] = []
    for i, ret in enumerate([2.0, 2.0, -15.0, -15.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0], start=2):
        ctx = tape.on_chunk(i * CHUNK, {"ret_bps": ret})
        gate.on_chunk(ctx, {})
        raised += gate.on_hits(ctx, {}, [onset] if i == 2 else [])
        if i == 5:
            assert not raised and AlertKind.PUMP_AND_DUMP in gate.pending  # 30 bps down: not a pump's move
    [pump] = raised
    # the drift from the start reaches +34 bps at the 11th chunk (+24 at the 10th: under the 25 bps floor)
    assert pump.window_start == CHUNK and pump.ts == 11 * CHUNK and pump.score == 0.8
    assert pump.evidence["calibrated"] is False and pump.evidence["price_move_bps"] == pytest.approx(34.0)
    assert not gate.pending
    # held past pending_ms with no material move: forgotten
    tape, gate = _gate_on(params)
    ctx = tape.on_chunk(2 * CHUNK, {"ret_bps": 1.0})
    assert gate.on_hits(ctx, {}, [onset]) == [] and gate.pending
    late = 2 * CHUNK + params.materiality.pending_ms + CHUNK
    assert gate.on_hits(tape.on_chunk(late, {"ret_bps": 40.0}), {}, []) == [] and not gate.pending


def test_a_pump_is_material_by_its_rise_a_fall_is_not_one() -> None:
    """A pump stands on its run-up, dumped since or not; a deep fall with a small bounce pumped nothing, though
    marking the close (either direction) stands on that fall."""
    params = PatternParams().with_values({"tape.close_time": None})

    def judged(rets: list[float], kind: AlertKind) -> Hit | None:
        tape, gate = _gate_on(params)
        for i, ret in enumerate(rets, start=1):
            ctx = tape.on_chunk(i * CHUNK, {"ret_bps": ret})
            gate.on_chunk(ctx, {})
        return gate.judge(ctx, {}, _hit(kind, ctx.ts))

    fell_then_bounced = [-20.0] * 5 + [2.0] * 5  # 100 bps down, 10 up
    assert judged(fell_then_bounced, AlertKind.PUMP_AND_DUMP) is None
    assert judged(fell_then_bounced, AlertKind.MARKING_THE_CLOSE) is not None
    pumped_and_dumped = [8.0] * 5 + [-8.0] * 5  # 40 bps up, back to where it began
    pump = judged(pumped_and_dumped, AlertKind.PUMP_AND_DUMP)
    assert pump is not None and pump.evidence["price_move_bps"] == pytest.approx(40.0)
