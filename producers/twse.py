"""TWSE MIS real-time quotes → ``md.quotes`` and ``md.books``.

Two halves:

* **Parsing** (pure, no I/O): :func:`parse_body` turns one ``getStockInfo.jsp`` answer into :class:`Quote` and
  :class:`Book` records, rejected elements (with the reason naming the MIS field) and an envelope error when
  the whole answer is unusable. Per-symbol memory (cumulative volume already attributed, last snapshot
  signature, sequence number) lives in :class:`TwseState`, so the parser can be driven by a replay as well
  as by the poller.
* **Polling** (:class:`TwsePoller`): one batched request for every channel, never sooner than
  ``settings.sources.twse_poll_interval_s`` (≥ 5 s) after the previous answer, because the exchange bans an IP that
  asks more than about 3 times in 5 s; exponential back-off on resets, timeouts, HTTP errors and non-JSON
  bodies; optional proxy rotation; Asia/Taipei market hours.

Facts about the format are in ``FEEDS.md``; in short: every value is a string, ``"-"`` means "nothing here"
(no trade in this ~5 s disclosure, an empty book side, an unknown symbol), volumes are in lots of 1,000 shares.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import aiohttp
import orjson
from yarl import URL

from tapewatch.backoff import Backoff
from tapewatch.errors import TapewatchError
from tapewatch.producers.framework import Emitter, Pacer, back_off, sleep_or_stop, unless_stopped
from tapewatch.records import BOOK_DEPTH, Book, Quote, RecordError
from tapewatch.settings import Settings, host_port, is_loopback

log = logging.getLogger(__name__)

TAIPEI: Final = ZoneInfo("Asia/Taipei")
LOT_SHARES: Final = 1000
#: The exchange's own refresh cadence and, with its ~3 requests / 5 s ban, our floor between requests.
MIN_INTERVAL_S: Final = 5.0
VENUES: Final[dict[str, str]] = {"tse": "twse", "otc": "tpex"}
QUOTE_PATH: Final = "/stock/api/getStockInfo.jsp"
WARM_UP_PATH: Final = "/stock/index.jsp"
#: Market-data keys only: the answer also carries keys that change on every request (query time and the
#: like), which would defeat duplicate detection if they were part of the signature.
SIGNATURE_KEYS: Final = ("d", "t", "tlong", "z", "tv", "v", "o", "h", "l", "y", "u", "w", "b", "g", "a", "f")
#: Cap on a body kept in the DLQ: an HTML ban page is small, but a misbehaving proxy's answer need not be.
MAX_DEAD_LETTER_BYTES: Final = 256 * 1024

#: record field → the MIS key it comes from, to name the culprit when a record refuses a value
_MIS_KEY: Final[dict[str, str]] = {
    "ts": "tlong",
    "price": "z",
    "size": "v",
    "volume": "v",
    "open": "o",
    "high": "h",
    "low": "l",
    "prev_close": "y",
    "bid": "b",
    "ask": "a",
    "bids": "b",
    "asks": "a",
}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_INTEGER = re.compile(r"\d+")
_DAY = re.compile(r"\d{8}")
_CHANNEL = re.compile(r"(tse|otc)_([0-9A-Za-z]+)\.tw")


# --- parsing ------------------------------------------------------------------------------------------------
class ElementError(ValueError):
    """One ``msgArray`` element we cannot use; ``field`` is the MIS key at fault."""

    def __init__(self, field: str | None, reason: str, *, placeholder: bool = False) -> None:
        self.field = field
        self.reason = reason
        self.placeholder = placeholder
        # A placeholder's reason leads with "placeholder element" so the dead-letter counters group them apart.
        super().__init__(f"{field}: {reason}" if field and not placeholder else reason)


@dataclass(slots=True)
class SymbolMemory:
    """What the parser remembers of one stock code between polls."""

    day: str | None = None
    #: cumulative volume (lots) already turned into trade sizes; the baseline of the next delta
    attributed_v: float | None = None
    signature: tuple[object, ...] | None = None
    seq: int = 0


class TwseState:
    """Per-symbol memory of the parser, one entry per stock code."""

    def __init__(self) -> None:
        self.symbols: dict[str, SymbolMemory] = {}
        #: placeholder dead letters already sent: an unknown channel answers the same way on every poll
        self.placeholders_seen: set[str] = set()

    def of(self, code: str) -> SymbolMemory:
        state = self.symbols.get(code)
        if state is None:
            state = self.symbols[code] = SymbolMemory()
        return state


@dataclass(frozen=True, slots=True)
class Rejected:
    """A payload for the dead-letter topic: the raw bytes and why."""

    raw: bytes
    reason: str
    field: str | None = None
    key: bytes | None = None


@dataclass(slots=True)
class ParsedBatch:
    quotes: list[Quote] = field(default_factory=list)
    books: list[Book] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: int = 0
    #: set when the answer as a whole is unusable (non-JSON, no msgArray, empty msgArray): back off
    error: str | None = None


def channel_code(channel: str) -> str:
    """``tse_2330.tw`` → ``2330``."""
    match = _CHANNEL.fullmatch(channel)
    if match is None:
        raise ValueError(f"not a MIS channel: {channel!r} (expected tse_CODE.tw or otc_CODE.tw)")
    return match.group(2)


def _text(element: dict[str, Any], key: str) -> str | None:
    raw = element.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        # Every MIS value is a string; anything else means the format changed under us, not a value to coerce.
        raise ElementError(key, f"expected a string, got {type(raw).__name__}")
    return raw


def _number(element: dict[str, Any], key: str) -> float | None:
    """A numeric string; ``None`` for a missing key, ``"-"`` or ``""``."""
    raw = _text(element, key)
    if raw is None or raw in ("-", ""):
        return None
    if not _NUMBER.fullmatch(raw):
        raise ElementError(key, f"not a number: {raw[:40]!r}")
    return float(raw)


def _optional_price(element: dict[str, Any], key: str) -> float | None:
    value = _number(element, key)
    # o/h/l/y are context, not trades; a zero there (unconfirmed, seen in other TWSE feeds before the open)
    # means "not yet", so it becomes null rather than costing the whole snapshot.
    return value if value is not None and value > 0 else None


def _levels(element: dict[str, Any], price_key: str, qty_key: str, descending: bool) -> list[tuple[float, float]]:
    """One side of the best-5 book: ``"79.3000_79.2000_"`` with ``"13_39_"``; ``"-"`` is an empty side."""
    prices_raw = _text(element, price_key)
    qtys_raw = _text(element, qty_key)
    if prices_raw in (None, "-", "") and qtys_raw in (None, "-", ""):
        return []
    if prices_raw in (None, "-", ""):
        raise ElementError(price_key, f"empty while {qty_key} has volumes")
    if qtys_raw in (None, "-", ""):
        raise ElementError(qty_key, f"empty while {price_key} has prices")
    assert prices_raw is not None and qtys_raw is not None
    prices = [part for part in prices_raw.split("_") if part]
    qtys = [part for part in qtys_raw.split("_") if part]
    if len(prices) != len(qtys):
        raise ElementError(qty_key, f"{len(qtys)} volumes for {len(prices)} prices in {price_key}")
    levels: list[tuple[float, float]] = []
    for price_text, qty_text in zip(prices, qtys, strict=True):
        if not _NUMBER.fullmatch(price_text):
            raise ElementError(price_key, f"not a number: {price_text[:40]!r}")
        if not _NUMBER.fullmatch(qty_text):
            raise ElementError(qty_key, f"not a number: {qty_text[:40]!r}")
        price = float(price_text)
        if price <= 0:
            # A zero-price level stands for market orders in the opening auction (unconfirmed); it has no
            # price to put in a book, and inventing one is worse than showing one level fewer.
            continue
        levels.append((price, float(qty_text) * LOT_SHARES))
    ordered = sorted(levels, key=lambda level: level[0], reverse=descending)
    if [p for p, _ in levels] != [p for p, _ in ordered]:
        raise ElementError(price_key, f"levels not ordered best first ({'high→low' if descending else 'low→high'})")
    return levels[:BOOK_DEPTH]


def _trading_day(element: dict[str, Any], ts: int) -> str:
    day = _text(element, "d")
    if day is None:
        return datetime.fromtimestamp(ts / 1000, TAIPEI).strftime("%Y%m%d")
    if not _DAY.fullmatch(day):
        raise ElementError("d", f"not a YYYYMMDD date: {day[:40]!r}")
    return day


def _attribute(
    state: SymbolMemory, day: str, v: float, price: float | None, tv: float | None
) -> tuple[float | None, float, float]:
    """(price, size in lots, new baseline) for one snapshot, from the cumulative volume ``v``.

    Sizes come from ``v`` deltas so that two polls seeing the same disclosure never count its ``tv`` twice.
    Volume that grew while no trade was shown (a disclosure we did not poll) stays unattributed until the
    next snapshot with a price: the sum of sizes then still equals the session volume, and no price is made up.
    """
    baseline = state.attributed_v
    if baseline is None or state.day != day or v < baseline:
        # First sight of the symbol today, or a new session (the counter went back): the only trade we can
        # size is the one this disclosure shows; what traded before we started is not ours to report.
        size = tv if price is not None and tv is not None else 0.0
        return price, size, v
    if price is None:
        return None, 0.0, baseline
    delta = v - baseline
    if delta <= 0:
        # A price with no new volume is a disclosure already counted (re-served with a new timestamp).
        return None, 0.0, baseline
    return price, delta, v


def parse_element(element: Any, state: TwseState) -> tuple[Quote, Book] | None:
    """One ``msgArray`` element → (Quote, Book); ``None`` for a duplicate of the symbol's previous snapshot.

    Raises :class:`ElementError` naming the MIS field at fault; ``state`` is then left as it was, except that
    the snapshot's signature is remembered (an unchanged bad element is reported once, not every poll).
    """
    code = _code(element)
    symbol_state = state.of(code)
    signature = tuple(element.get(key) for key in SIGNATURE_KEYS)
    if signature == symbol_state.signature:
        return None
    symbol_state.signature = signature

    venue = _venue(element)
    ts = _timestamp(element)
    day = _trading_day(element, ts)
    price, tv, v = _trade(element)
    bids = _levels(element, "b", "g", descending=True)
    asks = _levels(element, "a", "f", descending=False)
    trade_price, size_lots, new_baseline = _attribute(symbol_state, day, v, price, tv)
    quote_fields: dict[str, Any] = {
        "symbol": code,
        "venue": venue,
        "ts": ts,
        "price": trade_price,
        "size": size_lots * LOT_SHARES,
        "volume": v * LOT_SHARES,
        **_context_prices(element),
        "bid": bids[0][0] if bids else None,
        "ask": asks[0][0] if asks else None,
        "seq": symbol_state.seq + 1,
    }
    quote, book = _records(quote_fields, {"symbol": code, "venue": venue, "ts": ts, "bids": bids, "asks": asks})
    # Only a snapshot that became records moves the volume baseline and the sequence.
    symbol_state.day = day
    symbol_state.attributed_v = new_baseline
    symbol_state.seq += 1
    return quote, book


def _code(element: Any) -> str:
    """The element's stock code (``c``); an element without one is the exchange's placeholder."""
    if not isinstance(element, dict):
        raise ElementError(None, f"element is not a JSON object but {type(element).__name__}")
    code = element.get("c")
    if not code:
        raise ElementError("c", "placeholder element: unknown symbol or wrong market prefix", placeholder=True)
    if not isinstance(code, str):
        raise ElementError("c", f"expected a string, got {type(code).__name__}")
    return code


def _venue(element: dict[str, Any]) -> str:
    exchange = _text(element, "ex")
    venue = VENUES.get(exchange or "")
    if venue is None:
        raise ElementError("ex", f"unknown market {exchange!r} (expected tse or otc)")
    return venue


def _timestamp(element: dict[str, Any]) -> int:
    tlong = _text(element, "tlong")
    if tlong is None:
        raise ElementError("tlong", "missing")
    # 13 digits reach the year 2286: anything longer is garbage that would overflow a date or a JSON int.
    if not _INTEGER.fullmatch(tlong) or len(tlong) > 13:
        raise ElementError("tlong", f"not epoch milliseconds: {tlong[:40]!r}")
    return int(tlong)


def _trade(element: dict[str, Any]) -> tuple[float | None, float | None, float]:
    """(trade price or ``None`` when the snapshot shows no trade, its volume ``tv``, cumulative volume ``v``),
    volumes in lots."""
    z = _text(element, "z")
    if z is None:
        raise ElementError("z", "missing")
    price = _number(element, "z")
    if z not in ("-", "") and (price is None or price <= 0):
        raise ElementError("z", f"not a trade price: {z[:40]!r}")
    tv = _number(element, "tv") if price is not None else None
    if _text(element, "v") is None:
        raise ElementError("v", "missing")
    v = _number(element, "v")
    if v is None:
        if price is not None:
            raise ElementError("v", "no cumulative volume on a snapshot with a trade")
        v = 0.0  # before the first trade of the day nothing has traded (unconfirmed: "-" rather than "0")
    return price, tv, v


def _context_prices(element: dict[str, Any]) -> dict[str, float | None]:
    return {
        "open": _optional_price(element, "o"),
        "high": _optional_price(element, "h"),
        "low": _optional_price(element, "l"),
        "prev_close": _optional_price(element, "y"),
    }


def _records(quote_fields: dict[str, Any], book_fields: dict[str, Any]) -> tuple[Quote, Book]:
    """The snapshot's records; a value a record refuses is blamed on the MIS key it came from."""
    try:
        return Quote.from_dict(quote_fields), Book.from_dict(book_fields)
    except RecordError as exc:
        where = f"{exc.record}.{exc.field}" if exc.field else exc.record
        mis_key = _MIS_KEY.get((exc.field or "").split(".", 1)[0])
        raise ElementError(mis_key, f"{where}: {exc.reason}") from None


