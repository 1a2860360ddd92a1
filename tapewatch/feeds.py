"""What each venue's feed carries: the feed profile every stage and offline twin reads instead of guessing.

A profile is a declaration, not something learned from arrival timing, because the stream's output must not
depend on how a worker happened to interleave md.quotes and md.books. The order-flow chunks of a venue whose
feed sends books wait for both streams (``W = min(newest quote, newest book)``); a venue without books is
driven by its quotes alone, and a stray book is used only if it is on time.

Profiles come from the built-in table below, overridden or extended by ``TAPEWATCH_FEED_PROFILES`` (JSON:
``{"venue": {"books": true, "sides": false, "prints": "snapshots", "max_price": 1e5, "max_size": 1e9,
"symbol_pattern": "[0-9]{4}"}}``, any field may be left out). A venue named nowhere gets :data:`UNKNOWN`:
quotes only (a book is used when it is on time), sides as given, the record contract's bounds, no session
close, and prints learnt per symbol from its own records (:mod:`tapewatch.detectors.feed_learning`: one per trade, or
one per snapshot on a clock).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import time
from functools import lru_cache
from typing import Any, Final, Literal

import orjson

from tapewatch.records import MAX_PRICE, MAX_SIZE, Book, ExecutionReport, OrderBookEvent, Quote

Prints = Literal["trades", "snapshots"]
#: how far a book's best bid may reach into its best ask: ``below`` (strictly: a locked or crossed book is
#: dead-lettered), ``locked`` (bid = ask allowed, crossed refused) or ``crossed`` (both allowed)
Touch = Literal["below", "locked", "crossed"]
#: how a venue numbers its market-by-order events (md.orders' ``sequence``): ``contiguous`` (one after the last, per
#: symbol: a gap is lost events), ``increasing`` (only rises: numbered per channel, or by time) or ``none``
OrderSequence = Literal["contiguous", "increasing", "none"]
ORDER_SEQUENCES: Final[tuple[OrderSequence, ...]] = ("contiguous", "increasing", "none")
#: where a venue's trades and books (md.quotes, md.books) come from: ``venue`` (its own level-2 feed) or ``orders``
#: (the stream worker derives them from its market-by-order feed, md.orders)
Level2Source = Literal["venue", "orders"]
LEVEL2_SOURCES: Final[tuple[Level2Source, ...]] = ("venue", "orders")


DAY_MS: Final = 86_400_000


def ms_to_close(ts: int, close: time | None, utc_offset_min: int) -> int | None:
    """Milliseconds from ``ts`` (epoch ms) to a session's ``close`` (local time, ``utc_offset_min`` from UTC) on the
    local day of ``ts``: negative after the close, None for a venue that never closes.

    >>> ms_to_close(1_704_173_400_000 - 60_000, time(13, 30), 480)  # a minute before 13:30 Taipei
    60000
    """
    if close is None:
        return None
    local = (ts + utc_offset_min * 60_000) % DAY_MS
    return ((close.hour * 60 + close.minute) * 60 + close.second) * 1000 - local


@dataclass(frozen=True, slots=True)
class FeedProfile:
    """What one venue's records carry."""

    #: the feed sends five-level book snapshots (md.books) for its symbols
    books: bool = False
    #: trades carry their aggressor side (``Quote.side``)
    sides: bool = True
    #: ``trades``: one quote per print; ``snapshots``: size traded since the previous snapshot, no print times;
    #: ``None``: not known, each symbol's own records decide (:mod:`tapewatch.detectors.feed_learning`)
    prints: Prints | None = "trades"
    #: plausibility at the edge: a price or size above these, or a symbol not matching the pattern, is
    #: dead-lettered by the stream worker (the record contract's bounds are the outer limit)
    max_price: float = MAX_PRICE
    max_size: float = MAX_SIZE
    symbol_pattern: str | None = None
    #: the session calendar: local closing time ("13:30") and the venue's UTC offset in minutes; None for a
    #: venue that never closes (24-hour crypto), where marking the close does not exist
    close: str | None = None
    utc_offset_min: int = 0
    #: whether a book may be locked or crossed (a one-engine snapshot never is: one that is was corrupted)
    touch: Touch = "below"
    #: the smallest price move (bps) a price-based alert may be raised on, whatever the symbol's quiet hours say
    #: (``None``: the detectors' default, :class:`tapewatch.detectors.patterns.materiality.MaterialityParams`)
    material_bps: float | None = None
    #: how its market-by-order events are numbered (:data:`OrderSequence`), which decides what a gap means
    order_sequence: OrderSequence = "none"
    #: where its md.quotes and md.books records come from (:data:`Level2Source`); derived ones arrive in the order
    #: they were made, trades numbered one after the other (``Quote.seq``) and books one per millisecond at most,
    #: so one sent again after a worker's crash is known by its number or time
    level2: Level2Source = "venue"
    #: its market-by-order feed comes on md.orders: a firm's reports on the venue wait for it, to read the public
    #: depth each order was placed against (without it they are judged as they come, the depth unknown)
    market_by_order: bool = False

    @property
    def close_time(self) -> time | None:
        if self.close is None:
            return None
        hour, minute = self.close.split(":")
        return time(int(hour), int(minute))

    def ms_to_close(self, ts: int) -> int | None:
        """Milliseconds from ``ts`` to the venue's close that day (negative after it); None where it never closes."""
        return ms_to_close(ts, self.close_time, self.utc_offset_min)

    def implausible(self, record: Quote | Book | OrderBookEvent | ExecutionReport) -> tuple[str, str] | None:
        """(field, reason) when ``record`` is not plausible for this venue, else None."""
        if self.symbol_pattern is not None and not _matches(self.symbol_pattern, record.symbol):
            return "symbol", f"implausible: symbol {record.symbol!r} does not match the venue's {self.symbol_pattern}"
        # the exact type first: isinstance on a record contract costs several times as much (pydantic's metaclass),
        # and a market-by-order feed asks for each of its events
        if type(record) is OrderBookEvent or isinstance(record, Quote | OrderBookEvent):
            if record.price is not None and record.price > self.max_price:
                return "price", f"implausible: price {record.price:g} above the venue's bound {self.max_price:g}"
            if record.size > self.max_size:
                return "size", f"implausible: size {record.size:g} above the venue's bound {self.max_size:g}"
            return None
        if isinstance(record, ExecutionReport):
            return self._bounded(
                ("price", record.price), ("last_price", record.last_price), max_=self.max_price
            ) or self._bounded(("quantity", record.quantity), ("last_qty", record.last_qty), max_=self.max_size)
        for name, levels in (("bids", record.bids), ("asks", record.asks)):
            for price, size in levels:
                if price > self.max_price or size > self.max_size:
                    return name, f"implausible: level ({price:g}, {size:g}) beyond the venue's bounds"
        return self._touching(record)

    @staticmethod
    def _bounded(*values: tuple[str, float | None], max_: float) -> tuple[str, str] | None:
        for name, value in values:
            if value is not None and value > max_:
                return name, f"implausible: {name} {value:g} above the venue's bound {max_:g}"
        return None

    def _touching(self, book: Book) -> tuple[str, str] | None:
        """Why the book's best bid reaches its best ask further than the venue allows (None when it does not)."""
        if not (book.bids and book.asks) or self.touch == "crossed":
            return None
        bid, ask = book.bids[0][0], book.asks[0][0]
        if bid > ask:
            return "bids", f"implausible: crossed book (best bid {bid:g} above best ask {ask:g}) on this venue"
        if bid == ask and self.touch == "below":
            return "bids", f"implausible: locked book (best bid = best ask = {bid:g}) on this venue"
        return None


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _matches(pattern: str, symbol: str) -> bool:
    return _compiled(pattern).fullmatch(symbol) is not None


