"""A stage table's recovery from its changelog, without a broker: every assigned partition is read to the end it
had when the recovery started, the newest entry per key wins, a tombstone deletes, and other partitions stay."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
import pytest
from confluent_kafka import TopicPartition

import tapewatch.streams.state
from tapewatch.settings import Settings
from tapewatch.streams.state import ChangelogTable

TOPIC = "app-market-state-changelog"


class FakeMessage:
    def __init__(self, partition: int, offset: int, key: bytes, value: bytes | None) -> None:
        self._partition, self._offset, self._key, self._value = partition, offset, key, value

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes | None:
        return self._value


class FakeConsumer:
    """A changelog of a few partitions; compaction left an offset gap in partition 1, and a record arrives on
    partition 0 after the recovery took its watermarks (it must not be waited for)."""

    log: ClassVar[dict[int, list[FakeMessage]]]
    made: ClassVar[list[FakeConsumer]] = []

    def __init__(self, conf: dict[str, Any]) -> None:
        self.positions: dict[int, int] = {}
        self.closed = False
        FakeConsumer.made.append(self)

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        messages = self.log.get(tp.partition, [])
        return (messages[0].offset(), messages[-1].offset() + 1) if messages else (0, 0)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.positions = {tp.partition: 0 for tp in partitions}
        # written after the watermarks were read: beyond the end this recovery reads to
        self.log[0].append(FakeMessage(0, 3, b"LATE", orjson.dumps({"v": 9})))

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        out = []
        for partition, position in self.positions.items():
            batch = [m for m in self.log[partition] if m.offset() >= position][:1]
            if batch:
                self.positions[partition] = batch[-1].offset() + 1
            out.extend(batch)
        return out

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.positions[tp.partition]) for tp in partitions]

    def close(self) -> None:
        self.closed = True


def test_recovery_reads_each_partition_to_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeConsumer.log = {
        0: [
            FakeMessage(0, 0, b"A", orjson.dumps({"v": 1})),
            FakeMessage(0, 1, b"B", orjson.dumps({"v": 2})),
            FakeMessage(0, 2, b"A", orjson.dumps({"v": 3})),
        ],
        1: [FakeMessage(1, 0, b"C", orjson.dumps({"v": 4})), FakeMessage(1, 5, b"C", None)],
        2: [],
    }
    monkeypatch.setattr(tapewatch.streams.state, "Consumer", FakeConsumer)
    table = ChangelogTable("market-state", TOPIC, producer=None)  # type: ignore[arg-type]
    table._entries[3] = {b"KEEP": {"v": 0}}
    table._entries[1] = {b"STALE": {"v": -1}}

    read = table.recover(Settings(), [2, 1, 0, 1])

    assert read == 5
    assert table.get(b"A", 0) == {"v": 3} and table.get(b"B", 0) == {"v": 2}
    assert table.get(b"LATE", 0) is None  # past the end taken at the start: not waited for
    assert table.get(b"C", 1) is None and table.get(b"STALE", 1) is None  # tombstone; replaced wholesale
    assert table.get(b"KEEP", 3) == {"v": 0}
    assert len(table) == 3
    assert FakeConsumer.made[-1].closed
