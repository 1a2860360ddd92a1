"""Where `tapewatch trade paper` gets its grids: Binance's exchange information (a real HTTP exchange with a
local server standing in for Binance) and the exchange-information file of the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from tapewatch.cli.trade import binance_rules, venue_rules
from tapewatch.errors import TapewatchError
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
