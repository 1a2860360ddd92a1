"""Binance spot public websocket → ``md.quotes`` (trades) and ``md.books`` (5-level snapshots).

Three parts:

* **Exchange rules** (:func:`fetch_exchange_info`, :func:`parse_exchange_info`): tick size (``PRICE_FILTER``), lot
  step (``LOT_SIZE``) and minimum notional (``NOTIONAL``, or the older ``MIN_NOTIONAL``) per symbol, as
  :class:`~decimal.Decimal`, from ``GET /api/v3/exchangeInfo``. They are loaded before the first connection (an
  unknown symbol fails the command with one clear line) and refreshed hourly, or soon after a trade lands off the
  grid, because a changed tick size is the usual reason for that.
* **Parsing** (:func:`parse_message`, pure): one combined-stream message ``{"stream": …, "data": …}`` →
  :class:`TradeEvent` (a :class:`Quote` whose ``side`` is the aggressor: ``m`` true means the buyer was the maker,
  so the seller crossed the spread → ``"S"``), :class:`DepthEvent` (a :class:`Book`; the payload has neither
  symbol nor time, so the symbol comes from the stream name and ``ts`` is the receive time), control messages
  (:class:`SubscriptionAck`, :class:`ErrorReply`, :class:`ServerShutdown`) or :class:`Malformed` with a reason that
  names the offending field. Prices and sizes are parsed from their strings with ``Decimal`` (exact, so the grid
  check is exact) and converted to float only for the record.
* **Streaming** (:class:`BinanceStream`): aiohttp websockets with ``autoping`` (server pings every 20 s get
  their pong) and a client heartbeat (a half-open TCP connection is noticed within ``1.5 × heartbeat_s``).

Decisions:

* **Subscribing:** connect to ``/stream`` and send ``SUBSCRIBE`` requests, at most ``subscribe_batch`` streams
  each, paced ``control_interval_s`` apart (3/s by default: the server's limit of 5 incoming control messages
  per second also counts our pongs and heartbeat pings), rather than listing the streams in the URL. 1,024
  streams in a query string are ~25 KB, beyond what HTTP front-ends accept, and a request id gives an explicit
  acknowledgement: a connection whose subscriptions are not all acknowledged within ``ack_timeout_s`` is
  treated as failed. Streams are split over several connections, whole symbols per connection, so that none
  carries more than ``max_streams_per_connection`` (1,024).
* **Reconnecting:** a connection that fails (refused, handshake error, dropped, closed by the server, heartbeat
  timeout, subscription not acknowledged) is replaced after an exponential back-off with jitter; the back-off
  resets once a connection has delivered for ``healthy_after_s``. Two events are announced in advance, and for
  them the old connection keeps delivering until its replacement is subscribed (make before break, so no gap):
  ``serverShutdown`` (the server goes down minutes later; the replacement still waits one back-off delay, so
  thousands of clients do not reconnect in the same instant) and the connection's age reaching
  ``max_connection_age_s`` (23 h 50 min, before the server's 24 h cut; planned, so no back-off).
* **Duplicates and order:** during a replacement both connections receive the same data. The new one holds what
  it receives until the old one has had ``overlap_s`` to deliver what it still had in flight and is closed, then
  emits what it held. Exactly one connection emits at a time, each in exchange order, so a trade whose id (``t``)
  is not above the last one emitted for its symbol, or a book whose ``lastUpdateId`` is not, is a duplicate and
  is skipped (counted as ``skipped``): no gap, no duplicate and no reordering across the hand-over.
* **Tick and lot grid:** a trade price off the tick grid (or a size off the lot step) is still emitted unchanged:
  it is what the exchange reports, and rounding it would invent a price. It is counted
  (:attr:`BinanceStats.off_grid_prices`, ``off_grid_sizes``), warned about once per symbol, and triggers a rules
  refresh. The minimum notional constrains orders, not fills (a partial fill can be smaller), so it is loaded
  for consumers but not used to reject trades.
* **Strict shapes:** prices and quantities must be JSON strings as documented; a JSON number would already have
  lost its exact decimal value in the float parse, and it signals a format change worth seeing in the DLQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import aiohttp
import orjson

from tapewatch.backoff import Backoff
from tapewatch.errors import TapewatchError
from tapewatch.producers.framework import Emitter, Pacer, back_off, sleep_or_stop
from tapewatch.records import Book, Quote, Record, RecordError, Side
from tapewatch.settings import Settings

if TYPE_CHECKING:
    WebSocket = aiohttp.ClientWebSocketResponse[Literal[True]]

log = logging.getLogger(__name__)

VENUE: Final = "binance"
STAGE: Final = "producer:binance"
TRADE_STREAM: Final = "trade"
DEPTH_STREAM: Final = "depth5@100ms"
#: Partial-depth variants with at most 5 levels (the Book record's depth); the default update speed is 1000 ms.
DEPTH_KINDS: Final = frozenset({"depth5", "depth5@100ms", "depth5@1000ms"})
STREAMS_PER_SYMBOL: Final = 2
MAX_STREAMS_PER_CONNECTION: Final = 1024
#: Connections are cut at 24 h; replacing them 10 minutes early leaves room for a slow reconnect.
MAX_CONNECTION_AGE_S: Final = 23 * 3600 + 50 * 60
EXCHANGE_INFO_PATH: Final = "/api/v3/exchangeInfo"
#: Symbols per exchangeInfo request: keeps the URL short whatever the number of symbols.
EXCHANGE_INFO_CHUNK: Final = 100
#: Above this a "millisecond" time is in the year 5138: the stream was opened with timeUnit=MICROSECOND.
MAX_EPOCH_MS: Final = 10**14
_SYMBOL = re.compile(r"[A-Za-z0-9]{2,30}")
_T = TypeVar("_T")
_R = TypeVar("_R", bound=Record)


# --- exchange rules -----------------------------------------------------------------------------------------
class ExchangeInfoError(Exception):
    """exchangeInfo could not be read this time (transport error, 429/418/5xx, garbled body): retry later."""

    def __init__(self, reason: str, retry_after_s: float = 0.0) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def _on_grid(value: Decimal, step: Decimal | None) -> bool:
    # A zero step means the filter is disabled for that symbol.
    return step is None or step == 0 or value % step == 0


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """A symbol's trading filters from exchangeInfo, exact decimals as the exchange states them."""

    symbol: str
    status: str
    tick_size: Decimal | None
    step_size: Decimal | None
    min_notional: Decimal | None

    def price_on_grid(self, price: Decimal) -> bool:
        return _on_grid(price, self.tick_size)

    def size_on_grid(self, size: Decimal) -> bool:
        return _on_grid(size, self.step_size)


