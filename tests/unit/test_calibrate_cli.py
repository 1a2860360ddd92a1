"""`tapewatch calibrate` over files, and `detect file` starting from what it published."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from detectors.calibration import Calibration, CalibrationError, artifact_name
from detectors.patterns import PatternParams
from offline.simulator import SimulationConfig, generate
from tapewatch.artifacts import ArtifactStore


def _days(*days: date) -> pd.DataFrame:
    """Clean simulated sessions (no episode) of the same two symbols, one per day."""
    frames = [
        generate(SimulationConfig(symbols=2, minutes=60, seed=4, day=day, clean_fraction=1.0)).ticks_frame()
        for day in days
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "history.parquet"
    _days(date(2024, 1, 2), date(2024, 1, 3)).drop(columns=["venue"], errors="ignore").to_parquet(path)
    return path


def test_calibrate_publishes_the_venues_baselines_and_detect_file_starts_from_them(
    history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tapewatch.cli import app

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    runner = CliRunner()
    result = runner.invoke(app, ["calibrate", str(history), "--venue", "sim"])
    assert result.exit_code == 0, result.output
    assert "over 2 session(s)" in result.output
    store = ArtifactStore(tmp_path / "models")
    calibration = Calibration.load(store, "sim")
    assert calibration is not None and calibration.venue == "sim" and calibration.prints == "trades"
    assert set(calibration.symbols) == {"SIM0001", "SIM0002"}
    # 09:00-13:30 Taipei over two days: every half hour the symbols traded was learnt from both
    sessions = {int(row[0] or 0) for rows in calibration.symbols.values() for row in rows.values()}
    assert sessions == {2}
    out = tmp_path / "alerts.jsonl"
    later = tmp_path / "later.parquet"
    _days(date(2024, 1, 4)).drop(columns=["venue"], errors="ignore").to_parquet(later)
    detected = runner.invoke(app, ["detect", "file", str(later), "--venue", "sim", "--no-kmeans", "--out", str(out)])
    assert detected.exit_code == 0, detected.output
    assert "no calibration" not in detected.output
    uncalibrated = runner.invoke(
        app, ["detect", "file", str(later), "--venue", "other", "--no-kmeans", "--out", str(tmp_path / "o.jsonl")]
    )
    assert "other: no calibration" in uncalibrated.output


def test_a_history_of_one_session_is_refused_saying_how_much_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tapewatch.cli import app

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    one = tmp_path / "one.parquet"
    _days(date(2024, 1, 2)).drop(columns=["venue"], errors="ignore").to_parquet(one)
    result = CliRunner().invoke(app, ["calibrate", str(one), "--venue", "sim"])
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
    from detectors.patterns.materiality import SERIES

    row = [3.0, 1.5, None, 2.0, 10.0]
    calibration = Calibration("sim", "trades", 30, SERIES, 3, {"A": {0: row, 47: [1.0, 2.0, 2.0, 2.0, 2.0]}})
    calibration.save(ArtifactStore(tmp_path))
    assert Calibration.load(ArtifactStore(tmp_path), "sim") == calibration
    assert Calibration.load(ArtifactStore(tmp_path), "other") is None
