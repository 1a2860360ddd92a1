"""Checks shared by the generators' order-feed tests (a session's market-by-order events and drop-copy reports are
each a valid record), and hand-built feeds for the public detectors' tests (:class:`Feed`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Protocol

import pandas as pd

from tapewatch.records import BookAction, ExecutionReport, OrderBookEvent, OrderSide


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


class Feed:
    """Numbers the events of one symbol's feed and names its orders."""

    def __init__(self) -> None:
        self.sequence = 0
        self.next_id = 0

    def event(self, ts: int, action: BookAction, **fields: object) -> OrderBookEvent:
        self.sequence += 1
        return OrderBookEvent(symbol="X", venue="v", ts=ts, sequence=self.sequence, action=action, **fields)  # type: ignore[arg-type]

    def add(self, ts: int, side: OrderSide, price: float, size: float, order_id: str | None = None) -> OrderBookEvent:
        self.next_id += 1
        order_id = order_id or f"o{self.next_id}"
        return self.event(ts, BookAction.ADD, order_id=order_id, side=side, price=price, size=size)

    def cancel(self, ts: int, order_id: str) -> OrderBookEvent:
        return self.event(ts, BookAction.CANCEL, order_id=order_id)

    def trade(self, ts: int, aggressor: OrderSide, price: float, size: float) -> OrderBookEvent:
        return self.event(ts, BookAction.TRADE, side=aggressor, price=price, size=size)

    def fill(self, ts: int, order_id: str, size: float) -> OrderBookEvent:
        return self.event(ts, BookAction.FILL, order_id=order_id, size=size)

    def book(self, ts: int) -> Iterator[OrderBookEvent]:
        """An ordinary two-sided book of 10-lot orders, five prices a side, and its history: two hours of small
        orders placed and cancelled away from the touch."""
        for level in range(5):
            for _ in range(3):
                yield self.add(ts, OrderSide.BUY, 99.0 - level, 10.0)
                yield self.add(ts, OrderSide.SELL, 101.0 + level, 10.0)
        for minute in range(1, 121):
            added = self.add(ts + minute * 60_000, OrderSide.BUY, 97.0, 10.0)
            yield added
            yield self.cancel(ts + minute * 60_000 + 5_000, added.order_id or "")
