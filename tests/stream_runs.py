"""Runs of the stream worker on private topics, for tests that compare one run's outputs with another's.

:func:`private_topics` gives settings with topics of their own (conftest's ``settings`` fixture is one);
:func:`wait_consumed` waits until a worker group has applied and committed every record of its sources — the
worker commits only what is durable, so its outputs are then complete; :func:`outputs` reads every output
topic to its end. No sleeping for a fixed time anywhere: each wait is on a condition, with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from tapewatch.kafka import admin_client, cluster_metadata, consumer_config
from tapewatch.settings import PROJECT_ROOT, Settings
from tapewatch.streams.state import watermarks
from tapewatch.topics import (
    ACTIONS,
    ALERTS,
    BARS,
    BOOKS,
    DLQ_STREAMS,
    FEATURES,
    FIRM_ORDERS,
    FORECASTS,
    MARKET_BY_ORDER,
    NEWS_ITEMS,
    NEWS_SIGNALS,
    QUOTES,
    SCORES,
)
from tests.kafka_reader import read_topic

#: what the stream worker writes, by topic name (without the prefix)
OUTPUTS = (
    BARS.name,
    FEATURES.name,
    SCORES.name,
    ALERTS.name,
    ACTIONS.name,
    FORECASTS.name,
    NEWS_SIGNALS.name,
    DLQ_STREAMS.name,
)


@contextlib.contextmanager
def private_topics(services: Settings) -> Iterator[Settings]:
    """Settings whose topics are private (created now, deleted at the end, unless TAPEWATCH_KEEP_TEST_TOPICS)."""
    from tapewatch.infra.kafka import ensure_topics

    isolated = services.updated(kafka={"topic_prefix": f"test-{uuid.uuid4().hex[:8]}."})
    created = ensure_topics(isolated)
    try:
        yield isolated
    finally:
        if created and not os.environ.get("TAPEWATCH_KEEP_TEST_TOPICS"):
            admin = admin_client(isolated)  # keep the handle alive until the futures resolve
            for future in admin.delete_topics(created, operation_timeout=30).values():
                future.result()


def drop_worker_state(settings: Settings) -> None:
    """What a stream worker adds beside the topics: its changelog topics and its data directory."""
    from tapewatch.streams.app import app_id  # lazily: the worker's modules load torch

    admin = admin_client(settings)
    internal = [name for name in cluster_metadata(settings, admin).topics if name.startswith(app_id(settings))]
    if internal:
        for future in admin.delete_topics(internal, operation_timeout=30).values():
            with contextlib.suppress(KafkaException):
                future.result()
    shutil.rmtree(settings.local.var_dir / "streams" / app_id(settings), ignore_errors=True)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
    """Poll ``condition`` until it holds; AssertionError with ``what()`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(what())
        time.sleep(0.2)


class Positions:
    """Watermarks of the settings' topics and the stream worker group's committed offsets."""

    def __init__(self, settings: Settings) -> None:
        from tapewatch.streams.app import app_id

        self.settings = settings
        group = app_id(settings)
        self._consumer = Consumer(consumer_config(settings, **{"group.id": group, "enable.auto.commit": False}))

    def close(self) -> None:
        self._consumer.close()

    def _partitions(self, name: str, only: set[int] | None = None) -> list[TopicPartition]:
        topic = self.settings.topic(name)
        return [
            TopicPartition(topic, p) for p in range(self.settings.kafka.topic_partitions) if only is None or p in only
        ]

    def records(self, name: str, only: set[int] | None = None) -> int:
        """Records on the topic (high minus low watermark, summed over its partitions, or ``only`` those)."""
        total = 0
        for tp in self._partitions(name, only):
            low, high = watermarks(self._consumer, tp)
            total += high - low
        return total

    def written(self, topic: str, only: set[int]) -> int:
        """Records ever written to partitions ``only`` of ``topic`` (a full topic name): their high watermarks, which
        compaction and retention leave alone."""
        return sum(watermarks(self._consumer, TopicPartition(topic, p))[1] for p in sorted(only))

    def behind(self, name: str, only: set[int] | None = None) -> int:
        """Records of the topic (of its partitions ``only``) the group has not committed yet."""
        partitions = self._partitions(name, only)
        committed = {tp.partition: tp.offset for tp in self._consumer.committed(partitions, timeout=10.0)}
        left = 0
        for tp in partitions:
            low, high = watermarks(self._consumer, tp)
            left += high - max(committed.get(tp.partition, low), low)
        return left

    def consumed(self) -> bool:
        """Every source record applied and committed, in the order the stages feed each other: the orders stage's
        (its trades and books are then all written), the market and news stages' (their features and signals too),
        then the detect stage's."""
        sources = (MARKET_BY_ORDER, FIRM_ORDERS, QUOTES, BOOKS, NEWS_ITEMS, FEATURES, NEWS_SIGNALS)
        return all(self.behind(topic.name) == 0 for topic in sources)


def wait_consumed(settings: Settings, timeout_s: float, details: Callable[[], str]) -> None:
    positions = Positions(settings)
    try:
        wait_until(positions.consumed, timeout_s, lambda: f"the worker group did not consume everything\n{details()}")
    finally:
        positions.close()


def outputs(settings: Settings) -> dict[str, set[tuple[bytes | None, bytes]]]:
    """Every output topic's distinct (key, value), read to the topic's end."""
    positions = Positions(settings)
    try:
        counts = {name: positions.records(name) for name in OUTPUTS}
    finally:
        positions.close()
    out = {}
    for name, count in counts.items():
        got = read_topic(settings, settings.topic(name), count, timeout_s=120, linger_s=0) if count else []
        assert len(got) == count, f"{name}: read {len(got)} of {count} records"
        out[name] = {(msg.key, msg.value) for msg in got}
    return out


def session_alerts(
    services: Settings, log: Path, env: dict[str, str], wait_s: float
) -> tuple[list[dict[str, Any]], str]:
    """The simulated pipeline session (:data:`tests.pipeline_session.SESSION`) produced through a stream worker
    on private topics, with ``env`` for both: every alert the worker wrote, and the tail of its log."""
    from tests.pipeline_session import SESSION, sim_args
    from tests.stream_worker import Worker

    with private_topics(services) as settings:
        worker = Worker(settings, log, env=env)
        try:
            produced = subprocess.run(
                [str(Path(sys.executable).with_name("tapewatch")), "produce", "simulate", *sim_args(SESSION),
                 "--no-progress"],
                cwd=PROJECT_ROOT,
                env={**os.environ, **env, "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix},
                capture_output=True,
                timeout=wait_s,
                check=False,
            )  # fmt: skip
            assert produced.returncode == 0, produced.stderr[-2000:]
            wait_consumed(settings, wait_s, worker.tail)
            alerts = [orjson.loads(value) for _, value in outputs(settings)[ALERTS.name]]
        finally:
            worker.stop()
            drop_worker_state(settings)
    return alerts, worker.tail(200)