def parse_body(body: bytes, state: TwseState, channels: Sequence[str] = ()) -> ParsedBatch:
    """One ``getStockInfo.jsp`` answer → records, rejected elements and, when nothing is usable, an error.

    ``channels`` (the ones requested) only sharpen the reason given for a placeholder element: the exchange
    does not say which channel it stands for, but the channels with no real element are the suspects.
    """
    batch = ParsedBatch()
    elements = _elements(body, batch)
    if not elements:
        return batch
    returned = {
        element.get("c") for element in elements if isinstance(element, dict) and isinstance(element.get("c"), str)
    }
    unanswered = [
        channel for channel in channels if _CHANNEL.fullmatch(channel) and channel_code(channel) not in returned
    ]
    for element in elements:
        try:
            parsed = parse_element(element, state)
        except ElementError as exc:
            _reject(batch, state, element, exc, unanswered)
            continue
        except Exception as exc:
            # A parser bug must not stop the feed: the element goes to the DLQ and the traceback to the log.
            log.exception("twse: unexpected error parsing an element")
            _reject(batch, state, element, ElementError(None, f"parser error: {type(exc).__name__}: {exc}"), [])
            continue
        if parsed is None:
            batch.skipped += 1
            continue
        quote, book = parsed
        batch.quotes.append(quote)
        batch.books.append(book)
    return batch


