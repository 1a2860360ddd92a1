"""The tick-file contract: the columns a replay or ``detect file`` reads, validated in one vectorised pass.

One definition for both readers (``producers.replay`` and ``offline.lookback``), with the record
contract's bounds (:mod:`tapewatch.records`): a row either passes every check or is rejected with the first
failing column and a reason, never silently blanked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tapewatch.records import (
    BOOK_DEPTH,
    MAX_EPOCH_MS,
    MAX_PRICE,
    MAX_SIZE,
    MIN_PRICE,
    MIN_SIZE,
    SYMBOL_PATTERN,
    Side,
)

LEVEL_COLUMNS = [f"{side}{kind}{i}" for side in ("bid", "ask") for kind in ("", "sz") for i in range(1, BOOK_DEPTH + 1)]
#: every spelling of an aggressor side the readers accept (case-insensitive, surrounding blanks ignored)
SIDES = {"B": Side.BUY, "BUY": Side.BUY, "S": Side.SELL, "SELL": Side.SELL}


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
        pattern = symbol.fillna("").str.fullmatch(SYMBOL_PATTERN).fillna(False).to_numpy(dtype=bool)
        reject(~pattern, "symbol", "not an instrument code (letters, digits and . _ : / ^ = + & -, at most 32)")
        ts = numeric("ts")
        reject(np.isnan(ts) | (ts < 0) | (np.floor(ts) != ts), "ts", "must be a non-negative integer (epoch ms)")
        reject(ts >= MAX_EPOCH_MS, "ts", "from the year 2100 on")
        price = numeric("price")
        size = numeric("size")
        reject((price < MIN_PRICE) | (price > MAX_PRICE), "price", f"must be within {MIN_PRICE:g}..{MAX_PRICE:g}")
        reject((size < 0) | (size > MAX_SIZE), "size", f"must be within 0..{MAX_SIZE:g}")
        reject((size > 0) & (size < MIN_SIZE), "size", f"must be 0 or at least {MIN_SIZE:g}")
        reject(np.isnan(price) & (size > 0), "price", "a trade (size > 0) needs a price")

        if "side" in data.columns:
            side_raw = data["side"].astype("string").str.strip().str.upper()
            known = side_raw.isin(list(SIDES)).fillna(False).to_numpy(dtype=bool)
            reject(side_raw.notna().to_numpy() & ~known, "side", "must be B or S (or buy, sell)")
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
                reject((p < MIN_PRICE) | (p > MAX_PRICE), f"{side}{i}", f"must be within {MIN_PRICE:g}..{MAX_PRICE:g}")
                reject((q < 0) | (q > MAX_SIZE) | ((q > 0) & (q < MIN_SIZE)), f"{side}sz{i}", "not a plausible size")
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
        usable = self.good & self.has_book
        self.quote_bid, self.quote_ask = _prevailing(
            self.symbol,
            self.order,
            np.where(usable, self.bid_px[:, 0], np.nan),
            np.where(usable, self.ask_px[:, 0], np.nan),
        )


def _prevailing(
    symbols: np.ndarray, order: np.ndarray, bid1: np.ndarray, ask1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the best bid and ask of the symbol's *previous* book row in event-time order (NaN before the
    first): the quote in force before the row's trade, which a row's own book (taken after it) is not. The
    aggressor-side inference reads it (:mod:`detectors.aggressor`)."""
    frame = pd.DataFrame({"symbol": symbols[order], "bid": bid1[order], "ask": ask1[order]})
    filled = frame.groupby("symbol", sort=False)[["bid", "ask"]].ffill()
    before = filled.groupby(frame["symbol"], sort=False).shift(1)
    bid, ask = np.full(len(order), np.nan), np.full(len(order), np.nan)
    bid[order] = before["bid"].to_numpy(dtype=float)
    ask[order] = before["ask"].to_numpy(dtype=float)
    return bid, ask
