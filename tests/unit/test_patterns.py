"""Pattern detectors: each rule fires on its signature and not on quiet flow; state round trips anywhere."""

from __future__ import annotations

from datetime import time

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.patterns import FlowPatterns, PatternParams, SymbolDetector
from tapewatch.records import AlertKind

T0 = 1_704_157_200_000  # 2024-01-02 09:00 Taipei
QUIET = {
    "trades": 3.0,
    "trades_z": 0.0,
    "trades_z_long": 0.0,
    "aggr_imbalance": 0.1,
    "aggr_imbalance_long": 0.0,
    "ret_bps": 0.0,
    "ret_bps_long": 0.0,
    "rush_orders_long": 1.0,
    "alternation": 0.4,
    "size_repeat": 0.5,
    "level_typical": 10_000.0,
    "cancel_l25": 5_000.0,
    "level_max_rel_long": 2.0,
    "volume_z_long": 0.0,
    "trades_long": 15.0,
}


def _kinds(detector: FlowPatterns, chunks: list[dict[str, float]], t0: int = T0) -> list[AlertKind]:
    kinds = []
    for i, values in enumerate(chunks):
        kinds += [hit.kind for hit in detector.on_chunk(t0 + (i + 1) * 5_000, values)]
    return kinds


def test_quiet_flow_never_hits() -> None:
    assert _kinds(FlowPatterns(), [QUIET] * 500) == []


def test_pump_needs_a_sustained_surge() -> None:
    surge = {**QUIET, "trades_z_long": 6.0, "aggr_imbalance_long": 0.7, "ret_bps_long": 20.0, "rush_orders_long": 5}
    params = PatternParams()
    kinds = _kinds(FlowPatterns(params), [QUIET] * 10 + [surge] * params.pump_min_chunks)
    assert kinds.count(AlertKind.PUMP_AND_DUMP) == 1
    short = _kinds(FlowPatterns(params), [QUIET] * 10 + [surge] * (params.pump_min_chunks - 1))
    assert AlertKind.PUMP_AND_DUMP not in short


def test_spoofing_is_large_cancelled_depth_away_from_the_touch() -> None:
    layers = {**QUIET, "cancel_l25": 120_000.0, "level_max_rel_long": 9.0}
    assert _kinds(FlowPatterns(), [QUIET, layers]) == [AlertKind.SPOOFING]
    no_layer = {**layers, "level_max_rel_long": 2.0}
    assert _kinds(FlowPatterns(), [QUIET, no_layer]) == []


def test_wash_trading_needs_repeated_alternating_chunks() -> None:
    wash = {**QUIET, "trades": 8.0, "alternation": 1.0, "size_repeat": 1.0}
    assert _kinds(FlowPatterns(), [QUIET, wash]) == [AlertKind.WASH_TRADING]
    assert _kinds(FlowPatterns(), [QUIET, {**wash, "trades": 5.0}]) == []
    assert _kinds(FlowPatterns(), [QUIET, {**wash, "alternation": 0.5}]) == []
    two = PatternParams(wash_min_chunks=2)
    assert _kinds(FlowPatterns(two), [QUIET, wash]) == []
    assert _kinds(FlowPatterns(two), [QUIET, wash, wash]) == [AlertKind.WASH_TRADING]


def test_marking_the_close_only_near_the_close() -> None:
    push = {**QUIET, "trades_z_long": 5.0, "aggr_imbalance_long": 0.6, "ret_bps_long": 15.0, "ret_bps": 45.0}
    close_start = T0 + (4 * 60 + 25) * 60_000  # 13:25 Taipei
    near = _kinds(FlowPatterns(), [push] * 6, close_start)
    assert AlertKind.MARKING_THE_CLOSE in near
    assert AlertKind.MARKING_THE_CLOSE not in _kinds(FlowPatterns(), [push] * 6, T0 + 3_600_000)
    disabled = FlowPatterns(PatternParams(close_time=None))
    assert AlertKind.MARKING_THE_CLOSE not in _kinds(disabled, [push] * 6, close_start)
    assert FlowPatterns(PatternParams(close_time=time(16, 0))).ms_to_close(close_start) == (2 * 60 + 35) * 60_000


def test_momentum_ignition_is_a_one_sided_sweep() -> None:
    sweep = {**QUIET, "ret_bps": 40.0, "aggr_imbalance": 1.0, "trades_z": 6.0}
    assert _kinds(FlowPatterns(), [QUIET, sweep]) == [AlertKind.MOMENTUM_IGNITION]
    against = {**sweep, "aggr_imbalance": -1.0}
    assert _kinds(FlowPatterns(), [QUIET, against]) == []


def test_unknown_parameter_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown pattern parameter"):
        PatternParams().with_overrides({"pump_speed": 3})