def _elements(body: bytes, batch: ParsedBatch) -> list[Any]:
    """The answer's ``msgArray``; empty, with ``batch.error`` set (and the body dead-lettered unless it was a
    well-formed empty answer), when the answer as a whole is unusable."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        # What the exchange answers when it throttles a client: an HTML page, or nothing at all.
        _refuse_body(batch, body, f"non-JSON body ({len(body)} bytes; throttled?)", f"non-JSON body: {body[:60]!r}")
        return []
    if not isinstance(envelope, dict):
        error = f"body is a JSON {type(envelope).__name__}, not an object"
        _refuse_body(batch, body, error, "envelope: not a JSON object")
        return []
    detail = f"rtcode={envelope.get('rtcode')!r} rtmessage={envelope.get('rtmessage')!r}"
    elements = envelope.get("msgArray")
    if "msgArray" not in envelope:
        _refuse_body(batch, body, f"no msgArray ({detail})", f"msgArray: missing ({detail})", "msgArray")
        return []
    if not isinstance(elements, list):
        error = f"msgArray is a {type(elements).__name__}, not a list"
        _refuse_body(batch, body, error, "msgArray: not a list", "msgArray")
        return []
    if not elements:
        # A well-formed "nothing for you": not worth a dead letter, but a reason to slow down.
        batch.error = f"empty msgArray ({detail})"
    return elements


def _refuse_body(batch: ParsedBatch, body: bytes, error: str, reason: str, field: str | None = None) -> None:
    """The answer as a whole is unusable: ``error`` makes the poller back off; the body goes to the DLQ with
    ``reason``, cut to a size it keeps."""
    if len(body) <= MAX_DEAD_LETTER_BYTES:
        raw, note = body, ""
    else:
        raw, note = body[:MAX_DEAD_LETTER_BYTES], f" (first {MAX_DEAD_LETTER_BYTES} of {len(body)} bytes kept)"
    batch.error = error
    batch.rejected.append(Rejected(raw, f"{reason}{note}", field=field))


def _reject(batch: ParsedBatch, state: TwseState, element: Any, error: ElementError, unanswered: list[str]) -> None:
    reason = str(error)
    if error.placeholder:
        if unanswered:
            reason += f"; no data for {', '.join(unanswered)}"
        if reason in state.placeholders_seen:
            batch.skipped += 1
            return
        state.placeholders_seen.add(reason)
    code = element.get("c") if isinstance(element, dict) else None
    key = code.encode() if isinstance(code, str) and code else None
    batch.rejected.append(Rejected(orjson.dumps(element), reason, error.field, key))


def deliver(batch: ParsedBatch, emitter: Emitter, source: str) -> None:
    """Hand a parsed batch to the emitter (records, dead letters, skips). The envelope error is the caller's."""
    for quote in batch.quotes:
        emitter.quote(quote)
    for book in batch.books:
        emitter.book(book)
    for rejected in batch.rejected:
        emitter.dead_letter(rejected.raw, rejected.reason, field=rejected.field, source=source, key=rejected.key)
    for _ in range(batch.skipped):
        emitter.skip()


