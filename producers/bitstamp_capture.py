"""A real Bitstamp level-3 capture → a tick file in the replay / ``detect file`` layout (:mod:`tapewatch.ticks`).

The data: the ``ob-analytics`` package (PyPI, GPL-2.0-or-later) ships a 30-minute Bitstamp BTC/USD capture
(2026-05-02 02:36–03:06 UTC) as package data. ``orders.csv.gz`` is ``live_orders_btcusd``, one row per
message: ``id, timestamp, exchange_timestamp, price, volume, action (created/changed/deleted), direction
(bid/ask)``, opened by a synthetic ``created`` per order of a REST snapshot and closed by a synthetic
``deleted`` per order still resting. ``trades.csv`` is ``live_trades_btcusd``: ``trade_id, timestamp,
exchange_timestamp, price, amount, buy_order_id, sell_order_id, side`` (the taker's side). We read the files
only (located through the installed distribution, the package is never imported: it needs pandas 3, and
this project stays on pandas 2), so it is installed without its dependencies (see the Makefile).

How the file is built, and why:

* **Event time** is ``exchange_timestamp`` (the venue's clock, ms) for orders and trades alike: both channels
  share it, and a sweep's trades carry the same millisecond as the order events that show it.
* **The book** is rebuilt order by order: ``created`` rests the order's volume at its price, ``changed`` sets
  its remaining volume (a taker's ``changed`` reports a fill price, and Bitstamp has no in-place amendment,
  so the order keeps its created price), ``deleted`` removes it. Volumes are counted in integer 1e-8 units
  (Bitstamp's precision) so that level sums never drift.
* **One millisecond is one state**: a sweep arrives as a burst of messages in one exchange millisecond (the
  taker ``created`` at its limit, crossing the book, then the fills), so the book is only read once all of a
  millisecond's events are in. The synthetic snapshot thus becomes one book, and the synthetic deletes at the
  end leave an empty book, which is never written (a side without a single order is not a state of this
  market, it is the capture's edge).
* **Crossed books** left after a whole millisecond cannot exist on a continuous venue: an order we hold was
  gone and its delete was missed (the REST snapshot is older than the stream's start). The crossing order
  last seen alive the longest ago goes first (a newer order on the other side would have traded with it),
  repeated until the book is uncrossed; every drop is counted and listed.
* **Books are snapshots**, as the stream's ``md.books`` are: at most one per ``interval_ms`` (default 100 ms,
  the cadence of Binance's ``depth5@100ms``, the other crypto book feed here), the state at the bucket's
  last change of the five best levels, stamped with that change's time; nothing when the top five did not
  change. ``interval_ms=1`` writes every change.
* **Trades** become rows with price, size and the taker's side (``buy`` → ``B``); a trade and a book of the
  same millisecond are written trade first, because the book shows the state after the trade (the replay
  takes the previous book as the quote in force before a trade).
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd

from tapewatch.errors import TapewatchError
from tapewatch.records import BOOK_DEPTH, SYMBOL_PATTERN
from tapewatch.ticks import LEVEL_COLUMNS

VENUE: Final = "bitstamp"
SYMBOL: Final = "BTCUSD"
DISTRIBUTION: Final = "ob-analytics"
SAMPLE_DIR: Final = "ob_analytics/_sample_data"
DEFAULT_INTERVAL_MS: Final = 100
#: Bitstamp quotes amounts to 8 decimals; integer units keep a level's sum exact however often it changes
UNITS: Final = 10**8
ORDER_COLUMNS: Final = ("id", "exchange_timestamp", "price", "volume", "action", "direction")
TRADE_COLUMNS: Final = ("exchange_timestamp", "price", "amount", "side")
TAKER_SIDES: Final = {"buy": "B", "sell": "S"}

BookSide = Literal["bid", "ask"]
Levels = tuple[tuple[float, int], ...]


@dataclass(slots=True)
class RestingOrder:
    side: BookSide
    price: float
    units: int
    #: time of the order's last event: when it was last known to be alive (the crossing rule's age)
    seen: int


@dataclass(frozen=True, slots=True)
class Dropped:
    """An order removed to uncross the book: its delete was missed."""

    order_id: int
    side: BookSide
    price: float
    volume: float
    seen: int
    dropped_at: int


class OrderBook:
    """Resting orders by id, aggregated per price level, the level prices kept sorted (ascending)."""

    def __init__(self) -> None:
        self.orders: dict[int, RestingOrder] = {}
        self._units: dict[BookSide, dict[float, int]] = {"bid": {}, "ask": {}}
        self._ids: dict[BookSide, dict[float, dict[int, None]]] = {"bid": {}, "ask": {}}
        self._prices: dict[BookSide, list[float]] = {"bid": [], "ask": []}

    def _rest(self, order_id: int, order: RestingOrder) -> None:
        self.orders[order_id] = order
        units, ids = self._units[order.side], self._ids[order.side]
        if order.price not in units:
            units[order.price] = 0
            ids[order.price] = {}
            bisect.insort(self._prices[order.side], order.price)
        units[order.price] += order.units
        ids[order.price][order_id] = None

    def _lift(self, order_id: int) -> RestingOrder:
        order = self.orders.pop(order_id)
        units, ids = self._units[order.side], self._ids[order.side]
        units[order.price] -= order.units
        del ids[order.price][order_id]
        if not ids[order.price]:
            del units[order.price], ids[order.price]
            prices = self._prices[order.side]
            del prices[bisect.bisect_left(prices, order.price)]
        return order

    def create(self, order_id: int, side: BookSide, price: float, units: int, ts: int) -> None:
        if order_id in self.orders:  # a repeated create replaces, never doubles, the order
            self._lift(order_id)
        self._rest(order_id, RestingOrder(side, price, units, ts))

    def change(self, order_id: int, units: int, ts: int) -> bool:
        """Set the remaining volume (0 removes the order); False for an order not in the book."""
        if order_id not in self.orders:
            return False
        order = self._lift(order_id)
        if units > 0:
            self._rest(order_id, RestingOrder(order.side, order.price, units, ts))
        return True

    def delete(self, order_id: int) -> bool:
        if order_id not in self.orders:
            return False
        self._lift(order_id)
        return True

    def best(self, side: BookSide) -> float | None:
        prices = self._prices[side]
        if not prices:
            return None
        return prices[-1] if side == "bid" else prices[0]

    def crossing(self) -> tuple[float, float] | None:
        """(best bid, best ask) when the book is crossed (or locked), else None."""
        bid, ask = self.best("bid"), self.best("ask")
        return (bid, ask) if bid is not None and ask is not None and bid >= ask else None

    def uncross(self, now: int) -> list[Dropped]:
        """Drop crossing orders, the one last seen alive longest ago first, until the book is uncrossed."""
        dropped: list[Dropped] = []
        while (best := self.crossing()) is not None:
            candidates = [*self._ids["bid"][best[0]], *self._ids["ask"][best[1]]]
            stalest = min(candidates, key=lambda i: (self.orders[i].seen, i))
            order = self._lift(stalest)
            dropped.append(Dropped(stalest, order.side, order.price, order.units / UNITS, order.seen, now))
        return dropped

    def top(self, depth: int = BOOK_DEPTH) -> tuple[Levels, Levels] | None:
        """The best ``depth`` levels of each side (price, units), best first; None with a side empty."""
        bids, asks = self._prices["bid"][-depth:][::-1], self._prices["ask"][:depth]
        if not bids or not asks:
            return None
        return (
            tuple((p, self._units["bid"][p]) for p in bids),
            tuple((p, self._units["ask"][p]) for p in asks),
        )


@dataclass
class Rebuild:
    """What the rebuild did with the capture's events (printed by the command, asserted by the tests)."""

    events: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    #: created with a price or volume ≤ 0 (market orders, placeholder rows of the snapshot): they never rest
    unusable_creates: int = 0
    #: changed/deleted for an order the book never held (created before the snapshot and not in it, or an
    #: unusable create above)
    unknown_orders: int = 0
    #: changed/deleted for an order dropped to uncross the book (in the bundled capture: the closing flush's)
    late_for_dropped: int = 0
    states: int = 0  # exchange milliseconds with events
    crossed_states: int = 0  # of those, crossed once all their events were in
    dropped: list[Dropped] = field(default_factory=list)
    dropped_ids: set[int] = field(default_factory=set)
    book_rows: int = 0


