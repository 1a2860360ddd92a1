"""Replay recorded ticks and books from CSV or Parquet into md.quotes / md.books.

Columns (one row per tick and/or book snapshot):

| column | required | meaning |
|---|---|---|
| `symbol` | yes | instrument code |
| `ts` | yes | event time, epoch milliseconds UTC |
| `price`, `size` | for trades | trade price and size; empty price = no trade in this row |
| `side` | no | aggressor side: `B`/`S` (also `buy`/`sell`) |
| `venue` | no | defaults to `--venue` |
| `bid1..bid5`, `bidsz1..bidsz5`, `ask1..ask5`, `asksz1..asksz5` | no | book levels, best first |

A row with a price becomes a Quote; a row with any book level becomes a Book (both, when it has both).
Validation is vectorised over the whole file; rows that fail go to ``dlq.producers`` as JSON with the
reason and the offending column, the rest are replayed in event-time order, at the recorded pace times
``speed`` or (``speed`` = 0) as fast as the broker takes them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from producers.framework import Emitter, sleep_or_stop
from tapewatch.errors import TapewatchError
from tapewatch.records import BOOK_DEPTH, Book, Quote, Side

LEVEL_COLUMNS = [f"{side}{kind}{i}" for side in ("bid", "ask") for kind in ("", "sz") for i in range(1, BOOK_DEPTH + 1)]
SIDES = {"B": Side.BUY, "BUY": Side.BUY, "S": Side.SELL, "SELL": Side.SELL}
#: rows handed to the publisher between two checks of the clock and the stop flag
CHUNK = 2048


def read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise TapewatchError(f"replay: no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".gz", ".txt"):
            return pd.read_csv(path, dtype={"symbol": str, "venue": str, "side": str}, keep_default_na=True)
    except (ValueError, OSError) as exc:
        raise TapewatchError(f"replay: cannot read {path}: {exc}") from None
    raise TapewatchError(f"replay: {path}: unsupported format {suffix!r} (use .csv or .parquet)")


def load(paths: Sequence[Path]) -> pd.DataFrame:
    frames = []
    for path in paths:
        frame = read_table(path)
        missing = [c for c in ("symbol", "ts") if c not in frame.columns]
        if missing:
            raise TapewatchError(f"replay: {path}: missing column(s) {', '.join(missing)}")
        has_trades = "price" in frame.columns
        has_book = any(c in frame.columns for c in LEVEL_COLUMNS)
        if not has_trades and not has_book:
            raise TapewatchError(f"replay: {path}: needs trade columns (price, size) or book columns (bid1, ask1, …)")
        frame["_source"] = str(path)
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True, sort=False)
    return data


class Validated:
    """A replay table split into good rows (typed numpy columns) and rejected rows with reasons."""

    def __init__(self, data: pd.DataFrame, venue: str) -> None:
        n = len(data)
        reason = np.full(n, "", dtype=object)
        field = np.full(n, "", dtype=object)

        def reject(mask: np.ndarray, column: str, why: str) -> None:
            fresh = mask & (reason == "")
            reason[fresh] = f"{column}: {why}"
            field[fresh] = column

        def numeric(column: str) -> np.ndarray:
            if column not in data.columns:
                return np.full(n, np.nan)
            raw = data[column]
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
            reject(raw.notna().to_numpy() & ~np.isfinite(values), column, "not a number")
            return values

        symbol = data["symbol"].astype("string").str.strip()
        reject(symbol.isna().to_numpy() | (symbol.fillna("") == "").to_numpy(), "symbol", "missing")
        ts = numeric("ts")
        reject(np.isnan(ts) | (ts < 0) | (np.floor(ts) != ts), "ts", "must be a non-negative integer (epoch ms)")
        price = numeric("price")
        size = numeric("size")
        reject(price <= 0, "price", "must be > 0")
        reject(size < 0, "size", "must be ≥ 0")
        reject(np.isnan(price) & (size > 0), "price", "a trade (size > 0) needs a price")

        if "side" in data.columns:
            side_raw = data["side"].astype("string").str.strip().str.upper()
            known = side_raw.isin(list(SIDES)).fillna(False).to_numpy(dtype=bool)
            reject(side_raw.notna().to_numpy() & ~known, "side", "must be B or S")
            self.side = side_raw.map(SIDES, na_action="ignore").to_numpy(dtype=object)
        else:
            self.side = np.full(n, None, dtype=object)
        self.venue = (
            data["venue"].astype("string").fillna(venue).to_numpy(dtype=object)
            if "venue" in data.columns
            else np.full(n, venue, dtype=object)
        )

        levels = {c: numeric(c) for c in LEVEL_COLUMNS}
        for side in ("bid", "ask"):
            previous: np.ndarray | None = None
            for i in range(1, BOOK_DEPTH + 1):
                p, q = levels[f"{side}{i}"], levels[f"{side}sz{i}"]
                reject(p <= 0, f"{side}{i}", "must be > 0")
                reject(q < 0, f"{side}sz{i}", "must be ≥ 0")
                reject(np.isnan(p) != np.isnan(q), f"{side}sz{i}", f"needs both {side}{i} and {side}sz{i}")
                if previous is not None:
                    worse = p > previous if side == "bid" else p < previous
                    reject(worse & ~np.isnan(p) & ~np.isnan(previous), f"{side}{i}", "levels must be best first")
                    reject(~np.isnan(p) & np.isnan(previous), f"{side}{i}", f"{side}{i - 1} missing")
                previous = p

        self.good = reason == ""
        self.reason = reason
        self.field = field
        self.symbol = symbol.fillna("").to_numpy(dtype=object)
        self.ts = np.nan_to_num(ts, nan=0).astype(np.int64)
        self.price = price
        self.size = np.nan_to_num(size, nan=0.0)
        depth = range(1, BOOK_DEPTH + 1)
        self.bid_px = np.column_stack([levels[f"bid{k}"] for k in depth])
        self.bid_sz = np.column_stack([levels[f"bidsz{k}"] for k in depth])
        self.ask_px = np.column_stack([levels[f"ask{k}"] for k in depth])
        self.ask_sz = np.column_stack([levels[f"asksz{k}"] for k in depth])
        self.has_book = ~np.isnan(self.bid_px[:, 0]) | ~np.isnan(self.ask_px[:, 0])
        self.data = data
        # Event-time order across files; stable, so rows with equal ts keep their file order.
        self.order = np.argsort(self.ts, kind="stable")


def _levels(prices: list[float], sizes: list[float]) -> list[tuple[float, float]]:
    return [(p, q) for p, q in zip(prices, sizes, strict=True) if not math.isnan(p)]


def emit_rows(batch: np.ndarray, v: Validated, emitter: Emitter, seq: dict[str, int]) -> None:
    """Publish one batch of rows. Columns become Python lists once per batch (per-row numpy indexing costs
    more than building the record), and book columns only for the rows that have a book."""
    good = v.good[batch].tolist()
    symbols, venues, sides = v.symbol[batch].tolist(), v.venue[batch].tolist(), v.side[batch].tolist()
    tss, prices, sizes = v.ts[batch].tolist(), v.price[batch].tolist(), v.size[batch].tolist()
    with_book = np.flatnonzero(v.has_book[batch])
    books: dict[int, tuple[list[tuple[float, float]], list[tuple[float, float]]]] = {}
    if len(with_book):
        rows = batch[with_book]
        bid_px, bid_sz = v.bid_px[rows].tolist(), v.bid_sz[rows].tolist()
        ask_px, ask_sz = v.ask_px[rows].tolist(), v.ask_sz[rows].tolist()
        for k, j in enumerate(with_book.tolist()):
            books[j] = (_levels(bid_px[k], bid_sz[k]), _levels(ask_px[k], ask_sz[k]))
    for j, i in enumerate(batch.tolist()):
        symbol = symbols[j]
        if not good[j]:
            row = {
                k: (None if isinstance(val, float) and math.isnan(val) else val)
                for k, val in v.data.iloc[i].items()
                if k != "_source"
            }
            emitter.dead_letter(
                orjson.dumps(row, default=str),
                str(v.reason[i]),
                str(v.field[i]) or None,
                source=str(v.data.at[i, "_source"]),
                key=symbol.encode() or None,
            )
            continue
        bid = ask = None
        book = books.get(j)
        if book is not None:
            bids, asks = book
            emitter.book(Book(symbol=symbol, venue=venues[j], ts=tss[j], bids=bids, asks=asks))
            bid = bids[0][0] if bids else None
            ask = asks[0][0] if asks else None
        price = prices[j]
        if not math.isnan(price):
            n = seq.get(symbol, 0)
            seq[symbol] = n + 1
            emitter.quote(
                Quote(
                    symbol=symbol,
                    venue=venues[j],
                    ts=tss[j],
                    price=price,
                    size=sizes[j],
                    bid=bid,
                    ask=ask,
                    side=sides[j],
                    seq=n,
                )
            )


class Replay:
    """Replays files at ``speed`` × the recorded pace (0 = as fast as possible)."""

    def __init__(self, paths: Sequence[Path], speed: float = 0.0, venue: str = "replay") -> None:
        if speed < 0:
            raise TapewatchError("replay: --speed must be ≥ 0")
        self.validated = Validated(load(paths), venue)
        self.speed = speed

    @property
    def rows(self) -> int:
        return len(self.validated.order)

    async def run(self, emitter: Emitter, stop: asyncio.Event) -> None:
        v = self.validated
        order = v.order
        if not len(order):
            return
        seq: dict[str, int] = {}
        first_ts = int(v.ts[order[0]])
        started = time.monotonic()
        for begin in range(0, len(order), CHUNK):
            if stop.is_set():
                return
            batch = order[begin : begin + CHUNK]
            if self.speed > 0:
                # Pace each row to its own event time; sleep only when ahead of the recording.
                for i in batch:
                    due = (int(v.ts[i]) - first_ts) / 1000 / self.speed
                    ahead = due - (time.monotonic() - started)
                    if ahead > 0 and await sleep_or_stop(stop, ahead):
                        return
                    emit_rows(np.array([i]), v, emitter, seq)
            else:
                emit_rows(batch, v, emitter, seq)
                await asyncio.sleep(0)  # let the progress line and signal handlers run
