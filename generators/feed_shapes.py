"""Feed shapes: how a session of individual prints looks when a venue only sends periodic snapshots.

Pure computation (numpy only). The labelled simulator (:mod:`tapewatch.generators.simulator`) builds every session as a
trade-by-trade tape with its book; a *feed profile* says what the published records look like:

* ``trades`` — every print with its time stamp, aggressor side and the quote it executed against, plus a
  snapshot quote and a book every ``cadence_ms`` (the simulator's own shape).
* ``twse-mis`` — what the TWSE MIS service sends: one snapshot per symbol every 5 s, nothing in between.
* ``snapshot-1s`` — the same shape at 1 s.

A snapshot at time ``T`` covers the prints in ``(T_prev, T]`` (the first one everything up to ``T``): its last
price (null when nothing printed), the shares traded in the interval, the cumulative volume and the session's
open/high/low as of ``T``, no aggressor side, and the last book at or before ``T``. Its ``bid``/``ask`` are the
best bid/ask of the *previous* snapshot's book — the quote in force before the interval's prints, which is what
the quote rule needs to infer sides (the first snapshot carries its own book's, the opening quote).

This module only computes *which* rows make up each snapshot (:func:`snapshot_index`); the simulator assembles
the columns from them, so the labelled episodes are those of the trades session, untouched.

>>> import numpy as np
>>> times = snapshot_times(0, 12_000, 5_000)
>>> times.tolist()
[0, 5000, 10000, 12000]
>>> quote_ts = np.array([0, 1200, 4000, 5000, 9000, 11000])
>>> price = np.array([10.0, 10.1, np.nan, 10.2, np.nan, 10.0])
>>> index = snapshot_index(quote_ts, price, np.array([0, 5000, 10000]), times)
>>> index.row.tolist(), index.last_print.tolist()
([0, 3, 4, 5], [0, 3, -1, 5])
>>> index.book.tolist(), index.previous_book.tolist()
([0, 1, 2, 2], [0, 0, 1, 2])
>>> interval_sizes(np.array([1000.0, 4000.0, 4000.0, 6000.0])).tolist()
[1000.0, 3000.0, 0.0, 2000.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: feed profile → snapshot interval in ms (None: individual prints, the simulator's own shape)
SNAPSHOT_INTERVAL_MS: Final[Mapping[str, int | None]] = {
    "trades": None,
    "twse-mis": 5_000,
    "snapshot-1s": 1_000,
}
FEEDS: Final[tuple[str, ...]] = tuple(SNAPSHOT_INTERVAL_MS)


def snapshot_interval(feed: str) -> int | None:
    """The profile's snapshot interval in ms, None for ``trades``; ValueError for an unknown profile."""
    if feed not in SNAPSHOT_INTERVAL_MS:
        raise ValueError(f"feed must be one of {', '.join(FEEDS)}, not {feed!r}")
    return SNAPSHOT_INTERVAL_MS[feed]


def snapshot_times(start_ms: int, end_ms: int, interval_ms: int) -> IntArray:
    """``start, start + interval, …`` and always ``end`` itself, so the session's last prints are reported."""
    if interval_ms <= 0 or end_ms < start_ms:
        raise ValueError("snapshot_times needs interval_ms > 0 and end_ms ≥ start_ms")
    grid = np.arange(start_ms, end_ms, interval_ms, dtype=np.int64)
    times: IntArray = np.append(grid, np.int64(end_ms))
    return times


def last_at_or_before(ts: IntArray, at: IntArray) -> IntArray:
    """For each time in ``at``: the index of the last element of sorted ``ts`` at or before it, -1 if none."""
    index: IntArray = (np.searchsorted(ts, at, side="right") - 1).astype(np.int64)
    return index


def last_print_row(price: FloatArray) -> IntArray:
    """For each row: the index of the last row up to it with a price (a print), -1 before the first."""
    rows = np.where(np.isnan(price), -1, np.arange(len(price), dtype=np.int64))
    running: IntArray = np.maximum.accumulate(rows) if len(rows) else rows.astype(np.int64)
    return running


def previous(index: IntArray) -> IntArray:
    """Each element's predecessor; the first keeps its own (there is nothing before the first snapshot)."""
    shifted: IntArray = np.concatenate([index[:1], index[:-1]])
    return shifted


@dataclass(frozen=True, slots=True)
class SnapshotIndex:
    """Which rows of one symbol's trade-feed tables make up each snapshot (-1: none)."""

    ts: IntArray
    #: the last quote row (print or snapshot) at or before each snapshot: cumulative volume, open/high/low
    row: IntArray
    #: the row of the interval's last print, -1 when nothing printed since the previous snapshot
    last_print: IntArray
    #: the last book at or before each snapshot
    book: IntArray
    #: the book in force before the interval's prints: the previous snapshot's (the first snapshot's own)
    previous_book: IntArray


def snapshot_index(quote_ts: IntArray, price: FloatArray, book_ts: IntArray, times: IntArray) -> SnapshotIndex:
    """Rows of one symbol's quotes (sorted by time, ``price`` NaN on no-trade rows) and books per snapshot."""
    row = last_at_or_before(quote_ts, times)
    printed = np.append(last_print_row(price), np.int64(-1))  # row -1 reads the sentinel: no print yet
    last = printed[row]
    fresh = last > previous(row)
    fresh[:1] = last[:1] >= 0  # the first snapshot has no predecessor: every print up to it is its own
    book = last_at_or_before(book_ts, times)
    return SnapshotIndex(times, row, np.where(fresh, last, -1).astype(np.int64), book, previous(book))


def interval_sizes(cumulative: FloatArray) -> FloatArray:
    """Volume traded since the previous snapshot from the cumulative volume at each snapshot."""
    sizes: FloatArray = np.diff(cumulative, prepend=0.0)
    return sizes
