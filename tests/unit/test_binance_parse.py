"""Binance parsing without I/O: the exact FEEDS.md payloads, control messages, every malformed shape dead-lettered
with the field named, exchangeInfo rules as exact decimals, duplicate and off-grid handling, stream grouping."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import orjson
import pytest
import typer
from typer.testing import CliRunner

from tapewatch.cli.produce import produce_binance
from tapewatch.errors import TapewatchError
from tapewatch.producers.binance import (
    MAX_STREAMS_PER_CONNECTION,
    STAGE,
    BinanceStream,
    DepthEvent,
    ErrorReply,
    Malformed,
    ServerShutdown,
    SubscriptionAck,
    SymbolRules,
    TradeEvent,
    parse_exchange_info,
    parse_message,
    parse_symbols,
    stream_groups,
)
from tapewatch.producers.framework import Emitter
from tapewatch.producers.publisher import Publisher
from tapewatch.records import Book, Quote, Side
from tapewatch.settings import Settings, SourceSettings
from tapewatch.topics import BOOKS, QUOTES
from tests.recording_publisher import RecordingPublisher

RECEIVED_MS = 1_700_000_000_123
WS_URL = "wss://stream.example.invalid:9443"

# FEEDS.md, verbatim: the trade payload and the partial-depth payload.
FEEDS_TRADE = (
    b'{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}'
)
FEEDS_DEPTH = b'{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}'


def combined(stream: str, data: bytes | str) -> bytes:
    body = data.encode() if isinstance(data, str) else data
    return b'{"stream":"' + stream.encode() + b'","data":' + body + b"}"


def trade(trade_id: int = 1, price: str = "67012.34000000", qty: str = "0.00150000", maker: bool = True) -> bytes:
    payload = {
        "e": "trade",
        "E": 1_700_000_000_001,
        "s": "BTCUSDT",
        "t": trade_id,
        "p": price,
        "q": qty,
        "T": 1_700_000_000_000 + trade_id,
        "m": maker,
        "M": True,
    }
    return combined("btcusdt@trade", orjson.dumps(payload))


def depth(last_update_id: int = 1) -> bytes:
    payload = {
        "lastUpdateId": last_update_id,
        "bids": [["67012.33000000", "1.20000000"], ["67012.00000000", "0.50000000"]],
        "asks": [["67012.34000000", "0.30000000"], ["67013.10000000", "2.00000000"]],
    }
    return combined("btcusdt@depth5@100ms", orjson.dumps(payload))


# --- trades -------------------------------------------------------------------------------------------------
def test_feeds_trade_payload_buyer_is_maker_means_the_aggressor_sold() -> None:
    event = parse_message(combined("bnbbtc@trade", FEEDS_TRADE), RECEIVED_MS)
    assert isinstance(event, TradeEvent)
    assert event.quote == Quote(
        symbol="BNBBTC",
        venue="binance",
        ts=1672515782136,
        price=0.001,
        size=100.0,
        side=Side.SELL,
        seq=12345,
    )
    assert event.price == Decimal("0.001") and event.size == Decimal("100")
    # Strings survive the record's strict JSON round trip.
    assert Quote.from_json(event.quote.to_json()) == event.quote


def test_buyer_taker_is_a_buy() -> None:
    event = parse_message(trade(maker=False), RECEIVED_MS)
    assert isinstance(event, TradeEvent)
    assert event.quote.side == Side.BUY


def test_trade_without_old_b_a_fields_and_with_them() -> None:
    # FEEDS_TRADE has no "b"/"a"; an old payload carrying them parses the same.
    new = parse_message(combined("bnbbtc@trade", FEEDS_TRADE), RECEIVED_MS)
    old_payload = orjson.loads(FEEDS_TRADE) | {"b": 88, "a": 50}
    old = parse_message(combined("bnbbtc@trade", orjson.dumps(old_payload)), RECEIVED_MS)
    assert isinstance(new, TradeEvent) and isinstance(old, TradeEvent)
    assert new.quote == old.quote


def test_trade_symbol_comes_from_the_stream_when_the_payload_has_none() -> None:
    payload = orjson.loads(FEEDS_TRADE)
    del payload["s"], payload["e"]
    event = parse_message(combined("ethbtc@trade", orjson.dumps(payload)), RECEIVED_MS)
    assert isinstance(event, TradeEvent)
    assert event.quote.symbol == "ETHBTC"


def test_decimal_strings_are_exact_until_the_record() -> None:
    event = parse_message(trade(price="0.30000000", qty="0.10000000"), RECEIVED_MS)
    assert isinstance(event, TradeEvent)
    assert event.price == Decimal("0.3") and event.size == Decimal("0.1")
    assert event.quote.price == 0.3 and event.quote.size == 0.1


# --- books --------------------------------------------------------------------------------------------------
def test_feeds_depth_snapshot_takes_symbol_from_stream_and_receive_time() -> None:
    event = parse_message(combined("bnbbtc@depth5@100ms", FEEDS_DEPTH), RECEIVED_MS)
    assert isinstance(event, DepthEvent)
    assert event.last_update_id == 160
    assert event.book == Book(
        symbol="BNBBTC", venue="binance", ts=RECEIVED_MS, bids=[(0.0024, 10.0)], asks=[(0.0026, 100.0)]
    )


def test_five_level_snapshot_keeps_best_first() -> None:
    payload = {
        "lastUpdateId": 7,
        "bids": [[f"{100 - i}.00", f"{i + 1}"] for i in range(5)],
        "asks": [[f"{101 + i}.00", f"{i + 2}"] for i in range(5)],
    }
    event = parse_message(combined("btcusdt@depth5@100ms", orjson.dumps(payload)), RECEIVED_MS)
    assert isinstance(event, DepthEvent)
    assert event.book.bids[0] == (100.0, 1.0) and event.book.bids[-1] == (96.0, 5.0)
    assert event.book.asks[0] == (101.0, 2.0) and event.book.asks[-1] == (105.0, 6.0)


@pytest.mark.parametrize("stream", ["btcusdt@depth5", "btcusdt@depth5@1000ms"])
def test_other_depth5_speeds_parse_too(stream: str) -> None:
    assert isinstance(parse_message(combined(stream, FEEDS_DEPTH), RECEIVED_MS), DepthEvent)


# --- control messages ---------------------------------------------------------------------------------------
def test_subscription_ack_is_control() -> None:
    assert parse_message(b'{"result":null,"id":1}', RECEIVED_MS) == SubscriptionAck(1, None)


@pytest.mark.parametrize(
    "raw",
    [b'{"code":2,"msg":"Invalid request: unknown variant","id":3}', b'{"error":{"code":2,"msg":"Invalid"},"id":3}'],
)
def test_error_replies_are_control(raw: bytes) -> None:
    event = parse_message(raw, RECEIVED_MS)
    assert isinstance(event, ErrorReply) and event.request_id == 3 and event.code == 2


@pytest.mark.parametrize(
    "raw",
    [
        b'{"e":"serverShutdown","E":1730000000000}',
        b'{"event":{"e":"serverShutdown","E":1730000000000}}',
        b'{"stream":"btcusdt@trade","data":{"e":"serverShutdown","E":1730000000000}}',
    ],
)
def test_server_shutdown_is_control(raw: bytes) -> None:
    assert parse_message(raw, RECEIVED_MS) == ServerShutdown(1730000000000)


def test_bare_server_shutdown_without_time() -> None:
    assert parse_message(b'{"e":"serverShutdown"}', RECEIVED_MS) == ServerShutdown(None)


# --- malformed ----------------------------------------------------------------------------------------------
def _trade_with(**changes: Any) -> bytes:
    payload = orjson.loads(FEEDS_TRADE)
    for key, value in changes.items():
        if value is ...:
            del payload[key]
        else:
            payload[key] = value
    return combined("bnbbtc@trade", orjson.dumps(payload))


def _depth_with(**changes: Any) -> bytes:
    payload = orjson.loads(FEEDS_DEPTH)
    for key, value in changes.items():
        if value is ...:
            del payload[key]
        else:
            payload[key] = value
    return combined("bnbbtc@depth5@100ms", orjson.dumps(payload))


MALFORMED: list[tuple[str, bytes, str | None, str]] = [
    # (case, raw, field, text the reason contains)
    ("not JSON", b'{"stream":"bnbbtc@trade","data":{', None, "invalid JSON"),
    ("not an object", b"[1,2,3]", None, "expected a JSON object"),
    ("neither stream nor reply", b'{"foo":1}', "stream", "missing"),
    ("stream not a string", b'{"stream":5,"data":{}}', "stream", "expected a string"),
    ("stream without kind", b'{"stream":"bnbbtc","data":{}}', "stream", "<symbol>@<stream>"),
    ("unknown stream", combined("bnbbtc@kline_1m", b'{"e":"kline"}'), "stream", "unknown stream"),
    ("data missing", b'{"stream":"bnbbtc@trade"}', "data", "missing"),
    ("data not an object", b'{"stream":"bnbbtc@trade","data":[1]}', "data", "expected an object"),
    ("reply without result", b'{"id":4}', "result", "missing"),
    ("reply id not an integer", b'{"result":null,"id":[1]}', "id", "expected an integer"),
    ("price missing", _trade_with(p=...), "data.p", "missing"),
    ("price not a number", _trade_with(p="abc"), "data.p", "not a decimal number"),
    ("price a JSON number", _trade_with(p=0.001), "data.p", "expected a decimal string"),
    ("price zero", _trade_with(p="0.00000000"), "data.p", "must be > 0"),
    ("price NaN", _trade_with(p="NaN"), "data.p", "not finite"),
    ("quantity negative", _trade_with(q="-1"), "data.q", "must be > 0"),
    ("quantity missing", _trade_with(q=...), "data.q", "missing"),
    ("trade id missing", _trade_with(t=...), "data.t", "missing"),
    ("trade id a string", _trade_with(t="12345"), "data.t", "expected an integer"),
    ("trade id negative", _trade_with(t=-1), "data.t", "must be ≥ 0"),
    ("trade time missing", _trade_with(T=...), "data.T", "missing"),
    ("trade time a string", _trade_with(T="1672515782136"), "data.T", "expected an integer"),
    ("trade time in microseconds", _trade_with(T=1672515782136000), "data.T", "microseconds"),
    ("maker flag missing", _trade_with(m=...), "data.m", "missing"),
    ("maker flag a string", _trade_with(m="true"), "data.m", "expected true/false"),
    ("other event type", _trade_with(e="aggTrade"), "data.e", "expected 'trade'"),
    ("symbol mismatch", _trade_with(s="ETHBTC"), "data.s", "does not match"),
    ("lastUpdateId missing", _depth_with(lastUpdateId=...), "data.lastUpdateId", "missing"),
    ("bids missing", _depth_with(bids=...), "data.bids", "missing"),
    ("bids not an array", _depth_with(bids="x"), "data.bids", "expected an array"),
    ("level not a pair", _depth_with(bids=[["0.0024"]]), "data.bids.0", "expected [price, quantity]"),
    ("level price not a number", _depth_with(bids=[["x", "1"]]), "data.bids.0.0", "not a decimal number"),
    ("level quantity negative", _depth_with(asks=[["0.0026", "1"], ["0.0027", "-1"]]), "data.asks.1.1", "≥ 0"),
    ("six levels", _depth_with(bids=[[f"0.00{30 - i}", "1"] for i in range(6)]), "data.bids", "at most 5"),
    ("bids not best first", _depth_with(bids=[["0.0023", "1"], ["0.0024", "1"]]), "data", "best (highest) first"),
]


@pytest.mark.parametrize(("case", "raw", "field", "text"), MALFORMED, ids=[case for case, *_ in MALFORMED])
def test_malformed_names_the_field(case: str, raw: bytes, field: str | None, text: str) -> None:
    event = parse_message(raw, RECEIVED_MS)
    assert isinstance(event, Malformed), case
    assert event.field == field
    assert text in event.reason
    if field is not None:
        assert event.reason.startswith(f"{field}: ")


def make_stream(**kwargs: Any) -> tuple[BinanceStream, Emitter, RecordingPublisher]:
    settings = Settings(sources=SourceSettings(binance_ws_url=WS_URL, binance_symbols="btcusdt,bnbbtc"))
    publisher = RecordingPublisher()
    return BinanceStream(settings, **kwargs), Emitter(cast(Publisher, publisher), STAGE), publisher


def test_every_malformed_message_is_dead_lettered_with_raw_bytes_reason_field_and_source() -> None:
    stream, emitter, publisher = make_stream()
    for _, raw, _, _ in MALFORMED:
        stream.handle(raw, RECEIVED_MS, emitter)
        # A text frame arrives as str: the dead letter must still carry the exact bytes.
        stream.handle(raw.decode(), RECEIVED_MS, emitter)
    assert publisher.published == []
    assert emitter.counters.dead_lettered == 2 * len(MALFORMED)
    for index, (case, raw, field, text) in enumerate(MALFORMED):
        for value, letter, key in publisher.letters[2 * index : 2 * index + 2]:
            assert value == raw, case
            assert letter.stage == STAGE and letter.source == f"{WS_URL}/stream"
            assert letter.field == field and text in letter.reason
            # keyed by symbol (the symbol's partition) whenever the stream name could be read
            readable = field is not None and raw.startswith(b'{"stream":"bnbbtc@')
            assert key == (b"BNBBTC" if readable else None), case


def test_control_messages_are_neither_emitted_nor_dead_lettered() -> None:
    stream, emitter, publisher = make_stream()
    for raw in (b'{"result":null,"id":1}', b'{"e":"serverShutdown"}', b'{"code":2,"msg":"bad","id":9}'):
        stream.handle(raw, RECEIVED_MS, emitter)
    assert publisher.published == [] and publisher.letters == []


def test_duplicate_and_older_trades_and_books_are_skipped() -> None:
    stream, emitter, publisher = make_stream()
    for raw in (trade(5), trade(5), trade(4), trade(6), depth(10), depth(10), depth(9), depth(11)):
        stream.handle(raw, RECEIVED_MS, emitter)
    assert [(topic, record.seq) for topic, record in publisher.published if isinstance(record, Quote)] == [
        (QUOTES, 5),
        (QUOTES, 6),
    ]
    assert sum(topic == BOOKS for topic, _ in publisher.published) == 2
    assert stream.stats.duplicate_trades == 2 and stream.stats.stale_books == 2
    assert emitter.counters.skipped == 4


def test_off_grid_trade_is_kept_as_reported_counted_and_asks_for_fresh_rules() -> None:
    stream, emitter, publisher = make_stream()
    stream.rules = {
        "BTCUSDT": SymbolRules("BTCUSDT", "TRADING", Decimal("0.01"), Decimal("0.00001"), Decimal("5")),
    }
    stream.handle(trade(1, price="67012.34000000", qty="0.00150000"), RECEIVED_MS, emitter)
    assert stream.stats.off_grid_prices == 0 and not stream._rules_stale.is_set()
    stream.handle(trade(2, price="67012.345", qty="0.000015"), RECEIVED_MS, emitter)
    assert [record.price for _, record in publisher.published if isinstance(record, Quote)] == [67012.34, 67012.345]
    assert stream.stats.off_grid_prices == 1 and stream.stats.off_grid_sizes == 1
    assert stream._rules_stale.is_set()


# --- exchangeInfo -------------------------------------------------------------------------------------------
EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": 1_700_000_000_000,
    "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "quoteAsset": "USDT",
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01000000",
                    "maxPrice": "1000000.00000000",
                    "tickSize": "0.01000000",
                },
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
        },
        {
            "symbol": "BNBBTC",
            "status": "BREAK",
            "filters": [
                {"filterType": "PRICE_FILTER", "tickSize": "0.00000100"},
                {"filterType": "LOT_SIZE", "stepSize": "0.00100000"},
                {"filterType": "MIN_NOTIONAL", "minNotional": "0.00010000"},
            ],
        },
    ],
}


def test_exchange_info_rules_are_exact_decimals() -> None:
    rules = parse_exchange_info(EXCHANGE_INFO)
    assert rules["BTCUSDT"] == SymbolRules(
        "BTCUSDT", "TRADING", Decimal("0.01000000"), Decimal("0.00001000"), Decimal("5.00000000")
    )
    assert str(rules["BTCUSDT"].tick_size) == "0.01000000"
    # the older MIN_NOTIONAL filter where NOTIONAL is absent
    assert rules["BNBBTC"].min_notional == Decimal("0.0001") and rules["BNBBTC"].status == "BREAK"
    btc = rules["BTCUSDT"]
    assert btc.price_on_grid(Decimal("67012.34")) and not btc.price_on_grid(Decimal("67012.345"))
    assert btc.size_on_grid(Decimal("0.00150000")) and not btc.size_on_grid(Decimal("0.000015"))
    # where binary floats fail: 0.3 is a multiple of 0.1
    assert SymbolRules("X", "", Decimal("0.1"), Decimal("0"), None).price_on_grid(Decimal("0.3"))
    assert SymbolRules("X", "", Decimal("0"), None, None).price_on_grid(Decimal("0.123456789"))


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"symbols": "x"}, "'symbols'"),
        ({"symbols": [{"filters": []}]}, "symbols.0.symbol"),
        (
            {"symbols": [{"symbol": "A", "filters": [{"filterType": "PRICE_FILTER", "tickSize": 0.01}]}]},
            "symbols.0.filters.0.tickSize",
        ),
        (
            {"symbols": [{"symbol": "A", "filters": [{}, {"filterType": "LOT_SIZE", "stepSize": "x"}]}]},
            "symbols.0.filters.1.stepSize",
        ),
        (
            {"symbols": [{"symbol": "A", "filters": [{"filterType": "NOTIONAL", "minNotional": "-1"}]}]},
            "symbols.0.filters.0.minNotional",
        ),
    ],
)
def test_exchange_info_errors_name_the_field(payload: dict[str, Any], where: str) -> None:
    with pytest.raises(ValueError, match=where.replace(".", r"\.")):
        parse_exchange_info(payload)


# --- symbols, streams, command ------------------------------------------------------------------------------
def test_symbols_are_normalised_and_checked() -> None:
    assert parse_symbols(" btcusdt, ETHUSDT,,btcusdt ") == ["BTCUSDT", "ETHUSDT"]
    assert parse_symbols(["bnbbtc"]) == ["BNBBTC"]
    with pytest.raises(TapewatchError, match="invalid symbol"):
        parse_symbols("btc-usdt")
    with pytest.raises(TapewatchError, match="no symbols"):
        parse_symbols(" , ")


def test_streams_split_into_connections_of_whole_symbols_within_the_limit() -> None:
    symbols = [f"S{i:04d}USDT" for i in range(600)]
    groups = stream_groups(symbols)
    assert [len(group) for group in groups] == [1024, 176]
    assert all(len(group) <= MAX_STREAMS_PER_CONNECTION for group in groups)
    assert groups[0][:2] == ["s0000usdt@trade", "s0000usdt@depth5@100ms"]
    flat = [stream for group in groups for stream in group]
    assert len(flat) == len(set(flat)) == 1200
    small = stream_groups(["A1", "B1", "C1"], max_streams=5)
    assert small == [["a1@trade", "a1@depth5@100ms", "b1@trade", "b1@depth5@100ms"], ["c1@trade", "c1@depth5@100ms"]]
    with pytest.raises(ValueError, match="max_streams"):
        stream_groups(["A1"], max_streams=1)


def test_command_is_typer_compatible() -> None:
    app = typer.Typer()
    app.command("binance")(produce_binance)
    app.command("other")(lambda: None)  # two commands, so "binance" stays a sub-command
    result = CliRunner().invoke(app, ["binance", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--symbols", "--duration", "--no-progress"):
        assert option in result.output
    bad = CliRunner().invoke(app, ["binance", "--duration", "-1"])
    assert bad.exit_code != 0
