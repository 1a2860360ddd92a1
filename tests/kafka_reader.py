"""Reading a topic back from the real Kafka in tests: everything from the beginning, then a short linger
so that a duplicate beyond the expected count would be seen too."""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from tapewatch.kafka import consumer_config
from tapewatch.settings import Settings


class Received(NamedTuple):
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int


def read_topic(
    settings: Settings,
    topic: str,
    expected: int,
    *,
    keep: Callable[[Received], bool] | None = None,
    timeout_s: float = 60.0,
    linger_s: float = 1.0,
) -> list[Received]:
    """Messages of ``topic`` (a full name, prefix included) that ``keep`` accepts: wait for ``expected`` of
    them (or ``timeout_s``), then keep reading for ``linger_s`` more."""
    # "earliest": when librdkafka cannot serve an offset (a partition whose leader is still being elected on a
    # fresh broker answers "offset out of range") it falls back to auto.offset.reset, whose default "latest"
    # silently skipped what was already there (seen once: 2 of 6 dead letters never read on a fresh machine)
    consumer = Consumer(
        consumer_config(
            settings,
            **{"group.id": f"test-{uuid.uuid4()}", "enable.auto.commit": False, "auto.offset.reset": "earliest"},
        )
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.kafka.topic_partitions)])
    out: list[Received] = []
    deadline = time.monotonic() + timeout_s
    linger_until: float | None = None
    try:
        while time.monotonic() < (linger_until or deadline):
            for msg in consumer.consume(num_messages=5000, timeout=0.25):
                assert msg.error() is None, msg.error()
                raw = msg.headers() or []
                pairs = raw.items() if isinstance(raw, dict) else raw
                item = Received(
                    msg.key(),
                    msg.value() or b"",
                    [(name, value) for name, value in pairs if isinstance(value, bytes)],
                    msg.partition() or 0,
                )
                if keep is None or keep(item):
                    out.append(item)
            if linger_until is None and len(out) >= expected:
                linger_until = time.monotonic() + linger_s
        if len(out) < expected:
            _report_shortfall(consumer, topic, settings.kafka.topic_partitions, out, expected)
    finally:
        consumer.close()
    return out


def _report_shortfall(consumer: Consumer, topic: str, partitions: int, out: list[Received], expected: int) -> None:
    """Say, in the test's captured output, whether the broker holds fewer records than expected (a loss before
    the reader) or the reader stopped short of what the broker holds (a reader fault): per partition, the log's
    low and high watermarks and the records this reader got from it."""
    got = Counter(item.partition for item in out)
    lines = [f"read_topic({topic}): {len(out)} of {expected} records within the timeout"]
    for p in range(partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
        position = consumer.position([TopicPartition(topic, p)])[0].offset
        lines.append(f"  partition {p}: log offsets {low}..{high}, read {got[p]}, position {position}")
    print("\n".join(lines), file=sys.stderr)


def read_distinct(
    settings: Settings, topic: str, expected: int, *, wait_s: float = 60.0, linger_s: float = 1.0
) -> list[Received]:
    """Everything on ``topic`` once ``expected`` distinct (key, value, partition) are there, or after ``wait_s``.
    Waits at most ``wait_s``. Duplicates are kept in the result: the caller decides whether they are allowed."""

    def enough(got: list[Received]) -> bool:
        return len({(msg.key, msg.value, msg.partition) for msg in got}) >= expected

    return read_until(settings, topic, enough, wait_s=wait_s, linger_s=linger_s, hint=expected)


def read_until(
    settings: Settings,
    topic: str,
    done: Callable[[list[Received]], bool],
    *,
    wait_s: float = 60.0,
    linger_s: float = 1.0,
    hint: int = 1,
) -> list[Received]:
    """Everything on ``topic`` once what is there is ``done``, or after ``wait_s``: for a topic whose count says
    nothing (alerts are re-emitted as they escalate, and a stream raises more than the records it is compared on)."""
    deadline = time.monotonic() + wait_s
    while True:
        # wait for one record more than last time (a few seconds at most), then read what else is there
        remaining = max(1.0, deadline - time.monotonic())
        got = read_topic(settings, topic, hint, timeout_s=min(5.0, remaining), linger_s=1.0)
        if done(got) or time.monotonic() >= deadline:
            break
        hint = len(got) + 1
    return read_topic(settings, topic, len(got), timeout_s=5, linger_s=linger_s)
