"""Webhook notifier against a local receiver that fails the first attempts of every alert (503, then a hang
past the timeout): every alert still arrives, signed, and deduplicating by Idempotency-Key gives exactly the
set of emissions sent — an escalated alert (same alert_id, later ts) is delivered too, and keeping the highest
X-Tapewatch-Alert-Version per X-Tapewatch-Alert-Id leaves the escalation, whatever the order. A second
subscriber's filters pass only what they name; a subscriber that never answers 2xx sends the alert to
dlq.sinks with the reason, and the sink goes on."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp import web

from tapewatch import deadletter
from tapewatch.backoff import Backoff
from tapewatch.bench.sink import synthetic_alert, synthetic_escalation
from tapewatch.producers.publisher import Publisher
from tapewatch.records import Alert, AlertKind, Severity
from tapewatch.settings import Settings
from tapewatch.sinks.consumer import SinkRunner
from tapewatch.sinks.webhook import (
    ALERT_ID_HEADER,
    ALERT_VERSION_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    Subscriber,
    WebhookWriter,
    emission_headers,
    verify,
)
from tapewatch.topics import ALERTS, DLQ_SINKS
from tests.http_server import serve
from tests.kafka_reader import read_topic

pytestmark = pytest.mark.integration

FAILURES_BEFORE_SUCCESS = 2


@dataclass
class Receiver:
    """A subscriber's endpoint: answers 503, then hangs, then 200 for each alert_id."""

    secret: bytes
    attempts: Counter[str] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    latest: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # alert id → (version, body)
    bad_signatures: int = 0
    mismatched_keys: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(self.secret, body, request.headers.get(SIGNATURE_HEADER, "")):
            self.bad_signatures += 1
            return web.Response(status=401)
        key = request.headers[IDEMPOTENCY_HEADER]
        alert_id, version = request.headers[ALERT_ID_HEADER], int(request.headers[ALERT_VERSION_HEADER])
        sent = orjson.loads(body)
        if (sent["alert_id"], sent["ts"]) != (alert_id, version) or key != f"{alert_id}:{version}":
            self.mismatched_keys += 1
        self.attempts[key] += 1
        if self.attempts[key] == 1:
            return web.Response(status=503)
        if self.attempts[key] == FAILURES_BEFORE_SUCCESS:
            await asyncio.sleep(2.0)  # beyond the subscriber's timeout: the client gives up and retries
        self.accepted.append(key)
        if version > self.latest.get(alert_id, (-1, b""))[0]:  # what a receiver keeping one record per alert does
            self.latest[alert_id] = (version, body)
        return web.Response(status=200)


def key_of(alert: Alert) -> str:
    return emission_headers(alert)[IDEMPOTENCY_HEADER]


@pytest.fixture
def receiver_url() -> Iterator[tuple[str, dict[str, Receiver]]]:
    receivers = {"all": Receiver(b"secret-all"), "spoofing": Receiver(b"secret-spoof")}
    app = web.Application()
    app.router.add_post("/all", receivers["all"].handle)
    app.router.add_post("/spoofing", receivers["spoofing"].handle)
    app.router.add_post("/down", lambda request: asyncio.sleep(0, web.Response(status=500)))
    with serve(app) as url:
        yield url, receivers


def test_every_alert_delivered_despite_failures(
    settings: Settings, receiver_url: tuple[str, dict[str, Receiver]]
) -> None:
    base, receivers = receiver_url
    alerts = [synthetic_alert(i, 1_700_000_000_000 + i) for i in range(300)]
    subscribers = [
        Subscriber(name="all", url=f"{base}/all", secret="secret-all", timeout_s=0.5, max_attempts=6),
        Subscriber(
            name="spoofing",
            url=f"{base}/spoofing",
            secret="secret-spoof",
            kinds=frozenset({AlertKind.SPOOFING, AlertKind.WASH_TRADING}),
            severities=frozenset({Severity.HIGH}),
            timeout_s=0.5,
            max_attempts=6,
        ),
        Subscriber(name="down", url=f"{base}/down", secret="x", symbols=frozenset({alerts[0].symbol}), max_attempts=2),
    ]
    # Two alerts escalate: one re-emission published after the original, one before it (a replay's order).
    escalations = [synthetic_escalation(alerts[7]), synthetic_escalation(alerts[8])]
    emissions = [escalations[1], *alerts, escalations[0]]
    with Publisher(settings, DLQ_SINKS) as publisher:
        for alert in emissions:
            publisher.publish(ALERTS, alert)

    writer = WebhookWriter(settings, subscribers, backoff=Backoff(base_s=0.05, cap_s=0.2), concurrency=64)
    runner = SinkRunner(settings, writer, [ALERTS], batch_size=100)
    runner.run(exit_when_idle_s=4.0)

    everything = receivers["all"]
    assert everything.bad_signatures == 0 and everything.mismatched_keys == 0
    # Deduplicated by Idempotency-Key, the receiver holds every emission once (an escalation is not a duplicate).
    assert set(everything.accepted) == {key_of(a) for a in emissions}
    assert len(set(everything.accepted)) == len(alerts) + len(escalations)
    assert all(count >= FAILURES_BEFORE_SUCCESS for count in everything.attempts.values())
    for escalated in escalations:
        assert everything.latest[escalated.alert_id] == (escalated.ts, escalated.to_json())

    wanted = {
        key_of(a)
        for a in emissions
        if a.kind in (AlertKind.SPOOFING, AlertKind.WASH_TRADING) and a.severity == Severity.HIGH
    }
    assert wanted and set(receivers["spoofing"].accepted) == wanted
    assert any(a.kind == AlertKind.SPOOFING for a in alerts)  # filtered out by severity, so both filters count

    to_down = [a for a in alerts if a.symbol == alerts[0].symbol]
    letters = read_topic(settings, settings.topic(DLQ_SINKS.name), expected=len(to_down))
    assert sorted(orjson.loads(letter.value)["alert_id"] for letter in letters) == sorted(a.alert_id for a in to_down)
    for letter in letters:
        reason = deadletter.DeadLetter.from_headers(letter.headers).reason
        assert reason == "webhook down: HTTP 500 after 2 attempts"
    assert runner.counters.written == len(emissions) - len(to_down)
