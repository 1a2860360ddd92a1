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

from tapewatch.errors import TapewatchError
from tapewatch.producers.framework import Emitter, sleep_or_stop
from tapewatch.records import Book, Quote
from tapewatch.ticks import LEVEL_COLUMNS, Validated

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


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def _levels(prices: list[float], sizes: list[float]) -> list[tuple[float, float]]:
    return [(p, q) for p, q in zip(prices, sizes, strict=True) if not math.isnan(p)]


def emit_rows(batch: np.ndarray, v: Validated, emitter: Emitter, seq: dict[str, int]) -> None:
    """Publish one batch of rows. Columns become Python lists once per batch (per-row numpy indexing costs
    more than building the record), and book columns only for the rows that have a book."""
    good = v.good[batch].tolist()
    symbols, venues, sides = v.symbol[batch].tolist(), v.venue[batch].tolist(), v.side[batch].tolist()
    tss, prices, sizes = v.ts[batch].tolist(), v.price[batch].tolist(), v.size[batch].tolist()
    quote_bids, quote_asks = v.quote_bid[batch].tolist(), v.quote_ask[batch].tolist()
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
        book = books.get(j)
        if book is not None:
            bids, asks = book
            emitter.book(Book(symbol=symbol, venue=venues[j], ts=tss[j], bids=bids, asks=asks))
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
                    bid=_finite(quote_bids[j]),
                    ask=_finite(quote_asks[j]),
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
