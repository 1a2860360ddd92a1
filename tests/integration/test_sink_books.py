"""Order-book snapshots in PostgreSQL on the real Kafka and PostgreSQL: stored as the records' own lists, once
however often they are replayed."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from producers.publisher import Publisher
from sinks import db
from sinks.consumer import SinkRunner, resolve_topics
from sinks.postgres import DEFAULT_TOPICS, PostgresWriter
from tapewatch.records import Book
from tapewatch.settings import Settings
from tapewatch.topics import BOOKS, DLQ_SINKS
from tests.postgres_times import datetime_to_ms

pytestmark = pytest.mark.integration

T0 = 1_577_836_800_000  # 2020-01-01 00:00 UTC

#: a stored snapshot: (symbol, venue, ts) → (bids, asks) as lists of [price, size]
Stored = dict[tuple[str, str, int], tuple[list[list[float]], list[list[float]]]]


def book(symbol: str, ts: int, venue: str = "sim", depth: int = 5) -> Book:
    tick = (ts // 1000) % 7 / 100  # levels that differ from one snapshot to the next
    return Book(
        symbol=symbol,
        venue=venue,
        ts=ts,
        bids=[(100.0 - tick - j / 2, 10.0 + j) for j in range(depth)],
        asks=[(100.5 + tick + j / 2, 5.0 + j) for j in range(depth)],
    )


def as_stored(books: list[Book]) -> Stored:
    return {
        (b.symbol, b.venue, b.ts): ([list(level) for level in b.bids], [list(level) for level in b.asks]) for b in books
    }


def publish(settings: Settings, books: list[Book]) -> None:
    with Publisher(settings, DLQ_SINKS) as publisher:
        for record in books:
            publisher.publish(BOOKS, record)


def drain(settings: Settings, writer: PostgresWriter, group: str | None = None) -> SinkRunner:
    """The sink over its default topics until idle (small batches: several per run)."""
    runner = SinkRunner(settings, writer, resolve_topics(DEFAULT_TOPICS), group=group, batch_size=100)
    runner.run(exit_when_idle_s=4.0)
    return runner


def stored(settings: Settings) -> Stored:
    engine = db.make_engine(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(db.book_snapshots)).all()
    finally:
        engine.dispose()
    return {(r.symbol, r.venue, datetime_to_ms(r.ts)): (r.bids, r.asks) for r in rows}


def test_books_stored_as_their_lists_once_however_often_replayed(pg: Settings) -> None:
    books = [
        book(f"S{s}", T0 + 250 * i, venue, depth=i % 6)  # 0–5 levels a side, one side empty now and then
        for s in range(3)
        for venue in ("sim", "twse")
        for i in range(100)
    ]
    publish(pg, books + books[:50])  # at-least-once upstream: the first 50 sent twice

    first = drain(pg, PostgresWriter(pg))
    assert first.counters.dead_lettered == 0
    assert stored(pg) == as_stored(books)

    replay = PostgresWriter(pg)
    again = drain(pg, replay, group=f"replay-{uuid.uuid4().hex[:6]}")
    assert again.counters.consumed == len(books) + 50
    assert replay.inserted == 0 and stored(pg) == as_stored(books)
