"""The Bitstamp capture as market-by-order events: small hand-made captures, each a case the conversion must get."""

from __future__ import annotations

import pandas as pd

from tapewatch.detectors.orders.book import BID, OrderBook
from tapewatch.producers.bitstamp_orders import order_events
from tapewatch.records import BookAction, OrderBookEvent

T0 = 1_777_689_380_000


def capture(rows: list[tuple[int, int, float, float, str, str]]) -> pd.DataFrame:
    """Order messages: (id, ms after T0, price, volume, action, direction)."""
    return pd.DataFrame(
        [(i, T0 + ms, price, volume, action, side) for i, ms, price, volume, action, side in rows],
        columns=["id", "exchange_timestamp", "price", "volume", "action", "direction"],
    )


def trades_of(*rows: tuple[int, float, float, str, int, int]) -> pd.DataFrame:
    """Trades: (ms after T0, price, amount, taker side, buy order id, sell order id)."""
    return pd.DataFrame(
        [(T0 + ms, price, amount, side, buy, sell) for ms, price, amount, side, buy, sell in rows],
        columns=["exchange_timestamp", "price", "amount", "side", "buy_order_id", "sell_order_id"],
    )


def book_of(events: list[OrderBookEvent]) -> OrderBook:
    book = OrderBook()
    for event in events:
        book.on_order(event)
    return book


def test_an_order_whose_delete_the_capture_missed_is_cancelled_once_it_crosses_the_book() -> None:
    """The opening snapshot's offer at 101 was gone before the stream began: a bid resting at 102 a second later
    crosses it, so at the end of that millisecond the stale offer (last seen longest ago) is cancelled."""
    orders = capture(
        [
            (1, 0, 100.0, 1.0, "created", "bid"),
            (2, 0, 101.0, 1.0, "created", "ask"),
            (3, 0, 103.0, 1.0, "created", "ask"),
            (4, 1_000, 102.0, 0.5, "created", "bid"),
            (5, 2_000, 99.0, 0.5, "created", "bid"),
            (6, 3_000, 104.0, 0.5, "deleted", "ask"),  # the capture's closing flush: its edge, left out
        ]
    )
    events = list(order_events(orders, trades_of()))
    cancels = [e for e in events if e.action is BookAction.CANCEL]
    assert [(c.order_id, c.ts, c.size) for c in cancels] == [("2", T0 + 1_000, 1.0)]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    book = book_of(events)
    assert (book.side(BID).best(), book.side(-BID).best()) == (102.0, 103.0)


def test_an_uncrossed_capture_gets_no_invented_cancel() -> None:
    orders = capture(
        [
            (1, 0, 100.0, 1.0, "created", "bid"),
            (2, 0, 101.0, 1.0, "created", "ask"),
            (3, 1_000, 100.5, 0.5, "created", "bid"),
            (3, 2_000, 100.5, 0.2, "changed", "bid"),
            (9, 3_000, 104.0, 0.5, "deleted", "ask"),
        ]
    )
    events = list(order_events(orders, trades_of()))
    assert [(e.action, e.order_id, round(e.size, 8)) for e in events if not e.snapshot][-1] == (
        BookAction.CANCEL,
        "3",
        0.3,
    )
    assert sum(e.action is BookAction.CANCEL for e in events) == 1