Event = tuple[int, int, float, int, str, str]  # id, exchange ms, price, volume in units, action, direction
Snapshot = tuple[int, tuple[Levels, Levels]]  # ts, (bids, asks)


def _apply(book: OrderBook, report: Rebuild, event: Event) -> None:
    order_id, ts, price, units, action, side = event
    report.actions[action] = report.actions.get(action, 0) + 1
    if action == "created":
        if price <= 0 or units <= 0:
            report.unusable_creates += 1
            return
        book.create(order_id, "bid" if side == "bid" else "ask", price, units, ts)
        return
    known = book.change(order_id, units, ts) if action == "changed" else book.delete(order_id)
    if not known:
        if order_id in report.dropped_ids:
            report.late_for_dropped += 1
        else:
            report.unknown_orders += 1


def _settle(
    book: OrderBook, report: Rebuild, ts: int, written: tuple[Levels, Levels] | None, pending: Snapshot | None
) -> Snapshot | None:
    """Once a millisecond's events are all in: uncross the book, then the bucket's snapshot to write — the
    newest change of the top five against the last one written (None: nothing new)."""
    report.states += 1
    if book.crossing() is not None:
        report.crossed_states += 1
        dropped = book.uncross(ts)
        report.dropped.extend(dropped)
        report.dropped_ids.update(d.order_id for d in dropped)
    top = book.top()
    if top is None:
        return pending  # a side is empty: the capture's edge (its synthetic deletes), not a market state
    if top == written:
        return None
    if pending is not None and top == pending[1]:
        return pending  # only deeper levels moved: the top five changed when pending says
    return ts, top


