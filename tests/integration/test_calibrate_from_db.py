"""`tapewatch calibrate --from-db`: a venue's history read back from the order-flow chunks the PostgreSQL sink
stored gives the calibration its files give (the same chunks reach the same detectors)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from tapewatch.artifacts import ArtifactStore
from tapewatch.detectors.calibration import Calibration
from tapewatch.detectors.flow import FLOW_FEATURE_NAMES, FLOW_FEATURE_SET_VERSION
from tapewatch.evaluation.lookback import flow_chunks, tick_input
from tapewatch.generators.simulator import SimulationConfig, generate
from tapewatch.records import Cadence, Features
from tapewatch.settings import Settings, get_settings
from tapewatch.sinks import db

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """The commands read this test's environment, and leave no cached settings of it to the next test."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _history() -> pd.DataFrame:
    """Two sessions of two simulated symbols, one with a pump each day (so the records hold a burst or two)."""
    frames = [
        generate(SimulationConfig(symbols=2, minutes=90, seed=seed, day=day)).ticks_frame()
        for seed, day in ((5, date(2024, 1, 2)), (6, date(2024, 1, 3)))
    ]
    return pd.concat(frames, ignore_index=True).assign(venue="sim")


def _store(settings: Settings, chunks: pd.DataFrame, venue: str, version: str = FLOW_FEATURE_SET_VERSION) -> None:
    names = list(FLOW_FEATURE_NAMES)
    docs = [
        db.record_doc(
            Features(
                symbol=str(row["symbol"]),
                venue=venue,
                ts=int(row["ts"]),
                values={n: None if math.isnan(row[n]) else float(row[n]) for n in names},
                version=version,
                cadence=Cadence.FAST,
            )
        )
        for row in chunks.to_dict("records")
    ]
    engine = db.make_engine(settings)
    with engine.begin() as conn:
        db.copy_rows(conn, db.features, docs)
    engine.dispose()


def _said(result: Result) -> str:
    """What a refused command told its user: its output, or the error the CLI prints in one line."""
    return " ".join(f"{result.output} {result.exception}".split())


def test_a_calibration_from_the_stored_chunks_is_the_one_from_the_files(
    pg: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tapewatch.cli.app import cli

    db.upgrade(pg)
    ticks = _history()
    _store(pg, flow_chunks(tick_input(ticks)), "sim")
    _store(pg, flow_chunks(tick_input(ticks)).head(50), "elsewhere", version="flow-v1")
    files = tmp_path / "history.parquet"
    ticks.to_parquet(files)
    monkeypatch.setenv("TAPEWATCH_POSTGRES_URL", pg.postgres.url_plain)
    runner = CliRunner()
    stores = {}
    for source, args in (("files", [str(files)]), ("db", ["--from-db"])):
        monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / source))
        get_settings.cache_clear()  # the command reads this environment, not a cached one
        result = runner.invoke(cli(), ["calibrate", *args, "--venue", "sim", "--budget", "2"])
        assert result.exit_code == 0, result.output
        assert "2 session(s), 4 symbol-day(s)" in result.output
        stores[source] = Calibration.load(ArtifactStore(tmp_path / source), "sim")
    get_settings.cache_clear()
    from_files, from_db = stores["files"], stores["db"]
    assert from_files is not None and from_db is not None
    assert from_db.symbols == from_files.symbols and from_db.records == from_files.records
    assert from_db.min_score == from_files.min_score and from_db.symbol_days == 4.0
    assert any(value is not None for rows in from_db.records.values() for row in rows for value in row)
    # a range holding one day is too short; another flow stage's chunks are refused, in one line each
    one_day = runner.invoke(cli(), ["calibrate", "--from-db", "--venue", "sim", "--until", "2024-01-03"])
    assert one_day.exit_code != 0 and "covers 1 session(s)" in _said(one_day)
    other = runner.invoke(cli(), ["calibrate", "--from-db", "--venue", "elsewhere"])
    assert other.exit_code != 0 and "computed by flow-v1" in _said(other)
    nothing = runner.invoke(cli(), ["calibrate", "--from-db", "--venue", "nowhere"])
    assert nothing.exit_code != 0 and "no order-flow chunks of venue 'nowhere'" in _said(nothing)
    both = runner.invoke(cli(), ["calibrate", str(files), "--from-db", "--venue", "sim"])
    assert both.exit_code != 0 and "one of them" in _said(both)
