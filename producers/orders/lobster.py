"""LOBSTER message files: one symbol and day of Nasdaq TotalView-ITCH, one message per line, no header.

Columns: time (seconds after midnight, venue time, to the nanosecond), type, order id, size, price × 10,000,
direction (1 buy, −1 sell; for an execution, the resting order's side). Types: 1 submission (an add), 2 partial
cancel, 3 deletion, 4 execution of a visible order (a trade by the other side, and the resting order's fill), 5
execution of a hidden order (a trade with no displayed order filled), 6 a cross (the auction's print, no side), 7 a
trading halt or resumption (no book event: skipped). A file is complete, so its events are numbered one after the
other (``contiguous``); it starts with the book of the open, whose orders it never added: a cancel or execution of
one of them names an order the book does not hold, and is dead-lettered as such.

The symbol and day come from the file's name (``AAPL_2012-06-21_34200000_57600000_message_10.csv``) unless given.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from tapewatch.producers.orders.unreadable import Unreadable
from tapewatch.records import BookAction, OrderBookEvent, OrderSide, RecordError

FILE_NAME: Final = re.compile(r"(?P<symbol>[^_/]+)_(?P<day>\d{4}-\d{2}-\d{2})_\d+_\d+_message_\d+\.csv")
PRICE_SCALE: Final = 10_000
NASDAQ_TIME_ZONE: Final = "America/New_York"

Parsed = OrderBookEvent | Unreadable


def name_parts(path: Path) -> tuple[str, date] | None:
    """(symbol, day) from a LOBSTER file name; None when it is not one."""
    found = FILE_NAME.fullmatch(path.name)
    if found is None:
        return None
    return found["symbol"], date.fromisoformat(found["day"])


def read_messages(
    path: Path, venue: str, symbol: str | None = None, day: date | None = None, time_zone: str = NASDAQ_TIME_ZONE
) -> Iterator[Parsed]:
    """Each message of a LOBSTER file as its events (none, one, or a trade and its fill), or an :class:`Unreadable`."""
    named = name_parts(path)
    symbol = symbol or (named[0] if named else None)
    day = day or (named[1] if named else None)
    if symbol is None or day is None:
        raise ValueError(f"{path.name}: not named SYMBOL_YYYY-MM-DD_…_message_N.csv: give the symbol and the day")
    midnight = datetime.combine(day, datetime.min.time(), ZoneInfo(time_zone))
    sequence = 0
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                events = message_events(raw.decode("ascii").strip().split(","), symbol, venue, midnight, sequence)
            except (ValueError, IndexError, UnicodeDecodeError) as exc:
                reason = exc.reason if isinstance(exc, RecordError) else str(exc)
                yield Unreadable(raw.rstrip(b"\r\n"), number, reason, getattr(exc, "field", None))
                continue
            sequence += len(events)
            yield from events


def message_events(row: list[str], symbol: str, venue: str, midnight: datetime, sequence: int) -> list[OrderBookEvent]:
    """The events of one message; ``sequence`` is the last event's number so far."""
    if len(row) < 6:
        raise ValueError(f"{len(row)} columns, not 6")
    seconds, kind, order_id, size, price = float(row[0]), int(row[1]), row[2], float(row[3]), int(row[4])
    direction = int(row[5])
    if direction not in (1, -1):
        raise ValueError(f"direction {direction}: 1 (buy) or -1 (sell)")
    if not 0 <= seconds < 86_400 * 2:
        raise ValueError(f"time {seconds} s after midnight")
    ts = int((midnight + timedelta(seconds=seconds)).timestamp() * 1000)
    side = OrderSide.BUY if direction == 1 else OrderSide.SELL
    other = OrderSide.SELL if direction == 1 else OrderSide.BUY

    def make(action: BookAction, **fields: object) -> OrderBookEvent:
        return OrderBookEvent.from_dict(
            {"symbol": symbol, "venue": venue, "ts": ts, "sequence": sequence + 1 + len(made), "action": action}
            | fields
        )

    made: list[OrderBookEvent] = []
    if kind == 1:
        made.append(make(BookAction.ADD, order_id=order_id, side=side, price=price / PRICE_SCALE, size=size))
    elif kind in (2, 3):
        made.append(make(BookAction.CANCEL, order_id=order_id, side=side, size=size if kind == 2 else 0.0))
    elif kind in (4, 5, 6):
        aggressor = None if kind == 6 else other
        made.append(make(BookAction.TRADE, side=aggressor, price=price / PRICE_SCALE, size=size))
        if kind == 4:
            made.append(make(BookAction.FILL, order_id=order_id, side=side, size=size))
    elif kind != 7:
        raise ValueError(f"message type {kind}: one of 1-7")
    return made