# --- market hours -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MarketHours:
    """When to poll, in Asia/Taipei: ``open``–``close`` on ``weekdays`` (Monday = 0), plus ``linger``.

    ``linger`` keeps polling a little past the close because the closing-auction result (matched at 13:30)
    is disclosed a few seconds later. Exchange holidays are not known here; on those days every snapshot
    repeats the last one and is dropped as a duplicate.
    """

    open: clock_time = clock_time(9, 0)
    close: clock_time = clock_time(13, 30)
    weekdays: frozenset[int] = frozenset(range(5))
    linger: timedelta = timedelta(minutes=2)
    tz: ZoneInfo = TAIPEI

    @classmethod
    def parse(cls, text: str) -> MarketHours:
        """``"09:00-13:30"`` → hours with the default weekdays and linger."""
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
        if match is None:
            raise ValueError(f"hours must look like 09:00-13:30, got {text!r}")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        try:
            opens, closes = clock_time(h1, m1), clock_time(h2, m2)
        except ValueError as exc:
            raise ValueError(f"hours {text!r}: {exc}") from None
        if closes <= opens:
            raise ValueError(f"hours {text!r}: the close must come after the open")
        return cls(open=opens, close=closes)

    def _window(self, day: datetime) -> tuple[datetime, datetime]:
        start = datetime.combine(day.date(), self.open, self.tz)
        return start, datetime.combine(day.date(), self.close, self.tz) + self.linger

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.tz)
        start, end = self._window(local)
        return local.weekday() in self.weekdays and start <= local < end

    def next_open(self, now: datetime) -> datetime:
        """The start of the next polling window at or after ``now`` (``now`` itself while open)."""
        local = now.astimezone(self.tz)
        if self.is_open(local):
            return local
        for days_ahead in range(8):
            day = local + timedelta(days=days_ahead)
            start, _ = self._window(day)
            if day.weekday() in self.weekdays and start > local:
                return start
        raise ValueError("market hours without any trading weekday")

    def seconds_until_open(self, now: datetime) -> float:
        return max(0.0, (self.next_open(now) - now.astimezone(self.tz)).total_seconds())


