"""The TWSE MIS poller and the STOCK_DAY fetcher against local servers that answer in the exact real formats
and enforce the real rate limit (scaled to the test's interval) by resetting the connection.

The poller's records are read back from the real Kafka. Each test gets its own topic prefix, so counting the
records on a topic counts exactly what that test produced.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import typer
from aiohttp import web
from typer.testing import CliRunner

from tapewatch.cli.produce import fetch_twse_daily, produce_twse
from tapewatch.deadletter import DeadLetter
from tapewatch.producers.framework import run_source
from tapewatch.producers.twse import TAIPEI, TwsePoller
from tapewatch.producers.twse_daily import TwseDailyFetcher, month_range
from tapewatch.records import Book, Quote
from tapewatch.settings import Settings, get_settings
from tapewatch.topics import BOOKS, DLQ_PRODUCERS, QUOTES
from tests.http_server import start_local
from tests.kafka_reader import read_topic

pytestmark = pytest.mark.integration

INTERVAL_S = 0.5  # the real 5 s, scaled down ten times through the poller's test-only argument
CHANNELS = ["tse_2330.tw", "tse_1215.tw", "otc_6547.tw", "tse_2317.tw", "tse_9999.tw"]


# --- a MIS look-alike that bans fast clients ----------------------------------------------------------------
@dataclass
class RateLimitedServer:
    """Answers ``bodies`` in turn and resets the connection of a client that asks too often.

    Scaled from the exchange's limit of about 3 requests per 5 s at a 5 s data cadence: more than 3 requests
    in one ``interval_s`` window, or two requests closer than 0.9 × ``interval_s``, get a reset. Every
    request counts, the cookie warm-up too, as it does against the real per-IP limit.
    """

    bodies: list[bytes]
    interval_s: float
    reset_first: int = 0  # reset this many quote requests whatever their timing (a flaky network)
    arrivals: list[float] = field(default_factory=list)
    quote_arrivals: list[float] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    rate_resets: int = 0
    forced_resets: int = 0
    served: int = 0
    warm_ups: int = 0
    cookie_seen: list[bool] = field(default_factory=list)
    runner: web.AppRunner | None = None

    def _too_fast(self) -> bool:
        now = time.monotonic()
        recent = [t for t in self.arrivals if now - t < self.interval_s]
        too_fast = bool(self.arrivals) and now - self.arrivals[-1] < 0.9 * self.interval_s
        self.arrivals.append(now)
        return too_fast or len(recent) >= 3

    @staticmethod
    def _reset(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=500)  # never reaches the client: the connection is gone

    async def index(self, request: web.Request) -> web.Response:
        if self._too_fast():
            self.rate_resets += 1
            return self._reset(request)
        self.warm_ups += 1
        response = web.Response(text="<html><title>基本市況報導網站</title></html>", content_type="text/html")
        response.set_cookie("JSESSIONID", uuid.uuid4().hex.upper(), path="/stock")
        return response

    async def quotes(self, request: web.Request) -> web.Response:
        if self._too_fast():
            self.rate_resets += 1
            return self._reset(request)
        self.quote_arrivals.append(self.arrivals[-1])
        if self.forced_resets < self.reset_first:
            self.forced_resets += 1
            return self._reset(request)
        self.queries.append(dict(request.query))
        self.cookie_seen.append("JSESSIONID" in request.cookies)
        body = self.bodies[min(self.served, len(self.bodies) - 1)]
        self.served += 1
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/stock/index.jsp", self.index)
        app.router.add_get("/stock/api/getStockInfo.jsp", self.quotes)
        self.runner, url = await start_local(app)
        return url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


# --- payloads in the real format ------------------------------------------------------------------------------
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=TAIPEI)  # a Monday morning


def side(levels: list[tuple[float, int]]) -> tuple[str, str]:
    """Best-5 prices and volumes as MIS writes them: 4 decimals, ``_``-separated, trailing ``_``; empty → "-"."""
    if not levels:
        return "-", "-"
    return "".join(f"{p:.4f}_" for p, _ in levels), "".join(f"{q}_" for _, q in levels)


def mis(
    code: str,
    name: str,
    poll: int,
    z: float | None,
    tv: int | None,
    v: int,
    ohl: tuple[float, float, float],
    y: float,
    bids: list[tuple[float, int]],
    asks: list[tuple[float, int]],
    ex: str = "tse",
) -> dict[str, str]:
    when = T0 + timedelta(seconds=5 * poll)
    a, f = side(asks)
    b, g = side(bids)
    limit_up, limit_down = round(y * 1.1, 1), round(y * 0.9, 1)
    return {
        "tv": "-" if tv is None else str(tv),
        "ps": "-",
        "pz": "-",
        "a": a,
        "b": b,
        "c": code,
        "d": when.strftime("%Y%m%d"),
        "ch": f"{code}.tw",
        "tlong": str(int(when.timestamp() * 1000)),
        "f": f,
        "ip": "0",
        "g": g,
        "mt": "000000",
        "h": f"{ohl[1]:.4f}",
        "it": "12",
        "l": f"{ohl[2]:.4f}",
        "n": name,
        "o": f"{ohl[0]:.4f}",
        "p": "0",
        "ex": ex,
        "s": "-",
        "t": when.strftime("%H:%M:%S"),
        "u": f"{limit_up:.4f}",
        "v": str(v),
        "w": f"{limit_down:.4f}",
        "nf": name,
        "y": f"{y:.4f}",
        "z": "-" if z is None else f"{z:.4f}",
        "ts": "0",
    }


def body(*elements: dict[str, str], sys_time: str = "09:30:02") -> bytes:
    return orjson.dumps(
        {
            "msgArray": list(elements),
            "referer": "",
            "userDelay": 5000,
            "rtcode": "0000",
            "rtmessage": "OK",
            "queryTime": {
                "sysDate": "20260302",
                "stockInfoItem": 2316,
                "stockInfo": 244541,
                "sessionStr": "UserSession",
                "sysTime": sys_time,
                "showChart": False,
                "sessionFromTime": -1,
                "sessionLatestTime": -1,
            },
        }
    )


PLACEHOLDER = {"tv": "-", "s": "-", "c": "", "z": "-"}
NON_JSON = "<html><head><title>Error</title></head><body>請稍後再試</body></html>".encode()  # "try again later"
NO_MSG_ARRAY = orjson.dumps({"rtcode": "5001", "rtmessage": "Session expired", "queryTime": {"sysDate": "20260302"}})
EMPTY = orjson.dumps({"msgArray": [], "referer": "", "userDelay": 5000, "rtcode": "0000", "rtmessage": "OK"})


def tsmc(poll: int, z: float | None, tv: int | None, v: int, bid: float, ask: float) -> dict[str, str]:
    bids = [(bid - 5 * i, 100 + 10 * i) for i in range(5)]
    asks = [(ask + 5 * i, 80 + 10 * i) for i in range(5)]
    return mis("2330", "台積電", poll, z, tv, v, (1000.0, 1020.0, 995.0), 1000.0, bids, asks)


def charoen(poll: int, z: float | None, tv: int | None, v: int) -> dict[str, str]:
    bids = [(79.3, 13), (79.2, 39), (79.1, 41), (79.0, 31), (78.9, 12)]
    asks = [(79.4, 47), (79.5, 33), (79.6, 49), (79.7, 26), (79.8, 37)]
    return mis("1215", "卜蜂", poll, z, tv, v, (79.5, 79.5, 79.2), 79.1, bids, asks)


def medigen(poll: int, z: float | None, tv: int | None, v: int, locked: bool = False) -> dict[str, str]:
    if locked:  # limit-up: everybody bids at the limit, nobody offers
        bids, asks = [(64.7, 2200), (64.6, 35), (64.5, 12)], []
    else:
        bids, asks = [(58.8, 20), (58.7, 31)], [(58.9, 4), (59.0, 16)]
    return mis("6547", "高端疫苗", poll, z, tv, v, (59.0, 64.7, 58.5), 58.8, bids, asks, ex="otc")


def foxconn(poll: int, v: str = "5000") -> dict[str, str]:
    bids, asks = [(210.5, 300)], [(211.0, 250)]
    element = mis("2317", "鴻海", 0, None, None, 5000, (211.0, 212.0, 210.0), 210.5, bids, asks)
    return element | {"v": v}


POLLS: list[bytes] = [
    # 0: first sight of every symbol; an unknown channel answers with a placeholder
    body(tsmc(0, 1005.0, 12, 15_000, 1005.0, 1010.0), charoen(0, None, None, 227), medigen(0, 58.9, 3, 800),
         foxconn(0), PLACEHOLDER),
    # 1: prices move, v grows; 6547 has no trade but a changed book; 2317 unchanged → dropped
    body(tsmc(1, 1010.0, 4, 15_004, 1010.0, 1015.0), charoen(1, 79.4, 2, 229),
         medigen(1, None, None, 800) | {"g": "21_31_"}, foxconn(0), PLACEHOLDER),
    NON_JSON,
    # 3: 2330 no trade in this disclosure; 6547 locked limit-up (no ask side); 1215 and 2317 unchanged
    body(tsmc(3, None, None, 15_004, 1015.0, 1020.0), charoen(1, 79.4, 2, 229), medigen(3, 64.7, 50, 850, locked=True),
         foxconn(0), PLACEHOLDER),
    EMPTY,
    # 5: a disclosure was missed (v jumped by 16 lots, tv shows only 6); 2317's v is garbage
    body(tsmc(5, 1015.0, 6, 15_020, 1015.0, 1020.0), charoen(5, 79.5, 1, 230), medigen(5, 64.7, 20, 870, locked=True),
         foxconn(5, v="5O00"), PLACEHOLDER),
    NO_MSG_ARRAY,
    # 7: only 2330 trades; 2317 is well-formed again
    body(tsmc(7, 1020.0, 2, 15_022, 1020.0, 1025.0), charoen(5, 79.5, 1, 230), medigen(5, 64.7, 20, 870, locked=True),
         foxconn(0), PLACEHOLDER),
]  # fmt: skip


# --- Kafka -----------------------------------------------------------------------------------------------------
@pytest.fixture
def isolated(settings: Settings) -> Settings:
    """The real Kafka with topics of this test alone (the conftest `settings` fixture isolates per test)."""
    return settings


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# --- the poller ------------------------------------------------------------------------------------------------
def test_poller_replays_real_payloads_without_tripping_the_rate_limit(isolated: Settings) -> None:
    server = RateLimitedServer(POLLS, INTERVAL_S)

    async def scenario() -> tuple[TwsePoller, Any]:
        url = await server.start()
        try:
            settings = isolated.updated(sources={"twse_mis_url": url})
            poller = TwsePoller(settings, CHANNELS, ignore_hours=True, max_polls=len(POLLS), test_interval_s=INTERVAL_S)
            counters = await run_source(settings, "producer:twse", poller.run, duration_s=45)
            return poller, counters
        finally:
            await server.stop()

    started = time.monotonic()
    poller, counters = asyncio.run(scenario())
    elapsed = time.monotonic() - started

    # The server never had to defend itself, and every request respected the spacing.
    assert server.rate_resets == 0
    assert server.warm_ups == 1 and server.served == len(POLLS)
    assert min(gaps(server.arrivals)) >= 0.9 * INTERVAL_S
    assert elapsed < 30
    assert all(server.cookie_seen)  # the warm-up's session cookie rides along
    for query in server.queries:
        assert query["ex_ch"] == "|".join(CHANNELS) and query["json"] == "1" and query["delay"] == "0"
        assert query["_"].isdigit()

    # Three unusable answers (non-JSON, empty, no msgArray), each an error and a back-off.
    assert counters.errors == 3 and counters.backoffs == 3
    assert counters.quotes == 14 and counters.books == 14
    assert counters.dead_lettered == 4  # placeholder once, non-JSON body, malformed 2317, missing msgArray
    assert counters.skipped == 2 + 3 + 1 + 3  # unchanged snapshots and the repeated placeholder, polls 1/3/5/7

    quotes = [Quote.from_json(value) for _, value, *_ in read_topic(isolated, isolated.topic(QUOTES.name), 14)]
    books = [Book.from_json(value) for _, value, *_ in read_topic(isolated, isolated.topic(BOOKS.name), 14)]
    assert len(quotes) == 14 and len(books) == 14
    by_symbol: dict[str, list[Quote]] = {}
    for quote in sorted(quotes, key=lambda q: (q.symbol, q.seq)):
        by_symbol.setdefault(quote.symbol, []).append(quote)

    tsmc_quotes = by_symbol["2330"]
    assert [(q.price, q.size) for q in tsmc_quotes] == [
        (1005.0, 12_000.0),  # first sight: the disclosure's own tv
        (1010.0, 4_000.0),
        (None, 0.0),  # no trade in this disclosure, and no price made up
        (1015.0, 16_000.0),  # v delta, not tv: the missed disclosure's volume counts once
        (1020.0, 2_000.0),
    ]
    assert [q.seq for q in tsmc_quotes] == [1, 2, 3, 4, 5]
    assert tsmc_quotes[-1].volume == 15_022_000
    assert sum(q.size for q in tsmc_quotes) == (15_022 - 15_000 + 12) * 1000
    assert all(q.venue == "twse" and q.prev_close == 1000.0 and q.open == 1000.0 for q in tsmc_quotes)
    assert [q.ts for q in tsmc_quotes] == [
        int((T0 + timedelta(seconds=5 * p)).timestamp() * 1000) for p in (0, 1, 3, 5, 7)
    ]
    assert [(q.bid, q.ask) for q in tsmc_quotes][:2] == [(1005.0, 1010.0), (1010.0, 1015.0)]

    assert [(q.price, q.size) for q in by_symbol["1215"]] == [(None, 0.0), (79.4, 2_000.0), (79.5, 1_000.0)]

    medigen_quotes = by_symbol["6547"]
    assert all(q.venue == "tpex" for q in medigen_quotes)
    assert [(q.price, q.size, q.ask) for q in medigen_quotes] == [
        (58.9, 3_000.0, 58.9),
        (None, 0.0, 58.9),
        (64.7, 50_000.0, None),  # locked limit-up: no ask side at all
        (64.7, 20_000.0, None),
    ]
    locked = [b for b in books if b.symbol == "6547" and not b.asks]
    assert len(locked) == 2 and locked[0].bids[0] == (64.7, 2_200_000.0)

    assert [(q.seq, q.volume) for q in by_symbol["2317"]] == [(1, 5_000_000.0), (2, 5_000_000.0)]
    assert "9999" not in by_symbol

    letters = read_topic(isolated, isolated.topic(DLQ_PRODUCERS.name), 4)
    assert len(letters) == 4
    reasons = {DeadLetter.from_headers(headers).reason.split(":", 1)[0]: (key, value, headers)
               for key, value, headers, _ in letters}  # fmt: skip
    assert set(reasons) == {"placeholder element", "non-JSON body", "v", "msgArray"}
    for _, _, headers, _ in letters:
        letter = DeadLetter.from_headers(headers)
        assert letter.stage == "producer:twse" and letter.source == poller.source
    _, placeholder, placeholder_headers = reasons["placeholder element"]
    assert orjson.loads(placeholder) == PLACEHOLDER
    assert DeadLetter.from_headers(placeholder_headers).reason.endswith("no data for tse_9999.tw")
    assert reasons["non-JSON body"][1] == NON_JSON
    assert reasons["msgArray"][1] == NO_MSG_ARRAY
    key, value, headers = reasons["v"]
    assert key == b"2317" and orjson.loads(value)["v"] == "5O00"
    assert DeadLetter.from_headers(headers).field == "v"


def test_poller_backs_off_after_connection_resets(isolated: Settings) -> None:
    resets = 3
    interval = 0.3
    server = RateLimitedServer([body(tsmc(0, 1005.0, 12, 15_000, 1005.0, 1010.0))], interval, reset_first=resets)

    async def scenario() -> Any:
        url = await server.start()
        try:
            settings = isolated.updated(sources={"twse_mis_url": url})
            poller = TwsePoller(settings, ["tse_2330.tw"], ignore_hours=True, max_polls=resets + 2,
                                test_interval_s=interval)  # fmt: skip
            return await run_source(settings, "producer:twse", poller.run, duration_s=45)
        finally:
            await server.stop()

    counters = asyncio.run(scenario())
    assert server.forced_resets == resets and server.rate_resets == 0
    assert counters.backoffs >= resets and counters.errors == resets
    assert counters.backoff_seconds >= interval * (0.5 + 1 + 2)  # the lower bounds of 3 growing delays
    assert counters.quotes == 1 and counters.skipped == 1  # then success, and the repeat is dropped
    # No tight loop: each retry waited at least its back-off, and the waits grew.
    retry_gaps = gaps(server.quote_arrivals)[:resets]
    assert all(gap >= 0.9 * interval for gap in retry_gaps)
    assert retry_gaps[2] >= 0.9 * 2 * interval
    assert sum(retry_gaps) >= 0.9 * interval * (1 + 1 + 2)
    assert len(read_topic(isolated, isolated.topic(QUOTES.name), 1)) == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_poller_rotates_to_the_next_proxy_after_a_failure(isolated: Settings) -> None:
    interval = 0.3
    proxy = RateLimitedServer([body(tsmc(0, 1005.0, 12, 15_000, 1005.0, 1010.0))], interval)

    async def scenario() -> Any:
        proxy_url = await proxy.start()
        try:
            dead = f"http://127.0.0.1:{free_port()}"
            # The exchange address is never reached directly: every request goes through a proxy.
            settings = isolated.updated(
                sources={"twse_mis_url": f"http://127.0.0.1:{free_port()}", "twse_proxies": f"{dead},{proxy_url}"}
            )
            poller = TwsePoller(settings, ["tse_2330.tw"], ignore_hours=True, max_polls=2, test_interval_s=interval)
            return await run_source(settings, "producer:twse", poller.run, duration_s=30)
        finally:
            await proxy.stop()

    counters = asyncio.run(scenario())
    assert counters.errors == 1 and counters.backoffs == 1  # the dead proxy
    assert counters.quotes == 1 and proxy.served == 1 and proxy.rate_resets == 0


def test_poller_sleeps_outside_market_hours_and_wakes_on_stop(isolated: Settings) -> None:
    server = RateLimitedServer([body(tsmc(0, 1005.0, 12, 15_000, 1005.0, 1010.0))], INTERVAL_S)
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=TAIPEI)

    async def scenario() -> Any:
        url = await server.start()
        try:
            settings = isolated.updated(sources={"twse_mis_url": url})
            poller = TwsePoller(settings, ["tse_2330.tw"], clock=lambda: saturday, test_interval_s=INTERVAL_S)
            return await run_source(settings, "producer:twse", poller.run, duration_s=0.5)
        finally:
            await server.stop()

    started = time.monotonic()
    counters = asyncio.run(scenario())
    assert time.monotonic() - started < 5  # asleep until Monday, yet it stopped when told
    assert server.arrivals == [] and counters.records == 0 and counters.errors == 0


def test_produce_command_keeps_the_real_spacing(isolated: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tapewatch produce twse` as wired: settings from the environment, the real 5 s floor, a summary line."""
    server = RateLimitedServer([body(tsmc(0, 1005.0, 12, 15_000, 1005.0, 1010.0))], 5.0)
    app = typer.Typer()
    app.command()(produce_twse)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)  # the command configures logging onto the runner's streams

    async def scenario() -> Any:
        url = await server.start()
        monkeypatch.setenv("TAPEWATCH_TWSE_MIS_URL", url)
        monkeypatch.setenv("TAPEWATCH_TOPIC_PREFIX", isolated.kafka.topic_prefix)
        monkeypatch.setenv("TAPEWATCH_TWSE_SYMBOLS", "tse_2330.tw")
        get_settings.cache_clear()
        try:
            # Warm-up at once, the first quote request ≥ 5 s later, then the duration runs out.
            argv = ["--duration", "7", "--ignore-hours", "--no-progress"]
            return await asyncio.to_thread(CliRunner().invoke, app, argv)
        finally:
            get_settings.cache_clear()
            await server.stop()

    try:
        result = asyncio.run(scenario())
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert result.exit_code == 0, result.output
    assert "twse: 1 quotes, 1 books, 0 dead-lettered" in result.output
    assert server.warm_ups == 1 and server.served == 1 and server.rate_resets == 0
    assert gaps(server.arrivals)[0] >= 5.0
    assert len(read_topic(isolated, isolated.topic(QUOTES.name), 1)) == 1


