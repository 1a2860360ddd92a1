"""Order-book snapshots in PostgreSQL on the real Kafka and PostgreSQL: stored as the records' own lists, once
however often they are replayed, and pruned to the retention window counted back from the newest snapshot stored,
never from the clock (the books below are from 2020, so a clock-based window would delete them all)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from tapewatch.producers.publisher import Publisher
from tapewatch.records import Book
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.sinks.consumer import SinkRunner, resolve_topics
from tapewatch.sinks.defaults import POSTGRES_TOPICS
from tapewatch.sinks.postgres import PostgresWriter
from tapewatch.topics import BOOKS, DLQ_SINKS
from tests.postgres_times import datetime_to_ms

pytestmark = pytest.mark.integration

T0 = 1_577_836_800_000  # 2020-01-01 00:00 UTC: an old day replayed
MINUTE = 60_000
HOUR = 60 * MINUTE

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
    runner = SinkRunner(settings, writer, resolve_topics(POSTGRES_TOPICS), group=group, batch_size=100)
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


def test_retention_deletes_only_books_older_than_the_window_before_the_newest(pg: Settings) -> None:
    # three hours of books every 5 minutes for two symbols, a one-hour window, a prune after every batch
    books = [book(symbol, T0 + k * 5 * MINUTE) for symbol in ("A", "B") for k in range(37)]
    settings = pg.updated(postgres={"book_retention_hours": 1})
    publish(settings, books)
    writer = PostgresWriter(settings, prune_every_s=0.0)
    drain(settings, writer)

    newest = max(b.ts for b in books)
    kept = [b for b in books if b.ts >= newest - HOUR]  # the snapshot exactly one hour before the newest stays
    assert stored(settings) == as_stored(kept)
    assert len(kept) == 2 * 13 and writer.pruned == len(books) - len(kept)


def test_prune_counts_back_from_the_newest_stored_not_from_the_hint(pg: Settings) -> None:
    db.upgrade(pg)
    # books every 10 minutes: two (symbol, venue) pairs from T0 to T0 + 3 h, a third that stopped at T0 + 50 min
    series = {("A", "sim"): 19, ("A", "twse"): 19, ("B", "sim"): 6}
    books = [book(symbol, T0 + k * 10 * MINUTE, venue) for (symbol, venue), n in series.items() for k in range(n)]
    engine = db.make_engine(pg)
    try:
        with engine.begin() as conn:
            db.copy_rows(conn, db.book_snapshots, [db.record_doc(b) for b in books])
        with engine.begin() as conn:  # the hint: a sink that stored only up to T0 + 30 min (another stored newer)
            assert db.prune_book_snapshots(conn, T0 + 30 * MINUTE, HOUR) == 12 + 12 + 6  # older than T0 + 2 h
        with engine.begin() as conn:
            assert db.prune_book_snapshots(conn, T0 + 30 * MINUTE, HOUR) == 0  # nothing more to delete
            assert db.prune_book_snapshots(conn, T0 + 4 * HOUR, HOUR) == 0  # none stored from the hint on
        with engine.connect() as conn:
            index = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t"),
                {"t": db.book_snapshots.name},
            ).scalars()
            assert any("USING brin (ts)" in definition for definition in index)
    finally:
        engine.dispose()
    assert stored(pg) == as_stored([b for b in books if b.ts >= T0 + 2 * HOUR])
