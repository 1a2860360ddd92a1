"""The statistical wash tests on trade sizes (detectors/trade_sizes.py, detectors/venue_wash.py)."""

from __future__ import annotations

import math
import random
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.trade_sizes import SizeTally, significand
from tapewatch.detectors.venue_wash import DAY_MS, VenueWash, VenueWashParams, learnt_lot
from tapewatch.records import VenueIndicator, WashTest

HOUR = 3_600_000


def _run(sizes: list[float], params: VenueWashParams | None = None) -> VenueIndicator:
    wash = VenueWash("X", "v", params or VenueWashParams(lot=1e-8))
    for i, size in enumerate(sizes):
        assert wash.on_quote_values(i, size) is None
    indicator = wash.flush()
    assert indicator is not None
    return indicator


def _log_uniform(n: int, low: float, high: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [round(10 ** rng.uniform(math.log10(low), math.log10(high)), 8) for _ in range(n)]


def test_sizes_spanning_decades_conform_to_benford() -> None:
    indicator = _run(_log_uniform(5_000, 1e-4, 10.0))
    assert indicator.benford is WashTest.CONFORMS
    assert indicator.benford_band in ("close", "acceptable")
    assert indicator.benford_p is not None and indicator.benford_p > 0.001
    assert indicator.benford_n == 5_000 and indicator.decades >= 2


def test_uniform_sizes_do_not_conform_to_benford() -> None:
    rng = random.Random(2)
    indicator = _run([round(rng.uniform(0.001, 1.0), 8) for _ in range(5_000)])  # mostly 0.1 … 1: flat digits
    rng2 = random.Random(3)
    spread = _run([round(rng2.uniform(1, 10) * 10.0 ** rng2.randint(-4, -1), 8) for _ in range(5_000)])
    assert indicator.benford_band == "nonconformity"
    assert indicator.benford is WashTest.NOT_APPLICABLE  # they span one decade: not a Benford population
    assert spread.benford is WashTest.DOES_NOT_CONFORM  # flat digits over four decades


def test_small_whole_lots_are_not_a_benford_population() -> None:
    rng = random.Random(4)
    indicator = _run([float(min(int(rng.paretovariate(1.5)), 500)) for _ in range(5_000)], VenueWashParams())
    assert indicator.lot == 1.0
    assert indicator.benford is WashTest.NOT_APPLICABLE


def _three_digit_sizes(n: int, round_share: float, seed: int) -> list[float]:
    """Sizes of three significant digits (0.100 … 0.999), ``round_share`` of them moved onto a round size."""
    rng = random.Random(seed)
    sizes = []
    for _ in range(n):
        hundredths = rng.randrange(100, 1000)
        if rng.random() < round_share:
            hundredths = max(100, round(hundredths, -2)) if hundredths < 950 else 100
        sizes.append(hundredths / 1000)
    return sizes


def test_round_size_clustering_is_found() -> None:
    indicator = _run(_three_digit_sizes(5_000, 0.2, seed=5), VenueWashParams(lot=1e-3))
    assert indicator.rounding is WashTest.CONFORMS
    assert indicator.round_p is not None and indicator.round_p < 1e-6
    assert indicator.round_ratio is not None and indicator.round_ratio > 3


def test_no_preference_for_round_sizes_does_not_conform() -> None:
    indicator = _run(_three_digit_sizes(5_000, 0.0, seed=6), VenueWashParams(lot=1e-3))
    assert indicator.round_at + indicator.round_near >= 200
    assert indicator.rounding is WashTest.DOES_NOT_CONFORM
    assert indicator.round_ratio is not None and 0.5 < indicator.round_ratio < 2


def test_round_sizes_under_a_hundred_lots_are_not_tested() -> None:
    indicator = _run([1.0, 2.0, 3.0, 10.0, 11.0, 9.0] * 500, VenueWashParams())
    assert indicator.lot == 1.0
    assert (indicator.round_at, indicator.round_near) == (0, 0)
    assert indicator.rounding is WashTest.NOT_APPLICABLE


def test_too_few_trades_give_no_verdict() -> None:
    indicator = _run(_log_uniform(300, 1e-4, 10.0))
    assert indicator.benford is WashTest.NOT_ENOUGH_TRADES and indicator.benford_mad is None
    assert indicator.rounding in (WashTest.NOT_ENOUGH_TRADES, WashTest.NOT_APPLICABLE)
    assert indicator.consistent is None


def test_a_later_day_closes_the_window() -> None:
    wash = VenueWash("X", "v", VenueWashParams(utc_offset_min=480))
    assert wash.on_quote_values(DAY_MS - 9 * HOUR, 1.0) is None  # 23:00 Taipei of day 0
    closed = wash.on_quote_values(DAY_MS - 7 * HOUR, 2.0)  # 01:00 Taipei of day 1
    assert closed is not None and closed.complete and closed.trades == 1
    assert (closed.window_start, closed.window_end, closed.ts) == (0, DAY_MS - 8 * HOUR, DAY_MS - 8 * HOUR)
    assert wash.on_quote_values(DAY_MS - 10 * HOUR, 3.0) is None  # late: counted in the open window
    last = wash.flush()
    assert last is not None and not last.complete and last.trades == 2


def test_the_lot_is_learnt_as_the_coarsest_power_of_ten() -> None:
    def lot(sizes: list[float]) -> float | None:
        tally = SizeTally()
        for size in sizes:
            tally.observe(size)
        return learnt_lot(tally.steps, 0.01)

    assert lot([1000.0, 2000.0, 15000.0, 3000.0]) == 1000.0
    assert lot([0.01534537, 1.0, 0.5]) == pytest.approx(1e-8)
    assert lot([5.0, 7.0, 12.0]) == 1.0
    assert lot([1000.0] * 200 + [999.0]) == 1000.0  # one odd lot in two hundred does not change it
    assert lot([]) is None


@pytest.mark.parametrize(
    "change",
    [
        {"alpha": 0.0},
        {"alpha": 1.5},
        {"window_ms": 0},
        {"lot": -1.0},
        {"min_decades": 30},
        {"neighbours": 0},
        {"neighbours": 10},
    ],
)
def test_params_are_validated(change: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        VenueWashParams(**change)  # type: ignore[arg-type]


# --- incremental equals batch ----------------------------------------------------------------------------
def _batch(sizes: list[float], neighbours: int) -> dict[str, Counter[int]]:
    """The tally's counts computed another way: exact decimals, and every round size of the decade tried."""
    counts: dict[str, Counter[int]] = {name: Counter() for name in ("digits", "decades", "round_at", "round_near")}
    for size in sizes:
        value = Decimal(repr(size)).normalize()
        exponent = value.adjusted()
        counts["digits"][value.as_tuple().digits[0]] += 1
        counts["decades"][exponent] += 1
        candidates = [(Decimal(r).scaleb(exponent), exponent) for r in range(1, 10)]
        candidates.append((Decimal(1).scaleb(exponent + 1), exponent + 1))
        for round_size, round_exponent in candidates:
            offset = (value - round_size) / Decimal(1).scaleb(round_exponent - 2)
            if offset == offset.to_integral_value() and abs(offset) <= neighbours:
                counts["round_at" if offset == 0 else "round_near"][round_exponent] += 1
    return counts


sizes_8dp = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("99999.99999999"), places=8).map(float)
sizes_3sd = st.integers(100, 999).flatmap(lambda m: st.integers(-6, 4).map(lambda e: float(f"{m}e{e - 2}")))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(sizes_8dp, sizes_3sd), max_size=300), st.integers(1, 9))
def test_the_incremental_tally_equals_the_batch_one(sizes: list[float], neighbours: int) -> None:
    tally = SizeTally(neighbours)
    for size in sizes:
        tally.observe(size)
    batch = _batch(sizes, neighbours)
    assert tally.digits == dict(batch["digits"])
    assert tally.decades == dict(batch["decades"])
    assert tally.round_at == dict(batch["round_at"])
    assert tally.round_near == dict(batch["round_near"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 * DAY_MS), sizes_8dp), max_size=200), st.integers(0, 200))