# --- STOCK_DAY -------------------------------------------------------------------------------------------------
FIELDS_10 = ["日期", "成交股數", "成交金額", "開盤價", "最高價", "最低價", "收盤價", "漲跌價差", "成交筆數", "註記"]
FIELDS_9 = FIELDS_10[:9]
NO_DATA = orjson.dumps({"stat": "很抱歉，沒有符合條件的資料!"})


def stock_day(month: str, fields: list[str], rows: list[list[str]]) -> bytes:
    return orjson.dumps(
        {
            "stat": "OK",
            "date": f"{month}01",
            "title": f"{int(month[:4]) - 1911}年{month[4:]}月 2330 台積電           各日成交資訊",
            "fields": fields,
            "data": rows,
            "notes": ["符號說明:+/-/X表示漲/跌/不比價"],
            "total": len(rows),
        }
    )


@dataclass
class StockDayServer:
    """Month answers keyed by ``(stockNo, YYYYMM)``; the first request gets a throttling page; too-fast → reset."""

    answers: dict[tuple[str, str], bytes]
    interval_s: float
    throttle_first: bool = True
    arrivals: list[float] = field(default_factory=list)
    asked: list[tuple[str, str]] = field(default_factory=list)
    rate_resets: int = 0
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        if self.arrivals and now - self.arrivals[-1] < 0.9 * self.interval_s:
            self.arrivals.append(now)
            self.rate_resets += 1
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        self.arrivals.append(now)
        assert request.query["response"] == "json"
        day = request.query["date"]
        assert len(day) == 8 and day.endswith("01")
        asked = (request.query["stockNo"], day[:6])
        self.asked.append(asked)
        if self.throttle_first and len(self.asked) == 1:
            return web.Response(text="<html>請稍後再試</html>", content_type="text/html")
        return web.Response(body=self.answers.get(asked, NO_DATA), content_type="application/json")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/exchangeReport/STOCK_DAY", self.handle)
        self.runner, url = await start_local(app)
        return url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