def _rule_decimal(value: Any, where: str) -> Decimal:
    if not isinstance(value, str):
        raise ValueError(f"exchangeInfo {where}: expected a decimal string, got {_json_kind(value)}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"exchangeInfo {where}: not a decimal number: {_short(value)}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"exchangeInfo {where}: must be a finite number ≥ 0, got {_short(value)}")
    return number


def parse_exchange_info(payload: Any) -> dict[str, SymbolRules]:
    """``GET /api/v3/exchangeInfo`` answer → rules per (upper-case) symbol. Raises ValueError naming the field."""
    if not isinstance(payload, dict) or not isinstance(payload.get("symbols"), list):
        raise ValueError("exchangeInfo: 'symbols' missing or not an array")
    rules: dict[str, SymbolRules] = {}
    for index, entry in enumerate(payload["symbols"]):
        where = f"symbols.{index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("symbol"), str):
            raise ValueError(f"exchangeInfo {where}.symbol: missing")
        symbol = entry["symbol"].upper()
        filters = entry.get("filters", [])
        if not isinstance(filters, list):
            raise ValueError(f"exchangeInfo {where}.filters: expected an array")
        tick = step = notional = legacy_notional = None
        for number, rule in enumerate(filters):
            if not isinstance(rule, dict):
                continue
            spot = f"{where}.filters.{number}"
            kind = rule.get("filterType")
            if kind == "PRICE_FILTER":
                tick = _rule_decimal(rule.get("tickSize"), f"{spot}.tickSize")
            elif kind == "LOT_SIZE":
                step = _rule_decimal(rule.get("stepSize"), f"{spot}.stepSize")
            elif kind == "NOTIONAL":
                notional = _rule_decimal(rule.get("minNotional"), f"{spot}.minNotional")
            elif kind == "MIN_NOTIONAL":
                legacy_notional = _rule_decimal(rule.get("minNotional"), f"{spot}.minNotional")
        status = entry.get("status")
        rules[symbol] = SymbolRules(
            symbol=symbol,
            status=status if isinstance(status, str) else "",
            tick_size=tick,
            step_size=step,
            min_notional=notional if notional is not None else legacy_notional,
        )
    return rules


def _retry_after(headers: Mapping[str, str] | None) -> float:
    try:
        return max(0.0, float((headers or {}).get("Retry-After", "0")))
    except ValueError:
        return 0.0


