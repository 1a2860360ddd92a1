"""The paper-trading history in PostgreSQL as pandas DataFrames, for the trader's report (`tapewatch trade report`).

Each table is read with one SELECT, in one snapshot for all three (REPEATABLE READ: a sink writing meanwhile adds
to none of them halfway). The frames' columns are the records' fields, in the records' order, with the records'
values: times as epoch milliseconds (int64), enums as their strings, ``positions`` as a dict; a missing price is
NaN. So a frame read here equals one built from the records themselves (``pd.DataFrame(r.__dict__ for r in …)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Double,
    Engine,
    Integer,
    Select,
    Table,
    func,
    select,
)

from tapewatch.records import Fill, Order, Portfolio, Record
from tapewatch.sinks import db


@dataclass(frozen=True, slots=True)
class TradeHistory:
    """Order events, fills and portfolio snapshots, each sorted by account, then time, then its own key."""

    orders: pd.DataFrame
    fills: pd.DataFrame
    portfolio: pd.DataFrame


#: each frame's table and record (whose fields name the columns), and the key that breaks ties in time
SOURCES: dict[str, tuple[Table, type[Record], str]] = {
    "orders": (db.paper_orders, Order, "revision"),
    "fills": (db.paper_fills, Fill, "fill_id"),
    "portfolio": (db.paper_portfolio, Portfolio, "seq"),
}


def _as_field(table: Table, name: str) -> ColumnElement[Any]:
    column = table.c[name]
    if isinstance(column.type, DateTime):  # timestamptz → the record's epoch milliseconds
        return func.round(func.extract("epoch", column) * 1000).cast(BigInteger).label(name)
    return column


def history_query(
    table: Table,
    record: type[Record],
    tie: str,
    accounts: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[Any]:
    """The SELECT of one table: ``accounts`` (all when empty), ``since`` ≤ ts < ``until`` (either open)."""
    query = select(*(_as_field(table, name) for name in record.model_fields))
    if accounts:
        query = query.where(table.c.account.in_(list(accounts)))
    if since is not None:
        query = query.where(table.c.ts >= since)
    if until is not None:
        query = query.where(table.c.ts < until)
    return query.order_by(table.c.account, table.c.ts, table.c[tie])


def with_record_dtypes(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """The records' dtypes, also on an empty frame: numbers as float64 (None → NaN), ints and times as int64."""
    for column in table.columns:
        if isinstance(column.type, Double):
            frame[column.name] = frame[column.name].astype("float64")
        elif isinstance(column.type, Integer | DateTime):  # BigInteger is an Integer
            frame[column.name] = frame[column.name].astype("int64")
        elif isinstance(column.type, Boolean):
            frame[column.name] = frame[column.name].astype("bool")
    return frame


def load_trade_history(
    engine: Engine,
    accounts: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> TradeHistory:
    """``paper_orders``, ``paper_fills`` and ``paper_portfolio`` of ``accounts`` (every account when empty) with
    ``since`` ≤ ts < ``until`` (give aware datetimes; None leaves that end open), on a migrated schema."""
    frames: dict[str, pd.DataFrame] = {}
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        for name, (table, record, tie) in SOURCES.items():
            result = conn.execute(history_query(table, record, tie, accounts, since, until))
            frame = pd.DataFrame(result.all(), columns=list(result.keys()))
            frames[name] = with_record_dtypes(frame, table)
    return TradeHistory(**frames)
