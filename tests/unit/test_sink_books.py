"""Books in the PostgreSQL sink, without services: which sink takes md.books, and when the sink prunes old book
snapshots (tapewatch.sinks.postgres.BookRetention): not before any book is stored, at once after the first, then at most
once per interval, always counting back from the newest book stored whatever order the batches came in; never
with a retention of 0."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapewatch.errors import TapewatchError
from tapewatch.settings import PostgresSettings, Settings
from tapewatch.sinks import elastic, postgres
from tapewatch.sinks.consumer import resolve_topics
from tapewatch.sinks.defaults import ELASTICSEARCH_TOPICS, POSTGRES_TOPICS
from tapewatch.topics import BOOKS


def test_books_go_to_postgres_by_default_and_never_to_elasticsearch() -> None:
    assert BOOKS.name in POSTGRES_TOPICS and BOOKS.name not in ELASTICSEARCH_TOPICS
    postgres.check_topics(resolve_topics([BOOKS.name]))
    with pytest.raises(TapewatchError, match=r"md\.books"):
        elastic.check_topics(resolve_topics([BOOKS.name]))


def test_first_prune_follows_the_first_books_then_one_per_interval() -> None:
    retention = postgres.BookRetention(keep_ms=3_600_000, every_s=300.0)
    assert retention.due(now=0.0) is None  # nothing stored yet: nothing to count back from
    retention.note(5_000)
    assert retention.due(now=1.0) == 5_000
    retention.note(9_000)
    assert retention.due(now=1.0 + 299.9) is None
    assert retention.due(now=1.0 + 300.0) == 9_000
    assert retention.due(now=1.0 + 300.0) is None  # the interval restarts at every prune


@given(st.lists(st.integers(0, 4_000_000_000_000), min_size=1, max_size=20))
def test_prune_counts_back_from_the_newest_book_noted(batches: list[int]) -> None:
    retention = postgres.BookRetention(keep_ms=1, every_s=0.0)
    for newest in batches:  # batches of a replay, or of several partitions, arrive in any time order
        retention.note(newest)
    assert retention.due(now=0.0) == max(batches)


def test_retention_of_zero_keeps_every_book() -> None:
    retention = postgres.BookRetention(keep_ms=0, every_s=0.0)
    retention.note(5_000)
    assert retention.due(now=1e9) is None


def test_the_writer_takes_its_window_from_the_settings() -> None:
    writer = postgres.PostgresWriter(Settings(postgres=PostgresSettings(book_retention_hours=72)), prune_every_s=60.0)
    try:
        assert (writer.retention.keep_ms, writer.retention.every_s) == (72 * 3_600_000, 60.0)
    finally:
        writer.close()
