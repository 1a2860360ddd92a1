"""The tick-file contract: the columns a replay or ``detect file`` reads, validated in one vectorised pass.

One definition for both readers (``tapewatch.producers.replay`` and ``tapewatch.evaluation.lookback``), with the record
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


def prints_only(symbol: str, venue: str, ts: np.ndarray, price: np.ndarray, size: np.ndarray) -> pd.DataFrame:
    """Tick rows of a tape of prints alone (no aggressor side, no book), in the replay / ``detect file`` layout."""
    n = len(ts)
    return pd.DataFrame(
        {
            "symbol": [symbol] * n,
            "venue": [venue] * n,
            "ts": ts,
            "price": price,
            "size": size,
            "side": [None] * n,
            **{column: np.full(n, np.nan) for column in LEVEL_COLUMNS},
        }
    )


class Validated:
    """A replay table split into good rows (typed numpy columns) and rejected rows with reasons."""

    def __init__(self, data: pd.DataFrame, venue: str) -> None:
        checks = _Checks(data)
        symbol = _symbols(checks)
        ts, price, size = _trades(checks)
        self.side = _sides(checks)
        self.venue = (
            data["venue"].astype("string").fillna(venue).to_numpy(dtype=object)
            if "venue" in data.columns
            else np.full(len(data), venue, dtype=object)
        )
        levels = _levels(checks)

        self.good = checks.reason == ""
        self.reason = checks.reason
        self.field = checks.field
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


class _Checks:
    """Per row, the first check it failed: the reason and the column (empty while it passes them all).

    Checks run in a fixed order (symbol, ts, price and size, side, book levels), so a row with several faults
    is reported by the first of them, the same whoever reads the file.
    """

    def __init__(self, data: pd.DataFrame) -> None:
        self.data = data
        self.reason = np.full(len(data), "", dtype=object)
        self.field = np.full(len(data), "", dtype=object)

    def reject(self, mask: np.ndarray, column: str, why: str) -> None:
        fresh = mask & (self.reason == "")
        self.reason[fresh] = f"{column}: {why}"
        self.field[fresh] = column

    def numeric(self, column: str) -> np.ndarray:
        """The column as floats (NaN where empty or absent); a value that is there but not a number is rejected."""
        if column not in self.data.columns:
            return np.full(len(self.data), np.nan)
        raw = self.data[column]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        self.reject(raw.notna().to_numpy() & ~np.isfinite(values), column, "not a number")
        return values


def _symbols(checks: _Checks) -> pd.Series:
    symbol = checks.data["symbol"].astype("string").str.strip()
    checks.reject(symbol.isna().to_numpy() | (symbol.fillna("") == "").to_numpy(), "symbol", "missing")
    pattern = symbol.fillna("").str.fullmatch(SYMBOL_PATTERN).fillna(False).to_numpy(dtype=bool)
    checks.reject(~pattern, "symbol", "not an instrument code (letters, digits and . _ : / ^ = + & -, at most 32)")
    return symbol


def _trades(checks: _Checks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ts, price, size) with the record contract's bounds checked."""
    reject = checks.reject
    ts = checks.numeric("ts")
    reject(np.isnan(ts) | (ts < 0) | (np.floor(ts) != ts), "ts", "must be a non-negative integer (epoch ms)")
    reject(ts >= MAX_EPOCH_MS, "ts", "from the year 2100 on")
    price = checks.numeric("price")
    size = checks.numeric("size")
    reject((price < MIN_PRICE) | (price > MAX_PRICE), "price", f"must be within {MIN_PRICE:g}..{MAX_PRICE:g}")
    reject((size < 0) | (size > MAX_SIZE), "size", f"must be within 0..{MAX_SIZE:g}")
    reject((size > 0) & (size < MIN_SIZE), "size", f"must be 0 or at least {MIN_SIZE:g}")
    reject(np.isnan(price) & (size > 0), "price", "a trade (size > 0) needs a price")
    return ts, price, size


def _sides(checks: _Checks) -> np.ndarray:
    """The aggressor side per row (``None`` where the file gives none)."""
    data = checks.data
    if "side" not in data.columns:
        return np.full(len(data), None, dtype=object)
    side_raw = data["side"].astype("string").str.strip().str.upper()
    known = side_raw.isin(list(SIDES)).fillna(False).to_numpy(dtype=bool)
    checks.reject(side_raw.notna().to_numpy() & ~known, "side", "must be B or S (or buy, sell)")
    # an empty field is "no side" (None), as an absent column is: the record contract has no NaN side
    return side_raw.map(SIDES, na_action="ignore").astype(object).where(side_raw.notna(), None).to_numpy(dtype=object)


def _levels(checks: _Checks) -> dict[str, np.ndarray]:
    """Every book level column, each level plausible, paired with its size and best first."""
    levels = {c: checks.numeric(c) for c in LEVEL_COLUMNS}
    reject = checks.reject
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
    return levels


def _prevailing(
    symbols: np.ndarray, order: np.ndarray, bid1: np.ndarray, ask1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the best bid and ask of the symbol's *previous* book row in event-time order (NaN before the
    first): the quote in force before the row's trade, which a row's own book (taken after it) is not. The
    aggressor-side inference reads it (:mod:`tapewatch.detectors.aggressor`)."""
    frame = pd.DataFrame({"symbol": symbols[order], "bid": bid1[order], "ask": ask1[order]})
    filled = frame.groupby("symbol", sort=False)[["bid", "ask"]].ffill()
    before = filled.groupby(frame["symbol"], sort=False).shift(1)
    bid, ask = np.full(len(order), np.nan), np.full(len(order), np.nan)
    bid[order] = before["bid"].to_numpy(dtype=float)
    ask[order] = before["ask"].to_numpy(dtype=float)
    return bid, ask
