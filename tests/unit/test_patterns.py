"""Pattern detectors: each rule fires on its signature and not on quiet flow; state round trips anywhere."""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.flow import FLOW_FEATURE_NAMES, compute_flow_frame
from tapewatch.detectors.patterns import FlowPatterns, PatternParams, SymbolDetector
from tapewatch.detectors.patterns.materiality import MaterialityParams
from tapewatch.detectors.patterns.versions import DETECTOR_STATE
from tapewatch.detectors.session_records import RecordParams
from tapewatch.generators.simulator import SimulationConfig, generate, tick_size
from tapewatch.records import Alert, AlertKind

T0 = 1_704_157_200_000  # 2024-01-02 09:00 Taipei
#: where the pump detector's known limits (the expected failures below) are documented
PUMP_LIMITS = "docs/detectors/pump-and-dump.md"
#: the materiality gate open: these tests hold each rule on synthetic chunks whose moves are a few bps; the gate is
#: held by tests of its own (test_materiality.py), and the simulated sessions below run the product's defaults
#: no floor, no baseline, and an outlier needs no past session (each must still be the largest of its kind so far)
GATE_OPEN = MaterialityParams(
    floor_bps=0.0, typical_multiple=0.0, volume_multiple=0.0, records=RecordParams(min_sessions=0)
)


def rules(values: Mapping[str, object] | None = None) -> PatternParams:
    """Pattern parameters with the materiality gate open (``values`` by qualified name: ``{"tape.prints": None}``)."""
    return PatternParams(materiality=GATE_OPEN).with_values(values or {})


def _from_version_6(patterns: dict[str, Any]) -> dict[str, Any]:
    """Pattern parts as a version-6 symbol state held them, brought up to this version by the state's steps."""
    return dict(DETECTOR_STATE.upgrade({"v": 6, "patterns": patterns})["patterns"])


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
    "volume_rel_p95_long": 0.5,
    "trades_long": 15.0,
    "buy_orders_z_long": 0.0,
    "order_imbalance_z_long": 0.5,
    "order_imbalance_long": 0.1,
    "rush_max_z_long": 1.0,
    "mirror_z_long": 0.0,
    "mirror_vol_share_long": 0.05,
    "mirror_trades_long": 1.0,
    "mirror_excess_share_long": 0.0,
}
#: a pump's onset: buy orders far above the symbol's rate, one-sided by count, an outsized rush, the price rising
ONSET = {**QUIET, "buy_orders_z_long": 7.0, "order_imbalance_z_long": 3.5, "rush_max_z_long": 8.0, "ret_bps": 1.0}
#: a spoofing cycle: a bid layer of 9× the typical level, shown over several snapshots, left untraded while the mid
#: rose, in a chunk whose level 2–5 cancellations stand out against the book's own churn
SPOOF_CYCLE = {
    **QUIET,
    "cancel_l25": 120_000.0,
    "cancel_l25_z": 8.0,
    "layer_cancel_rel": 9.0,
    "layer_side": 1.0,
    "mid_ret_bps_long": 12.0,
    "mid_sigma_bps": 2.0,
}
#: a wash burst: large equal prints on alternating sides, far above the symbol's own, balanced
WASH = {
    **QUIET,
    "mirror_z_long": 9.0,
    "mirror_vol_share_long": 0.6,
    "order_imbalance_long": 0.0,
    "mirror_trades_long": 8.0,
    "mirror_excess_share_long": 0.5,
}


def _kinds(detector: FlowPatterns, chunks: Sequence[Mapping[str, float | None]], t0: int = T0) -> list[AlertKind]:
    kinds = []
    for i, values in enumerate(chunks):
        kinds += [hit.kind for hit in detector.on_chunk(t0 + (i + 1) * 5_000, values)]
    return kinds


def test_quiet_flow_never_hits() -> None:
    assert _kinds(FlowPatterns(rules()), [QUIET] * 500) == []


def test_pump_onset_needs_buy_orders_imbalance_and_a_rush_in_two_chunks() -> None:
    params = rules()
    assert params.tape.chunks(params.pump_onset.min_ms) == 2
    kinds = _kinds(FlowPatterns(params), [QUIET] * 10 + [ONSET] * 2)
    assert kinds == [AlertKind.PUMP_AND_DUMP]
    assert _kinds(FlowPatterns(params), [QUIET] * 10 + [ONSET, QUIET, QUIET, QUIET, ONSET]) == []  # too far apart
    assert _kinds(FlowPatterns(params), [QUIET] * 10 + [ONSET, QUIET, ONSET]) == [AlertKind.PUMP_AND_DUMP]
    for weak in ({"buy_orders_z_long": 3.0}, {"order_imbalance_z_long": 1.0}, {"rush_max_z_long": 4.0}):
        assert AlertKind.PUMP_AND_DUMP not in _kinds(FlowPatterns(params), [QUIET] * 10 + [{**ONSET, **weak}] * 6)
    # the hit's window starts at the first onset chunk, so escalations keep the alert id
    hits = FlowPatterns(params)
    for i, values in enumerate([QUIET] * 3 + [ONSET] * 3):
        out = hits.on_chunk(T0 + (i + 1) * 5_000, values)
    assert [h.window_start for h in out] == [T0 + 3 * 5_000]


def test_spoofing_is_repeated_persistent_layers_vanishing_under_pressure() -> None:
    # a bid layer of 9× the typical level, shown over several snapshots, left untraded while the mid rose
    cycle = SPOOF_CYCLE
    assert _kinds(FlowPatterns(rules()), [QUIET, cycle]) == []  # once happens by chance in a busy book
    assert _kinds(FlowPatterns(rules()), [QUIET, cycle, QUIET, cycle]) == [AlertKind.SPOOFING]  # the cycle repeats
    for no in (
        {"layer_cancel_rel": 3.0},  # an ordinary size
        {"cancel_l25_z": 1.0},  # large quotes are cancelled all the time in this book (market makers re-quote)
        {"cancel_l25_z": None},  # the book's own churn not known yet
        {"mid_ret_bps_long": -12.0},  # the price went towards the layer: no pressure
        {"mid_ret_bps_long": 1.0},  # within the symbol's own noise
    ):
        assert _kinds(FlowPatterns(rules()), [QUIET, {**cycle, **no}, QUIET, {**cycle, **no}]) == []
    # pressure by flow: the spoofer's genuine orders on the other side filled, where the feed tells sides
    by_flow = {**cycle, "mid_ret_bps_long": 0.0, "aggr_imbalance_long": 0.6, "inferred_share_long": 0.0}
    assert _kinds(FlowPatterns(rules()), [QUIET, by_flow, QUIET, by_flow]) == [AlertKind.SPOOFING]
    inferred = {**by_flow, "inferred_share_long": 1.0}  # inferred sides over a few snapshots are noise
    assert _kinds(FlowPatterns(rules()), [QUIET, inferred, QUIET, inferred]) == []


