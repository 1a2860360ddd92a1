"""Dead-letter contract: the original bytes stay the message value; why and where go in headers.

This is the layout Kafka Connect uses for its DLQs, so existing tooling can read ours: nothing about the
bad payload is re-encoded, and a fixed consumer can re-publish it as it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

REASON = "tapewatch.dlq.reason"
FIELD = "tapewatch.dlq.field"
STAGE = "tapewatch.dlq.stage"
SOURCE = "tapewatch.dlq.source"
TOPIC = "tapewatch.dlq.topic"
PARTITION = "tapewatch.dlq.partition"
OFFSET = "tapewatch.dlq.offset"
#: set when the payload (or key) was cut to fit: the original's length in bytes and its SHA-256 (hex), so a
#: truncated dead letter can still be matched with the record it came from
ORIGINAL_BYTES = "tapewatch.dlq.original.bytes"
ORIGINAL_SHA256 = "tapewatch.dlq.original.sha256"
ORIGINAL_KEY_BYTES = "tapewatch.dlq.original.key.bytes"
#: a reason longer than this is cut (it may quote the bad value)
MAX_REASON_CHARS = 2_000
#: the longest key kept whole (Kafka counts the key in the message size too)
MAX_KEY_BYTES = 1_024


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
        reason = self.reason if len(self.reason) <= MAX_REASON_CHARS else self.reason[:MAX_REASON_CHARS] + "…"
        pairs: list[tuple[str, str | int | None]] = [
            (STAGE, self.stage),
            (REASON, reason),
            (FIELD, self.field),
            (SOURCE, self.source),
            (TOPIC, self.topic),
            (PARTITION, self.partition),
            (OFFSET, self.offset),
        ]
        return [(name, str(value).encode()) for name, value in pairs if value is not None]

    def fit(
        self, payload: bytes, key: bytes | None, max_bytes: int
    ) -> tuple[bytes, bytes | None, list[tuple[str, bytes]]]:
        """(value, key, headers) of this dead letter, always small enough for the broker: a payload over
        ``max_bytes`` (or a key over :data:`MAX_KEY_BYTES`) is cut, and the original's length and SHA-256 go
        in headers. A payload that fits is sent untouched."""
        headers = self.headers()
        if len(payload) > max_bytes:
            headers.append((ORIGINAL_BYTES, str(len(payload)).encode()))
            headers.append((ORIGINAL_SHA256, hashlib.sha256(payload).hexdigest().encode()))
            payload = payload[:max_bytes]
        if key is not None and len(key) > MAX_KEY_BYTES:
            headers.append((ORIGINAL_KEY_BYTES, str(len(key)).encode()))
            key = key[:MAX_KEY_BYTES]
        return payload, key, headers

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
