"""Detection and signals in the stream on the real broker: simulator → md.quotes/md.books → worker →
scores.manipulation and alerts, equal to the offline twin (`tapewatch detect file`) over the same session, and a
Double-DQN action for every symbol and bar; bad features records go to the DLQ and the worker keeps running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from detectors.bars import bars_from_quotes
from detectors.simulator import SimulationConfig, generate
from tapewatch import deadletter
from tapewatch.kafka import client_config
from tapewatch.records import Action, Alert, Features, Score
from tapewatch.settings import PROJECT_ROOT, Settings
from tapewatch.topics import ACTIONS, ALERTS, DLQ_STREAMS, FEATURES, SCORES
from tests.kafka_reader import read_distinct, read_topic
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration

SESSION = SimulationConfig(symbols=6, minutes=20, seed=5)
TRAINING = SimulationConfig(symbols=6, minutes=30, seed=6)
WAIT_S = 120.0
#: the stream never flushes: outputs of the session's last two minutes may still be open when the data stops
TAIL_MS = 120_000


def tapewatch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("tapewatch")), *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def comparable(alert: dict[str, Any]) -> tuple[Any, ...]:
    """An alert without its venue (the offline input file carries none)."""
    return tuple(sorted((k, orjson.dumps(v)) for k, v in alert.items() if k != "venue"))


@pytest.mark.timeout(420)
def test_stream_alerts_equal_the_offline_twin(stream_settings: Settings, tmp_path: Path) -> None:
    settings = stream_settings
    models = tmp_path / "models"
    env = {"TAPEWATCH_TOPIC_PREFIX": settings.topic_prefix, "TAPEWATCH_MODEL_DIR": str(models)}
    sim_args = ["--symbols", str(SESSION.symbols), "--minutes", str(SESSION.minutes), "--seed", str(SESSION.seed)]

    # a K-means model trained on another session, the session itself as files, and the offline twin's output
    train_args = ["--symbols", str(TRAINING.symbols), "--minutes", str(TRAINING.minutes), "--seed", str(TRAINING.seed)]
    tapewatch("produce", "simulate", *train_args, "--out-dir", str(tmp_path / "training"), "--no-progress", env=env)
    tapewatch("train", "kmeans", str(tmp_path / "training" / "ticks.parquet"), env=env)
    # a tiny DQN on features that warm up within the session's 20 bars
    dqn = ["--mode", "intraday", "--steps", "300", "--sim-days", "2", "--sim-symbols", "2"]
    tapewatch("train", "dqn", *dqn, "--features", "ret_1,ret_5,ret_10,rsi_14,kd_k,vwap_dev", env=env)
    tapewatch("produce", "simulate", *sim_args, "--out-dir", str(tmp_path / "session"), "--no-progress", env=env)
    offline = tmp_path / "offline.jsonl"
    scores_file = tmp_path / "scores.jsonl"
    ticks = str(tmp_path / "session" / "ticks.parquet")
    tapewatch("detect", "file", ticks, "--out", str(offline), "--scores", str(scores_file), env=env)
    end = generate(SESSION).quotes_frame()["ts"].max()
    cutoff = int(end) - TAIL_MS
    expected = {comparable(a) for line in offline.read_text().splitlines() if (a := orjson.loads(line))["ts"] <= cutoff}
    expected_scores = [s for line in scores_file.read_text().splitlines() if (s := orjson.loads(line))["ts"] <= cutoff]
    assert expected, "the session must raise alerts before its last minutes"
    assert expected_scores

    worker = Worker(settings, tmp_path / "worker.log", "--metrics-port", "0", env=env, broker_session_timeout="10")
    try:
        tapewatch("produce", "simulate", *sim_args, "--truth", str(tmp_path / "truth.csv"), "--no-progress", env=env)
        # a malformed payload and a features record of an unknown feature set, straight onto features.1m
        bad_version = Features(symbol="SIM0001", venue="sim", ts=int(end), values={"x": 1.0}, version="bar1m-v0")
        producer = Producer(client_config(settings, **{"enable.idempotence": True}))
        producer.produce(settings.topic(FEATURES.name), key=b"SIM0001", value=b"{not json")
        producer.produce(settings.topic(FEATURES.name), key=b"SIM0001", value=bad_version.to_json())
        assert producer.flush(30) == 0

        got_alerts = read_distinct(settings, settings.topic(ALERTS.name), len(expected), wait_s=WAIT_S, linger_s=3)
        got_scores = read_distinct(settings, settings.topic(SCORES.name), len(expected_scores), wait_s=WAIT_S)
        bars = bars_from_quotes(generate(SESSION).quotes_frame().assign(venue=SESSION.venue))
        bars = bars[bars["end"] <= cutoff]
        got_actions = read_distinct(settings, settings.topic(ACTIONS.name), len(bars), wait_s=WAIT_S)
        dead = read_topic(settings, settings.topic(DLQ_STREAMS.name), 2, timeout_s=30, linger_s=1)
        time.sleep(1)
        alive = worker.proc.poll() is None
        details = worker.tail()
    finally:
        worker.stop()

    assert alive, details
    alerts = [Alert.from_json(m.value) for m in got_alerts]
    assert all(m.key == a.symbol.encode() for m, a in zip(got_alerts, alerts, strict=True))
    streamed = {comparable(orjson.loads(a.to_json())) for a in alerts if a.ts <= cutoff}
    assert streamed == expected, f"{len(streamed - expected)} extra, {len(expected - streamed)} missing\n{details}"

    scores = [Score.from_json(m.value) for m in got_scores]
    assert {(s.symbol, s.ts, s.score, s.cluster) for s in scores if s.ts <= cutoff} == {
        (s["symbol"], s["ts"], s["score"], s["cluster"]) for s in expected_scores
    }

    # an action for every symbol and bar (HOLD without Q-values while the features warm up), in bar order
    actions = [Action.from_json(m.value) for m in got_actions]
    assert {(a.symbol, a.ts) for a in actions if a.ts <= cutoff} == set(zip(bars["symbol"], bars["end"], strict=True))
    decided = [a for a in actions if a.q_values]
    assert decided, "no bar past the warm-up got a decision"
    assert all(set(a.q_values) == {"HOLD", "BUY", "SELL"} and 0 <= a.position <= 1 for a in decided)
    assert all(a.action == "HOLD" for a in actions if not a.q_values)

    reasons = [deadletter.DeadLetter.from_headers(m.headers) for m in dead]
    assert {r.stage for r in reasons} == {"stream:detect"}
    assert any("invalid JSON" in r.reason for r in reasons)
    assert any("feature-set version" in r.reason for r in reasons)
