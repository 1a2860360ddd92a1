"""Models per venue in the stream, on the real broker: a K-means model trained on one venue scores that venue
(and one the user listed for it), never another — the foreign venue's symbols get no score and no K-means alert,
the refusal is logged once per venue and counted on /metrics."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from confluent_kafka import Producer

from tapewatch.artifacts import ArtifactStore
from tapewatch.detectors.features import FEATURE_SET_VERSION
from tapewatch.detectors.kmeans import KMEANS_FEATURES, KMeansModel, KMeansParams, train
from tapewatch.feeds import FeedProfiles
from tapewatch.kafka import client_config
from tapewatch.records import Alert, AlertKind, Cadence, Features, Score
from tapewatch.settings import Settings
from tapewatch.topics import ALERTS, FEATURES, SCORES
from tests.kafka_reader import read_distinct, read_topic
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration

WAIT_S = 90.0
BARS = (
    6  # per symbol: five ordinary minutes, then an absurd one the next day (a distance is rare against a past session)
)
DAY_MS = 86_400_000
#: symbol → venue: the model's own, one the user lists for it, and a foreign one
SYMBOLS = {"OWN1": "sim", "LISTED1": "tpex", "FOREIGN1": "twse"}


def _trained_model(models: Path) -> KMeansModel:
    """A model trained on venue ``sim`` (feature vectors around 0), saved as the worker's default ``kmeans``."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(0.0, 1.0, size=(400, len(KMEANS_FEATURES))), columns=list(KMEANS_FEATURES))
    frame["ts"] = np.arange(len(frame), dtype=np.int64) * 60_000
    frame["symbol"], frame["venue"] = "TRAIN", "sim"
    model = train(frame, KMEANS_FEATURES, KMeansParams(k_max=3, seed=1), feeds=FeedProfiles())
    model.save(ArtifactStore(models))
    return model


def _features(symbol: str, venue: str, start: int) -> list[Features]:
    rng = np.random.default_rng(sum(map(ord, symbol)))
    out = []
    for i in range(BARS):
        values: dict[str, float | None] = {
            name: (60.0 if i == BARS - 1 else float(rng.normal(0.0, 0.5))) for name in KMEANS_FEATURES
        }
        out.append(
            Features(
                symbol=symbol,
                venue=venue,
                ts=start + (i + 1) * 60_000 + (DAY_MS if i == BARS - 1 else 0),
                values=values,
                version=FEATURE_SET_VERSION,
                cadence=Cadence.BAR_1M,
            )
        )
    return out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_line(worker: Worker, text: str, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while text not in worker.log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.5)


@pytest.mark.timeout(300)
def test_a_foreign_venue_gets_patterns_only(stream_settings: Settings, tmp_path: Path) -> None:
    settings = stream_settings
    model = _trained_model(tmp_path / "models")
    env = {
        "TAPEWATCH_MODEL_DIR": str(tmp_path / "models"),
        "TAPEWATCH_KMEANS_EXTRA_VENUES": orjson.dumps({"kmeans": ["tpex"]}).decode(),
    }
    port = _free_port()
    worker = Worker(settings, tmp_path / "worker.log", "--metrics-port", str(port), env=env)
    producer = Producer(client_config(settings, **{"enable.idempotence": True}))
    start = 1_700_000_000_000
    try:
        # the foreign venue first, so that by the time the others' outputs are there, its records were applied
        for symbol in sorted(SYMBOLS, key=lambda s: SYMBOLS[s] != "twse"):
            for record in _features(symbol, SYMBOLS[symbol], start):
                producer.produce(settings.topic(FEATURES.name), key=record.key(), value=record.to_json())
            assert producer.flush(30) == 0
        got_scores = read_distinct(settings, settings.topic(SCORES.name), 2 * BARS, wait_s=WAIT_S, linger_s=3)
        got_alerts = read_topic(settings, settings.topic(ALERTS.name), 2, timeout_s=WAIT_S, linger_s=3)
        _wait_for_line(worker, "K-means not applied to venue twse", 30)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        alive = worker.proc.poll() is None
        details = worker.tail()
    finally:
        worker.stop()

    assert alive, details
    scores = [Score.from_json(m.value) for m in got_scores]
    assert {s.symbol for s in scores} == {"OWN1", "LISTED1"}, details
    assert all(s.model_version == model.version for s in scores)
    alerts = [Alert.from_json(m.value) for m in got_alerts]
    assert {(a.symbol, a.kind) for a in alerts} == {
        ("OWN1", AlertKind.KMEANS_OUTLIER),
        ("LISTED1", AlertKind.KMEANS_OUTLIER),
    }
    assert all(a.severity == "medium" for a in alerts), "a distance alone says 'look here': medium at most"

    log = worker.log.read_text(errors="replace")
    refused = [line for line in log.splitlines() if "K-means not applied" in line]
    assert len(refused) == 1, f"one line per venue, not per record:\n{details}"
    assert "venue twse" in refused[0] and f"model kmeans {model.version} was trained on sim" in refused[0]
    counted = f'tapewatch_stream_kmeans_refused_total{{agent="detect",venue="twse"}} {float(BARS)}'
    assert counted in metrics, [line for line in metrics.splitlines() if "kmeans_refused" in line]
