"""Following the alerts topic: from now (or the beginning), filtered; what ``tapewatch alerts tail`` shows."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, TopicPartition

from tapewatch.errors import TapewatchError
from tapewatch.kafka import consumer_config, ensure_reachable
from tapewatch.records import Alert, RecordError
from tapewatch.settings import Settings
from tapewatch.sinks.webhook import AlertFilter
from tapewatch.topics import ALERTS


def follow_alerts(
    settings: Settings,
    alert_filter: AlertFilter,
    *,
    from_beginning: bool = False,
    idle_exit_s: float | None = None,
    stop: threading.Event | None = None,
) -> Iterator[Alert]:
    """Alerts as they arrive, in partition order. No consumer group offsets are committed (a viewer, not a
    sink); records that do not decode are skipped (the sinks dead-letter them)."""
    topic = settings.topic(ALERTS.name)
    ensure_reachable(settings)
    consumer = Consumer(
        consumer_config(
            settings,
            **{"group.id": f"tapewatch-tail-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False},
        )
    )
    try:
        try:
            metadata = consumer.list_topics(topic, timeout=settings.local.service_timeout_s)
        except KafkaException as exc:
            raise TapewatchError(f"kafka: unreachable at {settings.kafka.bootstrap}: {exc.args[0].str()}") from None
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise TapewatchError(f"alerts tail: topic {topic} does not exist (tapewatch topics create)")
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        partitions = [TopicPartition(topic, p, start) for p in sorted(found.partitions)]
        # what was there when the tail started: idle time counts only once it is read, so a slow first fetch on a
        # busy machine never ends a --from-beginning tail before it printed anything
        backlog = _backlog(consumer, partitions, settings) if from_beginning else {}
        consumer.assign(partitions)
        idle_since = time.monotonic()
        while stop is None or not stop.is_set():
            messages = consumer.consume(num_messages=500, timeout=0.25)
            if backlog:
                backlog = _still_behind(consumer, topic, backlog)
            if not messages:
                if idle_exit_s is not None and not backlog and time.monotonic() - idle_since >= idle_exit_s:
                    return
                continue
            idle_since = time.monotonic()
            for message in messages:
                if message.error() is not None or message.value() is None:
                    continue
                try:
                    alert = Alert.from_json(message.value() or b"")
                except RecordError:
                    continue
                if alert_filter.accepts(alert):
                    yield alert
    finally:
        consumer.close()


def _backlog(consumer: Consumer, partitions: list[TopicPartition], settings: Settings) -> dict[int, int]:
    """Partition → its end offset now, for the partitions that hold records."""
    ends: dict[int, int] = {}
    for tp in partitions:
        low, high = consumer.get_watermark_offsets(tp, timeout=settings.local.service_timeout_s, cached=False)
        if high > low:
            ends[tp.partition] = high
    return ends


def _still_behind(consumer: Consumer, topic: str, backlog: dict[int, int]) -> dict[int, int]:
    """The partitions of ``backlog`` whose next offset to read is still before their end offset at the start."""
    positions = consumer.position([TopicPartition(topic, p) for p in backlog])
    return {tp.partition: backlog[tp.partition] for tp in positions if tp.offset < backlog[tp.partition]}
