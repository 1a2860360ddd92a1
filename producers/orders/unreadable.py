"""What a source file's line that is not a record becomes: its bytes, where it was and why, for ``dlq.producers``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Line ``line`` (1-based) of a source file, refused for ``reason`` (naming ``field`` when one is to blame)."""

    raw: bytes
    line: int
    reason: str
    field: str | None = None
