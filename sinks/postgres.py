"""PostgreSQL sink: bars, features, scores, alerts, actions, forecasts, book snapshots, paper orders, fills and
portfolios, model versions and dead letters, idempotently.

One transaction per batch: every table's rows go in by COPY and ``INSERT … ON CONFLICT`` on the natural key
(see :mod:`tapewatch.sinks.db`: facts ``DO NOTHING``, an alert's newest emission by ``ts`` replaces an older one), so a
batch replayed after a crash stores nothing twice. The database commit comes
before the Kafka commit (:mod:`tapewatch.sinks.consumer`). Connection failures mean an outage (the batch is retried),
and so does a hung store: the server cancels a statement past ``postgres_statement_timeout_s`` or a lock wait past
``postgres_lock_timeout_s``, and a write still unanswered 5 s after that (a paused server answers nothing) has its
connection cut (:mod:`tapewatch.sinks.watchdog`). Text PostgreSQL cannot hold (NUL, a lone surrogate) is replaced by
U+FFFD, so the alert still reaches the analysts (:func:`tapewatch.sinks.db.copy_rows`); any other row the database
refuses for good is isolated by retrying the batch's items one by one and goes to ``dlq.sinks`` with the database's
reason — whether the error comes through SQLAlchemy or straight from psycopg2's COPY.

Book snapshots are many and big, so the sink keeps a bounded window of them: every few minutes it deletes the
ones older than ``postgres_book_retention_hours`` before the newest stored (:class:`BookRetention`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
import psycopg2
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, StatementError

from tapewatch.deadletter import DeadLetter
from tapewatch.errors import TapewatchError
from tapewatch.records import (
    Action,
    Alert,
    Bar,
    Book,
    ExecutionReport,
    Features,
    Fill,
    Forecast,
    NewsItem,
    NewsSignal,
    Order,
    Portfolio,
    Record,
    Score,
    VenueIndicator,
)
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.sinks.consumer import Item, Rejected, SinkUnavailableError
from tapewatch.sinks.watchdog import cut_after
from tapewatch.topics import (
    Topic,
)

log = logging.getLogger(__name__)


#: an item as the row of its table (:data:`tapewatch.sinks.db.Doc`)
DocOf = Callable[[Item], db.Doc]


def _bar(item: Item) -> db.Doc:
    assert isinstance(item.record, Bar)
    return db.bar_doc(item.record, item.message.offset())


def _record(item: Item) -> db.Doc:
    assert isinstance(
        item.record,
        Features | Score | Action | Forecast | Book | Order | Fill | Portfolio | ExecutionReport | VenueIndicator,
    )
    return db.record_doc(item.record)


def _alert(item: Item) -> db.Doc:
    assert isinstance(item.record, Alert)
    return db.alert_doc(item.record)


def _news(item: Item) -> db.Doc:
    assert isinstance(item.record, NewsItem | NewsSignal)
    return db.news_doc(item.record)


def _dead_letter(item: Item) -> db.Doc:
    message = item.message
    _, timestamp = message.timestamp()
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    letter = DeadLetter.from_headers([(k, v) for k, v in pairs if isinstance(v, bytes)])
    return db.dead_letter_doc(
        letter, item.topic.name, message.partition() or 0, message.offset() or 0, max(0, timestamp), len(message)
    )


TABLES: dict[type[Record] | None, tuple[Table, DocOf]] = {
    Bar: (db.bars, _bar),
    Features: (db.features, _record),
    Score: (db.scores, _record),
    Alert: (db.alerts, _alert),
    NewsItem: (db.news_items, _news),
    NewsSignal: (db.news_signals, _news),
    Action: (db.actions, _record),
    Forecast: (db.forecasts, _record),
    Book: (db.book_snapshots, _record),
    Order: (db.paper_orders, _record),
    Fill: (db.paper_fills, _record),
    Portfolio: (db.paper_portfolio, _record),
    ExecutionReport: (db.executions, _record),
    VenueIndicator: (db.venue_indicators, _record),
    None: (db.dead_letters, _dead_letter),
}
#: model_versions.family of each table whose rows carry a model version (the paper-trading tables name the signal
#: they follow, ``signal_model``/``signal_version``, but version no model of their own: none of them is a family)
FAMILIES: dict[Table, str] = {
    db.scores: "score",
    db.alerts: "alert",
    db.actions: "action",
    db.forecasts: "forecast",
    db.news_signals: "news_sentiment",
}


#: wall-clock seconds between two prunes of old book snapshots: each DELETE removes a few minutes' worth, and the
#: table holds at most that much beyond its window (5 minutes against 72 hours), at one cheap query per 5 minutes
BOOK_PRUNE_EVERY_S = 300.0


@dataclass(slots=True)
class BookRetention:
    """When the sink prunes old book snapshots, and the newest book time it counts back from (the clock is given,
    so this is pure). The newest is the newest this sink stored; the database may hold newer (another sink's
    partitions), which :func:`tapewatch.sinks.db.prune_book_snapshots` finds from there."""

    keep_ms: int  # 0: keep every snapshot
    every_s: float
    newest_ms: int | None = None
    # The first books stored are followed at once by a prune: a sink restarted after a long stop catches up.
    next_at: float = float("-inf")

    def note(self, newest_ms: int) -> None:
        """Books up to ``newest_ms`` are stored (committed)."""
        self.newest_ms = newest_ms if self.newest_ms is None else max(self.newest_ms, newest_ms)

    def due(self, now: float) -> int | None:
        """If a prune is due at ``now``, the newest book time to count back from (the next prune is then
        ``every_s`` later, whether this one succeeds or not); else None."""
        if not self.keep_ms or self.newest_ms is None or now < self.next_at:
            return None
        self.next_at = now + self.every_s
        return self.newest_ms


#: how long past the server's statement timeout a write may stay unanswered before its connection is cut
WATCHDOG_MARGIN_S = 5.0


def check_topics(topics: Sequence[Topic]) -> None:
    unsupported = [t.name for t in topics if t.record not in TABLES]
    if unsupported:
        raise TapewatchError(f"sink postgres: no table for topic(s) {', '.join(unsupported)}")


def _is_outage(exc: DBAPIError | psycopg2.Error) -> bool:
    if isinstance(exc, psycopg2.Error):  # raised by COPY on the raw connection, not wrapped by SQLAlchemy
        return isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError)
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated


class PostgresWriter:
    name = "postgres"

    def __init__(self, settings: Settings, prune_every_s: float = BOOK_PRUNE_EVERY_S) -> None:
        self.settings = settings
        # no pre-ping: it would wait unguarded on a paused server; a dead pooled connection fails the guarded write
        # instead (an outage, retried on a new connection, whose connect_timeout bounds it)
        self.engine = db.make_engine(settings, timeouts=True, pre_ping=False)
        # past the server's own statement timeout: a live server answers first; a silent one is cut off
        self.write_timeout_s = settings.postgres.statement_timeout_s + WATCHDOG_MARGIN_S
        self.inserted = 0
        self.pruned = 0  # book snapshots deleted as older than the retention window
        self.retention = BookRetention(settings.postgres.book_retention_hours * 3_600_000, prune_every_s)

    def prepare(self) -> None:
        try:
            db.upgrade(self.settings)
        except TapewatchError as exc:
            raise SinkUnavailableError(str(exc)) from None

    def write(self, items: Sequence[Item]) -> list[Rejected]:
        try:
            self.inserted += self._write(items)
            self._prune_books()
            return []
        except (DBAPIError, psycopg2.Error) as exc:
            if _is_outage(exc):
                raise SinkUnavailableError(_first_line(exc)) from None
            log.warning("postgres: batch refused (%s); isolating the culprit", _first_line(exc))
        except (StatementError, ValueError, orjson.JSONEncodeError) as exc:
            log.warning("postgres: batch refused (%s); isolating the culprit", exc)
        return self._write_one_by_one(items)

    def _write_one_by_one(self, items: Sequence[Item]) -> list[Rejected]:
        refused: list[Rejected] = []
        for item in items:
            try:
                self.inserted += self._write([item])
            except (DBAPIError, psycopg2.Error) as exc:
                if _is_outage(exc):
                    raise SinkUnavailableError(_first_line(exc)) from None
                refused.append(Rejected(item.message, f"postgres refused the row: {_first_line(exc)}"))
            except (StatementError, ValueError, orjson.JSONEncodeError) as exc:
                refused.append(Rejected(item.message, f"postgres refused the row: {exc}"))
        return refused

    def _write(self, items: Sequence[Item]) -> int:
        rows: dict[Table, list[db.Doc]] = defaultdict(list)
        for item in items:
            table, doc_of = TABLES[None if item.record is None else type(item.record)]
            rows[table].append(doc_of(item))
        with self.engine.connect() as conn, cut_after(conn, self.write_timeout_s) as watch:
            try:
                with conn.begin():
                    stored = sum(db.copy_rows(conn, table, table_rows) for table, table_rows in rows.items())
                    for table, family in FAMILIES.items():
                        if table in rows:
                            db.record_model_versions(conn, table, family)
            except (DBAPIError, psycopg2.Error) as exc:
                if watch.fired:
                    reason = f"no answer within {watch.limit_s:.0f} s (a hung or paused server); connection cut"
                    raise SinkUnavailableError(f"postgres: {reason}") from exc
                raise
        books = rows.get(db.book_snapshots)
        if books:  # committed: the prune may count back from them
            self.retention.note(max(doc["ts"] for doc in books))
        return stored

    def _prune_books(self) -> None:
        """Delete the book snapshots older than the retention window, if a prune is due. In its own transaction
        after the batch's: a refusal here loses nothing, so it is logged and tried again at the next prune (an
        outage still pauses the sink, and the stored batch is replayed harmlessly)."""
        newest = self.retention.due(time.monotonic())
        if newest is None:
            return
        try:
            with self.engine.begin() as conn:
                deleted = db.prune_book_snapshots(conn, newest, self.retention.keep_ms)
        except DBAPIError as exc:
            if _is_outage(exc):
                raise
            log.warning(
                "postgres: book snapshots not pruned (%s); next try in %.0f s", _first_line(exc), self.retention.every_s
            )
            return
        self.pruned += deleted
        if deleted:
            log.info(
                "postgres: pruned %d book snapshots older than the %d h window",
                deleted,
                self.settings.postgres.book_retention_hours,
            )

    def close(self) -> None:
        self.engine.dispose()


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