UNKNOWN: Final = FeedProfile(prints=None)

#: TWSE and TPEx send the same MIS feed
_TAIWAN: Final = FeedProfile(
    books=True,
    sides=False,
    prints="snapshots",
    max_price=1e5,
    max_size=1e10,
    symbol_pattern=r"[0-9][0-9A-Z]{3,5}",
    close="13:30",
    utc_offset_min=480,
    touch="crossed",
)

#: the order-book market's venue (``tapewatch produce market``): its market-by-order feed and its instruments' grids
ORDER_BOOK_MARKET_VENUE: Final = "sim-orders"

BUILT_IN: Final[Mapping[str, FeedProfile]] = {
    # the labelled simulator: every print with its side, a book snapshot per symbol every few seconds
    "sim": FeedProfile(
        books=True, sides=True, prints="trades", close="13:30", utc_offset_min=480, order_sequence="contiguous"
    ),
    # the order-book market's market-by-order feed (every order event, numbered per symbol), its trades and books
    # derived by the stream worker; no order of the market comes near a billion shares
    ORDER_BOOK_MARKET_VENUE: FeedProfile(
        books=True,
        sides=True,
        prints="trades",
        max_size=1e9,
        close="13:30",
        utc_offset_min=480,
        order_sequence="contiguous",
        level2="orders",
        market_by_order=True,
    ),
    # the simulator's snapshot profiles (twse-mis, snapshot-1s): what TWSE MIS sends, under a venue of its own
    "sim-snapshots": FeedProfile(books=True, sides=False, prints="snapshots", close="13:30", utc_offset_min=480),
    # TWSE MIS (listed and OTC): 5-second snapshots, volume since the previous one, best five levels, no side
    # (codes: four to six digits or capitals after a digit, e.g. 2330, 00631L; no share costs 100,000 TWD, no
    # listed company has 10 billion shares on one level)
    # (09:00–13:30 Asia/Taipei, the last five minutes a closing call auction, whose trial-match books may be
    # locked or crossed until the auction uncrosses them; MIS also assembles a snapshot's levels at different
    # moments, so a crossed snapshot is a transient artefact, not corruption: accepted)
    "twse": _TAIWAN,
    "tpex": _TAIWAN,
    # Binance spot: trades with the taker's side, depth5 snapshots; symbols like BTCUSDT (the matching engine's
    # own snapshot: a locked or crossed one would have matched, so it is refused)
    "binance": FeedProfile(books=True, sides=True, prints="trades", symbol_pattern=r"[A-Z0-9]{2,20}"),
    # US equities' regular session (09:30–16:00 New York): a vendor's trades or 1-minute bars, no book, no side.
    # The offset is Eastern Standard Time's: a profile has one offset, so in summer time give -240 in
    # TAPEWATCH_FEED_PROFILES (the closing window would otherwise sit an hour off)
    "us-equities": FeedProfile(
        books=False,
        sides=False,
        prints="trades",
        symbol_pattern=r"[A-Z][A-Z.]{0,6}",
        close="16:00",
        utc_offset_min=-300,
    ),
    # Bitstamp: every match with its taker's side, five-level books rebuilt from live_orders (the capture in
    # producers/bitstamp_capture.py); 24 hours, no close; pairs like BTCUSD, ETHEUR, 1INCHUSD; no pair trades
    # above 10 million a unit, and the meme pairs' orders (SHIB, PEPE) run to billions of units; a book rebuilt
    # from order events shows a marketable order before its match removes the makers it takes, and a maker
    # order at the opposite best price is one event from matching: locked books are accepted, crossed refused
    "bitstamp": FeedProfile(
        books=True,
        sides=True,
        prints="trades",
        max_price=1e7,
        max_size=1e12,
        symbol_pattern=r"[A-Z0-9]{4,16}",
        touch="locked",
    ),
}