def _binance_message(body: bytes) -> str:
    """Binance's own error text (``{"code": -1121, "msg": "Invalid symbol."}``), else the start of the body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode(errors="replace").strip()
    if isinstance(data, dict) and "msg" in data:
        return f"{data['msg']} (code {data.get('code')})"
    return body[:200].decode(errors="replace")


async def fetch_exchange_info(
    http: aiohttp.ClientSession, rest_url: str, symbols: Sequence[str], timeout_s: float = 10.0
) -> dict[str, SymbolRules]:
    """Rules for ``symbols`` (upper-case). TapewatchError for a permanent refusal (unknown symbol, 4xx),
    :class:`ExchangeInfoError` for anything worth retrying."""
    url = f"{rest_url.rstrip('/')}{EXCHANGE_INFO_PATH}"
    rules: dict[str, SymbolRules] = {}
    for chunk in _chunks(symbols, EXCHANGE_INFO_CHUNK):
        params = {"symbols": orjson.dumps(list(chunk)).decode()}
        try:
            async with http.get(url, params=params, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
                body = await response.read()
                status, headers = response.status, response.headers
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ExchangeInfoError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        # 429 = slow down, 418 = banned for ignoring 429s; both say for how long.
        if status in (418, 429) or status >= 500:
            raise ExchangeInfoError(f"HTTP {status}: {_binance_message(body)}", _retry_after(headers))
        if status != 200:
            raise TapewatchError(f"binance exchangeInfo {url}: HTTP {status}: {_binance_message(body)}")
        try:
            rules.update(parse_exchange_info(orjson.loads(body)))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise ExchangeInfoError(f"unusable answer: {exc}") from None
    missing = [symbol for symbol in symbols if symbol not in rules]
    if missing:
        raise TapewatchError(f"binance exchangeInfo: unknown symbol(s) {', '.join(missing)}")
    return rules


# --- parsing ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TradeEvent:
    quote: Quote
    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class DepthEvent:
    book: Book
    last_update_id: int


@dataclass(frozen=True, slots=True)
class SubscriptionAck:
    request_id: Any
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorReply:
    request_id: Any
    code: Any
    message: str


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    event_time: int | None


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: str
    field: str | None
    symbol: str | None = None


Event = TradeEvent | DepthEvent | SubscriptionAck | ErrorReply | ServerShutdown | Malformed


class _FieldError(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.reason = f"{field}: {problem}"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _decimal(value: Any, path: str, *, positive: bool) -> Decimal:
    if value is None:
        raise _FieldError(path, "missing")
    if not isinstance(value, str):
        raise _FieldError(path, f"expected a decimal string, got {_json_kind(value)}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _FieldError(path, f"not a decimal number: {_short(value)}") from None
    if not number.is_finite():
        raise _FieldError(path, f"not finite: {_short(value)}")
    if positive and number <= 0:
        raise _FieldError(path, f"must be > 0, got {_short(value)}")
    if number < 0:
        raise _FieldError(path, f"must be ≥ 0, got {_short(value)}")
    return number


def _integer(data: dict[str, Any], key: str, path: str) -> int:
    value = data.get(key)
    if value is None:
        raise _FieldError(path, "missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _FieldError(path, f"expected an integer, got {_json_kind(value)}")
    if value < 0:
        raise _FieldError(path, f"must be ≥ 0, got {value}")
    return value


def _record(cls: type[_R], values: dict[str, Any], paths: Mapping[str, str]) -> _R:
    """Validate through the record contract; its complaints are re-addressed to the Binance field."""
    try:
        return cls.from_dict(values)
    except RecordError as exc:
        head, _, rest = (exc.field or "").partition(".")
        where = paths.get(head, f"data.{head}" if head else "data")
        raise _FieldError(f"{where}.{rest}" if rest else where, exc.reason) from None


_QUOTE_PATHS: Final = {"symbol": "stream", "ts": "data.T", "price": "data.p", "size": "data.q", "seq": "data.t"}
_BOOK_PATHS: Final = {"symbol": "stream", "bids": "data.bids", "asks": "data.asks"}


def _trade(symbol: str, stream: str, data: dict[str, Any]) -> TradeEvent:
    kind = data.get("e")
    if kind is not None and kind != "trade":
        raise _FieldError("data.e", f"expected 'trade', got {_short(kind)}")
    named = data.get("s")
    if named is not None and (not isinstance(named, str) or named.upper() != symbol):
        raise _FieldError("data.s", f"{_short(named)} does not match stream {stream!r}")
    trade_id = _integer(data, "t", "data.t")
    price = _decimal(data.get("p"), "data.p", positive=True)
    size = _decimal(data.get("q"), "data.q", positive=True)
    ts = _integer(data, "T", "data.T")
    if ts >= MAX_EPOCH_MS:
        raise _FieldError("data.T", f"{ts} is not epoch milliseconds (microseconds?)")
    buyer_is_maker = data.get("m")
    if not isinstance(buyer_is_maker, bool):
        problem = "missing" if buyer_is_maker is None else f"expected true/false, got {_json_kind(buyer_is_maker)}"
        raise _FieldError("data.m", problem)
    quote = _record(
        Quote,
        {
            "symbol": symbol,
            "venue": VENUE,
            "ts": ts,
            "price": float(price),
            "size": float(size),
            # The maker's side is known, so the aggressor is the other one.
            "side": Side.SELL if buyer_is_maker else Side.BUY,
            "seq": trade_id,
        },
        _QUOTE_PATHS,
    )
    return TradeEvent(quote=quote, price=price, size=size)


def _levels(data: dict[str, Any], key: str) -> list[tuple[float, float]]:
    path = f"data.{key}"
    raw = data.get(key)
    if raw is None:
        raise _FieldError(path, "missing")
    if not isinstance(raw, list):
        raise _FieldError(path, f"expected an array, got {_json_kind(raw)}")
    levels: list[tuple[float, float]] = []
    for index, level in enumerate(raw):
        if not isinstance(level, list) or len(level) != 2:
            raise _FieldError(f"{path}.{index}", "expected [price, quantity]")
        price = _decimal(level[0], f"{path}.{index}.0", positive=True)
        quantity = _decimal(level[1], f"{path}.{index}.1", positive=False)
        levels.append((float(price), float(quantity)))
    return levels


def _depth(symbol: str, data: dict[str, Any], received_ms: int) -> DepthEvent:
    last_update_id = _integer(data, "lastUpdateId", "data.lastUpdateId")
    book = _record(
        Book,
        {
            "symbol": symbol,
            "venue": VENUE,
            "ts": received_ms,
            "bids": _levels(data, "bids"),
            "asks": _levels(data, "asks"),
        },
        _BOOK_PATHS,
    )
    return DepthEvent(book=book, last_update_id=last_update_id)


def _shutdown(message: dict[str, Any]) -> ServerShutdown | None:
    # Seen bare on the stream endpoints and wrapped in "event" on the websocket API; accept both.
    for candidate in (message, message.get("event")):
        if isinstance(candidate, dict) and candidate.get("e") == "serverShutdown":
            when = candidate.get("E")
            return ServerShutdown(when if isinstance(when, int) and not isinstance(when, bool) else None)
    return None


def _reply(message: dict[str, Any]) -> Event:
    request_id = message["id"]
    if isinstance(request_id, bool) or not isinstance(request_id, int | str | None):
        return Malformed(f"id: expected an integer, got {_json_kind(request_id)}", "id")
    if "result" in message:
        return SubscriptionAck(message["id"], message["result"])
    error = message.get("error")
    body = error if isinstance(error, dict) else message
    if "code" in body or "msg" in body:
        return ErrorReply(message["id"], body.get("code"), str(body.get("msg", "")))
    return Malformed("result: missing in a reply", "result")


def parse_message(raw: str | bytes, received_ms: int) -> Event:
    """One websocket text message → the event it carries. Never raises on bad input: returns Malformed."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Malformed(f"invalid JSON: {exc}", None)
    if not isinstance(message, dict):
        return Malformed(f"message: expected a JSON object, got {_json_kind(message)}", None)
    shutdown = _shutdown(message)
    if shutdown is not None:
        return shutdown
    if "stream" not in message:
        if "id" in message:
            return _reply(message)
        return Malformed("stream: missing (neither stream data nor a reply)", "stream")
    return _stream_event(message, received_ms)


