"""A FIX 4.4 drop copy: a firm's execution reports (``35=8``), parsed by ``simplefix``, each checked against its own
BodyLength (9) and CheckSum (10) before it is believed.

A drop-copy log holds one message per line, its fields separated by SOH or, as logs often print them, by ``|``
(the checksum is that of the SOH form). Session messages (heartbeats, logons, resend requests, …) and reports of a
pending or restated order are not order events and are skipped.

Fields read: 1 Account, 11 ClOrdID, 37 OrderID, 17 ExecID, 150 ExecType, 55 Symbol, 54 Side, 38 OrderQty, 40
OrdType, 44 Price, 32 LastQty, 31 LastPx, 14 CumQty, 151 LeavesQty, 60 TransactTime, 18 ExecInst and 111 MaxFloor
(a midpoint or primary peg, or a floor of 0, is not displayed); and the Parties group (453: 448 PartyID, 452
PartyRole): role 12 (executing trader, else 11, order origination trader) is the trader, role 5 (investor id) the
beneficial owner; 50 SenderSubID is the trader when no party says.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Final

import simplefix
from simplefix.errors import ParsingError

from tapewatch.producers.orders.unreadable import Unreadable
from tapewatch.records import ExecType, ExecutionReport, OrderKind, OrderSide, RecordError

SOH: Final = b"\x01"
EXEC_TYPES: Final = {
    "0": ExecType.NEW,
    "4": ExecType.CANCELED,
    "5": ExecType.REPLACED,
    "F": ExecType.TRADE,
    "1": ExecType.TRADE,  # FIX 4.2's partial fill and fill, still sent by some engines
    "2": ExecType.TRADE,
    "8": ExecType.REJECTED,
    "C": ExecType.EXPIRED,
    "3": ExecType.EXPIRED,  # done for day
}
SIDES: Final = {"1": OrderSide.BUY, "2": OrderSide.SELL, "5": OrderSide.SELL, "6": OrderSide.SELL}
ORDER_KINDS: Final = {"1": OrderKind.MARKET, "2": OrderKind.LIMIT, "P": OrderKind.PEGGED}
TRADER_ROLES: Final = ("12", "11")
OWNER_ROLE: Final = "5"
_BODY_LENGTH: Final = re.compile(rb"\x019=(\d+)\x01")
_CHECKSUM: Final = re.compile(rb"\x0110=(\d{3})\x01$")

Parsed = ExecutionReport | Unreadable


def read_drop_copy(lines: IO[bytes], venue: str, tenant: str) -> Iterator[Parsed]:
    """Each execution report of ``tenant``'s drop-copy log as a record or an :class:`Unreadable`; other messages
    skipped."""
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        wire = line if SOH in line else line.replace(b"|", SOH)
        try:
            messages = _messages(wire)
        except (ParsingError, ValueError) as exc:
            yield Unreadable(line, number, f"not FIX: {exc}")
            continue
        if not messages:
            yield Unreadable(line, number, "not FIX: no complete message (8=… through 10=…)")
        for message in messages:
            try:
                report = execution_report(message, venue, tenant)
            except ValueError as exc:
                reason = exc.reason if isinstance(exc, RecordError) else str(exc)
                yield Unreadable(line, number, reason, getattr(exc, "field", None))
                continue
            if report is not None:
                yield report


def _messages(wire: bytes) -> list[simplefix.FixMessage]:
    parser = simplefix.FixParser()
    parser.append_buffer(wire if wire.endswith(SOH) else wire + SOH)
    found: list[simplefix.FixMessage] = []
    while (message := parser.get_message()) is not None:
        found.append(message)
    return found


def verify(message: simplefix.FixMessage) -> None:
    """Raise ValueError unless the message's BodyLength and CheckSum are those of its fields."""
    told_length, told_sum = message.get(9), message.get(10)
    if told_length is None or told_sum is None:
        raise ValueError("no BodyLength (9) or CheckSum (10)")
    encoded = message.encode()
    length, checksum = _BODY_LENGTH.search(encoded), _CHECKSUM.search(encoded)
    if length is None or checksum is None:
        raise ValueError("cannot re-encode the message")
    if int(told_length) != int(length[1]):
        raise ValueError(f"BodyLength (9) says {int(told_length)}, the body has {int(length[1])} bytes")
    if int(told_sum) != int(checksum[1]):
        raise ValueError(f"CheckSum (10) says {told_sum.decode()}, the bytes sum to {checksum[1].decode()}")


