"""Databento's market-by-order schema (MBO), from its CSV files or its DBN files (decoded by ``databento-dbn``).

One mapping from Databento's fields to :class:`~tapewatch.records.OrderBookEvent`, for both formats: actions ``A``
add, ``C`` cancel (its size is what is taken off), ``M`` modify, ``R`` clear, ``T`` trade (the aggressor's side;
``N`` when the venue does not say), ``F`` fill (the resting order's side); ``N`` (none: a record that only carries
flags) is skipped. A price is Databento's fixed point (1e-9) or, in a CSV written with ``pretty_px``, a decimal;
undefined prices are none. Event times are ``ts_event`` in nanoseconds (or ISO 8601 with ``pretty_ts``), kept to the
millisecond; ``sequence`` is the venue's; the snapshot flag marks the adds of a book image. The symbol is the
CSV's ``symbol`` column, else the DBN metadata's mapping of the instrument id, else the instrument id itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from tapewatch.producers.orders.unreadable import Unreadable
from tapewatch.records import ACTIONS_WITH_ORDER, BookAction, OrderBookEvent, OrderSide, RecordError

ACTIONS: Final = {
    "A": BookAction.ADD,
    "C": BookAction.CANCEL,
    "M": BookAction.MODIFY,
    "R": BookAction.CLEAR,
    "T": BookAction.TRADE,
    "F": BookAction.FILL,
}
SIDES: Final = {"B": OrderSide.BUY, "A": OrderSide.SELL, "N": None}
#: Databento's undefined price (INT64_MAX) and fixed-point scale
UNDEF_PRICE: Final = 2**63 - 1
FIXED_PRICE_SCALE: Final = 1e-9
F_SNAPSHOT: Final = 1 << 5
#: the columns a CSV must have (``symbol`` and the rest are optional)
CSV_COLUMNS: Final = ("ts_event", "action", "side", "price", "size", "order_id", "flags", "sequence")

if TYPE_CHECKING:
    from databento_dbn import MBOMsg

Parsed = OrderBookEvent | Unreadable


def event(
    symbol: str,
    venue: str,
    ts_event_ns: int,
    action: str,
    side: str,
    price: float | None,
    size: float,
    order_id: int,
    flags: int,
    sequence: int,
) -> OrderBookEvent | None:
    """The record of one MBO message; None for action ``N``. Raises ValueError (or RecordError) when it is not one."""
    if action == "N":
        return None
    kind = ACTIONS.get(action)
    if kind is None:
        raise ValueError(f"action {action!r} is none of A, C, M, R, T, F, N")
    if side not in SIDES:
        raise ValueError(f"side {side!r} is none of A, B, N")
    return OrderBookEvent.from_dict(
        {
            "symbol": symbol,
            "venue": venue,
            "ts": ts_event_ns // 1_000_000,
            "sequence": sequence,
            "action": kind,
            "order_id": str(order_id) if kind in ACTIONS_WITH_ORDER else None,
            "side": None if kind is BookAction.CLEAR else SIDES[side],
            "price": price if kind is not BookAction.CLEAR else None,
            "size": float(size) if kind is not BookAction.CLEAR else 0.0,
            "snapshot": bool(flags & F_SNAPSHOT),
        }
    )


def read_csv(path: Path, venue: str, symbol: str | None = None) -> Iterator[Parsed]:
    """Each line of a Databento MBO CSV as a record, a skipped none, or an :class:`Unreadable`."""
    with path.open("rb") as lines:
        header = lines.readline().decode("utf-8", "replace").strip().split(",")
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: not a Databento MBO CSV: no column {', '.join(missing)}")
        at = {name: i for i, name in enumerate(header)}
        for number, raw in enumerate(lines, start=2):
            try:
                parsed = _csv_row(raw.decode("utf-8").rstrip("\r\n").split(","), at, venue, symbol)
            except (ValueError, IndexError, UnicodeDecodeError) as exc:
                yield Unreadable(raw.rstrip(b"\r\n"), number, _reason(exc), getattr(exc, "field", None))
                continue
            if parsed is not None:
                yield parsed


def _csv_row(row: list[str], at: Mapping[str, int], venue: str, symbol: str | None) -> OrderBookEvent | None:
    named = row[at["symbol"]] if "symbol" in at and row[at["symbol"]] else None
    instrument = row[at["instrument_id"]] if "instrument_id" in at else ""
    return event(
        symbol or named or instrument,
        venue,
        _nanoseconds(row[at["ts_event"]]),
        row[at["action"]],
        row[at["side"]],
        _price(row[at["price"]]),
        float(row[at["size"]]),
        int(row[at["order_id"]]),
        int(row[at["flags"]] or 0),
        int(row[at["sequence"]] or 0),
    )


def _nanoseconds(value: str) -> int:
    """``ts_event`` as nanoseconds since the epoch: an integer, or ISO 8601 (``pretty_ts``) to the nanosecond."""
    if value.isdigit():
        return int(value)
    stamp, _, fraction = value.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(stamp + "+00:00")
    digits = "".join(c for c in fraction if c.isdigit())[:9].ljust(9, "0")
    return int(whole.timestamp()) * 1_000_000_000 + int(digits)


def _price(value: str) -> float | None:
    if value == "" or value == str(UNDEF_PRICE):
        return None
    if "." in value:
        return float(value)
    return int(value) * FIXED_PRICE_SCALE


def read_dbn(path: Path, venue: str, symbol: str | None = None) -> Iterator[Parsed]:
    """Each MBO message of a DBN file (zstd-compressed or not) as a record or an :class:`Unreadable`."""
    import databento_dbn as dbn

    decoder, names, number = dbn.DBNDecoder(), dict[int, str](), 0
    with path.open("rb") as blocks:
        for block in iter(lambda: blocks.read(1 << 20), b""):
            decoder.write(block)
            for message in decoder.decode():
                if isinstance(message, dbn.Metadata):
                    names = instrument_names(message.mappings)
                    continue
                number += 1
                if not isinstance(message, dbn.MBOMsg):
                    yield Unreadable(bytes(message), number, f"not an MBO message: {type(message).__name__}")
                    continue
                try:
                    parsed = _dbn_message(message, venue, symbol or names.get(message.instrument_id))
                except ValueError as exc:
                    yield Unreadable(bytes(message), number, _reason(exc), getattr(exc, "field", None))
                    continue
                if parsed is not None:
                    yield parsed


def _dbn_message(m: MBOMsg, venue: str, symbol: str | None) -> OrderBookEvent | None:
    price = None if m.price == UNDEF_PRICE else m.price * FIXED_PRICE_SCALE
    return event(
        symbol or str(m.instrument_id),
        venue,
        m.ts_event,
        _char(m.action),
        _char(m.side),
        price,
        m.size,
        m.order_id,
        m.flags,
        m.sequence,
    )


def _char(value: object) -> str:
    """An action's or side's character (an enum member with its character as value, or the character)."""
    return str(getattr(value, "value", value))


def instrument_names(mappings: Mapping[str, Sequence[Mapping[str, object]]]) -> dict[int, str]:
    """Instrument id → raw symbol, from a DBN file's symbology (the last interval wins for an id reused)."""
    names: dict[int, str] = {}
    for raw_symbol, intervals in mappings.items():
        for interval in intervals:
            value = str(interval.get("symbol", ""))
            if value.isdigit():
                names[int(value)] = raw_symbol
    return names


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecordError):
        return exc.reason
    return str(exc) or type(exc).__name__