def _stream_event(message: dict[str, Any], received_ms: int) -> Event:
    """A message of a subscribed stream (``{"stream": "<symbol>@<kind>", "data": {…}}``) → its event."""
    stream = message["stream"]
    if not isinstance(stream, str):
        return Malformed(f"stream: expected a string, got {_json_kind(stream)}", "stream")
    name, _, kind = stream.partition("@")
    if not kind or not _SYMBOL.fullmatch(name):
        return Malformed(f"stream: not '<symbol>@<stream>': {_short(stream)}", "stream")
    symbol = name.upper()
    data = message.get("data")
    if not isinstance(data, dict):
        problem = "missing" if data is None else f"expected an object, got {_json_kind(data)}"
        return Malformed(f"data: {problem}", "data", symbol)
    wrapped = _shutdown(data)
    if wrapped is not None:
        return wrapped
    try:
        if kind == TRADE_STREAM:
            return _trade(symbol, stream, data)
        if kind in DEPTH_KINDS:
            return _depth(symbol, data, received_ms)
    except _FieldError as bad:
        return Malformed(bad.reason, bad.field, symbol)
    return Malformed(f"stream: unknown stream {_short(stream)}", "stream", symbol)


# --- symbols and connections --------------------------------------------------------------------------------
def parse_symbols(symbols: str | Iterable[str]) -> list[str]:
    """Comma-separated text or a sequence → upper-case symbols, de-duplicated in order. TapewatchError if bad."""
    parts = symbols.split(",") if isinstance(symbols, str) else symbols
    out: list[str] = []
    for part in parts:
        symbol = part.strip().upper()
        if not symbol:
            continue
        if not _SYMBOL.fullmatch(symbol):
            raise TapewatchError(f"binance: invalid symbol {symbol!r} (letters and digits only, e.g. BTCUSDT)")
        if symbol not in out:
            out.append(symbol)
    if not out:
        raise TapewatchError("binance: no symbols given")
    return out


def symbol_streams(symbol: str) -> list[str]:
    lower = symbol.lower()
    return [f"{lower}@{TRADE_STREAM}", f"{lower}@{DEPTH_STREAM}"]


def stream_groups(symbols: Sequence[str], max_streams: int = MAX_STREAMS_PER_CONNECTION) -> list[list[str]]:
    """Streams per connection, whole symbols per connection, never more than ``max_streams`` each."""
    if max_streams < STREAMS_PER_SYMBOL:
        raise ValueError(f"max_streams must be ≥ {STREAMS_PER_SYMBOL}")
    per_connection = max_streams // STREAMS_PER_SYMBOL
    return [
        [stream for symbol in chunk for stream in symbol_streams(symbol)] for chunk in _chunks(symbols, per_connection)
    ]


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class BackOffRecord:
    at: float  # time.monotonic() when the wait began
    group: int | None  # connection group, None for exchangeInfo
    reason: str
    delay_s: float