STOCK_DAY_ANSWERS = {
    ("2330", "202311"): stock_day("202311", FIELDS_9, [
        ["112/11/01", "25,106,522", "13,553,004,424", "540.00", "542.00", "537.00", "541.00", "+6.00", "20,113"],
        ["112/11/02", "36,251,710", "19,965,420,436", "549.00", "553.00", "548.00", "552.00", "+11.00", "32,650"],
    ]),
    ("2330", "202401"): stock_day("202401", FIELDS_10, [
        ["113/01/02", "25,650,173", "15,057,006,930", "590.00", "593.00", "589.00", "593.00", "-0.00", "19,997", ""],
        ["113/01/03", "37,011,881", "21,312,528,440", "584.00", "585.00", "576.00", "578.00", "-15.00", "69,436", ""],
    ]),
    ("1215", "202401"): stock_day("202401", FIELDS_10, [
        ["113/01/02", "1,005,000", "79,895,000", "79.40", "79.60", "79.30", "79.50", "X0.00", "812", "除息"],
    ]),
}  # fmt: skip


def test_stock_day_months_politely(tmp_path: Path) -> None:
    interval = 0.2
    server = StockDayServer(STOCK_DAY_ANSWERS, interval)
    months = month_range("2023-11", "2024-01")

    async def scenario() -> Any:
        url = await server.start()
        try:
            settings = Settings().updated(sources={"twse_www_url": url})
            fetcher = TwseDailyFetcher(settings, test_interval_s=interval)
            return await fetcher.fetch(["2330", "1215"], months)
        finally:
            await server.stop()

    report = asyncio.run(scenario())
    assert server.rate_resets == 0 and min(gaps(server.arrivals)) >= 0.9 * interval
    # The throttling page is retried after a back-off; then every month of every stock, in order.
    assert server.asked[0] == server.asked[1] == ("2330", "202311")
    assert server.asked[1:] == [(s, m) for s in ("2330", "1215") for m in ("202311", "202312", "202401")]
    assert report.requests == 7 and report.errors == 1 and report.backoffs == 1
    assert report.empty_months == 3  # 2330 2023-12 and 1215 2023-11/12 answer "no data"
    frame = report.frame
    assert list(frame["symbol"]) == ["1215", "2330", "2330", "2330", "2330"]
    assert list(frame["date"].dt.strftime("%Y-%m-%d")) == [
        "2024-01-02", "2023-11-01", "2023-11-02", "2024-01-02", "2024-01-03"
    ]  # fmt: skip
    tsmc = frame[frame["symbol"] == "2330"].reset_index(drop=True)
    assert list(tsmc["close"]) == [541.0, 552.0, 593.0, 578.0]
    assert list(tsmc["volume"]) == [25_106_522, 36_251_710, 25_650_173, 37_011_881]
    assert list(tsmc["change"]) == [6.0, 11.0, 0.0, -15.0]
    assert frame[frame["symbol"] == "1215"]["change"].isna().all()


def test_fetch_command_writes_parquet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command end to end for one month (one request, so the real 5 s spacing costs nothing)."""
    server = StockDayServer({("2330", "202401"): STOCK_DAY_ANSWERS[("2330", "202401")]}, 0.0, throttle_first=False)
    app = typer.Typer()
    app.command()(fetch_twse_daily)
    out = tmp_path / "daily"
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)  # the command configures logging onto the runner's streams

    async def scenario() -> Any:
        url = await server.start()
        monkeypatch.setenv("TAPEWATCH_TWSE_WWW_URL", url)
        get_settings.cache_clear()
        try:
            argv = ["2330", "--start", "2024-01", "--out", str(out), "--no-progress"]
            # In a thread: the command runs its own event loop while this one serves it.
            return await asyncio.to_thread(CliRunner().invoke, app, argv)
        finally:
            get_settings.cache_clear()
            await server.stop()

    try:
        result = asyncio.run(scenario())
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert result.exit_code == 0, result.output
    assert "wrote 2 daily bars" in result.output
    written = pd.read_parquet(out / "twse_daily_202401_202401.parquet")
    assert list(written["close"]) == [593.0, 578.0]
    assert written["date"].dt.date.tolist() == [date(2024, 1, 2), date(2024, 1, 3)]
