"""The venue-level wash indicator beside a case: the statistical wash tests over the windows of the case's symbol's
trade sizes that its episode falls in (``venue_indicators``, written by the market stage's sink). Market data, like
the bars and books a case page shows: not a tenant's, and not evidence of the alert — a venue's trade sizes as a
whole departing from how genuine sizes are distributed."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Connection, Row, select

from tapewatch.sinks.db import venue_indicators

#: the windows shown at most (a venue-local day each; an episode spans one or two)
MAX_SHOWN: Final = 3


def indicators_of(conn: Connection, case: Row[Any]) -> list[Row[Any]]:
    """The windows of the case's symbol and venue that overlap its episode (each of the tests' versions that wrote
    one), oldest first."""
    table = venue_indicators
    query = (
        select(table)
        .where(
            table.c.symbol == case.symbol,
            table.c.venue == case.venue,
            table.c.window_start <= case.window_end,
            table.c.window_end > case.window_start,
        )
        .order_by(table.c.window_start, table.c.version)
        .limit(MAX_SHOWN)
    )
    return list(conn.execute(query).all())