def rebuild_books(
    orders: pd.DataFrame, symbol: str = SYMBOL, interval_ms: int = DEFAULT_INTERVAL_MS
) -> tuple[pd.DataFrame, Rebuild]:
    """Five-level book rows (the tick-file columns) from order events, at most one per ``interval_ms``."""
    if interval_ms < 1:
        raise ValueError("interval_ms must be at least 1")
    book, report = OrderBook(), Rebuild()
    events = _events(orders)
    report.events = len(events)
    rows: list[Snapshot] = []
    pending: Snapshot | None = None  # the newest change of the current bucket, written when the bucket ends
    for i, event in enumerate(events):
        ts = event[1]
        if pending is not None and ts // interval_ms != pending[0] // interval_ms:
            rows.append(pending)
            pending = None
        _apply(book, report, event)
        if i + 1 < len(events) and events[i + 1][1] == ts:
            continue  # the millisecond is not complete: a sweep may still be crossing the book
        pending = _settle(book, report, ts, rows[-1][1] if rows else None, pending)
    if pending is not None:
        rows.append(pending)
    report.book_rows = len(rows)
    return _book_frame(rows, symbol), report


def _numbers(frame: pd.DataFrame, column: str, what: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise TapewatchError(f"{what}: column {column}: {bad:,} empty or non-numeric value(s)")
    return values


def _integers(frame: pd.DataFrame, column: str, what: str) -> np.ndarray:
    # never through float64: order ids (2e15 today) would lose digits past 2**53
    values = pd.to_numeric(frame[column], errors="coerce")
    if values.isna().any() or not pd.api.types.is_integer_dtype(values):
        raise TapewatchError(f"{what}: column {column}: {int(values.isna().sum()):,} empty or non-integer value(s)")
    return values.to_numpy(dtype=np.int64)


def _events(orders: pd.DataFrame) -> list[Event]:
    """The order events as plain tuples in exchange-time order (stable: message order within a millisecond)."""
    _require(orders, ORDER_COLUMNS, "orders")
    frame = orders.sort_values("exchange_timestamp", kind="stable")
    action = frame["action"].astype(str).str.strip().str.lower()
    side = frame["direction"].astype(str).str.strip().str.lower()
    strange = sorted(set(action) - {"created", "changed", "deleted"}) + sorted(set(side) - {"bid", "ask"})
    if strange:
        raise TapewatchError(f"orders: unknown action/direction value(s) {strange[:5]}")
    volume = _numbers(frame, "volume", "orders")
    return list(
        zip(
            _integers(frame, "id", "orders").tolist(),
            _integers(frame, "exchange_timestamp", "orders").tolist(),
            _numbers(frame, "price", "orders").tolist(),
            np.rint(volume * UNITS).astype(np.int64).tolist(),
            action.tolist(),
            side.tolist(),
            strict=True,
        )
    )


def _empty_rows(n: int, symbol: str) -> dict[str, object]:
    return {
        "symbol": [symbol] * n,
        "venue": [VENUE] * n,
        "ts": np.zeros(n, dtype=np.int64),
        "price": np.full(n, np.nan),
        "size": np.full(n, np.nan),
        "side": [None] * n,
        **{column: np.full(n, np.nan) for column in LEVEL_COLUMNS},
    }


def _book_frame(rows: Sequence[Snapshot], symbol: str) -> pd.DataFrame:
    data = _empty_rows(len(rows), symbol)
    data["ts"] = np.array([ts for ts, _ in rows], dtype=np.int64)
    for name, pick in (("bid", 0), ("ask", 1)):
        prices = np.full((len(rows), BOOK_DEPTH), np.nan)
        sizes = np.full((len(rows), BOOK_DEPTH), np.nan)
        for r, (_, top) in enumerate(rows):
            for k, (price, units) in enumerate(top[pick]):
                prices[r, k], sizes[r, k] = price, units / UNITS
        for k in range(BOOK_DEPTH):
            data[f"{name}{k + 1}"], data[f"{name}sz{k + 1}"] = prices[:, k], sizes[:, k]
    return pd.DataFrame(data)


def trade_rows(trades: pd.DataFrame, symbol: str = SYMBOL) -> pd.DataFrame:
    """One tick row per match: exchange time, price, amount and the taker's side (B/S, None if unknown)."""
    _require(trades, TRADE_COLUMNS, "trades")
    frame = trades.sort_values("exchange_timestamp", kind="stable")
    data = _empty_rows(len(frame), symbol)
    data["ts"] = _integers(frame, "exchange_timestamp", "trades")
    data["price"] = _numbers(frame, "price", "trades")
    data["size"] = _numbers(frame, "amount", "trades")
    data["side"] = [TAKER_SIDES.get(s) for s in frame["side"].astype(str).str.strip().str.lower()]
    return pd.DataFrame(data)


def tick_frame(books: pd.DataFrame, trades: pd.DataFrame) -> pd.DataFrame:
    """Trades and books in event-time order; in one millisecond the trades first (the book is the after)."""
    frame = pd.concat([trades.assign(_after=0), books.assign(_after=1)], ignore_index=True)
    frame = frame.sort_values(["ts", "_after"], kind="stable").drop(columns="_after")
    return frame.reset_index(drop=True)


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TapewatchError(f"{what}: missing column(s) {', '.join(missing)}")


def read_capture_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise TapewatchError(f"no such file: {path}")
    try:
        return pd.read_csv(path)  # .csv.gz too: pandas infers the compression from the name
    except (OSError, ValueError) as exc:
        raise TapewatchError(f"cannot read {path}: {exc}") from None


@dataclass
class Conversion:
    ticks: pd.DataFrame
    rebuild: Rebuild
    trades: int
    seconds: float


def convert(orders: Path, trades: Path, symbol: str = SYMBOL, interval_ms: int = DEFAULT_INTERVAL_MS) -> Conversion:
    """A capture's ``orders.csv(.gz)`` and ``trades.csv`` → one tick frame (trades and five-level books)."""
    if not re.fullmatch(SYMBOL_PATTERN, symbol):
        raise TapewatchError(f"not an instrument code: {symbol!r}")
    started = time.perf_counter()
    books, report = rebuild_books(read_capture_file(orders), symbol, interval_ms)
    prints = trade_rows(read_capture_file(trades), symbol)
    ticks = tick_frame(books, prints)
    return Conversion(ticks, report, len(prints), time.perf_counter() - started)


def sample_paths() -> tuple[Path, Path]:
    """``orders.csv.gz`` and ``trades.csv`` inside the installed ob-analytics distribution (not imported)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise TapewatchError(
            f"the Bitstamp sample ships in the {DISTRIBUTION} package, which is not installed: `make deps` "
            f"installs it (pip install --no-deps {DISTRIBUTION}), or give --orders and --trades"
        ) from None
    base = Path(str(dist.locate_file(SAMPLE_DIR)))
    orders, trades = base / "orders.csv.gz", base / "trades.csv"
    if not orders.exists() or not trades.exists():
        raise TapewatchError(f"{DISTRIBUTION} {dist.version} has no sample capture under {base}")
    return orders, trades


def write_ticks(frame: pd.DataFrame, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise TapewatchError(f"{out}: unsupported format {suffix!r} (use .parquet or .csv)")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)


def summary(done: Conversion) -> list[str]:
    r = done.rebuild
    lines = [
        f"{r.events:,} order events ({', '.join(f'{k} {v:,}' for k, v in sorted(r.actions.items()))}) in "
        f"{done.seconds:.1f} s: {r.book_rows:,} book rows, {done.trades:,} trades",
        f"ignored: {r.unusable_creates:,} creates with price or volume ≤ 0, {r.unknown_orders:,} events for "
        f"orders the book never held",
        f"crossed after {r.crossed_states:,} of {r.states:,} milliseconds: {len(r.dropped):,} stale order(s) "
        f"dropped ({r.late_for_dropped:,} later event(s) named a dropped order)",
    ]
    for d in r.dropped[:10]:
        age_s = (d.dropped_at - d.seen) / 1000
        lines.append(f"  dropped {d.side} {d.order_id} {d.volume:g} @ {d.price:g}, last seen {age_s:.1f} s before")
    return lines
