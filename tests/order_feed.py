"""Checks shared by the generators' order-feed tests: a session's market-by-order events and drop-copy reports are
each a valid record."""

from __future__ import annotations

import math
from typing import Any, Protocol

import pandas as pd

from tapewatch.records import ExecutionReport, OrderBookEvent


class OrderFeed(Protocol):
    def orders_frame(self) -> pd.DataFrame: ...

    def drop_copy_frame(self) -> pd.DataFrame: ...


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as dicts, a missing value None (as a record reads it)."""
    rows = frame.to_dict("records")
    return [{str(k): (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows]


def checked_feed(session: OrderFeed) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The session's events and reports, every row of each a valid record and every report's id its own."""
    orders = session.orders_frame()
    for row in records(orders):
        OrderBookEvent.from_dict(row | {"ts": int(row["ts"]), "sequence": int(row["sequence"])})
    reports = session.drop_copy_frame()
    for row in records(reports):
        numbers = {k: float(row[k]) for k in ("quantity", "last_qty", "cum_qty", "leaves_qty")}
        ExecutionReport.from_dict(row | numbers | {"ts": int(row["ts"]), "displayed": bool(row["displayed"])})
    assert reports["exec_id"].is_unique
    return orders, reports
