"""Dead-letter contract: the original bytes stay the message value; why and where go in headers.

This is the layout Kafka Connect uses for its DLQs, so existing tooling can read ours: nothing about the
bad payload is re-encoded, and a fixed consumer can re-publish it as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

REASON = "tapewatch.dlq.reason"
FIELD = "tapewatch.dlq.field"
STAGE = "tapewatch.dlq.stage"
SOURCE = "tapewatch.dlq.source"
TOPIC = "tapewatch.dlq.topic"
PARTITION = "tapewatch.dlq.partition"
OFFSET = "tapewatch.dlq.offset"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why a payload was rejected and where it came from."""

    stage: str  # "producer:twse", "stream:bars", "sink:postgres", ...
    reason: str
    field: str | None = None
    source: str | None = None  # URL, file or upstream system for producers
    topic: str | None = None  # source topic for streams and sinks
    partition: int | None = None
    offset: int | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        pairs: list[tuple[str, str | int | None]] = [
            (STAGE, self.stage),
            (REASON, self.reason),
            (FIELD, self.field),
            (SOURCE, self.source),
            (TOPIC, self.topic),
            (PARTITION, self.partition),
            (OFFSET, self.offset),
        ]
        return [(name, str(value).encode()) for name, value in pairs if value is not None]

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | None) -> DeadLetter:
        found = {name: value.decode() for name, value in headers or [] if name.startswith("tapewatch.dlq.")}
        return cls(
            stage=found.get(STAGE, ""),
            reason=found.get(REASON, ""),
            field=found.get(FIELD),
            source=found.get(SOURCE),
            topic=found.get(TOPIC),
            partition=int(found[PARTITION]) if PARTITION in found else None,
            offset=int(found[OFFSET]) if OFFSET in found else None,
        )
