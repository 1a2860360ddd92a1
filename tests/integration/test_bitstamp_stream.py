"""The real Bitstamp capture (ob-analytics' BTC/USD sample, converted by producers/bitstamp_capture.py) replayed
into the real Kafka and through the stream worker: every trade and book arrives, nothing is dead-lettered, the
worker's bars and features equal the batch computation, and its alerts are `detect file`'s — within the false
alert bound of tests/unit/test_bitstamp_capture.py (this is ordinary market activity)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pandas as pd
import pytest

from tapewatch.detectors.bars import bars_from_quotes, bars_to_frame
from tapewatch.detectors.features import features_frame
from tapewatch.detectors.flow import FlowConfig
from tapewatch.evaluation.lookback import detect_frames, read_input, split_ticks
from tapewatch.producers.bitstamp_capture import convert, sample_paths, write_ticks
from tapewatch.producers.framework import run_source
from tapewatch.producers.replay import Replay
from tapewatch.records import Alert, Bar
from tapewatch.settings import Settings
from tapewatch.topics import ALERTS, BARS, DLQ_PRODUCERS, DLQ_STREAMS, FEATURES
from tests.kafka_reader import read_distinct, read_topic
from tests.pipeline_session import TAIL_MS, comparable
from tests.stream_reference import features_frames, flow_reference
from tests.stream_worker import Worker
from tests.unit.test_bitstamp_capture import CAPTURE_TRADES, MAX_FALSE_ALERTS, describe

pytestmark = pytest.mark.integration

WAIT_S = 120.0


@pytest.mark.timeout(420)
def test_the_real_capture_through_the_stream(stream_settings: Settings, tmp_path: Path) -> None:
    settings = stream_settings
    ticks_path = tmp_path / "bitstamp.parquet"
    capture = convert(*sample_paths())
    write_ticks(capture.ticks, ticks_path)
    data = read_input([ticks_path])
    quotes, books = split_ticks(data.frame)
    offline = detect_frames(
        data,
        None,
        flow_config=FlowConfig.from_settings(settings),
        grace_ms=settings.stream.grace_ms,
        feeds=settings.venues.feeds(),
    )
    cutoff = int(data.frame["ts"].max()) - TAIL_MS  # the stream never flushes: its last outputs may stay open
    expected_alerts = {comparable(orjson.loads(a.to_json())) for a in offline.alerts if a.ts <= cutoff}
    expected_bars = bars_from_quotes(
        quotes[["symbol", "venue", "ts", "price", "size"]], grace_ms=settings.stream.grace_ms
    )
    expected_features = features_frame(expected_bars)
    expected_flow = flow_reference(quotes, books, FlowConfig.from_settings(settings))
    assert len(expected_flow) > 300 and len(expected_bars) >= 25

    # no model in this directory: patterns only, as `detect file` above (no K-means is trained on this venue)
    worker = Worker(settings, tmp_path / "worker.log", env={"TAPEWATCH_MODEL_DIR": str(tmp_path / "models")})
    try:
        replay = Replay([ticks_path])
        counters = asyncio.run(run_source(settings, "producer:replay", replay.run))
        bars = read_distinct(settings, settings.topic(BARS.name), len(expected_bars), wait_s=WAIT_S)
        features = read_distinct(
            settings, settings.topic(FEATURES.name), len(expected_features) + len(expected_flow), wait_s=WAIT_S
        )
        # the detect stage reads features.1m behind the market stage: give it time to raise what it raises
        alerts = read_topic(settings, settings.topic(ALERTS.name), len(expected_alerts), timeout_s=WAIT_S, linger_s=5)
        dead = read_topic(settings, settings.topic(DLQ_STREAMS.name), 0, timeout_s=5, linger_s=1)
        dead += read_topic(settings, settings.topic(DLQ_PRODUCERS.name), 0, timeout_s=5, linger_s=1)
        alive = worker.proc.poll() is None
        details = worker.tail()
    finally:
        worker.stop()

    assert alive, details
    assert (counters.quotes, counters.books, counters.dead_lettered) == (CAPTURE_TRADES, capture.rebuild.book_rows, 0)
    assert dead == [], f"{len(dead)} dead letter(s)"
    got_bars = bars_to_frame([Bar.from_json(m.value) for m in bars]).drop_duplicates().reset_index(drop=True)
    pd.testing.assert_frame_equal(got_bars, expected_bars, check_exact=False, rtol=1e-9, atol=1e-9)
    got_features, got_flow = features_frames(features)
    pd.testing.assert_frame_equal(got_features, expected_features, check_exact=False, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(got_flow, expected_flow, check_exact=False, rtol=1e-9, atol=1e-12)

    streamed = [Alert.from_json(m.value) for m in alerts]
    for alert in streamed:
        print(describe(alert))
    print(
        f"stream: {counters.quotes} trades, {counters.books} books → {len(got_bars)} bars, {len(got_flow)} flow "
        f"chunks, {len(streamed)} alert(s) ({len(expected_alerts)} offline up to the cutoff)"
    )
    assert {comparable(orjson.loads(a.to_json())) for a in streamed if a.ts <= cutoff} == expected_alerts
    assert len(streamed) <= MAX_FALSE_ALERTS, "\n".join(map(describe, streamed))