def execution_report(message: simplefix.FixMessage, venue: str, tenant: str) -> ExecutionReport | None:
    """The record of an execution report of ``tenant``'s; None for any other message, or a report that is not an
    order event."""
    verify(message)
    if _text(message, 35) != "8":
        return None
    exec_type = EXEC_TYPES.get(_text(message, 150) or "")
    if exec_type is None:
        return None
    side = SIDES.get(_text(message, 54) or "")
    if side is None:
        raise ValueError(f"Side (54) {_text(message, 54)!r}: 1 buy, 2 sell, 5/6 sell short")
    parties = _parties(message)
    trader = next((parties[r] for r in TRADER_ROLES if r in parties), None) or _text(message, 50)
    return ExecutionReport.from_dict(
        {
            "symbol": _required(message, 55, "Symbol"),
            "venue": venue,
            "ts": _transact_ms(_required(message, 60, "TransactTime")),
            "exec_id": _required(message, 17, "ExecID"),
            "order_id": _required(message, 37, "OrderID"),
            "client_order_id": _text(message, 11),
            "tenant": tenant,
            "account": _required(message, 1, "Account"),
            "trader": trader,
            "owner": parties.get(OWNER_ROLE),
            "exec_type": exec_type,
            "side": side,
            "order_kind": ORDER_KINDS.get(_text(message, 40) or "2", OrderKind.LIMIT),
            "displayed": _displayed(message),
            "price": _number(message, 44),
            "quantity": _number(message, 38),
            "last_qty": _number(message, 32) or 0.0,
            "last_price": _number(message, 31) or None,
            "cum_qty": _number(message, 14) or 0.0,
            "leaves_qty": _number(message, 151) or 0.0,
        }
    )


def _text(message: simplefix.FixMessage, tag: int) -> str | None:
    value = message.get(tag)
    return None if value is None else bytes(value).decode("utf-8", "replace")


def _required(message: simplefix.FixMessage, tag: int, name: str) -> str:
    value = _text(message, tag)
    if not value:
        raise ValueError(f"no {name} ({tag})")
    return value


def _number(message: simplefix.FixMessage, tag: int) -> float | None:
    value = _text(message, tag)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"tag {tag}: {value!r} is not a number") from None


def _transact_ms(value: str) -> int:
    """TransactTime (UTCTimestamp: ``YYYYMMDD-HH:MM:SS[.fff…]``) in epoch milliseconds."""
    whole, _, fraction = value.partition(".")
    try:
        stamp = datetime.strptime(whole, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"TransactTime (60) {value!r} is not YYYYMMDD-HH:MM:SS[.fff]") from None
    millis = int((fraction + "000")[:3]) if fraction.isdigit() else 0
    return int(stamp.timestamp()) * 1000 + millis


def _parties(message: simplefix.FixMessage) -> dict[str, str]:
    """PartyRole → PartyID from the Parties group (448 then 452, per party)."""
    roles: dict[str, str] = {}
    party: str | None = None
    for tag, value in message.pairs:
        if tag == b"448":
            party = bytes(value).decode("utf-8", "replace")
        elif tag == b"452" and party is not None:
            roles.setdefault(bytes(value).decode("utf-8", "replace"), party)
            party = None
    return roles


def _displayed(message: simplefix.FixMessage) -> bool:
    instructions = (_text(message, 18) or "").split()
    return not ({"M", "R"} & set(instructions)) and _number(message, 111) != 0.0