def test_three_vanished_layers_one_under_pressure_are_spoofing() -> None:
    """patterns-v15: a 5 s snapshot often misses the one-tick move a cycle made, so a third vanished layer within
    the window, one of the three pressed, counts as a second pressed one."""
    pressed = SPOOF_CYCLE
    unpressed = {**pressed, "mid_ret_bps_long": 0.0}
    gap = [QUIET] * 8
    assert _kinds(FlowPatterns(rules()), [pressed, *gap, unpressed]) == []
    assert _kinds(FlowPatterns(rules()), [pressed, *gap, unpressed, *gap, unpressed]) == [AlertKind.SPOOFING]
    assert _kinds(FlowPatterns(rules()), [unpressed, *gap, unpressed, *gap, pressed]) == [AlertKind.SPOOFING]
    # pressure in none of them, or layers further apart than the window: not spoofing
    assert _kinds(FlowPatterns(rules()), [unpressed, *gap, unpressed, *gap, unpressed, *gap, unpressed]) == []
    window = rules().tape.chunks(rules().spoofing.window_ms)
    far = [QUIET] * (window // 2)
    assert _kinds(FlowPatterns(rules()), [pressed, *far, unpressed, *far, unpressed]) == []
    # a patterns-v14 state (no ``spoof_layers``) resumes: its pressed cycles count as vanished layers
    detector = FlowPatterns(rules())
    _kinds(detector, [pressed, *gap])
    state = detector.to_state()
    del state["spoof_layers"]
    resumed = FlowPatterns.from_state(_from_version_6(orjson.loads(orjson.dumps(state))), rules())
    assert _kinds(resumed, [unpressed, *gap, unpressed], T0 + 9 * 5_000) == [AlertKind.SPOOFING]


def test_wash_trading_is_unusual_balanced_mirror_volume() -> None:
    assert _kinds(FlowPatterns(rules()), [QUIET, WASH]) == [AlertKind.WASH_TRADING]
    assert _kinds(FlowPatterns(rules()), [QUIET, {**WASH, "mirror_z_long": 5.0}]) == []  # usual for this symbol
    assert _kinds(FlowPatterns(rules()), [QUIET, {**WASH, "order_imbalance_long": 0.6}]) == []  # one-sided: a surge
    # a busy tape: other prints dilute the share …
    diluted = {**WASH, "mirror_vol_share_long": 0.1, "mirror_excess_share_long": 0.08}
    assert _kinds(FlowPatterns(rules()), [QUIET, diluted]) == []
    assert _kinds(FlowPatterns(rules()), [QUIET, {**diluted, "mirror_z_long": 15.0}]) == [
        AlertKind.WASH_TRADING
    ]  # … or not
    # one chance pair of equal prints: however rare on this symbol, a wash repeats
    assert _kinds(FlowPatterns(rules()), [QUIET, {**WASH, "mirror_trades_long": 2.0}]) == []
    # a surge of two-sided volume surges its chance pairs too: the share is barely above the symbol's own
    surge = {**diluted, "mirror_z_long": 15.0, "mirror_vol_share_long": 0.15, "mirror_excess_share_long": 0.03}
    assert _kinds(FlowPatterns(rules()), [QUIET, surge]) == []
    assert _kinds(FlowPatterns(rules()), [QUIET, {**surge, "mirror_excess_share_long": None}]) == []  # no baseline yet
    two = rules({"wash.min_chunks": 2})
    assert _kinds(FlowPatterns(two), [QUIET, WASH]) == []
    assert _kinds(FlowPatterns(two), [QUIET, WASH, WASH]) == [AlertKind.WASH_TRADING]


#: a snapshot feed's wash burst: sides inferred, volume far above the symbol's own over many prints' worth, the
#: quote pinned with prints at both quotes, no depth consumed
PINNED = {
    **QUIET,
    "inferred_share_long": 1.0,
    "volume_z_long": 6.0,
    "volume_rel_p95_long": 2.5,
    "trades_long": 5.0,
    "size_mean_long": 8_000.0,
    "size_std_long": 2_000.0,
    "mid_ret_bps_long": 0.0,
    "spread_bps_long": 20.0,
    "range_bps_long": 20.0,
    "consumed_share_long": 0.05,
    "aggr_imbalance_long": 0.1,
}


def test_wash_trading_on_a_snapshot_feed_is_repeated_volume_at_a_pinned_quote_consuming_no_depth() -> None:
    """Where sides are inferred, mirror trades cannot show: the pinned-quote path reads what the snapshots
    carry, and needs the bursts to repeat."""
    assert _kinds(FlowPatterns(rules()), [QUIET, PINNED, PINNED, PINNED]) == []
    assert _kinds(FlowPatterns(rules()), [QUIET, PINNED, QUIET, PINNED, PINNED, PINNED]) == [AlertKind.WASH_TRADING]
    for unlike, why in (
        ({"inferred_share_long": 0.0}, "the feed gives sides: the mirror path decides"),
        ({"volume_rel_p95_long": 1.1}, "usual volume for this symbol"),
        ({"volume_rel_p95_long": None}, "no robust baseline yet (or a symbol that almost never trades)"),
        ({"size_std_long": 16_000.0}, "one block print carries the volume"),
        ({"mid_ret_bps_long": 20.0}, "the quote moved"),
        ({"range_bps_long": 0.0}, "every print at one quote: one side absorbing (an iceberg), not a pair"),
        ({"range_bps_long": 60.0}, "prints through the quote"),
        ({"consumed_share_long": 0.8}, "the trades ate the displayed depth"),
        ({"aggr_imbalance_long": -0.7}, "one-sided: a large order absorbed at the quote"),
    ):
        assert _kinds(FlowPatterns(rules()), [QUIET] + [{**PINNED, **unlike}] * 5) == [], why
    # where such surges are everyday trading (a deep, busy book), they are not a wash: one more hour of them
    stretch = [PINNED] * 4 + [QUIET] * 40  # one burst every 3 min 40 s
    assert _kinds(FlowPatterns(rules()), [QUIET] * 20 + stretch) == [AlertKind.WASH_TRADING]
    assert _kinds(FlowPatterns(rules()), [QUIET] * 20 + stretch * 8) == [AlertKind.WASH_TRADING]  # then it is usual
    drifting = {**PINNED, "mid_sigma_bps": 2.0, "mid_ret_bps": 10.0}  # a pump walking up between the windows
    assert AlertKind.WASH_TRADING not in _kinds(FlowPatterns(rules()), [QUIET] * 10 + [drifting] * 10)


def test_marking_the_close_only_near_the_close() -> None:
    push = {**QUIET, "trades_z_long": 5.0, "aggr_imbalance_long": 0.6, "ret_bps_long": 15.0, "ret_bps": 45.0}
    close_start = T0 + (4 * 60 + 25) * 60_000  # 13:25 Taipei
    near = _kinds(FlowPatterns(rules()), [push] * 12, close_start)
    assert AlertKind.MARKING_THE_CLOSE in near
    assert AlertKind.MARKING_THE_CLOSE not in _kinds(FlowPatterns(rules()), [push] * 12, T0 + 3_600_000)
    disabled = FlowPatterns(rules({"tape.close_time": None}))
    assert AlertKind.MARKING_THE_CLOSE not in _kinds(disabled, [push] * 12, close_start)
    assert FlowPatterns(rules({"tape.close_time": time(16, 0)})).ms_to_close(close_start) == (2 * 60 + 35) * 60_000


def test_a_push_into_the_close_is_read_from_volume_too_where_the_feed_aggregates_prints() -> None:
    """At 5 s a busy symbol prints in every snapshot however hard it trades: a snapshot feed's surge may show
    only in volume. A feed of individual prints reads the trade count alone."""
    close_start = T0 + (4 * 60 + 25) * 60_000  # 13:25 Taipei
    push = {**QUIET, "aggr_imbalance_long": 0.6, "ret_bps": 45.0}
    by_count, by_volume = {**push, "trades_z_long": 5.0}, {**push, "volume_z_long": 5.0}
    snapshots = rules({"tape.prints": "snapshots"})
    for chunks in (by_count, by_volume):
        assert AlertKind.MARKING_THE_CLOSE in _kinds(FlowPatterns(snapshots), [chunks] * 12, close_start)
    assert AlertKind.MARKING_THE_CLOSE in _kinds(FlowPatterns(rules()), [by_count] * 12, close_start)
    assert AlertKind.MARKING_THE_CLOSE not in _kinds(FlowPatterns(rules()), [by_volume] * 12, close_start)
    quiet = {**push, "volume_z_long": 1.0}
    assert AlertKind.MARKING_THE_CLOSE not in _kinds(FlowPatterns(snapshots), [quiet] * 12, close_start)


#: the 20 s after an ignition: others trading its way, busier than usual (patterns-v18)
FOLLOW = [{**QUIET, "aggr_imbalance": 0.6, "trades_z": 2.0, "volume_z": 2.0}] * 4


def test_momentum_ignition_is_a_one_sided_sweep_followed_and_given_back() -> None:
    """patterns-v17: on a feed that prints every trade too, the sweep is a candidate until the price gives back
    half its move (the igniter selling into the followers); a sweep that holds is a block buyer or the market.
    patterns-v18: and others follow it first; a sweep given back with nobody following is a large order."""
    sweep = {**QUIET, "ret_bps": 40.0, "aggr_imbalance": 1.0, "trades_z": 6.0}
    back = {**QUIET, "ret_bps": -12.0, "aggr_imbalance": -1.0}
    assert _kinds(FlowPatterns(rules()), [QUIET, sweep, *FOLLOW, QUIET, QUIET]) == []
    assert _kinds(FlowPatterns(rules()), [QUIET, sweep, *FOLLOW, back, QUIET]) == []  # 12 of 40 bps given back
    assert _kinds(FlowPatterns(rules()), [QUIET, sweep, *FOLLOW, back, back]) == [AlertKind.MOMENTUM_IGNITION]
    detector, chunks = FlowPatterns(rules()), [QUIET, sweep, *FOLLOW, back, back]
    (hit,) = [h for i, v in enumerate(chunks) for h in detector.on_chunk(T0 + i * 5_000, v)]
    assert (hit.evidence["follow_imbalance"], hit.evidence["follow_activity_z"]) == (0.6, 2.0)  # why it fired
    assert _kinds(FlowPatterns(rules()), [QUIET, sweep, *[QUIET] * 4, back, back]) == []  # nobody followed
    selling = [{**chunk, "aggr_imbalance": -0.6} for chunk in FOLLOW]
    assert _kinds(FlowPatterns(rules()), [QUIET, sweep, *selling, back, back]) == []  # busy, but against it
    calm = [{**chunk, "trades_z": 0.0} for chunk in FOLLOW]
    assert _kinds(FlowPatterns(rules()), [QUIET, sweep, *calm, back, back]) == []  # its way, but nobody more than usual
    against = {**sweep, "aggr_imbalance": -1.0}
    assert _kinds(FlowPatterns(rules()), [QUIET, against, *FOLLOW, back, back]) == []


def test_a_patterns_v17_ignition_candidate_resumes_waiting_for_its_reversal() -> None:
    """A state saved by patterns-v17 holds a candidate whose followers were never watched: it resumes as it was
    (waiting for the reversal only), not dropped and not asked for followers it can no longer show."""
    detector = FlowPatterns(rules())
    state = detector.to_state()
    state["ignition"] = [T0, 40.0, 0.0, {"ret_bps": 40.0, "aggr_imbalance": 1.0}]
    detector = FlowPatterns.from_state(_from_version_6(orjson.loads(orjson.dumps(state))), rules())
    back = {**QUIET, "ret_bps": -12.0, "aggr_imbalance": -1.0}
    assert _kinds(detector, [back, back]) == [AlertKind.MOMENTUM_IGNITION]


def test_a_window_never_starts_before_event_time_zero() -> None:
    """A sweep in the first chunk of a stream that starts at event time 0 (its chunk starts at -5 s), given back in
    the next: the alert's window starts at 0, as the alert record requires (hypothesis found -2000)."""
    sweep = {**QUIET, "ret_bps": 40.0, "aggr_imbalance": 1.0, "trades_z": 6.0}
    back = {**QUIET, "ret_bps": -40.0, "aggr_imbalance": -1.0}
    detector = FlowPatterns(rules())
    chunks = [sweep, *FOLLOW, back]
    hits = [h for i, v in enumerate(chunks) for h in detector.on_chunk(3_000 + i * 5_000, v)]
    assert [(h.kind, h.window_start, h.window_end) for h in hits] == [(AlertKind.MOMENTUM_IGNITION, 0, 28_000)]


def test_a_sweep_on_a_snapshot_feed_shows_in_its_volume_and_is_confirmed_by_its_reversal() -> None:
    # one print per snapshot however hard it trades: the count cannot surge, the volume does; a jump on
    # volume is as often a block print, so the ignition is the jump given back
    sweep = {**QUIET, "ret_bps": 40.0, "aggr_imbalance": 1.0, "trades_z": 0.0, "volume_z": 6.0}
    back = {**QUIET, "ret_bps": -12.0, "aggr_imbalance": -1.0}
    snapshots = rules({"tape.prints": "snapshots"})
    follow = [{**chunk, "trades_z": 0.0} for chunk in FOLLOW]  # the followers show in the volume too
    assert _kinds(FlowPatterns(snapshots), [QUIET, sweep, *follow, QUIET, back]) == []  # 12 of 40 bps given back
    assert _kinds(FlowPatterns(snapshots), [QUIET, sweep, *follow, back, back]) == [AlertKind.MOMENTUM_IGNITION]
    assert _kinds(FlowPatterns(rules()), [QUIET, sweep, *FOLLOW, back, back]) == []  # prints: the count says not busy
    assert _kinds(FlowPatterns(snapshots), [QUIET, {**sweep, "volume_z": 0.5}, *follow, back, back]) == []
    late = [QUIET, sweep, *follow, *[QUIET] * snapshots.tape.chunks(snapshots.ignition.reversal_ms), back, back]
    assert _kinds(FlowPatterns(snapshots), late) == []
    # the print jumped from bid to ask, the mid moved one spread: the bid-ask bounce, not a sweep
    bounce = {**sweep, "spread_bps": 20.0, "mid_ret_bps": 20.0}
    assert _kinds(FlowPatterns(snapshots), [QUIET, bounce, *follow, back, back]) == []
    taken = {**bounce, "mid_ret_bps": 40.0}
    assert _kinds(FlowPatterns(snapshots), [QUIET, taken, *follow, back, back]) == [AlertKind.MOMENTUM_IGNITION]


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(1, 40),
    rets=st.lists(
        st.one_of(st.none(), st.floats(-1e4, 1e4, allow_nan=False), st.floats(-1e-9, 1e-9, allow_nan=False)),
        max_size=120,
    ),
)
def test_drift_is_the_exact_sum_of_its_window(window: int, rets: list[float | None]) -> None:
    from tapewatch.detectors.patterns.base import Drift

    drift, kept = Drift(window), deque[tuple[int, float]]()
    for i, ret in enumerate(rets):
        got = drift.observe(i * 5_000, ret, 5_000)
        while kept and kept[0][0] < (i - window + 1) * 5_000:
            kept.popleft()
        if ret:
            kept.append((i * 5_000, ret))
        assert got == math.fsum(r for _, r in kept)
    restored = Drift.from_state(drift.to_state(), window)
    assert restored.observe(len(rets) * 5_000, 1.0, 5_000) == drift.observe(len(rets) * 5_000, 1.0, 5_000)


