"""The stream worker's calibrations (tapewatch.streams.detect.ModelSlot.calibration): each venue's latest, read when its
first new symbol appears, refused with one logged line when it was made for another feed, read anew once republished."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tapewatch.artifacts import ArtifactStore
from tapewatch.detectors.calibration import Calibration
from tapewatch.detectors.patterns import PatternParams, SymbolDetector
from tapewatch.detectors.patterns.materiality import SERIES
from tapewatch.streams.detect import ModelSlot

ROW = [2.0, 4.0, 9.0, 16.0, 100.0]


def _calibration(venue: str, prints: str | None, sessions: int = 2) -> Calibration:
    return Calibration(venue, prints, 30, SERIES, sessions, {"2330": {18: ROW}})  # type: ignore[arg-type]


def test_new_symbols_start_from_their_venues_latest_calibration(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    slot = ModelSlot(store)
    params = PatternParams()
    assert slot.calibration("twse", "snapshots", params) is None  # none published: uncalibrated
    _calibration("twse", "snapshots").save(store)
    assert slot.calibration("twse", "snapshots", params) is None  # remembered until the next refresh
    slot.refresh()
    found = slot.calibration("twse", "snapshots", params)
    assert found is not None and found.sessions == 2
    detector = SymbolDetector("2330", "twse", params=params)
    assert found.seed(detector)
    assert detector.patterns.materiality.calibrated
    assert detector.patterns.materiality.profile.learnt == {18: ROW}
    listed_since = SymbolDetector("6669", "twse", params=params)  # the history never saw it: no baselines
    assert not found.seed(listed_since)
    assert listed_since.patterns.materiality.calibrated and not listed_since.patterns.materiality.profile.learnt


def test_a_calibration_for_another_feed_shape_is_refused_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ArtifactStore(tmp_path)
    _calibration("twse", "trades").save(store)
    slot = ModelSlot(store)
    with caplog.at_level(logging.ERROR):
        assert slot.calibration("twse", "snapshots", PatternParams()) is None
        assert slot.calibration("twse", "snapshots", PatternParams()) is None
    refusals = [r.getMessage() for r in caplog.records if "uncalibrated" in r.getMessage()]
    assert len(refusals) == 1 and "made on trades prints, the feed now sends snapshots" in refusals[0]
