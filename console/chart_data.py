"""What the charts and the book replay show around an alert: the 1-minute bars and the stored book snapshots
(``book_snapshots``, written by the PostgreSQL sink) of the symbol over the episode ± :data:`MARGIN`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import BigInteger, ColumnElement, Connection, Row, Select, func, select

from tapewatch.console.charts import BarPoint, BookPoint, Span
from tapewatch.sinks.db import bars, book_snapshots

__all__ = ["MARGIN", "MAX_SNAPSHOTS", "Window", "bar_points", "book_points", "epoch_ms", "window_of"]

MARGIN: Final = timedelta(minutes=10)
#: snapshots sent to a page at most (a 1 s feed gives ~1,300 in the window; a faster one is thinned evenly)
MAX_SNAPSHOTS: Final = 1500


@dataclass(frozen=True, slots=True)
class Window:
    symbol: str
    venue: str
    view: Span  # the episode ± MARGIN
    episode: Span
    alert_ms: int


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def window_of(case: Row[Any]) -> Window:
    """The chart window of a case row (:func:`tapewatch.console.cases.case_detail`)."""
    start, end = epoch_ms(case.window_start), epoch_ms(case.window_end)
    margin = int(MARGIN.total_seconds() * 1000)
    return Window(case.symbol, case.venue, Span(start - margin, end + margin), Span(start, end), epoch_ms(case.ts))


def bar_points(conn: Connection, window: Window) -> list[BarPoint]:
    rows = conn.execute(
        select(bars)
        .where(
            bars.c.symbol == window.symbol,
            bars.c.venue == window.venue,
            bars.c.start >= _moment(window.view.start_ms - 60_000),
            bars.c.start <= _moment(window.view.end_ms),
        )
        .order_by(bars.c.start)
    )
    return [BarPoint(epoch_ms(r.start), epoch_ms(r.end), r.open, r.high, r.low, r.close, r.volume) for r in rows]


def book_points(conn: Connection, window: Window, columns: int | None = None) -> list[BookPoint]:
    """The stored snapshots of the window, in time order: every one (the replay; thinned evenly past
    :data:`MAX_SNAPSHOTS`), or with ``columns`` only those the book chart draws — per column of the view the one
    nearest the column's centre, then the earliest (what :func:`tapewatch.console.charts.book_svg` keeps), chosen in SQL
    so that a second-by-second window decodes a few hundred JSON books, not a thousand and more."""
    where = (
        book_snapshots.c.symbol == window.symbol,
        book_snapshots.c.venue == window.venue,
        book_snapshots.c.ts >= _moment(window.view.start_ms),
        book_snapshots.c.ts <= _moment(window.view.end_ms),
    )
    if columns is not None:
        rows = list(conn.execute(_chart_rows(where, window.view, columns)))
        return [_point(r) for r in sorted(rows, key=lambda r: r.ts)]
    rows = list(
        conn.execute(
            select(book_snapshots.c.ts, book_snapshots.c.bids, book_snapshots.c.asks)
            .where(*where)
            .order_by(book_snapshots.c.ts)
        )
    )
    step = max(1, -(-len(rows) // MAX_SNAPSHOTS))
    return [_point(r) for r in rows[::step]]


def _chart_rows(where: tuple[ColumnElement[bool], ...], view: Span, columns: int) -> Select[Any]:
    span = max(view.end_ms - view.start_ms, 1)
    offset = (func.floor(func.extract("epoch", book_snapshots.c.ts) * 1000).cast(BigInteger) - view.start_ms).label(
        "offset"
    )
    ranked = select(book_snapshots.c.ts, book_snapshots.c.bids, book_snapshots.c.asks, offset).where(*where).subquery()
    column = func.least(ranked.c.offset * columns // span, columns - 1)  # integer division, as the chart
    distance = func.abs(2 * columns * ranked.c.offset - (2 * column + 1) * span)
    return select(ranked.c.ts, ranked.c.bids, ranked.c.asks).distinct(column).order_by(column, distance, ranked.c.ts)


def _point(row: Row[Any]) -> BookPoint:
    return BookPoint(
        epoch_ms(row.ts), [(float(p), float(q)) for p, q in row.bids], [(float(p), float(q)) for p, q in row.asks]
    )
