"""The Binance producer against a local websocket server speaking the exact combined-stream format, into the
real Kafka: every good trade arrives once as a Quote with the right aggressor side, books arrive, malformed
messages land in the producers' DLQ with their reason, and the connection survives serverShutdown, abrupt
drops and planned replacement with back-off, resubscribing the same streams each time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp import WSMsgType, web

from tapewatch.deadletter import DeadLetter
from tapewatch.errors import TapewatchError
from tapewatch.producers.binance import STAGE, BinanceStream
from tapewatch.producers.framework import Emitter, SourceCounters, run_source
from tapewatch.records import Book, Quote, Side
from tapewatch.settings import Settings
from tapewatch.topics import BOOKS, DLQ_PRODUCERS, QUOTES
from tests.kafka_reader import Received, read_topic

pytestmark = pytest.mark.integration

TICK = {"BTCUSDT": "0.01000000", "ETHUSDT": "0.01000000", "BNBBTC": "0.00000100", "ETHBTC": "0.00001000"}
TICK |= {"LTCBTC": "0.00000100", "XRPUSDT": "0.00010000"}
STEP = "0.00001000"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


# --- a local exchange server: a real websocket serving the real payload formats ---------------------------
@dataclass
class Conn:
    index: int
    ws: web.WebSocketResponse
    request: web.Request
    opened: float
    reply: str = "ack"
    streams: list[str] = field(default_factory=list)
    subscribe_times: list[float] = field(default_factory=list)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    subscribed_at: float | None = None
    pongs: list[bytes] = field(default_factory=list)
    pong: asyncio.Event = field(default_factory=asyncio.Event)
    client_pings: int = 0
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)
    client_closed_at: float | None = None
    shutdown_sent: float | None = None
    dropped: float | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, raw: bytes | str) -> None:
        await self.ws.send_str(raw.decode() if isinstance(raw, bytes) else raw)

    async def ping_and_wait_pong(self, payload: bytes) -> None:
        await self.ws.ping(payload)
        await asyncio.wait_for(self.pong.wait(), 5)

    async def drop(self) -> None:
        """Abrupt: the TCP connection goes away without a close frame."""
        await asyncio.sleep(0.05)  # the frames already written leave first
        self.dropped = time.monotonic()
        transport = self.request.transport
        assert transport is not None
        transport.close()


Script = Callable[["LocalBinanceServer", Conn], Awaitable[None]]


class LocalBinanceServer:
    """``/api/v3/exchangeInfo`` and ``/stream`` (SUBSCRIBE + acks); each connection runs ``script``.

    Misbehaviour on demand, consumed in order: ``exchange_info_statuses`` (HTTP errors before a good answer),
    ``handshake_refusals`` (HTTP status and headers instead of a websocket upgrade), ``reply_modes`` per accepted
    connection ("ack", "error": refuse the SUBSCRIBE, "silent": never acknowledge)."""

    def __init__(self, script: Script, groups: Iterable[Iterable[str]]) -> None:
        self.script = script
        self.groups = [set(group) for group in groups]
        self.connections: list[Conn] = []
        self.exchange_info_requests: list[list[str]] = []
        self.exchange_info_statuses: list[int] = []
        self.handshake_refusals: list[tuple[int, dict[str, str]]] = []
        self.refused_at: list[float] = []
        self.reply_modes: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> LocalBinanceServer:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/stream", self._stream)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def settings(self, base: Settings) -> Settings:
        return base.updated(
            sources={
                "binance_ws_url": f"ws://127.0.0.1:{self.port}",
                "binance_rest_url": f"http://127.0.0.1:{self.port}",
            }
        )

    @property
    def source(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    async def _exchange_info(self, request: web.Request) -> web.Response:
        symbols = orjson.loads(request.query["symbols"])
        self.exchange_info_requests.append(symbols)
        if self.exchange_info_statuses:
            return web.Response(status=self.exchange_info_statuses.pop(0), text="<html>busy</html>")
        if any(symbol not in TICK for symbol in symbols):
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        return web.Response(
            body=orjson.dumps(
                {
                    "timezone": "UTC",
                    "serverTime": int(time.time() * 1000),
                    "rateLimits": [],
                    "exchangeFilters": [],
                    "symbols": [
                        {
                            "symbol": symbol,
                            "status": "TRADING",
                            "filters": [
                                {"filterType": "PRICE_FILTER", "minPrice": TICK[symbol], "tickSize": TICK[symbol]},
                                {"filterType": "LOT_SIZE", "minQty": STEP, "stepSize": STEP},
                                {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True},
                            ],
                        }
                        for symbol in symbols
                    ],
                }
            ),
            content_type="application/json",
        )

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if self.handshake_refusals:
            self.refused_at.append(time.monotonic())
            status, headers = self.handshake_refusals.pop(0)
            return web.json_response({"code": -1003, "msg": "Too many requests."}, status=status, headers=headers)
        # autoping off: the test sees the client's pongs (and answers its heartbeat pings itself)
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = Conn(len(self.connections), ws, request, time.monotonic())
        conn.reply = self.reply_modes.pop(0) if self.reply_modes else "ack"
        self.connections.append(conn)
        reader = asyncio.create_task(self._read(conn))
        try:
            await self.script(self, conn)
            await reader
        finally:
            reader.cancel()
            conn.ended.set()
        return ws

    async def _read(self, conn: Conn) -> None:
        while True:
            msg = await conn.ws.receive()
            if msg.type is WSMsgType.TEXT:
                request = orjson.loads(msg.data)
                assert request["method"] == "SUBSCRIBE", request
                conn.subscribe_times.append(time.monotonic())
                conn.streams.extend(request["params"])
                if conn.reply == "error":
                    reply = {"error": {"code": 2, "msg": "Invalid request: unknown variant"}, "id": request["id"]}
                    await conn.ws.send_str(orjson.dumps(reply).decode())
                    continue
                if conn.reply == "silent":
                    continue
                await conn.ws.send_str(orjson.dumps({"result": None, "id": request["id"]}).decode())
                if set(conn.streams) in self.groups:
                    conn.subscribed_at = time.monotonic()
                    conn.subscribed.set()
            elif msg.type is WSMsgType.PING:
                conn.client_pings += 1
                await conn.ws.pong(msg.data)
            elif msg.type is WSMsgType.PONG:
                conn.pongs.append(msg.data)
                conn.pong.set()
            elif msg.type is WSMsgType.CLOSE:
                conn.client_closed_at = time.monotonic()
                conn.client_closed.set()
                return
            else:  # CLOSED, CLOSING, ERROR: gone
                return


# --- payloads -----------------------------------------------------------------------------------------------
@dataclass
class Market:
    """Realistic messages, and the records the good ones must become."""

    quotes: list[Quote] = field(default_factory=list)
    books: list[Book] = field(default_factory=list)
    malformed: dict[bytes, str | None] = field(default_factory=dict)  # raw → field named in the reason
    next_id: dict[str, int] = field(default_factory=dict)
    next_update: dict[str, int] = field(default_factory=dict)

    def trade(self, symbol: str, price: str, qty: str, buyer_is_maker: bool) -> bytes:
        trade_id = self.next_id[symbol] = self.next_id.get(symbol, 1000) + 1
        ts = T0 + trade_id
        payload = {
            "e": "trade",
            "E": ts + 2,
            "s": symbol,
            "t": trade_id,
            "p": price,
            "q": qty,
            "T": ts,
            "m": buyer_is_maker,
            "M": True,
        }
        side = Side.SELL if buyer_is_maker else Side.BUY
        self.quotes.append(
            Quote(symbol=symbol, venue="binance", ts=ts, price=float(price), size=float(qty), side=side, seq=trade_id)
        )
        return orjson.dumps({"stream": f"{symbol.lower()}@trade", "data": payload})

    def depth(self, symbol: str, mid: float) -> bytes:
        update = self.next_update[symbol] = self.next_update.get(symbol, 5_000_000) + 7
        bids = [[f"{mid - 0.01 * (1 + i):.8f}", f"{0.5 + i:.8f}"] for i in range(5)]
        asks = [[f"{mid + 0.01 * (1 + i):.8f}", f"{0.25 + i:.8f}"] for i in range(5)]
        self.books.append(
            Book(
                symbol=symbol,
                venue="binance",
                ts=0,  # receive time: checked for range, not equality
                bids=[(float(p), float(q)) for p, q in bids],
                asks=[(float(p), float(q)) for p, q in asks],
            )
        )
        return orjson.dumps(
            {"stream": f"{symbol.lower()}@depth5@100ms", "data": {"lastUpdateId": update, "bids": bids, "asks": asks}}
        )

    def bad(self, raw: bytes, field_name: str | None) -> bytes:
        self.malformed[raw] = field_name
        return raw

    def burst(self, symbol: str, base: float, count: int) -> list[bytes]:
        out = []
        for i in range(count):
            price = f"{base + 0.01 * (i % 7):.8f}"
            out.append(self.trade(symbol, price, f"{0.0001 * (i + 1):.8f}", buyer_is_maker=i % 3 == 0))
        return out


# --- reading Kafka back -------------------------------------------------------------------------------------
def quotes_of(settings: Settings, symbols: set[str], expected: int) -> list[Quote]:
    def keep(item: Received) -> bool:
        data = orjson.loads(item[1])
        return bool(data.get("venue") == "binance" and data.get("symbol") in symbols)

    return [
        Quote.from_json(value)
        for _, value, *_ in read_topic(settings, settings.topic(QUOTES.name), keep=keep, expected=expected)
    ]


async def produce(
    settings: Settings,
    stream: BinanceStream,
    until: Callable[[Emitter], bool],
    timeout_s: float = 30.0,
) -> tuple[SourceCounters, float]:
    """Run the producer through the framework into Kafka until ``until(emitter)``; → counters, stop latency (s)."""
    latency: list[float] = []

    async def source(emitter: Emitter, stop: asyncio.Event) -> None:
        task = asyncio.create_task(stream.run(emitter, stop))
        deadline = time.monotonic() + timeout_s
        while not until(emitter) and not task.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        stopped = time.monotonic()
        await task
        latency.append(time.monotonic() - stopped)

    counters = await run_source(settings, STAGE, source)
    return counters, latency[0]


# --- tests --------------------------------------------------------------------------------------------------
BACKOFF_S = 0.2
HEALTHY_S = 1.5
CONTROL_S = 0.15


def test_trades_books_dead_letters_and_reconnects_through_kafka(settings: Settings) -> None:
    symbols = ["BTCUSDT", "ETHUSDT"]
    streams = {f"{s.lower()}@{kind}" for s in symbols for kind in ("trade", "depth5@100ms")}
    market = Market()
    done = asyncio.Event()

    async def script(server: LocalBinanceServer, conn: Conn) -> None:
        await asyncio.wait_for(conn.subscribed.wait(), 10)
        if conn.index == 0:
            await conn.ping_and_wait_pong(b"tapewatch-ping-0")
            messages = [
                *market.burst("BTCUSDT", 67012.34, 6),
                market.depth("BTCUSDT", 67012.50),
                *market.burst("ETHUSDT", 3401.10, 4),
                market.depth("ETHUSDT", 3401.20),
                market.bad(b'{"stream":"btcusdt@trade","data":{"e":"trade","t":', None),
                market.bad(
                    b'{"stream":"ethusdt@trade","data":{"e":"trade","E":1767225600500,"s":"ETHUSDT","t":9,'
                    b'"q":"0.10000000","T":1767225600500,"m":false,"M":true}}',
                    "data.p",
                ),
                # off the tick grid: kept as reported, counted
                market.trade("BTCUSDT", "67012.345", "0.00100000", buyer_is_maker=False),
            ]
            for raw in messages:
                await conn.send(raw)
            await conn.send(orjson.dumps({"e": "serverShutdown", "E": int(time.time() * 1000)}))
            conn.shutdown_sent = time.monotonic()
            await asyncio.sleep(0.05)
            await conn.ws.close()
        elif conn.index == 1:
            messages = [
                *market.burst("ETHUSDT", 3402.00, 5),
                market.bad(
                    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1767225601000,"s":"BTCUSDT","t":77,'
                    b'"p":"67000.00000000","q":"abc","T":1767225601000,"m":true,"M":true}}',
                    "data.q",
                ),
                market.bad(b'{"stream":"btcusdt@kline_1m","data":{"e":"kline","s":"BTCUSDT"}}', "stream"),
                market.bad(
                    b'{"stream":"ethusdt@trade","data":{"e":"trade","E":1767225601000,"s":"ETHUSDT","t":78,'
                    b'"p":"3400.00000000","q":"1.00000000","T":1767225601000,"m":"true","M":true}}',
                    "data.m",
                ),
                market.bad(
                    b'{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":5,"bids":[["67000.00","x"]],"asks":[]}}',
                    "data.bids.0.1",
                ),
                market.depth("ETHUSDT", 3402.50),
                *market.burst("BTCUSDT", 67020.00, 3),
            ]
            for raw in messages:
                await conn.send(raw)
            await conn.drop()
        elif conn.index == 2:
            for raw in [*market.burst("BTCUSDT", 67030.00, 4), market.depth("BTCUSDT", 67030.10)]:
                await conn.send(raw)
            # delivered long enough to count as healthy: the next back-off starts from the beginning again
            await asyncio.sleep(HEALTHY_S + 0.5)
            await conn.drop()
        else:
            for raw in [*market.burst("ETHUSDT", 3410.00, 3), market.depth("ETHUSDT", 3410.05)]:
                await conn.send(raw)
            done.set()
            await conn.client_closed.wait()

    async def scenario() -> tuple[LocalBinanceServer, BinanceStream, SourceCounters, float, int, int]:
        async with LocalBinanceServer(script, [streams]) as server:
            stream = BinanceStream(
                server.settings(settings),
                symbols,
                backoff_initial_s=BACKOFF_S,
                backoff_max_s=2.0,
                healthy_after_s=HEALTHY_S,
                control_interval_s=CONTROL_S,
                subscribe_batch=3,  # 4 streams → 2 paced SUBSCRIBE requests per connection
                ack_timeout_s=5.0,
                heartbeat_s=10.0,
                close_timeout_s=1.0,
                rules_min_interval_s=0.5,
            )
            started_ms = int(time.time() * 1000)

            def finished(emitter: Emitter) -> bool:
                c = emitter.counters
                return done.is_set() and c.quotes == len(market.quotes) and c.books == len(market.books)

            counters, latency = await produce(server.settings(settings), stream, finished)
            await asyncio.wait_for(server.connections[-1].ended.wait(), 5)
            return server, stream, counters, latency, started_ms, int(time.time() * 1000)

    server, stream, counters, stop_latency, started_ms, ended_ms = asyncio.run(scenario())

    # --- the producer's own account
    assert counters.quotes == len(market.quotes) == 26
    assert counters.books == len(market.books) == 5
    assert counters.dead_lettered == len(market.malformed) == 6
    assert stream.stats.off_grid_prices == 1
    assert stream.stats.server_shutdowns == 1
    drops = 3  # serverShutdown + close, two abrupt drops
    assert counters.backoffs >= drops and counters.errors >= drops
    assert stop_latency < 3.0

    # --- every connection subscribed the same streams again, paced
    assert len(server.connections) == 4
    for conn in server.connections:
        assert set(conn.streams) == streams and len(conn.streams) == len(streams)
        assert len(conn.subscribe_times) == 2
        assert conn.subscribe_times[1] - conn.subscribe_times[0] >= CONTROL_S - 0.01
    assert server.connections[0].pongs == [b"tapewatch-ping-0"]
    assert server.connections[-1].client_closed_at is not None  # stop closes cleanly
    # loaded once at start, refreshed once because of the off-grid trade
    assert server.exchange_info_requests == [symbols, symbols] and stream.stats.rules_loads == 2

    # --- back-off: no tight loop, growing, reset after a healthy connection
    c0, c1, c2, c3 = server.connections
    assert c0.shutdown_sent and c1.dropped and c2.dropped
    assert c1.opened - c0.shutdown_sent >= BACKOFF_S / 2
    assert c2.opened - c1.dropped >= BACKOFF_S  # second attempt: ceiling doubled, at least half of it
    assert c3.opened - c2.dropped >= BACKOFF_S / 2
    delays = [record.delay_s for record in stream.stats.back_offs]
    assert len(delays) == 3
    assert BACKOFF_S / 2 <= delays[0] <= BACKOFF_S
    assert BACKOFF_S <= delays[1] <= 2 * BACKOFF_S
    assert BACKOFF_S / 2 <= delays[2] <= BACKOFF_S  # reset: conn 2 delivered for longer than healthy_after_s

    # --- Kafka: every good trade exactly once, as the right Quote
    received = quotes_of(settings, set(symbols), len(market.quotes))
    assert sorted(received, key=lambda q: (q.symbol, q.seq)) == sorted(market.quotes, key=lambda q: (q.symbol, q.seq))
    assert {q.side for q in received} == {Side.BUY, Side.SELL}

    def keep_book(item: Received) -> bool:
        data = orjson.loads(item[1])
        return bool(data.get("venue") == "binance" and data.get("symbol") in symbols)

    books = [
        Book.from_json(value)
        for _, value, *_ in read_topic(settings, settings.topic(BOOKS.name), keep=keep_book, expected=len(market.books))
    ]
    assert len(books) == len(market.books)
    assert all(started_ms <= book.ts <= ended_ms for book in books)
    assert sorted(((b.symbol, b.bids, b.asks) for b in books), key=str) == sorted(
        ((b.symbol, b.bids, b.asks) for b in market.books), key=str
    )

    # --- the DLQ: original bytes, reason naming the field, this source
    def keep_letter(item: Received) -> bool:
        letter = DeadLetter.from_headers(item[2])
        return letter.stage == STAGE and letter.source == server.source

    letters = read_topic(settings, settings.topic(DLQ_PRODUCERS.name), keep=keep_letter, expected=len(market.malformed))
    assert sorted(value for _, value, *_ in letters) == sorted(market.malformed)
    for _, value, headers, _ in letters:
        letter = DeadLetter.from_headers(headers)
        assert letter.field == market.malformed[value]
        assert letter.reason.startswith(f"{letter.field}: " if letter.field else "invalid JSON")


def test_server_ping_gets_a_pong_and_streams_split_over_connections(settings: Settings) -> None:
    symbols = ["BNBBTC", "ETHBTC", "LTCBTC"]
    first = {"bnbbtc@trade", "bnbbtc@depth5@100ms", "ethbtc@trade", "ethbtc@depth5@100ms"}
    second = {"ltcbtc@trade", "ltcbtc@depth5@100ms"}
    market = Market()
    prices = {"BNBBTC": "0.00810000", "ETHBTC": "0.03510000", "LTCBTC": "0.00120000"}

    async def script(server: LocalBinanceServer, conn: Conn) -> None:
        await asyncio.wait_for(conn.subscribed.wait(), 10)
        await conn.ping_and_wait_pong(f"ping-{conn.index}".encode())
        for stream_name in sorted(set(conn.streams)):
            symbol = stream_name.split("@")[0].upper()
            if stream_name.endswith("@trade"):
                await conn.send(market.trade(symbol, prices[symbol], "1.00000000", buyer_is_maker=False))
        # idle: the client's own heartbeat pings must arrive (and get their pong)
        await asyncio.sleep(1.2)
        await conn.client_closed.wait()

    async def scenario() -> tuple[LocalBinanceServer, SourceCounters]:
        async with LocalBinanceServer(script, [first, second]) as server:
            stream = BinanceStream(
                server.settings(settings),
                symbols,
                max_streams_per_connection=4,
                control_interval_s=0.05,
                heartbeat_s=0.5,
                close_timeout_s=1.0,
            )

            def finished(emitter: Emitter) -> bool:
                conns = server.connections
                idle = all(c.subscribed_at and time.monotonic() - c.subscribed_at > 1.5 for c in conns)
                return len(conns) == 2 and idle and emitter.counters.quotes == 3

            counters, _ = await produce(server.settings(settings), stream, finished)
            return server, counters

    server, counters = asyncio.run(scenario())
    assert len(server.connections) == 2
    assert sorted(frozenset(c.streams) for c in server.connections) == sorted([frozenset(first), frozenset(second)])
    assert all(len(c.streams) <= 4 for c in server.connections)
    for conn in server.connections:
        assert conn.pongs == [f"ping-{conn.index}".encode()]
        assert conn.client_pings >= 1  # heartbeat on
    assert counters.quotes == 3 and counters.backoffs == 0 and counters.dead_lettered == 0
    received = quotes_of(settings, set(symbols), 3)
    assert sorted(received, key=lambda q: q.symbol) == sorted(market.quotes, key=lambda q: q.symbol)


def test_planned_replacement_overlaps_without_gap_duplicate_or_back_off(settings: Settings) -> None:
    """Connections are replaced before the server's 24 h cut (here: after 1 s). The old one keeps delivering
    until the new one is subscribed; the trades both see are emitted once, in order, with no gap."""
    symbol = "XRPUSDT"
    streams = {"xrpusdt@trade", "xrpusdt@depth5@100ms"}
    market = Market()
    sent: list[int] = []

    outboxes: dict[int, asyncio.Queue[tuple[float, bytes]]] = {}
    # The connection being replaced lags: what it still has in flight arrives after the newer trades on its
    # replacement, the order a real hand-over can produce. Emitting from both at once would lose those.
    lag_s = 0.1

    async def script(server: LocalBinanceServer, conn: Conn) -> None:
        await asyncio.wait_for(conn.subscribed.wait(), 10)
        outbox = outboxes[conn.index] = asyncio.Queue()
        lag = lag_s if conn.index % 2 == 0 else 0.0
        while not conn.client_closed.is_set():
            try:
                queued_at, raw = await asyncio.wait_for(outbox.get(), 0.1)
            except TimeoutError:
                continue
            await asyncio.sleep(max(0.0, queued_at + lag - time.monotonic()))
            with contextlib.suppress(ConnectionError, RuntimeError):  # the client may be closing this one
                await conn.send(raw)

    async def broadcast(server: LocalBinanceServer, stop: asyncio.Event) -> None:
        """One market: every subscribed connection gets the same trades, as Binance's servers would."""
        while not stop.is_set():
            live = [server.connections[i] for i in outboxes if not server.connections[i].client_closed.is_set()]
            if live:
                raw = market.trade(symbol, "0.52340000", "10.00000000", buyer_is_maker=len(sent) % 2 == 0)
                sent.append(market.quotes[-1].seq)
                for conn in live:
                    outboxes[conn.index].put_nowait((time.monotonic(), raw))
            await asyncio.sleep(0.02)

    async def scenario() -> tuple[LocalBinanceServer, BinanceStream, SourceCounters]:
        async with LocalBinanceServer(script, [streams]) as server:
            stream = BinanceStream(
                server.settings(settings),
                [symbol],
                max_connection_age_s=1.0,
                overlap_s=0.3,
                control_interval_s=0.05,
                close_timeout_s=1.0,
            )
            quiet = asyncio.Event()
            feeder = asyncio.create_task(broadcast(server, quiet))

            def finished(emitter: Emitter) -> bool:
                conns = server.connections
                return len(conns) >= 3 and conns[1].client_closed.is_set() and conns[2].subscribed.is_set()

            try:
                counters, _ = await produce(server.settings(settings), stream, finished)
            finally:
                quiet.set()
                await feeder
            return server, stream, counters

    server, stream, counters = asyncio.run(scenario())
    assert stream.stats.rotations >= 2 and counters.backoffs == 0 and counters.errors == 0
    old, new = server.connections[0], server.connections[1]
    assert set(new.streams) == set(old.streams) == streams
    # make before break: the old connection was closed by us, after the new one was subscribed
    assert old.client_closed_at is not None and new.subscribed_at is not None
    assert new.subscribed_at < old.client_closed_at
    assert stream.stats.duplicate_trades > 0  # both connections did deliver the overlap
    received = [q.seq for q in quotes_of(settings, {symbol}, counters.quotes)]
    assert len(received) == counters.quotes
    assert received == list(range(sent[0], sent[0] + len(received)))  # no gap, no duplicate, in order


