"""What every stream stage shares: batched consumption with acks after durability, dead letters, state writes.

A stage processes one batch of events at a time (:func:`run_stage`): it sends its outputs, awaits Kafka's
acknowledgements, writes the new per-symbol state to its table's changelog, and only then are the events
acknowledged, so faust commits their offsets. A crash before that replays the batch; stages skip what their
stored offsets say was already applied (see :mod:`streams.market`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from faust import Stream
from faust.types import EventT, StreamT, TableT, TopicT

from streams.metrics import StreamMetrics
from tapewatch.deadletter import DeadLetter

log = logging.getLogger(__name__)


class BatchStage(Protocol):
    stage: str

    async def process(self, events: Sequence[EventT[Any]]) -> None: ...

    def forget(self) -> None: ...


@dataclass
class StageIO:
    """A stage's dead-letter topic, metrics and bookkeeping of what this process made durable."""

    stage: str  # "stream:market" — the DLQ headers' stage
    agent: str  # "market" — the metrics' agent label
    dlq: TopicT
    metrics: StreamMetrics
    #: (topic, partition) → highest offset whose effects this process made durable
    done: dict[tuple[str, int], int] = field(default_factory=dict)
    dead_letters: int = 0

    def redelivered(self, topic: str, partition: int, offset: int) -> bool:
        """Already processed by this process (faust 0.15.3 redelivers after a table recovery, see
        :mod:`streams.faust_compat`): its output is already in Kafka."""
        return offset <= self.done.get((topic, partition), -1)

    async def dead_letter(self, event: EventT[Any], reason: str, field: str | None, kind: str) -> Awaitable[Any]:
        """Send the event's original bytes to the DLQ with the reason in headers; returns the delivery future.
        ``kind`` is the metrics' reason label (``late``, ``invalid``, ``key``, ``model``)."""
        message = event.message
        letter = DeadLetter(
            stage=self.stage,
            reason=reason,
            field=field,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        self.dead_letters += 1
        self.metrics.dead_letters.labels(self.agent, kind).inc()
        log.debug("dead letter %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
        return await self.dlq.send(
            key=message.key, value=message.value, headers=letter.headers(), partition=message.partition
        )


def write_state(table: TableT[bytes, dict[str, Any]], partition: int, key: bytes, entry: dict[str, Any]) -> None:
    """``table[key] = entry`` would take the changelog partition from the task's current event, which a batch
    has none of; write the changelog on the source partition explicitly, then the local store."""
    table.send_changelog(partition, key, entry)
    table.data[key] = entry


async def run_stage(
    stage: BatchStage,
    stream: StreamT[Any],
    *,
    batch_max: int,
    batch_within_s: float,
    crash: Callable[[BaseException], Awaitable[None]],
) -> None:
    """The agent body: batches without automatic acks; ack each batch only after it is processed."""
    # noack_take is on faust's Stream, not on its StreamT interface
    async for batch in cast(Stream[Any], stream).noack_take(batch_max, within=batch_within_s):
        events: list[EventT[Any]] = list(batch)  # noack_take yields the events themselves
        try:
            await stage.process(events)
        except Exception as exc:
            # Not a data problem (those go to the DLQ): Kafka refused a write, or a bug. Stop the worker with
            # this batch unacknowledged, so its offsets are never committed and a restart replays it.
            log.critical("stage %s failed; stopping the worker without acknowledging the batch: %r", stage.stage, exc)
            stage.forget()
            await crash(exc)
            raise
        for event in events:
            await stream.ack(event)