chunk = st.fixed_dictionaries(
    {
        "trades": st.sampled_from([2.0, 8.0]),
        "trades_z": st.sampled_from([0.0, 6.0]),
        "trades_z_long": st.sampled_from([0.0, 6.0]),
        "aggr_imbalance": st.sampled_from([-1.0, 0.0, 1.0]),
        "aggr_imbalance_long": st.sampled_from([0.0, 0.8]),
        "ret_bps": st.sampled_from([-40.0, 0.0, 40.0]),
        "ret_bps_long": st.sampled_from([0.0, 30.0, 200.0]),
        "rush_orders_long": st.sampled_from([0.0, 5.0]),
        "alternation": st.sampled_from([0.3, 1.0]),
        "size_repeat": st.sampled_from([0.3, 1.0]),
        "level_typical": st.just(10_000.0),
        "cancel_l25": st.sampled_from([0.0, 200_000.0]),
        "level_max_rel_long": st.sampled_from([1.0, 9.0]),
        "volume_z_long": st.sampled_from([0.0, 30.0]),
        "trades_long": st.just(40.0),
    }
)


@given(st.lists(st.tuples(st.integers(1, 3), chunk), max_size=60), st.integers(0, 60))
@settings(max_examples=60, deadline=None)
def test_detector_state_round_trip_anywhere(steps: list[tuple[int, dict[str, float]]], cut: int) -> None:
    ts, records = T0, []
    for gap, values in steps:
        ts += gap * 5_000
        records.append((ts, values))
    whole = SymbolDetector("S", "sim")
    expected = [a for t, v in records for a in whole.on_flow_features(t, v)]
    first = SymbolDetector("S", "sim")
    got = [a for t, v in records[:cut] for a in first.on_flow_features(t, v)]
    resumed = SymbolDetector.from_state(orjson.loads(orjson.dumps(first.to_state())))
    got += [a for t, v in records[cut:] for a in resumed.on_flow_features(t, v)]
    assert got == expected


def test_wash_bursts_straddling_chunks_are_seen_in_the_long_window() -> None:
    # no single chunk is a wash chunk, but 25 s of mostly alternating, repeated-size, heavy volume is
    long_wash = {
        **QUIET,
        "trades_long": 30.0,
        "alternation_long": 0.75,
        "size_repeat_vol_long": 0.95,
        "volume_z_long": 3.0,
    }
    assert _kinds(FlowPatterns(), [QUIET, long_wash]) == [AlertKind.WASH_TRADING]
    # the same alternation over few trades is not significant; without extra volume it is ordinary flow
    assert _kinds(FlowPatterns(), [QUIET, {**long_wash, "trades_long": 8.0}]) == []
    assert _kinds(FlowPatterns(), [QUIET, {**long_wash, "volume_z_long": 0.0}]) == []


def test_wash_two_price_tape() -> None:
    tape = {
        **QUIET,
        "trades_long": 200.0,
        "alternation_long": 0.45,  # too little over 200 trades for the alternation test alone
        "size_repeat_vol_long": 0.9,
        "volume_z_long": 6.0,
        "aggr_imbalance_long": 0.05,
        "range_bps_long": 20.0,
        "spread_bps_long": 20.0,
    }
    assert _kinds(FlowPatterns(), [QUIET, tape]) == [AlertKind.WASH_TRADING]
    assert _kinds(FlowPatterns(), [QUIET, {**tape, "range_bps_long": 45.0}]) == []  # prices moved: not frozen
    assert _kinds(FlowPatterns(), [QUIET, {**tape, "aggr_imbalance_long": 0.6}]) == []  # one-sided


def test_pump_early_ramp_with_flat_price_fires_but_a_falling_one_does_not() -> None:
    ramp = {**QUIET, "trades_z_long": 6.0, "aggr_imbalance_long": 0.7, "ret_bps_long": 0.0, "rush_orders_long": 5}
    n = PatternParams().pump_min_chunks
    assert _kinds(FlowPatterns(), [QUIET] * 10 + [ramp] * n).count(AlertKind.PUMP_AND_DUMP) == 1
    falling = [{**ramp, "ret_bps": -10.0}] * n
    assert AlertKind.PUMP_AND_DUMP not in _kinds(FlowPatterns(), [QUIET] * 10 + falling)


def test_a_surge_that_opens_with_a_sweep_is_ignition_not_pump() -> None:
    sweep = {**QUIET, "ret_bps": 60.0, "ret_bps_long": 60.0, "aggr_imbalance": 1.0, "spread_bps": 10.0}
    follow = {**QUIET, "trades_z_long": 6.0, "aggr_imbalance_long": 0.7, "rush_orders_long": 5}
    n = PatternParams().pump_min_chunks
    kinds = _kinds(FlowPatterns(), [QUIET] * 10 + [{**follow, **sweep}] + [follow] * n)
    assert AlertKind.PUMP_AND_DUMP not in kinds
    # a one-tick bounce on a big-tick stock (a spread wide) is not a sweep
    bounce = {**sweep, "spread_bps": 60.0}
    kinds = _kinds(FlowPatterns(), [QUIET] * 10 + [{**follow, **bounce}] + [follow] * n)
    assert AlertKind.PUMP_AND_DUMP in kinds


def test_version_1_state_loads_with_empty_rings() -> None:
    detector = SymbolDetector("S", "sim")
    state = detector.to_state()
    state["v"] = 1
    del state["patterns"]["drift"], state["patterns"]["sweeps"]
    restored = SymbolDetector.from_state(orjson.loads(orjson.dumps(state)))
    assert restored.to_state()["patterns"] == detector.to_state()["patterns"]
