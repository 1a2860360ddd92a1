"""run_source reports its counters to a progress callback; the command side draws them as the live line."""

from __future__ import annotations

import asyncio
import io
from typing import cast

import pytest
from rich.console import Console

from tapewatch.cli import produce
from tapewatch.producers.framework import Emitter, SourceCounters, run_source
from tapewatch.producers.publisher import Publisher
from tapewatch.records import Quote, Record
from tapewatch.settings import Settings
from tapewatch.topics import Topic


class CountingPublisher:
    """Stands in for Kafka: every record is delivered at once."""

    def __init__(self) -> None:
        self.delivered = 0

    def publish(self, topic: Topic, record: Record) -> None:
        self.delivered += 1

    def poll(self) -> None:
        pass

    def flush(self, timeout_s: float) -> None:
        pass


async def three_quotes(emitter: Emitter, stop: asyncio.Event) -> None:
    for i in range(3):
        emitter.quote(Quote(symbol="AAA", ts=1_700_000_000_000 + i, price=10.0, size=1.0, venue="test"))
        await asyncio.sleep(0.05)


def test_progress_gets_the_counters_and_the_last_report_is_complete() -> None:
    reports: list[tuple[int, int]] = []

    def progress(counters: SourceCounters, elapsed: float, delivered: int) -> None:
        assert elapsed >= 0
        reports.append((counters.records, delivered))

    publisher = cast(Publisher, CountingPublisher())
    counters = asyncio.run(run_source(Settings(), "test", three_quotes, progress=progress, publisher=publisher))
    assert counters.records == counters.quotes == 3
    assert reports[0] == (0, 0) and reports[-1] == (3, 3)


def test_the_progress_line_is_drawn_from_the_first_report_and_left_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(produce, "console", Console(file=out, width=200))
    line = produce.ProgressLine("producer:test")
    assert line.live is None
    line(SourceCounters(records=1_234, quotes=1_234, dead_lettered=2), 2.0, 1_200)
    line.close()
    text = out.getvalue()
    assert "producer:test 1,234 records (617/s) · delivered 1,200 · dead-lettered 2" in text
    assert "skipped 0 · 2s" in text