def _check(venue: str, fields: Mapping[str, Any]) -> None:
    """Refuse an override that is not a valid partial :class:`FeedProfile`, naming the venue and field."""

    def bad(why: str) -> ValueError:
        return ValueError(f"feed profile of {venue!r}: {why}")

    unknown = set(fields) - set(FeedProfile.__slots__)
    if unknown:
        raise bad(f"unknown field(s) {sorted(unknown)}")
    if fields.get("prints", "trades") not in ("trades", "snapshots", None):
        raise bad("prints must be 'trades', 'snapshots' or null (learnt from the data)")
    if fields.get("touch", "below") not in ("below", "locked", "crossed"):
        raise bad("touch must be 'below', 'locked' or 'crossed'")
    if fields.get("level2", "venue") not in LEVEL2_SOURCES:
        raise bad(f"level2 must be one of {', '.join(repr(s) for s in LEVEL2_SOURCES)}")
    if fields.get("order_sequence", "none") not in ORDER_SEQUENCES:
        raise bad(f"order_sequence must be one of {', '.join(repr(s) for s in ORDER_SEQUENCES)}")
    for name in ("books", "sides", "market_by_order"):
        if name in fields and not isinstance(fields[name], bool):
            raise bad(f"{name} must be true or false")
    wrong = _wrong_number(fields)
    if wrong is not None:
        raise bad(wrong)
    close = fields.get("close")
    if close is not None and not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", str(close)):
        raise bad("close must be HH:MM or null")
    if "symbol_pattern" in fields:
        try:
            re.compile(str(fields["symbol_pattern"]))
        except re.error as exc:
            raise bad(f"symbol_pattern: {exc}") from None


def _wrong_number(fields: Mapping[str, Any]) -> str | None:
    """What is wrong with an override's numbers (``None``: nothing)."""
    for name in ("max_price", "max_size"):
        if name in fields and not (isinstance(fields[name], int | float) and fields[name] > 0):
            return f"{name} must be a positive number"
    floor = fields.get("material_bps")
    if floor is not None and not (isinstance(floor, int | float) and 0 <= floor < 10_000):
        return "material_bps must be a number of bps in [0, 10000) or null"
    if not isinstance(fields.get("utc_offset_min", 0), int):
        return "utc_offset_min must be an integer"
    return None


class FeedProfiles:
    """Venue → :class:`FeedProfile`: the built-in table with the settings' overrides applied."""

    def __init__(self, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        table = dict(BUILT_IN)
        for venue, fields in (overrides or {}).items():
            _check(venue, fields)
            table[venue] = replace(table.get(venue, UNKNOWN), **fields)
        self._table = table

    @classmethod
    def from_json(cls, text: str) -> FeedProfiles:
        """Parse ``TAPEWATCH_FEED_PROFILES`` (empty: the built-in table alone)."""
        if not text.strip():
            return cls()
        parsed = orjson.loads(text)
        if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
            raise ValueError('feed profiles must be a JSON object of objects: {"venue": {"books": true}}')
        return cls(parsed)

    def __call__(self, venue: str) -> FeedProfile:
        return self._table.get(venue, UNKNOWN)

    def venues(self) -> dict[str, FeedProfile]:
        return dict(self._table)