@dataclass(slots=True)
class BinanceStats:
    """What the framework's counters do not say about this source."""

    connections: int = 0  # websocket connection attempts
    subscribed: int = 0  # connections whose every SUBSCRIBE was acknowledged
    rotations: int = 0  # make-before-break replacements (connection age, serverShutdown)
    server_shutdowns: int = 0
    control_errors: int = 0  # error replies to our requests
    duplicate_trades: int = 0
    stale_books: int = 0
    off_grid_prices: int = 0
    off_grid_sizes: int = 0
    rules_loads: int = 0
    back_offs: list[BackOffRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Ended:
    reason: str
    retry_after_s: float = 0.0


class _Connection:
    """One websocket: subscribe its streams, then read until it ends. Starts on construction."""

    def __init__(
        self,
        owner: BinanceStream,
        group: int,
        streams: Sequence[str],
        emitter: Emitter,
        http: aiohttp.ClientSession,
        stop: asyncio.Event,
        *,
        emitting: bool,
    ) -> None:
        self.owner = owner
        self.group = group
        self.streams = streams
        self.emitter = emitter
        self.http = http
        self.stop = stop
        self.subscribed = asyncio.Event()
        #: set when this connection should be replaced while it keeps delivering
        self.replace = asyncio.Event()
        self.replace_reason = ""
        self.replace_with_back_off = False
        self.subscribed_at: float | None = None
        self.ended_at: float | None = None
        self._pending: set[int] = set()
        self._all_sent = False  # the last SUBSCRIBE has left: its acknowledgement completes the subscription
        self._ack_deadline = math.inf
        #: A replacement holds its data until the connection it replaces is closed, so that exactly one
        #: connection emits at a time, each in exchange order: then "not newer than the last emitted" is an
        #: exact duplicate test, and nothing the old connection still had in flight is lost or reordered.
        self._emitting = emitting
        self._held: list[tuple[Event, str | bytes]] = []
        self.task: asyncio.Task[_Ended] = asyncio.create_task(self._run(), name=f"binance-ws-{group}")

    def delivering_for(self) -> float:
        if self.subscribed_at is None:
            return 0.0
        return (self.ended_at or time.monotonic()) - self.subscribed_at

    async def close(self) -> None:
        """Stop this connection (the websocket closes cleanly) and wait for it."""
        self.task.cancel()
        await asyncio.wait([self.task])
        if not self.task.cancelled() and (exc := self.task.exception()) is not None:
            raise exc

    def _request_replacement(self, reason: str, with_back_off: bool) -> None:
        if not self.replace.is_set():
            self.replace_reason = reason
            self.replace_with_back_off = with_back_off
            self.replace.set()

    async def _run(self) -> _Ended:
        owner = self.owner
        owner.stats.connections += 1
        try:
            async with self.http.ws_connect(
                owner.url,
                autoping=True,
                heartbeat=owner.heartbeat_s,
                timeout=aiohttp.ClientWSTimeout(ws_close=owner.close_timeout_s),
                max_msg_size=owner.max_message_bytes,
            ) as ws:
                aged = asyncio.get_running_loop().call_later(
                    owner.max_connection_age_s,
                    self._request_replacement,
                    f"connection age {owner.max_connection_age_s:.0f} s",
                    False,
                )
                try:
                    return await self._subscribe(ws) or await self._read(ws)
                finally:
                    aged.cancel()
        except aiohttp.WSServerHandshakeError as exc:
            return _Ended(f"handshake refused: HTTP {exc.status} {exc.message}", _retry_after(exc.headers))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return _Ended(f"{type(exc).__name__}: {exc}".rstrip(": "))
        finally:
            self.ended_at = time.monotonic()

    async def _subscribe(self, ws: WebSocket) -> _Ended | None:
        """Send the SUBSCRIBE requests one at a time, each ``control_interval_s`` after the previous one was
        acknowledged; None once all are, else why the connection ended. Spaced from the acknowledgement, not from
        the send: the server has then read the previous request, so it reads the next at least the interval later
        however the network or a busy event loop delays one request and not the other (spacing sends alone
        shrinks by exactly that difference at the far end)."""
        owner = self.owner
        pacer = Pacer(owner.control_interval_s)
        batches = list(_chunks(self.streams, owner.subscribe_batch))
        for n, batch in enumerate(batches, 1):
            if await pacer.wait(self.stop):
                return _Ended("stopping")
            request_id = next(owner.request_ids)
            self._pending.add(request_id)
            self._all_sent = n == len(batches)
            self._ack_deadline = time.monotonic() + owner.ack_timeout_s
            await ws.send_str(orjson.dumps({"method": "SUBSCRIBE", "params": list(batch), "id": request_id}).decode())
            while self._pending:  # what arrives meanwhile (the earlier batches' data) is handled as ever
                if (ended := await self._receive(ws)) is not None:
                    return ended
            pacer.done()
        return None

    async def _read(self, ws: WebSocket) -> _Ended:
        while (ended := await self._receive(ws)) is None:
            pass
        return ended

    async def _receive(self, ws: WebSocket) -> _Ended | None:
        """Handle the next message; why the connection ended, if it did."""
        owner = self.owner
        timeout = None
        if self._pending:
            # receive(0) would mean "no timeout"
            timeout = max(0.001, self._ack_deadline - time.monotonic())
        try:
            message = await ws.receive(timeout=timeout)
        except TimeoutError:
            return _Ended(f"subscription not acknowledged within {owner.ack_timeout_s:g} s")
        if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            ended = self._on_message(message.data)
            if ended is None and self._pending and time.monotonic() > self._ack_deadline:
                return _Ended(f"subscription not acknowledged within {owner.ack_timeout_s:g} s")
            return ended
        if message.type is aiohttp.WSMsgType.ERROR:
            return _Ended(f"websocket error: {ws.exception() or message.data}")
        # CLOSE, CLOSING, CLOSED: by the server, or the TCP connection dropped
        return _Ended(f"closed by server (code {ws.close_code})")

    def start_emitting(self) -> None:
        held, self._held = self._held, []
        self._emitting = True
        for event, raw in held:
            self.owner.dispatch(event, raw, self.emitter)

    def _on_message(self, raw: str | bytes) -> _Ended | None:
        owner = self.owner
        event = parse_message(raw, _now_ms())
        if isinstance(event, TradeEvent | DepthEvent | Malformed):
            if self._emitting:
                owner.dispatch(event, raw, self.emitter)
            else:
                self._held.append((event, raw))
        elif isinstance(event, SubscriptionAck):
            if event.request_id in self._pending:
                self._pending.discard(event.request_id)
                if not self._pending and self._all_sent:
                    self.subscribed_at = time.monotonic()
                    owner.stats.subscribed += 1
                    self.subscribed.set()
        elif isinstance(event, ErrorReply):
            owner.stats.control_errors += 1
            self.emitter.error(f"binance error reply: {event.code} {event.message}")
            log.error(
                "binance error reply",
                extra={"fields": {"stage": STAGE, "id": event.request_id, "code": event.code, "msg": event.message}},
            )
            if event.request_id in self._pending:
                return _Ended(f"subscription {event.request_id} refused: {event.code} {event.message}")
        elif isinstance(event, ServerShutdown):
            owner.stats.server_shutdowns += 1
            log.warning("binance serverShutdown", extra={"fields": {"stage": STAGE, "group": self.group}})
            self._request_replacement("serverShutdown", True)
        return None


class BinanceStream:
    """Binance spot trades and 5-level books for ``symbols`` (default: ``settings.sources.binance_symbols``).

    ``run(emitter, stop)`` is a source for :func:`tapewatch.producers.framework.run_source`. The keyword arguments exist
    so tests (and unusual deployments) can shrink the time scales; the defaults follow Binance's documented limits.
    """

    def __init__(
        self,
        settings: Settings,
        symbols: Iterable[str] | None = None,
        *,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        healthy_after_s: float = 60.0,
        max_connection_age_s: float = MAX_CONNECTION_AGE_S,
        overlap_s: float = 1.0,
        heartbeat_s: float = 30.0,
        ack_timeout_s: float = 10.0,
        control_interval_s: float = 1 / 3,
        subscribe_batch: int = 200,
        max_streams_per_connection: int = MAX_STREAMS_PER_CONNECTION,
        rules_refresh_s: float = 3600.0,
        rules_min_interval_s: float = 60.0,
        request_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        if not 1 <= subscribe_batch <= MAX_STREAMS_PER_CONNECTION:
            raise ValueError(f"subscribe_batch must be within 1..{MAX_STREAMS_PER_CONNECTION}")
        if not STREAMS_PER_SYMBOL <= max_streams_per_connection <= MAX_STREAMS_PER_CONNECTION:
            raise ValueError(f"max_streams_per_connection must be within 2..{MAX_STREAMS_PER_CONNECTION}")
        self.settings = settings
        self.symbols = parse_symbols(settings.sources.binance_symbols if symbols is None else symbols)
        self.url = f"{settings.sources.binance_ws_url.rstrip('/')}/stream"
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.healthy_after_s = healthy_after_s
        self.max_connection_age_s = max_connection_age_s
        self.overlap_s = overlap_s
        self.heartbeat_s = heartbeat_s
        self.ack_timeout_s = ack_timeout_s
        self.control_interval_s = control_interval_s
        self.subscribe_batch = subscribe_batch
        self.max_streams_per_connection = max_streams_per_connection
        self.rules_refresh_s = rules_refresh_s
        self.rules_min_interval_s = rules_min_interval_s
        self.request_timeout_s = request_timeout_s
        self.close_timeout_s = close_timeout_s
        self.max_message_bytes = max_message_bytes
        self.stats = BinanceStats()
        self.rules: dict[str, SymbolRules] = {}
        self.request_ids = itertools.count(1)
        self._rules_loaded_at = -math.inf
        # (re)made in run(): an Event belongs to the loop that first waits on it
        self._rules_stale = asyncio.Event()
        self._off_grid_warned: set[str] = set()
        self._last_trade: dict[str, int] = {}
        self._last_book: dict[str, int] = {}

    @property
    def groups(self) -> list[list[str]]:
        return stream_groups(self.symbols, self.max_streams_per_connection)

    # --- data path (synchronous, per message) --------------------------------------------------------------
    def handle(self, raw: str | bytes, received_ms: int, emitter: Emitter) -> Event:
        """Parse one message and emit, skip or dead-letter what it carries; control events are returned."""
        event = parse_message(raw, received_ms)
        self.dispatch(event, raw, emitter)
        return event

    def dispatch(self, event: Event, raw: str | bytes, emitter: Emitter) -> None:
        """Emit, skip or dead-letter a parsed message; control events need nothing here."""
        if isinstance(event, TradeEvent):
            self._on_trade(event, emitter)
        elif isinstance(event, DepthEvent):
            book = event.book
            if event.last_update_id <= self._last_book.get(book.symbol, -1):
                self.stats.stale_books += 1
                emitter.skip()
            else:
                self._last_book[book.symbol] = event.last_update_id
                emitter.book(book)
        elif isinstance(event, Malformed):
            # Text frames are UTF-8, so encoding gives back the exact bytes that arrived.
            data = raw.encode() if isinstance(raw, str) else raw
            key = event.symbol.encode() if event.symbol else None
            emitter.dead_letter(data, event.reason, field=event.field, source=self.url, key=key)

    def _on_trade(self, event: TradeEvent, emitter: Emitter) -> None:
        quote = event.quote
        if quote.seq <= self._last_trade.get(quote.symbol, -1):
            self.stats.duplicate_trades += 1
            emitter.skip()
            return
        self._last_trade[quote.symbol] = quote.seq
        rules = self.rules.get(quote.symbol)
        if rules is not None:
            price_ok, size_ok = rules.price_on_grid(event.price), rules.size_on_grid(event.size)
            self.stats.off_grid_prices += not price_ok
            self.stats.off_grid_sizes += not size_ok
            if not (price_ok and size_ok):
                self._rules_stale.set()
                if quote.symbol not in self._off_grid_warned:
                    self._off_grid_warned.add(quote.symbol)
                    log.warning(
                        "binance trade off the exchange grid (kept as reported; rules will be refreshed)",
                        extra={
                            "fields": {
                                "stage": STAGE,
                                "symbol": quote.symbol,
                                "price": str(event.price),
                                "size": str(event.size),
                                "tick_size": str(rules.tick_size),
                                "step_size": str(rules.step_size),
                            }
                        },
                    )
        emitter.quote(quote)

    # --- control path --------------------------------------------------------------------------------------
    async def run(self, emitter: Emitter, stop: asyncio.Event) -> None:
        # No total timeout on the session: it would also bound the websockets' lifetime.
        timeout = aiohttp.ClientTimeout(total=None, connect=self.request_timeout_s)
        self._rules_stale = asyncio.Event()
        async with aiohttp.ClientSession(timeout=timeout) as http:
            if await self._load_rules(emitter, stop, http):
                return
            tasks = [
                asyncio.create_task(self._keep_group(number, streams, emitter, stop, http))
                for number, streams in enumerate(self.groups)
            ]
            tasks.append(asyncio.create_task(self._refresh_rules(emitter, stop, http)))
            stopping = asyncio.create_task(stop.wait())
            try:
                done, _ = await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not stopping:
                        task.result()  # these only end on stop; anything else is a bug worth surfacing
            finally:
                for task in (*tasks, stopping):
                    task.cancel()
                await asyncio.gather(*tasks, stopping, return_exceptions=True)

    def _backoff(self) -> Backoff:
        return Backoff(self.backoff_initial_s, self.backoff_max_s)

    async def _back_off(
        self,
        emitter: Emitter,
        backoff: Backoff,
        stop: asyncio.Event,
        reason: str,
        group: int | None,
        at_least_s: float = 0.0,
    ) -> bool:
        """The framework's back-off, recorded, and stretched to a server's Retry-After. True when stopping."""
        started, before = time.monotonic(), emitter.counters.backoff_seconds
        if await back_off(emitter, backoff, stop, f"binance: {reason}"):
            return True
        delay = emitter.counters.backoff_seconds - before
        self.stats.back_offs.append(BackOffRecord(started, group, reason, delay))
        if at_least_s > delay:
            emitter.counters.backoff_seconds += at_least_s - delay
            return await sleep_or_stop(stop, at_least_s - delay)
        return False

    async def _load_rules(self, emitter: Emitter, stop: asyncio.Event, http: aiohttp.ClientSession) -> bool:
        """Load exchangeInfo before anything else, retrying transient failures; True when stopping."""
        backoff = self._backoff()
        while not stop.is_set():
            try:
                self.rules = await fetch_exchange_info(
                    http, self.settings.sources.binance_rest_url, self.symbols, self.request_timeout_s
                )
            except ExchangeInfoError as exc:
                if await self._back_off(emitter, backoff, stop, f"exchangeInfo: {exc}", None, exc.retry_after_s):
                    return True
                continue
            self._rules_loaded(first=True)
            return False
        return True

    def _rules_loaded(self, first: bool) -> None:
        self.stats.rules_loads += 1
        self._rules_loaded_at = time.monotonic()
        self._off_grid_warned.clear()
        for rules in self.rules.values():
            if rules.status and rules.status != "TRADING":
                log.warning(
                    "binance symbol not trading: its streams stay quiet",
                    extra={"fields": {"stage": STAGE, "symbol": rules.symbol, "status": rules.status}},
                )
        if first:
            log.info(
                "binance rules loaded",
                extra={
                    "fields": {
                        "stage": STAGE,
                        "symbols": {
                            s: {"tick": str(r.tick_size), "step": str(r.step_size), "min_notional": str(r.min_notional)}
                            for s, r in self.rules.items()
                        },
                    }
                },
            )

    async def _refresh_rules(self, emitter: Emitter, stop: asyncio.Event, http: aiohttp.ClientSession) -> None:
        """Hourly, or soon after an off-grid trade; a failure keeps the rules we have."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rules_stale.wait(), timeout=self.rules_refresh_s)
            since = time.monotonic() - self._rules_loaded_at
            if since < self.rules_min_interval_s and await sleep_or_stop(stop, self.rules_min_interval_s - since):
                return
            self._rules_stale.clear()
            try:
                fresh = await fetch_exchange_info(
                    http, self.settings.sources.binance_rest_url, self.symbols, self.request_timeout_s
                )
            except (ExchangeInfoError, TapewatchError) as exc:
                emitter.error(f"binance: exchangeInfo refresh: {exc}")
                self._rules_loaded_at = time.monotonic()  # retry after the usual spacing, not in a loop
                continue
            self.rules = fresh
            self._rules_loaded(first=False)

    async def _hand_over(self, previous: _Connection, current: _Connection, stop: asyncio.Event) -> bool:
        """Retire the old connection once the new one is subscribed; True when ``stop`` came first (the caller's
        ``finally`` then closes both)."""
        if not previous.task.done():
            # What the old connection had in flight predates the new subscription: let it arrive.
            await _first_of(stop, current.task, timeout=self.overlap_s)
            if stop.is_set():
                return True
        await previous.close()
        self.stats.rotations += 1
        current.start_emitting()
        return False

    async def _keep_group(
        self, group: int, streams: Sequence[str], emitter: Emitter, stop: asyncio.Event, http: aiohttp.ClientSession
    ) -> None:
        """Keep one group of streams subscribed on exactly one delivering connection until ``stop``."""
        backoff = self._backoff()
        current: _Connection | None = None
        previous: _Connection | None = None  # still delivering until ``current`` is subscribed
        reason = ""
        wait = False
        at_least = 0.0
        try:
            while not stop.is_set():
                if wait and await self._back_off(emitter, backoff, stop, reason, group, at_least):
                    return
                current = _Connection(self, group, streams, emitter, http, stop, emitting=previous is None)
                await _first_of(stop, current.task, current.subscribed)
                if stop.is_set():
                    return
                if not current.subscribed.is_set():
                    ended = current.task.result()
                    reason, wait, at_least = ended.reason, True, ended.retry_after_s
                    log.warning("binance connect failed", extra={"fields": {"stage": STAGE, "reason": reason}})
                    continue
                log.info(
                    "binance subscribed", extra={"fields": {"stage": STAGE, "group": group, "streams": len(streams)}}
                )
                if previous is not None:
                    if await self._hand_over(previous, current, stop):
                        return
                    previous = None
                await _first_of(stop, current.task, current.replace)
                if stop.is_set():
                    return
                if current.delivering_for() >= self.healthy_after_s:
                    backoff.reset()
                if current.replace.is_set():
                    previous, reason = current, current.replace_reason
                    wait, at_least = current.replace_with_back_off, 0.0
                    log.info("binance replacing connection", extra={"fields": {"stage": STAGE, "reason": reason}})
                else:
                    ended = current.task.result()
                    reason, wait, at_least = ended.reason, True, ended.retry_after_s
                    log.warning("binance connection lost", extra={"fields": {"stage": STAGE, "reason": reason}})
        finally:
            for connection in (current, previous):
                if connection is not None:
                    await connection.close()


async def _first_of(*items: asyncio.Event | asyncio.Task[Any], timeout: float | None = None) -> None:
    """Wait until any event is set, any task is done, or ``timeout`` passes."""
    waiters: list[asyncio.Future[Any]] = []
    created: list[asyncio.Task[Any]] = []
    for item in items:
        if isinstance(item, asyncio.Event):
            waiter = asyncio.create_task(item.wait())
            created.append(waiter)
            waiters.append(waiter)
        else:
            waiters.append(item)
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in created:
            waiter.cancel()