# --- the poller ---------------------------------------------------------------------------------------------
def parse_channels(text: str | Iterable[str]) -> list[str]:
    """Channels from a comma-separated setting or the lines of a file; ``#`` starts a comment. Deduplicated."""
    parts = text.replace("\n", ",").split(",") if isinstance(text, str) else list(text)
    channels: list[str] = []
    for part in parts:
        channel = part.split("#", 1)[0].strip()
        if not channel:
            continue
        channel_code(channel)  # raises with the offending channel named
        if channel not in channels:
            channels.append(channel)
    return channels


def load_channels(settings: Settings, symbols_file: Path | None = None) -> list[str]:
    """The channels to poll: from ``symbols_file`` (one per line) if given, else ``settings.sources.twse_symbols``."""
    origin = str(symbols_file) if symbols_file else "TAPEWATCH_TWSE_SYMBOLS"
    try:
        text = symbols_file.read_text(encoding="utf-8") if symbols_file else settings.sources.twse_symbols
        channels = parse_channels(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TapewatchError(f"{origin}: {exc}") from None
    if not channels:
        raise TapewatchError(f"{origin}: no channels to poll (expected lines like tse_2330.tw or otc_6547.tw)")
    return channels


def polite_session(
    headers: dict[str, str], timeout: aiohttp.ClientTimeout, cookie_jar: aiohttp.CookieJar | None = None
) -> aiohttp.ClientSession:
    """A client session that never re-sends a request on its own."""
    session = aiohttp.ClientSession(headers=headers, timeout=timeout, cookie_jar=cookie_jar)
    if hasattr(session, "_retry_connection"):
        # aiohttp re-sends a GET at once when the server drops the connection (the RFC 9112 retry). Against a
        # server that resets connections *because* it was asked too often, that instant second request is what
        # gets an IP banned; here every retry waits for the back-off. No public switch exists; aiohttp's own
        # TestClient turns it off the same way.
        session._retry_connection = False
    return session


def request_interval(base_url: str, settings: Settings, test_interval_s: float | None) -> float:
    """Seconds between requests to a TWSE host: never below 5 s, except against a local test server.

    The settings field is validated ge=5, but Settings.updated(...) skips validation: check again here.
    """
    if test_interval_s is None:
        return max(MIN_INTERVAL_S, settings.sources.twse_poll_interval_s)
    host, _ = host_port(base_url, 443)
    if not is_loopback(host):
        raise ValueError("test_interval_s is only for local test servers; TWSE bans fast clients")
    if test_interval_s <= 0:
        raise ValueError("test_interval_s must be positive")
    return test_interval_s


class TwsePoller:
    """Polls MIS for ``channels`` and emits what it parses. Use ``TwsePoller(settings, channels).run``.

    ``test_interval_s`` lowers the interval below the exchange's 5 s floor and exists only for tests and
    replay servers on this machine: it is refused unless ``settings.sources.twse_mis_url`` is a loopback address.
    """

    def __init__(
        self,
        settings: Settings,
        channels: Sequence[str] | None = None,
        *,
        hours: MarketHours | None = None,
        ignore_hours: bool = False,
        max_polls: int | None = None,
        warm_up: bool = True,
        timeout_s: float = 10.0,
        max_backoff_s: float = 300.0,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
        test_interval_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.channels = list(channels) if channels is not None else parse_channels(settings.sources.twse_symbols)
        if not self.channels:
            raise ValueError("no MIS channels to poll")
        for channel in self.channels:
            channel_code(channel)
        base = settings.sources.twse_mis_url.rstrip("/")
        self.interval_s = interval = request_interval(base, settings, test_interval_s)
        self.hours = hours or MarketHours()
        self.ignore_hours = ignore_hours
        self.max_polls = max_polls
        self.warm_up = warm_up
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, 5.0))
        self.rng = rng or random.Random()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.proxies = [p.strip() for p in settings.sources.twse_proxies.split(",") if p.strip()]
        self.quote_url = URL(base + QUOTE_PATH)
        self.warm_up_url = URL(base + WARM_UP_PATH)
        self.source = str(self.quote_url)
        self.state = TwseState()
        # Jitter only ever lengthens the gap: spreading requests out must not bring one closer to the limit.
        self.pacer = Pacer(interval, jitter_s=0.1 * interval, rng=self.rng)
        self.backoff = Backoff(base_s=interval, cap_s=max(max_backoff_s, interval), rng=self.rng)
        self.polls = 0
        self._proxy_index = 0

    @property
    def proxy(self) -> str | None:
        return self.proxies[self._proxy_index % len(self.proxies)] if self.proxies else None

    def _rotate_proxy(self) -> None:
        if len(self.proxies) > 1:
            self._proxy_index = (self._proxy_index + 1) % len(self.proxies)
            # The index, not the URL: proxy URLs may carry credentials.
            log.info("twse: next proxy", extra={"fields": {"proxy_index": self._proxy_index}})

    def request_url(self) -> URL:
        return self.quote_url.with_query(
            {"ex_ch": "|".join(self.channels), "json": "1", "delay": "0", "_": str(int(time.time() * 1000))}
        )

    async def _get(self, session: aiohttp.ClientSession, url: URL) -> tuple[int, bytes]:
        try:
            async with session.get(url, proxy=self.proxy) as response:
                return response.status, await response.read()
        finally:
            self.pacer.done()  # the exchange saw this request before now: space the next one from here

    async def _warm_up(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """Fetch the index page for the session cookie browsers get; the quote API mostly works without it."""
        try:
            stopped, result = await unless_stopped(stop, self._get(session, self.warm_up_url))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("twse: warm-up failed, polling without a session cookie: %s", exc or type(exc).__name__)
            return
        if not stopped and result is not None and result[0] != 200:
            log.warning("twse: warm-up answered HTTP %s, polling anyway", result[0])

    async def _poll(self, session: aiohttp.ClientSession, emitter: Emitter, stop: asyncio.Event) -> str | None:
        """One request; the error that calls for a back-off, or None."""
        self.polls += 1
        try:
            stopped, result = await unless_stopped(stop, self._get(session, self.request_url()))
        except TimeoutError:
            return "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"[:200]
        if stopped or result is None:
            return None
        status, body = result
        if status != 200:
            return f"HTTP {status}"
        batch = parse_body(body, self.state, self.channels)
        deliver(batch, emitter, self.source)
        return batch.error

    async def run(self, emitter: Emitter, stop: asyncio.Event) -> None:
        log.info(
            "twse: polling",
            extra={
                "fields": {
                    "channels": len(self.channels),
                    "interval_s": self.interval_s,
                    "proxies": len(self.proxies),
                    "ignore_hours": self.ignore_hours,
                }
            },
        )
        headers = {
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) tapewatch/0.1",
            "Accept": "application/json, text/javascript, */*; q=0.01",
            "Referer": str(self.warm_up_url),
        }
        # unsafe=True: keep cookies from IP-address hosts too (replay servers, proxies addressed by IP).
        jar = aiohttp.CookieJar(unsafe=True)
        async with polite_session(headers, self.timeout, jar) as session:
            warmed = False
            closed_logged = False
            while not stop.is_set():
                if not self.ignore_hours:
                    wait = self.hours.seconds_until_open(self.clock())
                    if wait > 0:
                        if not closed_logged:
                            opens = self.hours.next_open(self.clock())
                            log.info("twse: market closed, next open %s", opens.isoformat(timespec="minutes"))
                            closed_logged = True
                        warmed = False  # a new trading day gets a fresh session cookie
                        # In slices, so a wall-clock jump (suspend, NTP) cannot oversleep the open by hours.
                        if await sleep_or_stop(stop, min(wait, 300.0)):
                            return
                        continue
                    closed_logged = False
                if self.max_polls is not None and self.polls >= self.max_polls:
                    return
                if self.warm_up and not warmed:
                    # The index page counts against the same per-IP limit, so it waits for its slot too.
                    if await self.pacer.wait(stop):
                        return
                    await self._warm_up(session, stop)
                    warmed = True
                if await self.pacer.wait(stop):
                    return
                error = await self._poll(session, emitter, stop)
                if error is None:
                    self.backoff.reset()
                    continue
                self._rotate_proxy()
                if await back_off(emitter, self.backoff, stop, f"twse: {error}"):
                    return