def test_unknown_symbol_fails_with_one_clear_error(settings: Settings) -> None:
    async def script(server: LocalBinanceServer, conn: Conn) -> None:
        raise AssertionError("no websocket connection expected")

    async def scenario() -> LocalBinanceServer:
        async with LocalBinanceServer(script, []) as server:
            stream = BinanceStream(server.settings(settings), ["BTCUSDT", "NOPE1"])
            with pytest.raises(TapewatchError, match=r"Invalid symbol\. \(code -1121\)"):
                await run_source(server.settings(settings), STAGE, stream.run)
            return server

    server = asyncio.run(scenario())
    assert server.connections == [] and server.exchange_info_requests == [["BTCUSDT", "NOPE1"]]


def test_refusals_and_unanswered_subscriptions_are_retried_with_back_off(settings: Settings) -> None:
    """exchangeInfo 503, a 429 handshake with Retry-After, a refused SUBSCRIBE and one never acknowledged: each
    costs one back-off (the 429 at least its Retry-After), then the stream flows."""
    symbol = "ETHBTC"
    streams = {"ethbtc@trade", "ethbtc@depth5@100ms"}
    market = Market()

    async def script(server: LocalBinanceServer, conn: Conn) -> None:
        if conn.reply == "ack":
            await asyncio.wait_for(conn.subscribed.wait(), 10)
            await conn.send(market.trade(symbol, "0.03510000", "0.50000000", buyer_is_maker=True))
        await conn.client_closed.wait()

    async def scenario() -> tuple[LocalBinanceServer, BinanceStream, SourceCounters]:
        async with LocalBinanceServer(script, [streams]) as server:
            server.exchange_info_statuses = [503]
            server.handshake_refusals = [(429, {"Retry-After": "1"})]
            server.reply_modes = ["error", "silent"]
            stream = BinanceStream(
                server.settings(settings),
                [symbol],
                backoff_initial_s=0.1,
                control_interval_s=0.05,
                ack_timeout_s=0.5,
                close_timeout_s=0.5,
            )
            counters, _ = await produce(server.settings(settings), stream, lambda e: e.counters.quotes == 1)
            return server, stream, counters

    server, stream, counters = asyncio.run(scenario())
    reasons = [record.reason for record in stream.stats.back_offs]
    assert len(reasons) == counters.backoffs == 4, reasons
    assert "HTTP 503" in reasons[0] and "HTTP 429" in reasons[1]
    assert "refused" in reasons[2] and "not acknowledged" in reasons[3]
    assert server.connections[0].opened - server.refused_at[0] >= 1.0  # Retry-After honoured
    assert stream.stats.control_errors == 1 and counters.quotes == 1
    assert [c.reply for c in server.connections] == ["error", "silent", "ack"]
    assert all(set(c.streams) == streams for c in server.connections)
