"""Layers: large orders resting at levels 2–5 over several book snapshots, and the moment they vanish.

A spoofer's layer is *persistent* (displayed over consecutive snapshots) and then *vanishes* (cancelled, not
traded). A book whose sizes churn every snapshot shows large sizes too, but rarely at one price twice in a
row; requiring ``min_books`` consecutive snapshots separates the two whatever the churn. Sizes are judged
against the book's mean level size, exponentially weighted in event time (``tau_ms``) and updated from the
book stream alone (so the result does not depend on how quotes and books interleave). O(levels) per book.

Persistence is bounded by what the snapshots can show. Two snapshots in a row prove an order rested at least one
interval between books; once that interval is longer than the horizon of a *fleeting* order (2 s, after Hasbrouck
& Saar's fleeting limit orders), an order resting a few seconds — long enough for every other participant to see
it — shows in one snapshot only, so on such coarse books (TWSE MIS's 5 s) one snapshot is enough
(``coarse_gap_ms``; the book interval is learnt from the data: the tracker's running mean of the gaps between its
last ~16 books, no profile needed). The detectors' other conditions (the book's own churn, pressure, repetition)
carry the rest.

>>> layers = LayerTracker(factor=4.0, min_books=2)
>>> book = ((10.0, 100.0), (9.9, 100.0)), ((10.1, 100.0), (10.2, 100.0))
>>> layers.on_book(0, *book)
[]
>>> layered = ((10.0, 100.0), (9.9, 2000.0)), ((10.1, 100.0), (10.2, 100.0))
>>> layers.on_book(5_000, *layered), layers.on_book(10_000, *layered)
([], [])
>>> layers.on_book(15_000, *book)  # 1,900 of the 2,000 at 9.9 (bid side: +1) left after two snapshots
[(1, 9.9, 1900.0, 2, 0.0)]

The price move over a layer's life is what a spoofer wants from it: the mid when the layer first showed
against the mid when it is gone, signed so that a move *away* from the layer's side (a bid layer and the price
up) is positive. A long-lived layer's price effect shows here even when the move came long before the
cancellation, outside any short feature window.

>>> layers.on_book(20_000, *layered), layers.on_book(25_000, *layered)
([], [])
>>> up = ((10.1, 100.0), (10.0, 100.0)), ((10.2, 100.0), (10.3, 100.0))
>>> [(side, price, round(move_bps)) for side, price, _, _, move_bps in layers.on_book(30_000, *up)]
[(1, 9.9, 99)]

The mean's memory is time, not a number of books: a layer resting two minutes on a 1 s book is still large
when it goes (weighted per book, the mean had risen until the layer no longer counted and it left unseen).

>>> resting = LayerTracker(factor=4.0, min_books=2)
>>> resting.on_book(0, *book), [resting.on_book(t * 1_000, *layered) for t in range(1, 121)][-1]
([], [])
>>> [(side, price, books) for side, price, _, books, _ in resting.on_book(121_000, *book)]
[(1, 9.9, 120)]

On books 5 s apart an order resting a few seconds shows in one snapshot, and one is enough; on books 1 s
apart the same single sighting is churn until it shows again:

>>> coarse, fine = LayerTracker(factor=4.0, min_books=2), LayerTracker(factor=4.0, min_books=2)
>>> for t in range(4):
...     _ = coarse.on_book(t * 5_000, *book), fine.on_book(t * 1_000, *book)
>>> coarse.books_needed, fine.books_needed
(1, 2)
>>> coarse.on_book(20_000, *layered), coarse.on_book(25_000, *book)
([], [(1, 9.9, 1900.0, 1, 0.0)])
>>> fine.on_book(4_000, *layered), fine.on_book(5_000, *book)
([], [])

Where either book had no ask (or no bid) the mid is unknown, and so is the move — ``None``, not zero:

>>> one_sided = (((10.0, 100.0), (9.9, 2000.0)), ())
>>> layers.on_book(35_000, *one_sided), layers.on_book(40_000, *one_sided)
([], [])
>>> [move_bps for *_, move_bps in layers.on_book(45_000, *up)]
[None]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Levels = Sequence[tuple[float, float]]
#: a layer that vanished: side (+1 bid, -1 ask), price, size that left, snapshots it was shown in, and the mid's
#: move over its life away from its side (bps; None where a one-sided book left the mid unknown: not a zero move)
Vanished = tuple[int, float, float, int, float | None]
#: the mean level size's memory in event time (as a 50-book mean of TWSE's 5 s snapshots remembered)
MEAN_LEVEL_TAU_MS = 250_000.0
#: a layer has vanished when less than this share of the largest size it showed is left at its price
VANISHED_SHARE = 0.25
#: books this far apart or more are *coarse*: an order resting longer than a fleeting one (≈ 2 s) may show in
#: one snapshot only, so one snapshot counts as persistent there
COARSE_GAP_MS = 2_000.0
#: the mean gap between books learns with this weight per book; a gap is capped at this (a session's break
#: or a halted symbol is not the book's cadence)
GAP_WEIGHT = 1.0 / 16.0
GAP_CAP_MS = 30_000.0


class _Layer:
    """One large level while it shows: snapshots in a row, largest size, mid when it first showed."""

    __slots__ = ("books", "first_mid", "size")

    def __init__(self, books: int, size: float, first_mid: float | None) -> None:
        self.books = books
        self.size = size
        self.first_mid = first_mid


class LayerTracker:
    """Tracks large levels 2–5 per side and price; :meth:`on_book` returns the persistent ones that vanished."""

    __slots__ = ("coarse_gap_ms", "factor", "gap_ms", "last_ts", "layers", "mean_level", "min_books", "tau_ms")

    def __init__(
        self,
        factor: float = 4.0,
        min_books: int = 2,
        tau_ms: float = MEAN_LEVEL_TAU_MS,
        coarse_gap_ms: float = COARSE_GAP_MS,
    ) -> None:
        self.factor = factor
        self.min_books = min_books
        self.tau_ms = tau_ms
        self.coarse_gap_ms = coarse_gap_ms
        self.mean_level: float | None = None
        self.last_ts: int | None = None  # the last book the mean learned from
        self.gap_ms: float | None = None  # mean gap between books (event time); None until two books came
        self.layers: dict[tuple[int, float], _Layer] = {}  # (side, price) → the layer showing there

    @property
    def books_needed(self) -> int:
        """Snapshots a layer must show in: ``min_books``, or one on coarse books (see the module's note)."""
        coarse = self.gap_ms is not None and self.gap_ms >= self.coarse_gap_ms
        return 1 if coarse else self.min_books

    def on_book(self, ts: int, bids: Levels, asks: Levels) -> list[Vanished]:
        mean = self.mean_level
        mid = (bids[0][0] + asks[0][0]) / 2 if bids and asks else None
        shown: dict[tuple[int, float], _Layer] = {}
        if mean:  # nothing is large before the mean has learnt a book
            large = self.factor * mean
            for side, levels in ((1, bids), (-1, asks)):
                for price, size in levels[1:]:
                    if size >= large:
                        before = self.layers.get((side, price))
                        shown[(side, price)] = (
                            _Layer(before.books + 1, max(before.size, size), before.first_mid)
                            if before
                            else _Layer(1, size, mid)
                        )
        vanished = self._vanished(bids, asks, mid) if self.layers else []
        self.layers = shown
        self._learn(ts, bids, asks)
        return vanished

    def _vanished(self, bids: Levels, asks: Levels, mid: float | None) -> list[Vanished]:
        """The tracked layers that are gone from this book: most of the size left the book (not merely dipped
        below "large"), and not by scrolling out of view."""
        now = {(side, price): size for side, levels in ((1, bids), (-1, asks)) for price, size in levels}
        vanished = []
        needed = self.books_needed
        for (side, price), layer in self.layers.items():
            left = now.get((side, price), 0.0)
            if (
                layer.books >= needed
                and left < VANISHED_SHARE * layer.size
                and _visible(price, bids if side > 0 else asks, side)
            ):
                move = side * 1e4 * math.log(mid / layer.first_mid) if mid and layer.first_mid else None
                vanished.append((side, price, layer.size - left, layer.books, move))
        return vanished

    def _learn(self, ts: int, bids: Levels, asks: Levels) -> None:
        """Exponentially weighted in event time (``tau_ms``), not per book: weighted per book, a layer resting
        a minute on a 1 s book lifted the mean five times faster than on a 5 s book, until it no longer
        counted as large and left unseen. The gap between books is learnt here too, from every book."""
        if self.last_ts is not None and ts > self.last_ts:
            gap = min(float(ts - self.last_ts), GAP_CAP_MS)
            self.gap_ms = gap if self.gap_ms is None else self.gap_ms + GAP_WEIGHT * (gap - self.gap_ms)
        count = len(bids) + len(asks)
        if not count:
            return
        # left to right over bids then asks, as one list summed would be
        mean = sum([q for _, q in asks], sum([q for _, q in bids], 0.0)) / count
        if self.mean_level is None:
            self.mean_level = mean
        elif self.last_ts is not None:
            weight = -math.expm1(-max(0, ts - self.last_ts) / self.tau_ms)
            self.mean_level += weight * (mean - self.mean_level)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)

    def to_state(self) -> list[Any]:
        layers = [[s, p, x.books, x.size, x.first_mid] for (s, p), x in self.layers.items()]
        return [self.mean_level, layers, self.last_ts, self.gap_ms]

    def load(self, state: list[Any]) -> None:
        """Restore :meth:`to_state`; a flow-v3 entry (no first mid) loads with the mid unknown, a state from
        before flow-v9 with the book gap still to learn."""
        self.mean_level = None if state[0] is None else float(state[0])
        self.last_ts = int(state[2]) if len(state) > 2 and state[2] is not None else None  # absent before flow-v5
        self.gap_ms = float(state[3]) if len(state) > 3 and state[3] is not None else None  # before flow-v9
        self.layers = {
            (int(s), float(p)): _Layer(int(c), float(q), float(m[0]) if m and m[0] is not None else None)
            for s, p, c, q, *m in state[1]
        }


def _visible(price: float, levels: Levels, side: int) -> bool:
    """Whether ``price`` lies inside the side's visible range (a full side hides what is beyond its 5th
    price: a layer scrolled out of view has not vanished)."""
    if len(levels) < 5:
        return True
    worst = levels[-1][0]
    return price >= worst if side > 0 else price <= worst
