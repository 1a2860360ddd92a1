"""Books in the PostgreSQL sink, without services: which sink takes md.books."""

from __future__ import annotations

import pytest

from sinks import elastic, postgres
from sinks.consumer import resolve_topics
from tapewatch.errors import TapewatchError
from tapewatch.topics import BOOKS


def test_books_go_to_postgres_by_default_and_never_to_elasticsearch() -> None:
    assert BOOKS.name in postgres.DEFAULT_TOPICS and BOOKS.name not in elastic.DEFAULT_TOPICS
    postgres.check_topics(resolve_topics([BOOKS.name]))
    with pytest.raises(TapewatchError, match=r"md\.books"):
        elastic.check_topics(resolve_topics([BOOKS.name]))
