"""The stream worker says, once per venue, which detectors its feed cannot feed (tapewatch.streams.detect)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tapewatch.detectors.flow import FLOW_FEATURE_SET_VERSION
from tapewatch.records import Cadence, Features
from tests.detect_harness import DetectRun, messages


def _chunk(symbol: str, venue: str, ts: int) -> Features:
    return Features(
        symbol=symbol,
        venue=venue,
        ts=ts,
        values={"ret_bps": 0.0},
        version=FLOW_FEATURE_SET_VERSION,
        cadence=Cadence.FAST,
    )


def test_a_venue_without_books_is_said_once_to_run_no_spoofing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = DetectRun(tmp_path)
    records = [_chunk(symbol, "us-equities", ts) for ts in (5_000, 10_000) for symbol in ("AAPL", "MSFT")]
    records += [_chunk("2330", "sim", 5_000)]  # the simulator's feed has books: every detector runs
    with caplog.at_level(logging.INFO, logger="tapewatch.streams.detect"):
        run.process(messages(records))
    said = [r.getMessage() for r in caplog.records if "does not run" in r.getMessage()]
    assert said == ["stream:detect: venue us-equities: spoofing does not run (needs books)"]
