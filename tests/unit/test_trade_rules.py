"""Where `tapewatch trade paper` gets its grids: Binance's exchange information (a real HTTP exchange with a
local server standing in for Binance), the exchange-information file of the settings, and the order-book market's
instruments (``--market-seed``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from aiohttp import web

from tapewatch.cli.trade import binance_rules, market_rules, venue_rules
from tapewatch.errors import TapewatchError
from tapewatch.execution.accounts import AccountConfig, Pricing
from tapewatch.execution.executor import InputRefusedError, PaperExecutor
from tapewatch.execution.grid import VenueRules
from tapewatch.feeds import ORDER_BOOK_MARKET_VENUE, FeedProfiles
from tapewatch.generators.lob_market import LobConfig, generate, instrument_of, symbol_name
from tapewatch.records import Action, Book, Order, OrderEvent
from tapewatch.settings import Settings, SourceSettings, TradeSettings
from tests.http_server import serve

EXCHANGE_INFO = {
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "filters": [
                {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
                {"filterType": "LOT_SIZE", "stepSize": "0.00001000"},
                {"filterType": "NOTIONAL", "minNotional": "5.00000000"},
            ],
        }
    ]
}


async def _exchange_info(request: web.Request) -> web.Response:
    return web.json_response(EXCHANGE_INFO)


def test_binance_grids_come_from_its_exchange_information() -> None:
    app = web.Application()
    app.router.add_get("/api/v3/exchangeInfo", _exchange_info)
    with serve(app) as url:
        rules = binance_rules(Settings(sources=SourceSettings(binance_rest_url=url, binance_symbols="btcusdt")))
    btc = rules("binance", "BTCUSDT")
    assert btc is not None and btc.tick(90_000.0) == 0.01 and btc.lot == 0.00001 and btc.min_notional == 5.0
    assert btc.floor_price(90_000.019) == 90_000.01 and btc.lots(0.123456) == 0.12345
    assert rules("binance", "ETHUSDT") is None  # no rules, no orders
    assert rules("twse", "2330") is not None  # the TWSE ladder is built in


def test_the_exchange_information_file_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"bitstamp": {"BTCUSD": {"tick": "1", "step": "0.00000001"}, "BAD": {"tick": "x"}}}')
    rules = venue_rules(Settings(trade=TradeSettings(exchange_info=path)))
    assert rules("bitstamp", "BTCUSD") is not None and rules("bitstamp", "BAD") is None
    path.write_text("[1, 2")
    with pytest.raises(TapewatchError, match="trade exchange info"):
        venue_rules(Settings(trade=TradeSettings(exchange_info=path)))


#: 2026-11-26 09:00 Asia/Taipei: the order-book market's venue keeps Taipei's hours
OPEN = 1_764_118_800_000
#: sessions whose instruments a decision is tried on: every tick size (1, 2 or 5 × 10ᵏ, from 0.0002 to 2 and more)
#: and every lot (1, 10, 100, 1,000) the generator draws occurs among them
SEEDS, SYMBOLS = range(60), 10
PRICINGS: tuple[Pricing, ...] = ("join", "cross", "mid")


def _market_order(rules: VenueRules, symbol: str, price: float, pricing: Pricing) -> Order:
    """The order a paper account places on the order-book market's venue for a decision to go long one unit, with
    the book one tick either side of ``price``."""
    grid = rules(ORDER_BOOK_MARKET_VENUE, symbol)
    assert grid is not None and grid.tick_size is not None
    bid = grid.floor_price(price)
    account = AccountConfig(name="a", signal="dqn", pricing=pricing, capital=1e10, unit_value=5e6, max_gross=1e10)
    executor = PaperExecutor([account], rules, FeedProfiles())
    book = Book(symbol=symbol, venue=ORDER_BOOK_MARKET_VENUE, ts=OPEN, bids=[(bid, 1e6)],
                asks=[(bid + grid.tick_size, 1e6)])  # fmt: skip
    executor.apply(book)
    action = Action(symbol=symbol, venue=ORDER_BOOK_MARKET_VENUE, ts=OPEN + 1, action="BUY", q_values={}, position=1,
                    model_version="v")  # fmt: skip
    (order,) = [record for record in executor.apply(action) if isinstance(record, Order)]
    return order


def _on_step(value: float, step: float) -> bool:
    return abs(value / step - round(value / step)) < 1e-6


def test_a_decision_on_every_instrument_of_the_order_book_market_is_priced_on_its_grid() -> None:
    lots, ticks = set(), set()
    for seed in SEEDS:
        rules = market_rules(seed, SYMBOLS, ORDER_BOOK_MARKET_VENUE)
        for index in range(SYMBOLS):
            instrument = instrument_of(seed, index)
            first = instrument.first_tick * instrument.tick
            for drift, pricing in zip((1.0, 0.5, 1.5), PRICINGS, strict=True):
                order = _market_order(rules, symbol_name(index), first * drift, pricing)
                assert order.event == OrderEvent.PLACED, (seed, index, order.reason)
                assert _on_step(order.price, instrument.tick) and _on_step(order.quantity, instrument.lot)
            lots.add(instrument.lot)
            ticks.add(f"{instrument.tick:.0e}"[0])
    assert lots == {1, 10, 100, 1000} and ticks == {"1", "2", "5"}


def test_the_order_book_markets_grid_is_the_one_its_sessions_print_on() -> None:
    session = generate(LobConfig(symbols=3, seed=5, minutes=5, quiet_open_s=60, news=False, lookalikes=False))
    rules = market_rules(5, 3, ORDER_BOOK_MARKET_VENUE)
    ticks = session.ticks_frame()
    for symbol, rows in ticks.groupby("symbol"):
        grid = rules(ORDER_BOOK_MARKET_VENUE, str(symbol))
        assert grid is not None and grid.tick_size is not None
        prices = rows[["price", "bid1", "ask5"]].to_numpy().ravel().tolist()
        on_grid = [_on_step(price, grid.tick_size) for price in prices if not math.isnan(price)]  # NaN: none there
        assert on_grid and all(on_grid), symbol


def test_a_decision_on_an_instrument_the_grid_does_not_know_is_refused_naming_venue_and_symbol() -> None:
    rules = market_rules(7, 2, ORDER_BOOK_MARKET_VENUE)
    executor = PaperExecutor([AccountConfig(name="a", signal="dqn")], rules, FeedProfiles())
    executor.apply(Book(symbol="L003", venue=ORDER_BOOK_MARKET_VENUE, ts=OPEN, bids=[(10.0, 5.0)], asks=[(10.1, 5.0)]))
    action = Action(symbol="L003", venue=ORDER_BOOK_MARKET_VENUE, ts=OPEN + 1, action="BUY", q_values={}, position=1,
                    model_version="v")  # fmt: skip
    with pytest.raises(InputRefusedError, match="no tick size for sim-orders:L003"):
        executor.apply(action)
