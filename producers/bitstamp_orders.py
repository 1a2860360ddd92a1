"""The Bitstamp BTC/USD capture (:mod:`tapewatch.producers.bitstamp_capture`: ``ob-analytics``' sample, real order
messages and trades) as market-by-order events: the same data a venue's ``live_orders`` and ``live_trades`` channels
carry, through the market-by-order path (``md.orders``, the public-feed detectors) instead of rebuilt books."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

import pandas as pd

from tapewatch.producers.bitstamp_capture import (
    SYMBOL,
    UNITS,
    VENUE,
    BookSide,
    OrderBook,
    read_capture_file,
    sample_paths,
)
from tapewatch.records import BookAction, OrderBookEvent, OrderSide


def sample_order_events(symbol: str = SYMBOL) -> Iterator[OrderBookEvent]:
    """The bundled capture as market-by-order events."""
    orders, trades = sample_paths()
    return order_events(read_capture_file(orders), read_capture_file(trades), symbol)


def order_events(orders: pd.DataFrame, trades: pd.DataFrame, symbol: str = SYMBOL) -> Iterator[OrderBookEvent]:
    """The capture's order messages and trades as market-by-order events, in exchange time: ``created`` an add (those
    of the REST snapshot that opens the capture, all at its first millisecond, marked ``snapshot``); ``changed`` a
    fill of the volume it lost when a trade names the order at that millisecond, else a cancel of it; ``deleted``
    the rest cancelled, or filled when a trade named it (the synthetic deletes that close the capture, all at its
    last millisecond, are left out: they are its edge, not cancels); trades carry the taker's side. Volumes are BTC.

    A book left crossed once a millisecond's events are all in holds orders whose deletes the capture missed (its REST
    snapshot is older than the stream's start): they are cancelled by the tick conversion's rule
    (:meth:`~tapewatch.producers.bitstamp_capture.OrderBook.uncross`, the order last seen alive longest ago first),
    so the book built from these events is the one the tick conversion reads. Events are numbered in order."""
    first, last = int(orders["exchange_timestamp"].min()), int(orders["exchange_timestamp"].max())
    closing = (orders["exchange_timestamp"] == last) & (orders["action"] == "deleted")
    traded = _traded_orders(trades)
    resting: dict[str, float] = {}
    book, numbers = OrderBook(), count(1)
    rows = _merged(orders[~closing], trades)
    for i, row in enumerate(rows):
        for event in _event(row, numbers, symbol, resting, traded, snapshot=row[0] == first):
            _mirror(book, event, resting)
            yield event
        if i + 1 == len(rows) or rows[i + 1][0] != row[0]:
            yield from _uncrossed(book, resting, row[0], numbers, symbol)


def _mirror(book: OrderBook, event: OrderBookEvent, resting: dict[str, float]) -> None:
    """The event on the uncrossing book (ids are the capture's integers, volumes its 1e-8 units)."""
    if event.order_id is None:
        return
    order_id = int(event.order_id)
    if event.action is BookAction.ADD and event.price is not None:
        side: BookSide = "bid" if event.side is OrderSide.BUY else "ask"
        book.create(order_id, side, event.price, round(event.size * UNITS), event.ts)
    elif event.order_id in resting:
        book.change(order_id, round(resting[event.order_id] * UNITS), event.ts)
    else:
        book.delete(order_id)


def _uncrossed(
    book: OrderBook, resting: dict[str, float], ts: int, numbers: Iterator[int], symbol: str
) -> Iterator[OrderBookEvent]:
    """Cancels of the orders the book drops to uncross at the end of millisecond ``ts``."""
    for dropped in book.uncross(ts):
        order_id = str(dropped.order_id)
        size = resting.pop(order_id, None)
        if size is None:
            continue
        side = OrderSide.BUY if dropped.side == "bid" else OrderSide.SELL
        yield OrderBookEvent(
            symbol=symbol, venue=VENUE, ts=ts, sequence=next(numbers), action=BookAction.CANCEL, order_id=order_id,
            side=side, size=size,
        )  # fmt: skip


def _traded_orders(trades: pd.DataFrame) -> set[tuple[str, int]]:
    """(order id, ms) of every order a trade named: its volume change then is a fill, not a cancel."""
    named = set()
    columns = (trades["exchange_timestamp"], trades["buy_order_id"], trades["sell_order_id"])
    for ts, buy, sell in zip(*columns, strict=True):
        named.add((str(int(buy)), int(ts)))
        named.add((str(int(sell)), int(ts)))
    return named


Row = tuple[int, int, str, str, float, float, str]


def _merged(orders: pd.DataFrame, trades: pd.DataFrame) -> list[Row]:
    """(ts, 0 for a trade and 1 for an order message, action, id, price, volume, side), trades first in their ms."""
    rows: list[Row] = []
    columns = (trades["exchange_timestamp"], trades["price"], trades["amount"], trades["side"])
    for ts, price, amount, side in zip(*columns, strict=True):
        rows.append((int(ts), 0, "trade", "", float(price), float(amount), str(side)))
    names = ("id", "exchange_timestamp", "price", "volume", "action", "direction")
    for oid, ts, price, volume, action, direction in zip(*(orders[n] for n in names), strict=True):
        rows.append((int(ts), 1, str(action), str(int(oid)), float(price), float(volume), str(direction)))
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


def _event(
    row: Row,
    numbers: Iterator[int],
    symbol: str,
    resting: dict[str, float],
    traded: set[tuple[str, int]],
    snapshot: bool,
) -> Iterator[OrderBookEvent]:
    ts, _, action, oid, price, volume, side = row

    def make(kind: BookAction, side: OrderSide | None, size: float, order_id: str | None = None) -> OrderBookEvent:
        priced = price if kind in (BookAction.ADD, BookAction.TRADE) else None
        return OrderBookEvent(
            symbol=symbol, venue=VENUE, ts=ts, sequence=next(numbers), action=kind, order_id=order_id, side=side,
            price=priced, size=size, snapshot=snapshot and kind is BookAction.ADD,
        )  # fmt: skip

    if action == "trade":
        yield make(BookAction.TRADE, OrderSide.BUY if side == "buy" else OrderSide.SELL, volume)
        return
    book_side = OrderSide.BUY if side == "bid" else OrderSide.SELL
    if action == "created":
        # a market order is created at price 0: it never rests, its trades tell what it did
        if oid not in resting and volume > 0 and price > 0:
            resting[oid] = volume
            yield make(BookAction.ADD, book_side, volume, oid)
        return
    before = resting.get(oid)
    if before is None:
        return
    left = 0.0 if action == "deleted" else volume
    lost = round(before - left, 8)
    if left <= 0:
        del resting[oid]
    else:
        resting[oid] = left
    if lost > 0:
        yield make(BookAction.FILL if (oid, ts) in traded else BookAction.CANCEL, book_side, lost, oid)
