"""Pumps and closes driven by the firm's accounts (:mod:`tapewatch.detectors.orders.firm_ramp`) against the public tape
(:mod:`tapewatch.detectors.orders.public_tape`): found and named when an owner's net buying is most of the volume and
the price moved far beyond the symbol's volatility; quiet for participation at a meta-order's pace, for small moves
however large the share, before the volatility is known, and for a bear raid outside the close."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tapewatch.detectors.alerting import MEDIUM_AT_MOST, Hit
from tapewatch.detectors.orders.firm_ramp import FirmRamp, FirmRampParams
from tapewatch.detectors.orders.public_tape import PublicTape
from tapewatch.records import AlertKind, ExecutionReport

T0 = 1_704_160_800_000  # 2024-01-02 10:00 Taipei
WARM_S = 1_500  # twenty-five minutes of ordinary trading before anything


def _never(ts: int) -> int | None:
    return None


def _closes_at(close_ts: int) -> object:
    return lambda ts: close_ts - ts


def report(ts: int, side: str, qty: float, price: float, n: int, account: str = "A1") -> ExecutionReport:
    return ExecutionReport(symbol="X", venue="v", ts=ts, exec_id=f"e{n}", order_id=f"o{n}", tenant="acme",
                           account=account, owner="O1", exec_type="trade", side=side, price=price, quantity=qty,
                           last_qty=qty, last_price=price, cum_qty=qty)  # fmt: skip


def warm_tape(wobble_bps: float = 2.0) -> PublicTape:
    """Twenty-five minutes of 100 shares a second, the price wobbling ``wobble_bps`` minute to minute."""
    tape = PublicTape(keep_ms=900_000, min_minutes=10)
    for second in range(WARM_S):
        tape.on_order_values(T0 + second * 1_000, 100.0 * (1 + wobble_bps * 1e-4 * (second // 60 % 2)), 100.0)
    return tape


def drive(ramp: FirmRamp, seconds: range, step_bps: float, qty: float, side: str = "BUY",
          start_price: float = 100.0, market_per_s: float = 100.0) -> tuple[list[Hit], float]:  # fmt: skip
    """Every five seconds the owner trades ``qty`` and the price steps ``step_bps`` (its way); the rest of the
    market trades ``market_per_s`` a second. Returns the hits and the last price."""
    hits: list[Hit] = []
    price = start_price
    sign = 1 if side == "BUY" else -1
    for n, second in enumerate(seconds):
        ts = T0 + second * 1_000
        if second % 5 == 0:
            price *= 1 + sign * step_bps * 1e-4
            ramp.tape.on_order_values(ts, price, qty)
            hits += ramp.on_execution(report(ts, side, qty, price, n))
        ramp.tape.on_order_values(ts + 500, price, market_per_s)
    return hits, price


def test_an_owner_buying_most_of_the_volume_as_the_price_climbs_is_a_pump_named_and_at_most_medium() -> None:
    ramp = FirmRamp(warm_tape(), _never)
    hits, _ = drive(ramp, range(WARM_S, WARM_S + 180), step_bps=8.0, qty=1_500.0)
    assert hits, "a 2.9 % climb bought by one owner with 3/4 of the volume"
    first = hits[0]
    assert first.kind is AlertKind.PUMP_AND_DUMP and first.evidence["accounts"] == "A1"
    assert first.ts - (T0 + WARM_S * 1_000) <= 120_000, "flagged within two minutes of its first order"
    assert max(h.score for h in hits) <= MEDIUM_AT_MOST, "a run-up alone is at most medium"
    share, move = first.evidence["share"], first.evidence["move_bps"]
    assert isinstance(share, float) and isinstance(move, float) and share >= 0.4 and share * move >= 20


def test_the_owner_selling_back_into_the_rise_makes_it_a_pump_and_dump() -> None:
    ramp = FirmRamp(warm_tape(), _never)
    up, price = drive(ramp, range(WARM_S, WARM_S + 180), step_bps=8.0, qty=1_500.0)
    assert up
    down, _ = drive(ramp, range(WARM_S + 180, WARM_S + 300), step_bps=3.0, qty=1_500.0, side="SELL", start_price=price)
    dumps = [h for h in down if "dumped_qty" in h.evidence]
    assert len(dumps) == 1 and dumps[0].score > MEDIUM_AT_MOST and dumps[0].kind is AlertKind.PUMP_AND_DUMP


def test_a_meta_orders_participation_and_pace_is_not_a_pump() -> None:
    """A fifth of the volume, the price drifting 1 bp every five seconds (its size's impact): an hour of it."""
    ramp = FirmRamp(warm_tape(), _never)
    hits, _ = drive(ramp, range(WARM_S, WARM_S + 3_600), step_bps=0.3, qty=120.0)
    assert hits == []


def test_a_small_move_is_not_a_pump_however_large_the_share_and_the_sigma() -> None:
    """On a symbol so quiet that 2 bps are many sigmas, an owner doing all the buying for 15 bps is not alerted."""
    ramp = FirmRamp(warm_tape(wobble_bps=0.1), _never)
    hits, _ = drive(ramp, range(WARM_S, WARM_S + 300), step_bps=0.25, qty=20_000.0)
    assert hits == []


def test_a_move_ordinary_for_the_symbol_is_not_a_pump() -> None:
    """A symbol whose price swings 60 bps a minute: 2.9 % in three minutes is within four sigmas."""
    ramp = FirmRamp(warm_tape(wobble_bps=60.0), _never)
    hits, _ = drive(ramp, range(WARM_S, WARM_S + 180), step_bps=8.0, qty=1_500.0)
    assert hits == []


def test_nothing_before_the_symbols_volatility_is_known() -> None:
    tape = PublicTape(keep_ms=900_000, min_minutes=10)
    ramp = FirmRamp(tape, _never)
    hits, _ = drive(ramp, range(0, 300), step_bps=8.0, qty=1_500.0)
    assert [h for h in hits if h.ts < T0 + 600_000] == []


def test_in_the_closing_window_either_direction_marks_the_close_and_a_bear_raid_before_it_is_not_raised() -> None:
    start = T0 + WARM_S * 1_000
    for side in ("BUY", "SELL"):
        close = FirmRamp(warm_tape(), _closes_at(start + 300_000))  # type: ignore[arg-type]
        hits, _ = drive(close, range(WARM_S, WARM_S + 240), step_bps=8.0, qty=1_500.0, side=side)
        assert hits and {h.kind for h in hits} == {AlertKind.MARKING_THE_CLOSE}, side
        assert all(0 <= int(str(h.evidence["ms_to_close"])) <= 600_000 for h in hits)
    raid = FirmRamp(warm_tape(), _closes_at(start + 3_600_000))  # type: ignore[arg-type]
    hits, _ = drive(raid, range(WARM_S, WARM_S + 240), step_bps=8.0, qty=1_500.0, side="SELL")
    assert hits == []


def test_an_owners_accounts_are_one_flow_and_all_named() -> None:
    ramp = FirmRamp(warm_tape(), _never, owners={"A1": "O9", "A2": "O9"})
    hits: list[Hit] = []
    price = 100.0
    for n, second in enumerate(range(WARM_S, WARM_S + 180, 5)):
        ts, price = T0 + second * 1_000, price * 1.0008
        ramp.tape.on_order_values(ts, price, 1_500.0)
        hits += ramp.on_execution(report(ts, "BUY", 1_500.0, price, n, account="A1" if n % 2 else "A2"))
        ramp.tape.on_order_values(ts + 500, price, 500.0)
    assert hits and hits[-1].evidence["accounts"] == "A1;A2" and hits[-1].evidence["owner"] == "O9"


@settings(max_examples=15, deadline=None)
@given(cut=st.integers(min_value=1, max_value=59))
def test_a_restored_detector_raises_what_the_uninterrupted_one_does(cut: int) -> None:
    def run(split: int | None) -> list[Hit]:
        tape = warm_tape()
        ramp = FirmRamp(tape, _never)
        hits: list[Hit] = []
        price = 100.0
        for n, second in enumerate(range(WARM_S, WARM_S + 300, 5)):
            if n == split:
                tape = PublicTape.from_state(orjson.loads(orjson.dumps(tape.to_state())), 900_000, min_minutes=10)
                ramp = FirmRamp.from_state(orjson.loads(orjson.dumps(ramp.to_state())), tape, _never)
            ts, price = T0 + second * 1_000, price * (1.0008 if n < 36 else 0.9997)
            tape.on_order_values(ts, price, 1_500.0)
            hits += ramp.on_execution(report(ts, "BUY" if n < 36 else "SELL", 1_500.0, price, n))
            tape.on_order_values(ts + 500, price, 100.0)
        return hits

    whole = run(None)
    assert {"dumped_qty" in hit.evidence for hit in whole} == {False, True}, "a run-up and its dump"
    assert run(cut) == whole


def _trades(data: st.DataObject) -> list[tuple[int, float, float]]:
    gaps = data.draw(st.lists(st.integers(0, 4_000), min_size=5, max_size=200))
    ts, out = T0, []
    for i, gap in enumerate(gaps):
        ts += gap
        out.append((ts, 100.0 + (i % 7), float(1 + i % 5)))
    return out


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_the_tapes_answers_as_of_a_time_do_not_depend_on_how_far_past_it_the_tape_was_read(data: st.DataObject) -> None:
    trades = _trades(data)
    at = data.draw(st.integers(0, len(trades) - 1))
    asked = trades[at][0]
    since = asked - data.draw(st.integers(0, 60_000))
    ahead = data.draw(st.integers(at, len(trades) - 1))

    def answers(upto: int) -> tuple[float | None, float | None, float | None]:
        tape = PublicTape(keep_ms=3_600_000, min_minutes=1)
        for ts, price, size in trades[: upto + 1]:
            tape.on_order_values(ts, price, size)
        return tape.volume(since, asked), tape.price_before(asked), tape.sigma_bps(since)

    assert answers(at) == answers(ahead)


def test_params_are_validated() -> None:
    with pytest.raises(ValidationError):
        FirmRampParams(share=0.0)
    with pytest.raises(ValidationError):
        FirmRampParams(min_move_bps=-1)
    with pytest.raises(ValidationError):
        FirmRampParams(unknown=1)  # type: ignore[call-arg]
