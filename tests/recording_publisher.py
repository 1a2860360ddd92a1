"""A publisher that stands in for Kafka in unit tests of sources: what a source's emitter hands it, recorded."""

from __future__ import annotations

from tapewatch.deadletter import DeadLetter
from tapewatch.records import Record
from tapewatch.topics import Topic


class RecordingPublisher:
    """Stands in for Kafka: the emitter's two calls, recorded."""

    def __init__(self) -> None:
        self.published: list[tuple[Topic, Record]] = []
        self.letters: list[tuple[bytes, DeadLetter, bytes | None]] = []

    def publish(self, topic: Topic, record: Record) -> None:
        self.published.append((topic, record))

    def dead_letter(self, raw: bytes, letter: DeadLetter, key: bytes | None = None) -> None:
        self.letters.append((raw, letter, key))
