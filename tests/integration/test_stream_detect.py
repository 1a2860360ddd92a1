"""Detection and signals in the stream on the real broker: simulator → md.quotes/md.books → worker →
scores.manipulation and alerts, equal to the offline twin (`tapewatch detect file`) over the same session, a
Double-DQN action for every symbol and bar, and each forecaster's forecast for every bar with a full window, equal
to the model's own forecast of the same features; bad features records go to the DLQ and the worker keeps
running."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from tapewatch import deadletter
from tapewatch.kafka import client_config
from tapewatch.records import Action, Alert, Cadence, Features, Forecast, RecordError, Score
from tapewatch.settings import Settings
from tapewatch.signals.forecast.contract import ForecastRequest, ForecastResult
from tapewatch.streams.forecasting import default_loaders
from tapewatch.topics import ACTIONS, ALERTS, DLQ_STREAMS, FEATURES, FORECASTS, SCORES
from tests.kafka_reader import Received, read_topic, read_until
from tests.pipeline_session import PreparedSession, comparable
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration

WAIT_S = 120.0


@pytest.mark.timeout(420)
def test_stream_alerts_equal_the_offline_twin(
    stream_settings: Settings, prepared_session: PreparedSession, tmp_path: Path
) -> None:
    settings = stream_settings
    session = prepared_session
    env, end, cutoff = (
        session.env_with({"TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix}),
        session.end,
        session.cutoff,
    )
    expected = {comparable(a) for a in session.offline_alerts}
    expected_scores = session.offline_scores
    assert expected, "the session must raise alerts before its last minutes"
    assert expected_scores

    worker = Worker(settings, tmp_path / "worker.log", "--metrics-port", "0", env=env)
    try:
        session.produce(env, "--truth", str(tmp_path / "truth.csv"))
        # a malformed payload and a features record of an unknown feature set, straight onto features.1m
        bad_version = Features(symbol="SIM0001", venue="sim", ts=int(end), values={"x": 1.0}, version="bar1m-v0")
        producer = Producer(client_config(settings, **{"enable.idempotence": True}))
        producer.produce(settings.topic(FEATURES.name), key=b"SIM0001", value=b"{not json")
        producer.produce(settings.topic(FEATURES.name), key=b"SIM0001", value=bad_version.to_json())
        assert producer.flush(30) == 0

        # what the offline twin has must all be there: alerts are re-emitted as they escalate, and the stream goes
        # on past the cutoff, so how many records are there says nothing
        got_alerts = read_until(
            settings,
            settings.topic(ALERTS.name),
            lambda got: expected <= streamed_before(got, cutoff),
            wait_s=WAIT_S,
            linger_s=3,
        )
        want_scores = {(s["symbol"], s["ts"], s["score"], s["cluster"]) for s in expected_scores}
        got_scores = read_until(
            settings, settings.topic(SCORES.name), lambda got: want_scores <= scored(got, cutoff), wait_s=WAIT_S
        )
        bars = session.bars
        want_actions = set(zip(bars["symbol"], bars["end"], strict=True))
        got_actions = read_until(
            settings, settings.topic(ACTIONS.name), lambda got: want_actions <= acted(got, cutoff), wait_s=WAIT_S
        )
        got_features = read_topic(settings, settings.topic(FEATURES.name), 1, timeout_s=10, linger_s=3)
        got_forecasts = read_topic(settings, settings.topic(FORECASTS.name), 1, timeout_s=WAIT_S, linger_s=3)
        dead = read_topic(settings, settings.topic(DLQ_STREAMS.name), 2, timeout_s=30, linger_s=1)
        time.sleep(1)
        alive = worker.proc.poll() is None
        details = worker.tail()
    finally:
        worker.stop()

    assert alive, details
    alerts = [Alert.from_json(m.value) for m in got_alerts]
    assert all(m.key == a.symbol.encode() for m, a in zip(got_alerts, alerts, strict=True))
    streamed = streamed_before(got_alerts, cutoff)
    assert streamed == expected, f"{len(streamed - expected)} extra, {len(expected - streamed)} missing\n{details}"

    assert scored(got_scores, cutoff) == want_scores

    # an action for every symbol and bar (HOLD without Q-values while the features warm up), in bar order
    actions = [Action.from_json(m.value) for m in got_actions]
    assert acted(got_actions, cutoff) == want_actions
    decided = [a for a in actions if a.q_values]
    assert decided, "no bar past the warm-up got a decision"
    assert all(set(a.q_values) == {"HOLD", "BUY", "SELL"} and 0 <= a.position <= 1 for a in decided)
    assert all(a.action == "HOLD" for a in actions if not a.q_values)

    reasons = [deadletter.DeadLetter.from_headers(m.headers) for m in dead]
    assert {r.stage for r in reasons} == {"stream:detect"}
    assert any("invalid JSON" in r.reason for r in reasons)
    assert any("feature-set version" in r.reason for r in reasons)
    _assert_forecasts_are_the_models(env, got_features, got_forecasts, cutoff)


def streamed_before(got: list[Received], cutoff: int) -> set[tuple[Any, ...]]:
    """The alerts read, up to ``cutoff``, as the offline twin's are compared."""
    return {comparable(orjson.loads(m.value)) for m in got if Alert.from_json(m.value).ts <= cutoff}