def test_a_slow_ramp_is_seen_over_half_an_hour() -> None:
    # +6 % in 30 min on a symbol whose 5 s return σ is 7 bps: 4.5 σ over 30 min, 2.6 σ over any 10
    from tapewatch.detectors.patterns.context import TapeContext
    from tapewatch.detectors.patterns.pump_ramp import PumpRamp

    rising = {"ret_bps": 600.0 / 360, "ret_sigma_bps": 7.0, "volume_z_long": 2.0, "aggr_imbalance_long": 0.2}

    def hits(params: PatternParams) -> int:
        tape, ramp = TapeContext(params.tape), PumpRamp(params.tape, params.pump_ramp)
        return sum(len(ramp.on_chunk(tape.on_chunk(i * 5_000, rising), rising)) for i in range(1, 361))

    params = rules({"tape.close_time": None})
    assert hits(params) > 0
    assert hits(params.with_values({"tape.slow_ramp_ms": params.tape.ramp_ms})) == 0


def test_a_price_that_trends_by_its_nature_is_read_against_its_own_typical_drift() -> None:
    """patterns-v16: runs of 24 chunks of ±3 bps on a symbol whose one-chunk σ is 3 bps drift 72 bps in two
    minutes, 4.9 σ·√n, every few minutes: that is this symbol's ordinary drift (news caught up with, parent orders
    worked), not a pump. A pump's drift is still far beyond it."""
    from tapewatch.detectors.patterns.context import TapeContext
    from tapewatch.detectors.patterns.pump_ramp import PumpRamp

    params = rules({"tape.close_time": None})
    tape, ramp = TapeContext(params.tape), PumpRamp(params.tape, params.pump_ramp)
    base = {"mid_sigma_bps": 3.0, "volume_z_long": 2.0, "aggr_imbalance_long": 0.1}

    def run(chunks: range, mid_ret: Callable[[int], float]) -> int:
        hits = 0
        for i in chunks:
            values = {**base, "mid_ret_bps": mid_ret(i), "ret_bps": mid_ret(i)}
            hits += len(ramp.on_chunk(tape.on_chunk(T0 + i * 5_000, values), values))
        return hits

    def trending(i: int) -> float:
        return 3.0 if (i // 24) % 2 == 0 else -3.0

    run(range(1, 361), trending)  # half an hour to learn the symbol's drifts
    assert run(range(361, 1081), trending) == 0
    assert run(range(1081, 1111), lambda i: 9.0) > 0


def test_a_price_that_trends_by_its_nature_is_no_pump_in_its_first_hour_either() -> None:
    """patterns-v18: swings of 24 chunks up at 3 bps and 24 down at 1.5 bps (one-chunk σ 3 bps) climb 270 bps in
    half an hour, 4.7 σ·√n: before the slow horizon's own typical drift is measured (an hour), it is read with the
    variance ratio measured over two minutes, and this symbol's two-minute drifts are four times √n·σ. (Its first
    swing, before even the two-minute drift is measured, reads at √n: nothing is known of the symbol then.)"""
    from tapewatch.detectors.patterns.context import TapeContext
    from tapewatch.detectors.patterns.pump_ramp import PumpRamp

    params = rules({"tape.close_time": None})
    tape, ramp = TapeContext(params.tape), PumpRamp(params.tape, params.pump_ramp)
    base = {"mid_sigma_bps": 3.0, "volume_z_long": 2.0, "aggr_imbalance_long": 0.1}
    hits, slow = 0, 0.0
    for i in range(1, 600):
        mid_ret = 3.0 if (i // 24) % 2 == 0 else -1.5
        values = {**base, "mid_ret_bps": mid_ret, "ret_bps": mid_ret}
        ctx = tape.on_chunk(T0 + i * 5_000, values)
        slow = max(slow, ctx.drift_z_slow or 0.0)
        found = ramp.on_chunk(ctx, values)
        hits += len(found) if i > 2 * params.tape.chunks(params.tape.drift_ms) else 0
    assert slow > params.pump_ramp.drift_z  # read at √n alone it is a slow ramp
    assert hits == 0


def test_a_one_tick_step_on_a_coarse_tick_stock_is_not_a_sweep() -> None:
    # one tick of 0.5 near 110: 1e4 ln(110.5 / 110) = 45.4 bps against a one-tick spread of 45.3 bps
    step = {**QUIET, "ret_bps": 45.4, "spread_bps": 45.3, "aggr_imbalance": 1.0, "trades_z": 6.0}
    back = {**QUIET, "ret_bps": -45.4, "aggr_imbalance": -1.0}  # given back: only the sweep is in question
    assert _kinds(FlowPatterns(rules()), [QUIET, step, *FOLLOW, back]) == []
    two_ticks = {**step, "ret_bps": 90.6}
    assert _kinds(FlowPatterns(rules()), [QUIET, two_ticks, *FOLLOW, back]) == [AlertKind.MOMENTUM_IGNITION]


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
        "volume_rel_p95_long": st.sampled_from([0.5, 8.0]),
        "trades_long": st.just(40.0),
        "buy_orders_z_long": st.sampled_from([0.0, 7.0]),
        "order_imbalance_z_long": st.sampled_from([0.0, 4.0]),
        "order_imbalance_long": st.sampled_from([0.0, 0.8]),
        "rush_max_z_long": st.sampled_from([0.0, 9.0]),
        "mirror_z_long": st.sampled_from([0.0, 8.0, 20.0]),
        "mirror_vol_share_long": st.sampled_from([0.1, 0.7]),
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
    expected = [a for t, v in records for a in whole.on_chunk(t, v)]
    first = SymbolDetector("S", "sim")
    got = [a for t, v in records[:cut] for a in first.on_chunk(t, v)]
    resumed = SymbolDetector.from_state(orjson.loads(orjson.dumps(first.to_state())))
    got += [a for t, v in records[cut:] for a in resumed.on_chunk(t, v)]
    assert got == expected


def test_pump_onset_fires_on_a_barely_rising_price_and_despite_large_sells() -> None:
    # the convex ramp barely moves the price at first; a few large sells tilt the volume, not the order count
    ramp = {**ONSET, "ret_bps": 0.1, "ret_bps_long": 0.0, "aggr_imbalance_long": -0.3}
    assert _kinds(FlowPatterns(rules()), [QUIET] * 10 + [ramp] * 2) == [AlertKind.PUMP_AND_DUMP]
    # patterns-v19: the same buying with the price exactly where it was, or lower, is absorbed, not a pump
    for ret in (0.0, -5.0):
        assert _kinds(FlowPatterns(rules()), [QUIET] * 10 + [{**ramp, "ret_bps": ret}] * 6) == []
    # not in the closing window: a push there is marking the close
    close_start = T0 + (4 * 60 + 25) * 60_000
    assert AlertKind.PUMP_AND_DUMP not in _kinds(FlowPatterns(rules()), [ONSET] * 6, close_start)


#: a pump's crowd without a rush: buy orders far above the symbol's rate, one-sided by count, price not falling
CROWD = {**ONSET, "rush_max_z_long": 1.0, "ret_bps": 1.0, "aggr_imbalance_long": 0.5}


def _first_pump(
    chunks: Sequence[Mapping[str, float | None]], t0: int = T0, params: PatternParams | None = None
) -> tuple[int, int] | None:
    """(index of the chunk of the first pump hit, its window start's chunk index), or None."""
    detector = FlowPatterns(params or rules())
    for i, values in enumerate(chunks):
        hits = [h for h in detector.on_chunk(t0 + (i + 1) * 5_000, values) if h.kind is AlertKind.PUMP_AND_DUMP]
        if hits:
            return i, (hits[0].window_start - t0) // 5_000
    return None


def test_a_crowd_of_buy_orders_held_a_minute_is_a_pump_without_a_rush() -> None:
    params = rules()
    assert params.tape.chunks(params.pump_crowd.min_ms) == 12
    # the twelfth crowd chunk (a minute) alerts, dated from the first
    assert _first_pump([QUIET] * 10 + [CROWD] * 11) is None
    assert _first_pump([QUIET] * 10 + [CROWD] * 20) == (21, 10)
    # quiet chunks between keep the run: the twelfth crowd chunk of the last 18 alerts
    gappy = [QUIET] * 10 + ([CROWD] * 4 + [QUIET]) * 3
    assert _first_pump(gappy) == (23, 10)
    # half a minute of the same buying, as a momentum ignition's followers do, is not a pump
    assert _first_pump([QUIET] * 10 + ([CROWD] * 6 + [QUIET] * 30) * 5) is None
    for weak in (
        {"buy_orders_z_long": 3.0},
        {"order_imbalance_z_long": 1.0},
        {"aggr_imbalance_long": 0.1},
        {"ret_bps": -1.0},
    ):
        assert _first_pump([QUIET] * 10 + [{**CROWD, **weak}] * 30) is None
    # a crowd that opens with a sweep is the sweep's followers; one in the closing window is marking the close
    sweep = {**CROWD, "ret_bps": 60.0, "ret_bps_long": 60.0, "aggr_imbalance": 1.0, "spread_bps": 10.0}
    assert _first_pump([QUIET] * 10 + [sweep] + [CROWD] * 20) is None
    assert _first_pump([CROWD] * 40, T0 + (4 * 60 + 25) * 60_000) is None


def test_a_crowd_the_price_does_not_follow_is_not_a_pump() -> None:
    """patterns-v17: on a symbol with a volatility, the crowd's buying must lift the price by half a σ of the
    drift's window (2 bps × √24 ≈ 10 bps over two minutes): a crowd absorbed by a seller, or a parent order worked
    patiently, is not a pump."""
    lifted = {**CROWD, "ret_sigma_bps": 2.0, "ret_bps": 3.0}
    # the second chunk has lifted it 6 bps: the first crowd chunk; the twelfth alerts, dated from the first
    assert _first_pump([{**QUIET, "ret_sigma_bps": 2.0}] * 10 + [lifted] * 20) == (22, 11)
    absorbed = {**lifted, "ret_bps": 0.15}  # 3.6 bps over two minutes: under half a σ
    assert _first_pump([{**QUIET, "ret_sigma_bps": 2.0}] * 10 + [absorbed] * 40) is None


#: a snapshot feed's chunk: no order-level prints (the print-level features are null), sides inferred
SNAPSHOT_QUIET = {
    **{name: value for name, value in QUIET.items() if not name.startswith(("buy_orders", "order_", "rush", "mirror"))},
    "ret_sigma_bps": 2.0,
    "inferred_share_long": 1.0,
}
#: a pump seen in snapshots: volume far above the symbol's own, bought more than sold, the price walking up
SURGE = {**SNAPSHOT_QUIET, "volume_z_long": 5.0, "aggr_imbalance_long": 0.5, "ret_bps": 1.5}


def _first_snapshot_pump(chunks: Sequence[Mapping[str, float | None]], t0: int = T0) -> tuple[int, int] | None:
    """:func:`_first_pump` on a snapshot feed."""
    return _first_pump(chunks, t0, rules({"tape.prints": "snapshots"}))


def test_a_surge_of_net_buying_the_price_follows_held_a_minute_is_a_pump_on_a_snapshot_feed() -> None:
    """patterns-v19: where the feed has no orders to count, volume far above the symbol's own, net buying by the
    inferred sides and a price walking up one σ of the drift's window are a pump once held a minute — long before
    the drift alone is extreme (1.5 bps a chunk is 3.5 σ of the ramp's window after 23 chunks, and the ramp asks 3
    of them)."""
    # the drift passes one σ (2 bps × √24 ≈ 9.8 bps) at the seventh surge chunk: the twelfth from there alerts
    assert _first_snapshot_pump([SNAPSHOT_QUIET] * 10 + [SURGE] * 30) == (27, 16)
    # the ramp alone needs the drift at 3.5 σ: later, dated later
    ramp_only = rules({"tape.prints": "snapshots", "pump_surge.min_ms": 10**9, "pump_surge.window_ms": 10**9})
    assert _first_pump([SNAPSHOT_QUIET] * 10 + [SURGE] * 40, params=ramp_only) == (34, 32)
    for weak in (
        {"volume_z_long": 3.0},  # activity under 3.5 σ
        {"aggr_imbalance_long": 0.1},  # as much sold as bought: not a pump's buying
        {"ret_bps": 0.3},  # 7.2 bps over two minutes: the price does not follow
    ):
        assert _first_snapshot_pump([SNAPSHOT_QUIET] * 10 + [{**SURGE, **weak}] * 20) is None, weak
    # half a minute of it, again and again (a sweep's followers), is not a pump; nor a push into the close
    assert _first_snapshot_pump([SNAPSHOT_QUIET] * 10 + ([SURGE] * 6 + [SNAPSHOT_QUIET] * 30) * 4) is None
    assert _first_snapshot_pump([SURGE] * 40, T0 + (4 * 60 + 25) * 60_000) is None


def test_the_surge_path_is_off_where_the_feed_counts_orders() -> None:
    """Where buy orders are printed the crowd path reads the pump from them: the same volume and buying with an
    ordinary order count is a few large buyers, not a crowd, and the surge path does not overrule it."""
    printed = {**SURGE, "buy_orders_z_long": 0.0, "order_imbalance_z_long": 0.5}
    detector = FlowPatterns(rules({"tape.prints": "snapshots", "pump_ramp.drift_z": 100.0}))
    assert _kinds(detector, [{**SNAPSHOT_QUIET, "buy_orders_z_long": 0.0}] * 10 + [printed] * 30) == []


def test_a_surge_that_opens_with_a_sweep_is_ignition_not_pump() -> None:
    sweep = {**QUIET, "ret_bps": 60.0, "ret_bps_long": 60.0, "aggr_imbalance": 1.0, "spread_bps": 10.0}
    follow = ONSET
    n = rules().tape.chunks(rules().pump_onset.min_ms)
    kinds = _kinds(FlowPatterns(rules()), [QUIET] * 10 + [{**follow, **sweep}] + [follow] * n)
    assert AlertKind.PUMP_AND_DUMP not in kinds
    # a one-tick bounce on a big-tick stock (a spread wide) is not a sweep
    bounce = {**sweep, "spread_bps": 60.0}
    kinds = _kinds(FlowPatterns(rules()), [QUIET] * 10 + [{**follow, **bounce}] + [follow] * n)
    assert AlertKind.PUMP_AND_DUMP in kinds


def test_version_1_state_loads_with_empty_rings() -> None:
    detector = SymbolDetector("S", "sim")
    state = detector.to_state()
    state["v"] = 1
    del state["patterns"]["drift"], state["patterns"]["sweeps"]
    del state["patterns"]["onset"]
    restored = SymbolDetector.from_state(orjson.loads(orjson.dumps(state)))
    assert restored.to_state()["patterns"] == detector.to_state()["patterns"]


def test_version_2_state_loads_with_an_empty_onset_ring() -> None:
    detector = SymbolDetector("S", "sim", params=rules())
    detector.on_chunk(T0 + 5_000, ONSET)
    state = detector.to_state()
    assert state["patterns"]["onset"][0] == [T0]
    state["v"] = 2
    del state["patterns"]["onset"]
    restored = SymbolDetector.from_state(orjson.loads(orjson.dumps(state)), params=rules())
    assert restored.patterns.pump_onset.onset.flags == deque()
    # it keeps going: two onset chunks from here on alert
    alerts = [a for i in (2, 3) for a in restored.on_chunk(T0 + i * 5_000, ONSET)]
    assert [a.kind for a in alerts] == [AlertKind.PUMP_AND_DUMP]


Span = tuple[str, int, int]
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Session:
    episodes: list[Span]
    alerts: list[Alert]  # the first emission of each alert of the kind (escalations keep the id)
    one_tick_bps: dict[str, float]  # a symbol's tick at its median price, in bps
    prices: dict[str, tuple[list[int], list[float]]]  # a symbol's mid (its books'): (ts, price)

    def on_time(self, span: Span, within_ms: int = 60_000) -> bool:
        """Alerted within ``within_ms`` of the mid having moved the alert's ``material_bps`` from where it stood
        when the episode began (no price-based alert is raised on an immaterial move; where the feed has books,
        the move is the mid's)."""
        return any(
            _overlaps(a, span) and a.ts - self.material_at(span, float(str(a.evidence["material_bps"]))) <= within_ms
            for a in self.alerts
        )

    def material_at(self, span: Span, material_bps: float) -> int:
        """When the price first stood ``material_bps`` from its level at the episode's start (the episode's end if
        it never did)."""
        times, prices = self.prices[span[0]]
        first = next(i for i, t in enumerate(times) if t >= span[1])
        base = prices[max(0, first - 1)]
        return next(
            (
                t
                for t, p in zip(times[first:], prices[first:], strict=True)
                if abs(1e4 * math.log(p / base)) >= material_bps
            ),
            span[2],
        )

    def pump_before(self, span: Span) -> bool:
        """Another episode of the symbol within the hour before: it is in the baseline the z-scores use."""
        return any(e[0] == span[0] and span[1] - HOUR_MS <= e[1] < span[1] for e in self.episodes)


@functools.cache
def _session(kind: AlertKind, seed: int) -> Session:
    """A small simulated session rich in one kind, through the flow features and the detectors. No episode in
    the first 10 minutes: the z-scores need the baseline's first 5 (a known limit, docs/detectors/pump-and-dump.md)."""
    config = SimulationConfig(
        symbols=3, minutes=90, seed=seed, clean_fraction=0.0, rates={kind: 1.5}, quiet_open_s=600.0
    )
    sim = generate(config)
    quotes = sim.quotes_frame()
    frame = compute_flow_frame(quotes, sim.books_frame())
    first: dict[str, Alert] = {}
    names = list(FLOW_FEATURE_NAMES)
    for symbol, rows in frame.groupby("symbol", sort=True):
        detector = SymbolDetector(str(symbol), "sim")
        for ts, row in zip(rows["ts"].tolist(), rows[names].to_numpy().tolist(), strict=True):
            values = {name: None if math.isnan(x) else x for name, x in zip(names, row, strict=True)}
            for a in detector.on_chunk(int(ts), values):
                if a.kind == kind:
                    first.setdefault(a.alert_id, a)
    episodes = sim.episodes_frame()
    columns = (episodes["symbol"].astype(str), episodes["start"].astype(int), episodes["end"].astype(int))
    spans = list(zip(*columns, strict=True))
    prices = quotes.groupby("symbol")["price"].median()
    ticks = {str(s): 1e4 * tick_size(float(p)) / float(p) for s, p in prices.items()}
    books = sim.books_frame().assign(mid=lambda b: (b["bid1"] + b["ask1"]) / 2).dropna(subset=["mid"])
    series = {
        str(s): (g["ts"].astype(int).tolist(), g["mid"].astype(float).tolist()) for s, g in books.groupby("symbol")
    }
    return Session([(str(s), int(a), int(b)) for s, a, b in spans], list(first.values()), ticks, series)


def _overlaps(alert: Alert, span: Span, tolerance_ms: int = 30_000) -> bool:
    symbol, start, end = span
    return (
        alert.symbol == symbol and start - tolerance_ms <= alert.window_end and alert.window_start <= end + tolerance_ms
    )


def test_simulated_pumps_alert_within_a_minute_of_their_move_turning_material() -> None:
    session = _session(AlertKind.PUMP_AND_DUMP, seed=8)
    assert len(session.episodes) >= 4
    assert all(any(_overlaps(a, span) for span in session.episodes) for a in session.alerts)  # no false alert
    # a symbol's first pump in the hour, on a fine-tick stock (the two known limits are the xfails below)
    clear = [
        span
        for span in session.episodes
        if not session.pump_before(span) and session.one_tick_bps[span[0]] < PatternParams().tape.sweep_ret_bps
    ]
    assert len(clear) >= 2
    assert all(session.on_time(span) for span in clear)


@pytest.mark.xfail(strict=True, reason=f"known: a pump on a coarse-tick stock is missed ({PUMP_LIMITS})")
def test_a_pump_on_a_coarse_tick_stock_is_seen_on_time() -> None:
    # SIM0003 trades near 110: one tick (0.5) is one spread ≈ 45 bps. Its one-tick steps are no longer taken
    # for sweeps (patterns-v8), but the pump still moves a tick at a time on few orders: no path fires
    session = _session(AlertKind.PUMP_AND_DUMP, seed=8)
    coarse = [s for s in session.episodes if session.one_tick_bps[s[0]] >= PatternParams().tape.sweep_ret_bps]
    assert coarse
    assert all(session.on_time(span) for span in coarse)


@pytest.mark.xfail(
    strict=True, reason=f"known: a pump within the hour after another inflates the baseline ({PUMP_LIMITS})"
)
def test_a_second_pump_within_the_hour_is_seen() -> None:
    session = _session(AlertKind.PUMP_AND_DUMP, seed=8)
    fine = PatternParams().tape.sweep_ret_bps
    second = [s for s in session.episodes if session.pump_before(s) and session.one_tick_bps[s[0]] < fine]
    assert second
    assert all(session.on_time(span) for span in second)


def test_simulated_wash_bursts_alert_and_nothing_else() -> None:
    session = _session(AlertKind.WASH_TRADING, seed=8)
    assert len(session.episodes) >= 3
    for span in session.episodes:
        assert any(_overlaps(a, span) for a in session.alerts), span
    for a in session.alerts:
        assert any(_overlaps(a, span) for span in session.episodes), a


def test_a_ramp_far_beyond_the_symbols_own_volatility_on_unusual_volume_is_a_pump_on_any_feed() -> None:
    """Snapshot feeds have no rush orders and no sides: the ramp path reads the mid's drift in units of the
    symbol's own volatility, and the volume against its own baseline."""
    ramp = {**QUIET, "mid_sigma_bps": 3.0, "mid_ret_bps": 8.0, "volume_z_long": 4.0, "rush_orders_long": 0.0}
    kinds = _kinds(FlowPatterns(rules()), [QUIET] * 10 + [ramp] * 30)
    assert AlertKind.PUMP_AND_DUMP in kinds
    assert AlertKind.PUMP_AND_DUMP not in _kinds(
        FlowPatterns(rules()), [QUIET] * 10 + [{**ramp, "volume_z_long": 0.5}] * 30
    )
    assert AlertKind.PUMP_AND_DUMP not in _kinds(
        FlowPatterns(rules()), [QUIET] * 10 + [{**ramp, "mid_ret_bps": 1.0}] * 30
    )
    falling = {**ramp, "mid_ret_bps": -8.0}
    assert AlertKind.PUMP_AND_DUMP not in _kinds(FlowPatterns(rules()), [QUIET] * 10 + [falling] * 30)


@pytest.mark.parametrize(("chunk_ms", "long_chunks"), [(1_000, 5), (5_000, 5), (10_000, 3)])
def test_every_detectors_windows_follow_the_flow_chunking(chunk_ms: int, long_chunks: int) -> None:
    """Windows are event time: whatever the flow chunking, each detector looks back as far, needs evidence as
    long and dates its long-window hits by the flow's long window."""
    from tapewatch.detectors.flow import FlowConfig
    from tapewatch.feeds import FeedProfiles

    params = rules().for_feed(FlowConfig(chunk_ms=chunk_ms, long_chunks=long_chunks), FeedProfiles()("sim"))
    patterns = FlowPatterns(params)
    windows = {
        "drift": patterns.tape.drift.window,
        "onset": patterns.pump_onset.onset.window,
        "crowd": patterns.pump_crowd.crowd.window,
        "pump surge": patterns.pump_surge.surge.window,
        "surge": patterns.pump_onset.surge.window,
        "ramp": patterns.pump_ramp.ramp.window,
        "ramp drift": patterns.tape.ramp_drift.window,
        "spoofing": patterns.spoofing.cycles.window,
        "wash": patterns.wash.washes.window,
        "wash pinned": patterns.wash.pinned.window,
        "wash pinned history": patterns.wash.history.window,
        "close": patterns.closing.pushes.window,
        "ignition followers": patterns.ignition.follow_chunks,
    }
    assert {name: n * chunk_ms for name, n in windows.items()} == {
        "drift": 120_000,
        "onset": 20_000,
        "crowd": 90_000,
        "pump surge": 90_000,
        "surge": 120_000,
        "ramp": 120_000,
        "ramp drift": 600_000,
        "spoofing": 240_000,
        "wash": 30_000,
        "wash pinned": 120_000,
        "wash pinned history": 3_720_000,
        "close": 90_000,
        "ignition followers": 20_000,
    }

    def first_hit(values: dict[str, float], kind: AlertKind, detector: FlowPatterns) -> tuple[int, int]:
        """(ms from the first chunk's start to the first hit of ``kind``, that hit's window start - t0)."""
        for i in range(1, 10_000_000 // chunk_ms):
            hits = [h for h in detector.on_chunk(T0 + i * chunk_ms, values) if h.kind is kind]
            if hits:
                return i * chunk_ms, hits[0].window_start - T0
        raise AssertionError(f"no {kind} hit")

    # the onset needs 10 s of onset chunks
    assert first_hit(ONSET, AlertKind.PUMP_AND_DUMP, FlowPatterns(params))[0] == 10_000
    # the drift sums returns over 2 minutes: 1 bps per chunk is 120 s / chunk_ms bps
    tape = FlowPatterns(params).tape
    drifts = [tape.on_chunk(T0 + i * chunk_ms, {"ret_bps": 1.0}).drift_bps for i in range(1, 600_000 // chunk_ms)]
    assert drifts[-1] * chunk_ms == 120_000
    # bursts and spoofing date their hits by the flow's long window
    burst = {**QUIET, "volume_z_long": 40.0, "volume_long": 50_000.0, "trades_long": 50.0}
    elapsed, window_start = first_hit(burst, AlertKind.VOLUME_BURST, FlowPatterns(params))
    assert elapsed - window_start == chunk_ms * long_chunks


def test_marking_the_close_by_the_closing_move_needs_no_sides_and_no_surge() -> None:
    """A walk far beyond the symbol's volatility on ordinary volume, in either direction: only at the close."""
    close_ts = T0 + (4 * 60 + 30) * 60_000  # 13:30 Taipei
    for step in (6.0, -6.0):
        walk = {**QUIET, "aggr_imbalance_long": None, "mid_ret_bps": step, "mid_sigma_bps": 2.0}
        chunks = [walk] * 12
        assert AlertKind.MARKING_THE_CLOSE in _kinds(FlowPatterns(rules()), chunks, close_ts - 12 * 5_000)
        # the same walk at 11:00 is a drift, not a close (and too short for a pump ramp's volume)
        assert AlertKind.MARKING_THE_CLOSE not in _kinds(FlowPatterns(rules()), chunks, T0 + 2 * 3_600_000)
    # within the symbol's volatility it is nothing
    calm = {**QUIET, "mid_ret_bps": 1.0, "mid_sigma_bps": 2.0}
    assert _kinds(FlowPatterns(rules()), [calm] * 12, close_ts - 12 * 5_000) == []


def test_a_wash_state_from_before_the_history_gate_loads() -> None:
    """A version-6 state written before ``wash_pinned_history`` existed resumes with an empty history."""
    from tapewatch.detectors.patterns.params import TapeParams
    from tapewatch.detectors.patterns.wash import WashTrading, WashTradingParams

    state = WashTrading(TapeParams(), WashTradingParams()).to_state()
    del state["wash_pinned_history"]
    stored = _from_version_6(orjson.loads(orjson.dumps(state)))
    restored = WashTrading.from_state(stored, TapeParams(), WashTradingParams())
    assert restored.to_state() == WashTrading(TapeParams(), WashTradingParams()).to_state()


def test_marking_the_close_is_the_closing_price_a_move_given_back_is_not() -> None:
    """The closing move is tested at the close: a walk up that holds there is a hit dated from where the move
    began; the same walk given back before the close is nothing (patterns-v11 tested every chunk and fired
    during the walk up)."""
    close_ts = T0 + (4 * 60 + 30) * 60_000  # 13:30 Taipei
    up, down = ({**QUIET, "mid_ret_bps": step, "mid_sigma_bps": 2.0} for step in (3.0, -3.0))
    start = close_ts - 49 * 5_000
    held = FlowPatterns(rules())
    hits = [h for i, v in enumerate([QUIET] * 13 + [up] * 36, 1) for h in held.on_chunk(start + i * 5_000, v)]
    assert [(h.kind, h.ts) for h in hits] == [(AlertKind.MARKING_THE_CLOSE, close_ts)]
    assert hits[0].evidence["horizon_s"] == 180 and hits[0].evidence["move_bps"] == pytest.approx(108.0)
    assert hits[0].window_start == close_ts - 180_000 and "moved up" in hits[0].message
    given_back = [QUIET] * 13 + [up] * 18 + [down] * 18
    assert _kinds(FlowPatterns(rules()), given_back, start) == []


def test_a_half_minute_push_is_not_a_closing_push() -> None:
    push = {**QUIET, "trades_z_long": 5.0, "aggr_imbalance_long": 0.6, "ret_bps_long": 15.0, "ret_bps": 45.0}
    close_start = T0 + (4 * 60 + 20) * 60_000  # 13:20 Taipei: over by 13:21, long before the close
    assert _kinds(FlowPatterns(rules()), [push] * 6 + [QUIET] * 12, close_start) == []
    assert AlertKind.MARKING_THE_CLOSE in _kinds(FlowPatterns(rules()), [push] * 12, close_start)


def test_a_state_saved_in_the_closing_window_resumes_exactly() -> None:
    """The closing window's price path is state: cut anywhere in it, the resumed detector tests the same move
    at the close; a patterns-v11 state (no path) loads and restarts the path empty."""
    close_ts = T0 + (4 * 60 + 30) * 60_000
    walk = [{**QUIET, "mid_ret_bps": 2.0 + (i % 3), "mid_sigma_bps": 2.0} for i in range(60)]
    records = [(close_ts - (59 - i) * 5_000, v) for i, v in enumerate(walk)] + [(close_ts + 5_000, walk[0])]
    whole = SymbolDetector("S", "sim")
    expected = [a for t, v in records for a in whole.on_chunk(t, v)]
    assert expected and {a.kind for a in expected} == {AlertKind.MARKING_THE_CLOSE}
    first = SymbolDetector("S", "sim")
    got = [a for t, v in records[:31] for a in first.on_chunk(t, v)]
    state = orjson.loads(orjson.dumps(first.to_state()))
    resumed = SymbolDetector.from_state(state)
    got += [a for t, v in records[31:] for a in resumed.on_chunk(t, v)]
    assert got == expected
    old = SymbolDetector("S", "sim")
    old_state = orjson.loads(orjson.dumps(old.to_state()))
    old_state["v"] = 6
    del old_state["patterns"]["close_levels"]
    assert SymbolDetector.from_state(old_state).to_state() == old.to_state()


def test_a_pump_dumped_into_the_close_is_the_pump_not_a_close() -> None:
    """After a pump-and-dump hit, the move into the close is that pump's: no second alert for it."""
    close_ts = T0 + (4 * 60 + 30) * 60_000
    down = {**QUIET, "mid_ret_bps": -3.0, "mid_sigma_bps": 2.0}
    start = close_ts - 200 * 5_000  # 200 chunks end at the close: the onset 16 min before it, the dump in its window
    chunks = [QUIET] * 10 + [ONSET] * 2 + [QUIET] * 152 + [down] * 36
    kinds = _kinds(FlowPatterns(rules()), chunks, start)
    assert kinds.count(AlertKind.PUMP_AND_DUMP) >= 1 and AlertKind.MARKING_THE_CLOSE not in kinds
    # the same dump without the pump before it is a move into the close
    assert AlertKind.MARKING_THE_CLOSE in _kinds(FlowPatterns(rules()), [QUIET] * 164 + [down] * 36, start)


def _walk_then(fall: list[float], *, jump: bool) -> list[dict[str, float]]:
    """Half an hour quiet, +300 bps on ordinary volume (walked over six minutes, steeper towards the top, or
    jumped in one chunk and held), two minutes at the top, then ``fall`` (mid returns, bps per chunk)."""
    sigma = {"mid_sigma_bps": 3.0, "ret_sigma_bps": 4.0}
    quiet = {**QUIET, **sigma, "mid_ret_bps": 0.0}
    up = [300.0] + [0.0] * 71 if jump else [300.0 * (i + 1) / 2628 for i in range(72)]
    rise = [{**quiet, "mid_ret_bps": r, "aggr_imbalance_long": 0.6} for r in up]
    top = [{**quiet, "mid_ret_bps": 0.0}] * 24
    dump = [{**quiet, "mid_ret_bps": r, "aggr_imbalance_long": -0.7} for r in fall]
    return [quiet] * 360 + rise + top + dump


def test_a_walked_ramp_without_unusual_volume_is_a_pump_once_it_is_dumped() -> None:
    """patterns-v13: the price walked up over minutes on ordinary volume (no ramp alert: volume_z 0) and sold back
    fast is a pump-and-dump, dated from where the rise began; held at the top, it is a drift."""
    params = rules({"tape.close_time": None})
    walked = _walk_then([-25.0] * 8, jump=False)
    detector = FlowPatterns(params or rules())
    hits = [h for i, v in enumerate(walked) for h in detector.on_chunk(T0 + (i + 1) * 5_000, v)]
    pumps = [h for h in hits if h.kind is AlertKind.PUMP_AND_DUMP]
    assert pumps, [h.kind for h in hits]
    assert pumps[0].window_start == T0 + 360 * 5_000  # the first chunk up
    evidence = pumps[0].evidence
    assert float(evidence["fall_share"] or 0) >= 0.5 and float(evidence["rise_s"] or 0) >= 90
    held = _walk_then([0.0] * 8, jump=False)
    assert AlertKind.PUMP_AND_DUMP not in _kinds(FlowPatterns(params), held)
    # the same rise in one jump, then the same fall, is a sweep that reversed: not a pump
    assert AlertKind.PUMP_AND_DUMP not in _kinds(FlowPatterns(params), _walk_then([-25.0] * 8, jump=True))


def test_a_pump_is_a_medium_run_up_until_its_dump_escalates_the_same_alert() -> None:
    """However strong the buying on the way up, a run-up is medium at most: buying that lifts a price is also news
    or a patient parent order. The dump escalates the same episode."""
    walked = _walk_then([-25.0] * 8, jump=False)
    strong = {"buy_orders_z_long": 30.0, "order_imbalance_z_long": 9.0, "rush_max_z_long": 30.0, "ret_bps": 2.0}
    for i in range(360, 366):  # the walk's first half minute is a strong onset
        walked[i] = {**walked[i], **strong}
    detector = SymbolDetector("S", "sim", params=rules({"tape.close_time": None}))
    alerts = [
        a
        for i, v in enumerate(walked)
        for a in detector.on_chunk(T0 + (i + 1) * 5_000, v)
        if a.kind is AlertKind.PUMP_AND_DUMP
    ]
    assert [str(a.severity) for a in alerts][:1] == ["medium"]
    assert "fall_share" not in alerts[0].evidence
    assert len({a.alert_id for a in alerts}) == 1
    assert str(alerts[-1].severity) in ("high", "critical") and "fall_share" in alerts[-1].evidence


def test_a_jump_held_on_volume_is_not_a_pump_ramp_a_walk_is() -> None:
    """patterns-v13: a sweep's followers hold the price where one chunk took it, so the drift reads high for
    minutes on unusual volume; the ramp path reports a rise that was walked, not one that was jumped."""
    params = rules({"tape.close_time": None})
    sigma = {"mid_sigma_bps": 3.0, "ret_sigma_bps": 4.0, "volume_z_long": 3.0, "aggr_imbalance_long": 0.5}
    quiet = {**QUIET, "mid_sigma_bps": 3.0, "ret_sigma_bps": 4.0, "mid_ret_bps": 0.0}
    # +60 bps in one chunk, the followers add 20 within 40 s and hold it there; the walk: +80 over the same time
    follow = [2.5] * 8 + [0.0] * 12
    jump = [{**quiet, **sigma, "mid_ret_bps": r} for r in [60.0, *follow]]
    walk = [{**quiet, **sigma, "mid_ret_bps": 80.0 / 21}] * 21
    assert AlertKind.PUMP_AND_DUMP not in _kinds(FlowPatterns(params), [quiet] * 30 + jump)
    assert AlertKind.PUMP_AND_DUMP in _kinds(FlowPatterns(params), [quiet] * 30 + walk)
