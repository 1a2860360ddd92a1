"""Recorded news items → ``news.items`` again, from JSON Lines files.

A line is one ``news.items`` record exactly as the topic carries it (one item for one symbol: ``symbol``,
``venue``, ``item_id``, ``source``, ``ts``, ``updated_ts``, ``title``, ``summary``, ``url``, ``language``,
``symbols``), which is what a desk records by reading the topic (``kcat -C -t news.items -e``, any consumer
writing one value a line). Lines are replayed in the order of their ``ts`` (publish time), at ``speed`` × the
recorded pace or (``speed`` = 0) as fast as the broker takes them. A record read twice (the same item, symbol and
edit: an at-least-once recording) goes once. A line that is not a record is dead-lettered with its file and line
number; a blank line is skipped.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "news.jsonl"
>>> good = ('{"symbol":"2330","venue":"twse","item_id":"cnyes:1","source":"cnyes","ts":1795741200000,'
...         '"title":"台積電","language":"zh-TW","symbols":["2330"]}')
>>> _ = path.write_text(good + "\\n\\n" + good + "\\nnot json\\n", encoding="utf-8")
>>> replay = NewsReplay([path])
>>> [(r.symbol, r.item_id) for r in replay.records], replay.repeats, [b.reason for b in replay.bad]
([('2330', 'cnyes:1')], 1, ['line 4: news: invalid JSON: expected ident at line 1 column 2'])
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from tapewatch.errors import TapewatchError
from tapewatch.producers.framework import Emitter, sleep_or_stop
from tapewatch.producers.news.dedup import Seen
from tapewatch.records import NewsItem, RecordError
from tapewatch.topics import NEWS_ITEMS

#: a longer line is no record (the largest news record is about 20 KB) and is dead-lettered, cut to this
MAX_LINE_BYTES: Final = 64 * 1024
#: records handed to the publisher between two looks at the stop flag, as fast as possible
CHUNK: Final = 1024


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a record: its bytes (cut to :data:`MAX_LINE_BYTES`), why, and its file."""

    raw: bytes
    reason: str
    path: str


class NewsReplay:
    """Replays JSON Lines files of ``news.items`` records at ``speed`` × the recorded pace (0 = as fast as
    possible). Every file is read (and checked) when the replay is made; a missing one is an error then."""

    def __init__(self, paths: Sequence[Path], speed: float = 0.0) -> None:
        if speed < 0:
            raise TapewatchError("news-replay: --speed must be ≥ 0")
        self.speed = speed
        self.bad: list[BadLine] = []
        self.repeats = 0
        records: list[NewsItem] = []
        seen = Seen(capacity=1_000_000)
        for path in paths:
            for number, line, whole in _lines(path):
                record = self._record(path, number, line, whole)
                if record is None:
                    continue
                if seen.fresh(
                    f"{record.item_id} {record.symbol}", record.updated_ts or record.ts, record.to_json().decode()
                ):
                    records.append(record)
                else:
                    self.repeats += 1
        self.records = sorted(records, key=lambda r: r.ts)

    def _record(self, path: Path, number: int, line: bytes, whole: bool) -> NewsItem | None:
        if not whole:
            self.bad.append(BadLine(line, f"line {number}: longer than {MAX_LINE_BYTES:,} bytes", str(path)))
            return None
        try:
            return NewsItem.from_json(line)
        except RecordError as exc:
            self.bad.append(BadLine(line, f"line {number}: {exc}", str(path)))
            return None

    async def run(self, emitter: Emitter, stop: asyncio.Event) -> None:
        for bad in self.bad:
            emitter.dead_letter(bad.raw, bad.reason, source=bad.path)
        for _ in range(self.repeats):
            emitter.skip()
        if not self.records:
            return
        first_ts, started = self.records[0].ts, time.monotonic()
        for index, record in enumerate(self.records):
            if self.speed > 0:
                ahead = (record.ts - first_ts) / 1000 / self.speed - (time.monotonic() - started)
                if ahead > 0 and await sleep_or_stop(stop, ahead):
                    return
            elif index % CHUNK == 0:
                await asyncio.sleep(0)  # let the progress line and the signal handlers run
            if stop.is_set():
                return
            emitter.emit(NEWS_ITEMS, record)


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line without its end, whether it is whole) of every non-blank line, each read bounded."""
    try:
        with path.open("rb") as file:
            yield from _bounded_lines(file)
    except OSError as exc:
        raise TapewatchError(f"news-replay: cannot read {path}: {exc.strerror or exc}") from None


def _bounded_lines(file: BinaryIO) -> Iterator[tuple[int, bytes, bool]]:
    number = 0
    while line := file.readline(MAX_LINE_BYTES + 1):
        number += 1
        whole = len(line) <= MAX_LINE_BYTES or line.endswith(b"\n")
        if not whole:
            while (rest := file.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass  # the rest of an overlong line is never kept
            line = line[:MAX_LINE_BYTES]
        if line.strip():
            yield number, line.rstrip(b"\r\n"), whole