def test_a_restored_state_continues_as_if_never_stopped(trades: list[tuple[int, float]], cut: int) -> None:
    params = VenueWashParams(min_trades=10, min_round_trades=5)
    whole, first = VenueWash("X", "v", params), VenueWash("X", "v", params)
    expected = [i for ts, size in trades if (i := whole.on_quote_values(ts, size)) is not None]
    got = [i for ts, size in trades[:cut] if (i := first.on_quote_values(ts, size)) is not None]
    second = VenueWash.from_state(first.to_state(), "X", "v", params)
    got += [i for ts, size in trades[cut:] if (i := second.on_quote_values(ts, size)) is not None]
    assert got == expected
    assert second.flush() == whole.flush()


def test_significand_resists_float_noise() -> None:
    assert significand(0.1 + 0.2) == (3 * 10**12, -1)
    assert significand(1e-8) == (10**12, -8)
    assert significand(999.99999999999999) == (10**12, 3)
    assert significand(49999.99999501) == (4_999_999_999_501, 4)
    assert significand(1e13) == (10**12, 13)


def test_the_tail_exponent_is_estimated_from_the_largest_trades() -> None:
    from tapewatch.detectors.venue_wash import tail_exponent

    def alpha(shape: float, n: int, seed: int) -> float | None:
        rng = random.Random(seed)
        tally = SizeTally()
        for _ in range(n):
            tally.observe(round(0.01 * rng.paretovariate(shape), 8))
        return tail_exponent(tally.leading, VenueWashParams())[0]

    assert alpha(1.5, 20_000, 1) == pytest.approx(1.5, abs=0.1)
    assert alpha(1.1, 20_000, 2) == pytest.approx(1.1, abs=0.1)
    assert alpha(2.5, 20_000, 3) == pytest.approx(2.5, abs=0.2)
    assert alpha(1.5, 300, 4) is None  # 30 trades in the tail: fewer than 50
