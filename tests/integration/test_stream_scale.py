"""Scale-out on the real broker: two stream workers in one consumer group over 4 partitions produce exactly
what one worker (and the batch reference) produces, and each serves its Prometheus metrics."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tapewatch.detectors.bars import bars_from_quotes, bars_to_frame
from tapewatch.detectors.features import features_frame
from tapewatch.generators.simulator import SimulationConfig, generate
from tapewatch.records import Bar
from tapewatch.settings import PROJECT_ROOT, Settings
from tapewatch.topics import BARS, FEATURES
from tests.kafka_reader import read_distinct
from tests.stream_reference import features_frames, flow_reference
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration

SESSION = SimulationConfig(symbols=12, minutes=8, seed=11)
WAIT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of ``name`` whose labels include ``labels`` (0 when absent)."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    total = 0.0
    for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
        if all(label in match.group(1) for label in wanted):
            total += float(match.group(2))
    return total


def wait_ready(workers: list[Worker], timeout_s: float = WAIT_S) -> None:
    """Until every worker logged "Ready" (its first assignment is recovered)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all("Ready" in w.log.read_text(errors="replace") for w in workers):
            return
        time.sleep(0.5)
    raise AssertionError("workers not ready:\n" + "\n".join(w.tail() for w in workers))


@pytest.mark.timeout(300)
def test_two_workers_produce_exactly_the_output_of_one(stream_settings: Settings, tmp_path: Path) -> None:
    settings = stream_settings
    ports = [free_port(), free_port()]
    workers = [Worker(settings, tmp_path / f"worker-{i}.log", "--metrics-port", str(ports[i])) for i in (0, 1)]
    try:
        wait_ready(workers)
        time.sleep(3)  # the second join's rebalance settles before data arrives
        produced = subprocess.run(
            [
                str(Path(sys.executable).with_name("tapewatch")),
                "produce",
                "simulate",
                "--symbols",
                str(SESSION.symbols),
                "--minutes",
                str(SESSION.minutes),
                "--seed",
                str(SESSION.seed),
                "--truth",
                str(tmp_path / "truth.csv"),
                "--no-news",  # the outputs are compared emission by emission (tests.pipeline_session.sim_args)
                "--no-progress",
            ],
            cwd=PROJECT_ROOT,
            env={**os.environ, "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert produced.returncode == 0, produced.stderr

        session = generate(SESSION)
        quotes = session.quotes_frame().assign(venue=SESSION.venue)
        books = session.books_frame()
        expected_bars = bars_from_quotes(quotes)
        expected_features = features_frame(expected_bars)
        expected_flow = flow_reference(quotes, books)
        assert len(expected_bars) >= SESSION.symbols * 6

        bar_messages = read_distinct(settings, settings.topic(BARS.name), len(expected_bars), wait_s=WAIT_S)
        feature_messages = read_distinct(
            settings, settings.topic(FEATURES.name), len(expected_features) + len(expected_flow), wait_s=WAIT_S
        )
        metrics = [scrape(port) for port in ports]
        details = "\n".join(w.tail() for w in workers)
    finally:
        for worker in workers:
            worker.stop()

    # exactly the batch reference (which one worker also equals, see test_stream_slice): nothing missing,
    # nothing twice, nothing extra
    bars = bars_to_frame([Bar.from_json(m.value) for m in bar_messages])
    assert len(bars) == len(expected_bars), f"{len(bars)} bars for {len(expected_bars)} expected\n{details}"
    pd.testing.assert_frame_equal(bars, expected_bars, check_exact=False, rtol=1e-9, atol=1e-9)

    got_features, got_flow = features_frames(feature_messages)
    assert len(feature_messages) == len(got_features) + len(got_flow), f"an output was sent twice\n{details}"
    pd.testing.assert_frame_equal(got_features, expected_features, check_exact=False, rtol=1e-9, atol=1e-12)
    assert len(expected_flow) >= SESSION.symbols * SESSION.minutes * 10
    pd.testing.assert_frame_equal(got_flow, expected_flow, check_exact=False, rtol=1e-9, atol=1e-12)

    # both workers did part of the work, and together they consumed every quote (at least once)
    consumed = [sample(text, "tapewatch_stream_records_in_total", agent="market") for text in metrics]
    assert all(n > 0 for n in consumed), f"a worker got no partition: {consumed}\n{details}"
    assert sum(consumed) >= len(quotes) + len(books)
    for text in metrics:
        assert sample(text, "tapewatch_stream_records_out_total", topic="bars") > 0
        assert sample(text, "tapewatch_stream_event_to_emit_seconds_count", topic="features") > 0
        assert sample(text, "tapewatch_stream_event_to_emit_seconds_count", topic="flow") > 0
        assert "tapewatch_stream_consumer_lag{" in text
