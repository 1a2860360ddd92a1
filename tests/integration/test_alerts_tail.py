"""`tapewatch alerts tail` on the real Kafka: filters by kind, severity and symbol; from the beginning or
from now."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tapewatch.bench.sink import synthetic_alert
from tapewatch.cli.app import cli
from tapewatch.producers.publisher import Publisher
from tapewatch.records import Alert, AlertKind, Severity
from tapewatch.settings import Settings, get_settings
from tapewatch.sinks.tail import follow_alerts
from tapewatch.sinks.webhook import AlertFilter
from tapewatch.topics import ALERTS, DLQ_SINKS

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("TAPEWATCH_TOPIC_PREFIX", settings.kafka.topic_prefix)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def publish(settings: Settings, alerts: list[Alert]) -> None:
    with Publisher(settings, DLQ_SINKS) as publisher:
        for alert in alerts:
            publisher.publish(ALERTS, alert)
        publisher.send(ALERTS, b"X", b"not an alert")  # skipped by the viewer, not fatal


def test_tail_from_beginning_with_filters(cli_env: Settings) -> None:
    alerts = [synthetic_alert(i, 1_700_000_000_000 + i * 1000, symbols=5) for i in range(400)]
    publish(cli_env, alerts)
    argv = ["alerts", "tail", "--from-beginning", "--idle-exit", "3", "--kind", "wash_trading", "--kind",
            "volume_burst", "--severity", "high", "--symbol", "B0002", "--symbol", "B0004"]  # fmt: skip
    result = CliRunner().invoke(cli(), argv, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    shown = {int(n) for n in re.findall(r"synthetic alert (\d+)", result.output)}
    expected = {
        i
        for i, a in enumerate(alerts)
        if a.kind in (AlertKind.WASH_TRADING, AlertKind.VOLUME_BURST)
        and a.severity == Severity.HIGH
        and a.symbol in ("B0002", "B0004")
    }
    assert expected and shown == expected
    assert result.output.count("time (UTC)") == 1  # one header, then rows


def test_tail_from_now_sees_only_new_alerts(cli_env: Settings) -> None:
    old = [synthetic_alert(i, 1_700_000_000_000 + i) for i in range(50)]
    new = [synthetic_alert(i, 1_700_000_100_000 + i) for i in range(50, 80)]
    publish(cli_env, old)
    stop = threading.Event()
    seen: list[str] = []

    def follow() -> None:
        for alert in follow_alerts(cli_env, AlertFilter(), stop=stop, idle_exit_s=20):
            seen.append(alert.alert_id)
            if len(seen) == len(new):
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(3.0)  # assigned at the end of the topic
    publish(cli_env, new)
    thread.join(30)
    stop.set()
    # Partitions interleave, so the order across symbols is not fixed; the set and the count are.
    assert sorted(seen) == sorted(a.alert_id for a in new)
