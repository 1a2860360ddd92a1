"""`tapewatch calibrate` over files, and `detect file` starting from what it published."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tapewatch.artifacts import ArtifactStore
from tapewatch.detectors.alert_budget import BUDGETED_KINDS, cutoffs
from tapewatch.detectors.alerting import PolicyParams
from tapewatch.detectors.calibration import Calibration, CalibrationError, artifact_name
from tapewatch.detectors.patterns import PatternParams, SymbolDetector
from tapewatch.generators.simulator import SimulationConfig, generate
from tapewatch.records import AlertKind
from tapewatch.settings import get_settings


def _days(*days: date) -> pd.DataFrame:
    """Clean simulated sessions (no episode) of the same two symbols, one per day."""
    frames = [
        generate(SimulationConfig(symbols=2, minutes=60, seed=4, day=day, clean_fraction=1.0)).ticks_frame()
        for day in days
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Each command reads this test's environment (the model directory), not a cached earlier one."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "history.parquet"
    _days(date(2024, 1, 2), date(2024, 1, 3)).drop(columns=["venue"], errors="ignore").to_parquet(path)
    return path


def test_calibrate_publishes_the_venues_baselines_and_detect_file_starts_from_them(
    history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tapewatch.cli.app import cli

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    runner = CliRunner()
    short = runner.invoke(cli(), ["calibrate", str(history), "--venue", "sim"])
    assert short.exit_code == 0, short.output
    assert "needs 14 symbol-days of history, this one holds 4" in " ".join(short.output.split())
    store = ArtifactStore(tmp_path / "models")
    baselines_only = Calibration.load(store, "sim")
    assert baselines_only is not None and baselines_only.symbols and not baselines_only.min_score
    result = runner.invoke(cli(), ["calibrate", str(history), "--venue", "sim", "--budget", "2"])
    assert result.exit_code == 0, result.output
    assert "2 session(s), 4 symbol-day(s)" in result.output
    assert "alert budget 2 per symbol-day over 4 symbol-days" in result.output
    calibration = Calibration.load(store, "sim")
    assert calibration is not None and calibration.venue == "sim" and calibration.prints == "trades"
    assert calibration.budget == 2.0 and calibration.symbol_days == 4.0
    assert set(calibration.min_score) == {str(kind) for kind in BUDGETED_KINDS}
    assert all(0.5 <= score <= 1.0 for score in calibration.min_score.values())
    assert set(calibration.symbols) == {"SIM0001", "SIM0002"}
    # 09:00-13:30 Taipei over two days: every half hour the symbols traded was learnt from both
    sessions = {int(row[0] or 0) for rows in calibration.symbols.values() for row in rows.values()}
    assert sessions == {2}
    # and each symbol's two sessions of records (a clean history: no burst to beat yet)
    assert {symbol: len(rows) for symbol, rows in calibration.records.items()} == {"SIM0001": 2, "SIM0002": 2}
    out = tmp_path / "alerts.jsonl"
    later = tmp_path / "later.parquet"
    _days(date(2024, 1, 4)).drop(columns=["venue"], errors="ignore").to_parquet(later)
    detected = runner.invoke(cli(), ["detect", "file", str(later), "--venue", "sim", "--no-kmeans", "--out", str(out)])
    assert detected.exit_code == 0, detected.output
    assert "no calibration" not in detected.output
    uncalibrated = runner.invoke(
        cli(), ["detect", "file", str(later), "--venue", "other", "--no-kmeans", "--out", str(tmp_path / "o.jsonl")]
    )
    assert "other: no calibration" in uncalibrated.output


def test_a_history_of_one_session_is_refused_saying_how_much_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tapewatch.cli.app import cli

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    one = tmp_path / "one.parquet"
    _days(date(2024, 1, 2)).drop(columns=["venue"], errors="ignore").to_parquet(one)
    result = CliRunner().invoke(cli(), ["calibrate", str(one), "--venue", "sim"])
    assert result.exit_code != 0
    assert "covers 1 session(s); calibration needs at least 2" in str(result.exception)
    assert ArtifactStore(tmp_path / "models").versions(artifact_name("sim")) == []


def test_another_venues_or_feed_shapes_calibration_is_refused() -> None:
    calibration = Calibration("twse", "snapshots", 30, ("a",), 5, {"2330": {18: [5.0, 1.0]}})
    params = PatternParams()
    with pytest.raises(CalibrationError, match="refused for venue 'tpex'"):
        calibration.check("tpex", "snapshots", params)
    with pytest.raises(CalibrationError, match="made on snapshots prints, the feed now sends trades"):
        calibration.check("twse", "trades", params)
    with pytest.raises(CalibrationError, match="30-minute buckets of \\['a'\\]"):
        calibration.check("twse", "snapshots", params)


def test_the_artifact_round_trips(tmp_path: Path) -> None:
    from tapewatch.detectors.patterns.materiality import SERIES

    row: list[float | None] = [3.0, 1.5, None, 2.0, 10.0]
    records: dict[str, list[list[float | None]]] = {
        "A": [[None, None, None], [40.0, 900.0, None], [55.0, 1_200.0, 20.0]],
        "B": [[None, 100.0, None]],
    }
    baselines: dict[str, dict[int, list[float | None]]] = {"A": {0: row, 47: [1.0, 2.0, 2.0, 2.0, 2.0]}, "B": {3: row}}
    calibration = Calibration("sim", "trades", 30, SERIES, 3, baselines, records=records)
    calibration.save(ArtifactStore(tmp_path))
    assert Calibration.load(ArtifactStore(tmp_path), "sim") == calibration
    assert Calibration.load(ArtifactStore(tmp_path), "other") is None
    # a new symbol of the venue starts from its records: a burst must beat them from its first chunk
    detector = SymbolDetector("A", "sim")
    calibration.seed(detector)
    assert detector.patterns.materiality.records.record(0) == (55.0, 3)


def test_cutoffs_hold_the_history_to_the_budget_and_report_what_sits_below_the_line() -> None:
    pumps = [0.99, 0.97, 0.9, 0.8, 0.75, 0.7]
    lines = {
        line.kind: line for line in cutoffs({AlertKind.PUMP_AND_DUMP: pumps}, symbol_days=28.0, budget=0.5, floor=0.5)
    }
    pump = lines[AlertKind.PUMP_AND_DUMP]
    assert pump.allowed == 2 and pump.above == 2 and pump.met  # 0.5 × 28 / 7 kinds
    assert pump.cutoff == 0.900001 and pump.below == (0.9, 0.8, 0.75)
    assert lines[AlertKind.SPOOFING].cutoff == 0.5 and lines[AlertKind.SPOOFING].above == 0  # no alert: the default
    # a kind whose alerts all score 1 cannot be held to its share below a score of 1: reported, not hidden
    saturated = cutoffs({AlertKind.WASH_TRADING: [1.0] * 5}, symbol_days=14.0, budget=0.5, floor=0.5)
    wash = next(line for line in saturated if line.kind is AlertKind.WASH_TRADING)
    assert wash.cutoff == 1.0 and not wash.met
    with pytest.raises(ValueError, match="budget"):
        cutoffs({}, symbol_days=1.0, budget=0.0, floor=0.5)
    with pytest.raises(ValueError, match="needs at least 14 symbol-days of history to set cut-offs; this one holds 13"):
        cutoffs({}, symbol_days=13.0, budget=0.5, floor=0.5)


def test_the_calibrated_policy_never_goes_below_the_policys_own_minimum() -> None:
    calibration = Calibration("sim", "trades", 30, ("a",), 3, {}, min_score={"spoofing": 0.8, "wash_trading": 0.5})
    base = PolicyParams(min_score={AlertKind.WASH_TRADING: 0.6})
    policy = calibration.policy(base)
    assert policy.threshold(AlertKind.SPOOFING) == 0.8
    assert policy.threshold(AlertKind.WASH_TRADING) == 0.6
    assert policy.threshold(AlertKind.PUMP_AND_DUMP) == base.default_min_score


def test_detect_file_holds_a_venue_to_its_calibrated_cut_offs() -> None:
    from tapewatch.detectors.patterns.materiality import SERIES
    from tapewatch.evaluation.lookback import detect_frames, tick_input

    sim = generate(SimulationConfig(symbols=2, minutes=60, seed=8, clean_fraction=0.0, quiet_open_s=600.0))
    ticks = sim.ticks_frame().assign(venue="sim")
    uncalibrated = detect_frames(tick_input(ticks), None)
    assert uncalibrated.alerts
    closed = Calibration("sim", "trades", 30, SERIES, 2, {}, min_score={str(k): 1.01 for k in BUDGETED_KINDS})
    calibrated = detect_frames(tick_input(ticks), None, calibrations={"sim": closed})
    assert not [a for a in calibrated.alerts if a.kind in BUDGETED_KINDS]
    with pytest.raises(CalibrationError, match="refused for venue 'sim'"):
        detect_frames(tick_input(ticks), None, calibrations={"sim": replace(closed, venue="twse")})


def test_each_liquidity_tier_gets_its_own_cut_offs_and_a_new_symbol_the_venues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tapewatch.cli.app import cli

    frames = [
        generate(SimulationConfig(symbols=4, minutes=60, seed=4, day=day, clean_fraction=1.0)).ticks_frame()
        for day in (date(2024, 1, 2), date(2024, 1, 3))
    ]
    ticks = pd.concat(frames, ignore_index=True).drop(columns=["venue"], errors="ignore")
    path = tmp_path / "four.parquet"
    ticks.to_parquet(path)
    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    result = CliRunner().invoke(cli(), ["calibrate", str(path), "--venue", "sim", "--budget", "2"])
    assert result.exit_code == 0, result.output
    assert "cut-offs per liquidity tier" in result.output
    calibration = Calibration.load(ArtifactStore(tmp_path / "models"), "sim")
    assert calibration is not None
    prints = ticks[ticks["price"].notna()].groupby("symbol").size()
    thin = {s for s, tier in calibration.tiers.items() if tier == "thin"}
    liquid = {s for s, tier in calibration.tiers.items() if tier == "liquid"}
    assert len(thin) == len(liquid) == 2 and max(prints[sorted(thin)]) <= min(prints[sorted(liquid)])
    # 2 symbols × 2 days per tier hold the 4 symbol-days a budget of 2 needs: each tier has its own line
    assert set(calibration.tier_min_score) == {"thin", "liquid"}
    for symbol, tier in calibration.tiers.items():
        policy = calibration.policy(symbol=symbol)
        for kind, score in calibration.tier_min_score[tier].items():
            assert policy.threshold(AlertKind(kind)) == max(PolicyParams().threshold(AlertKind(kind)), score)
    assert calibration.policy(symbol="NEW") == calibration.policy()  # never seen: the venue's cut-offs


def test_tiers_round_trip_and_pick_the_symbols_cut_offs(tmp_path: Path) -> None:
    from tapewatch.detectors.patterns.materiality import SERIES

    calibration = Calibration(
        "sim", "trades", 30, SERIES, 3, {"A": {0: [1.0, 1.0, 1.0, 1.0, 1.0]}},
        min_score={"spoofing": 0.7}, budget=0.5, symbol_days=30.0,
        tiers={"A": "thin", "B": "liquid"}, tier_min_score={"thin": {"spoofing": 0.9}},
    )  # fmt: skip
    calibration.save(ArtifactStore(tmp_path))
    assert Calibration.load(ArtifactStore(tmp_path), "sim") == calibration
    assert calibration.policy(symbol="A").threshold(AlertKind.SPOOFING) == 0.9
    assert calibration.policy(symbol="B").threshold(AlertKind.SPOOFING) == 0.7  # a tier without its own line
    assert calibration.policy().threshold(AlertKind.SPOOFING) == 0.7


def test_calibrate_learns_a_venues_1_minute_bars_and_detect_file_starts_from_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real bars (four US large caps): the baselines of their own 5-minute buckets, tiers by volume (bars that do not
    count their trades), then the days after them scored from that calibration."""
    from tapewatch.cli.app import cli
    from tapewatch.producers.us_stock_bars import read_bars

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    bars = read_bars().bars.drop(columns=["venue"])
    cut = int(bars["start"].min()) + 3 * 86_400_000  # 3, 4 and 5 January
    bars[bars["start"] < cut].to_csv(tmp_path / "history.csv", index=False)
    bars[(bars["start"] >= cut) & (bars["start"] < cut + 86_400_000)].to_csv(tmp_path / "day.csv", index=False)
    runner = CliRunner()
    result = runner.invoke(cli(), ["calibrate", str(tmp_path / "history.csv"), "--venue", "us-equities"])
    assert result.exit_code == 0, result.output
    calibration = Calibration.load(ArtifactStore(tmp_path / "models"), "us-equities")
    assert calibration is not None and set(calibration.symbols) == {"AAPL", "IBM", "MSFT", "NVDA"}
    detected = runner.invoke(
        cli(), ["detect", "file", str(tmp_path / "day.csv"), "--venue", "us-equities", "--out", str(tmp_path / "a")]
    )
    assert detected.exit_code == 0, detected.output
    assert "baselines start from nothing" not in detected.output
    assert "ran: bursts, closing, pump_dump, pump_ramp" in " ".join(detected.output.split())