def scored(got: list[Received], cutoff: int) -> set[tuple[str, int, float, int]]:
    scores = [Score.from_json(m.value) for m in got]
    return {(s.symbol, s.ts, s.score, s.cluster) for s in scores if s.ts <= cutoff}


def acted(got: list[Received], cutoff: int) -> set[tuple[str, int]]:
    return {(a.symbol, a.ts) for a in (Action.from_json(m.value) for m in got) if a.ts <= cutoff}


def _assert_forecasts_are_the_models(
    env: dict[str, str], features: list[Received], forecasts: list[Received], cutoff: int
) -> None:
    """Every bar close with a full window of complete features has one forecast per model, and it is what the
    published model says for those rows (batched with other symbols: equal up to float rounding)."""
    history: dict[str, list[Features]] = {}
    for message in features:
        with contextlib.suppress(RecordError):  # the malformed payloads the test sent
            record = Features.from_json(message.value)
            if record.cadence is Cadence.BAR_1M and record.version == "bar1m-v1":
                history.setdefault(record.symbol, []).append(record)
    got = {(f.model, f.symbol, f.ts): f for f in (Forecast.from_json(m.value) for m in forecasts)}
    models = Path(env["TAPEWATCH_MODEL_DIR"])
    for name, loader in default_loaders().items():
        model = loader(models, "latest")
        expected = {}
        for symbol, records in history.items():
            records.sort(key=lambda r: r.ts)
            for end in range(model.window, len(records) + 1):
                rows = [r.values for r in records[end - model.window : end]]
                if records[end - 1].ts <= cutoff and all(
                    row.get(n) is not None for row in rows for n in model.feature_names
                ):
                    (outcome,) = model.forecast([ForecastRequest(symbol, rows)])
                    assert isinstance(outcome, ForecastResult), outcome
                    expected[(name, symbol, records[end - 1].ts)] = outcome
        streamed = {key: f for key, f in got.items() if key[0] == name and key[2] <= cutoff}
        assert expected, f"no {name} window filled within the session"
        assert set(streamed) == set(expected), f"{name}: {len(set(streamed) ^ set(expected))} bar closes differ"
        for key, want in expected.items():
            have = streamed[key]
            assert have.model_version == model.version and have.horizon == want.horizon
            # float32 networks: a batch of other symbols sums in another order (BLAS blocking), and a forecast near
            # zero comes out of a cancellation, so agreement is to float32 precision relative to the terms summed
            assert have.prediction == pytest.approx(want.prediction, rel=1e-4, abs=1e-7)
            assert have.confidence == pytest.approx(want.confidence, rel=1e-4, abs=1e-7)
