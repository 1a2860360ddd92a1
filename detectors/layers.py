"""Layers: large orders resting in the visible book over several snapshots, and the moment they vanish.

A spoofer's layer is *persistent* (displayed over consecutive snapshots) and then *vanishes* (cancelled, not
traded). A book whose sizes churn every snapshot shows large sizes too, but rarely at one price twice in a
row; requiring ``min_books`` consecutive snapshots separates the two whatever the churn. Sizes are judged
against the book's *typical level*: the mean level size of each book (both sides), exponentially weighted in event
time (``tau_ms``) and updated from the book stream alone (so the result does not depend on how quotes and books
interleave). A book with standing walls (a market maker quoting size a level or two back all day) has its mean
pulled up to the walls, so an order no larger than a wall does not stand out; the median level would see it, but
real books' level sizes are heavy-tailed and eight medians is an ordinary level there (docs/2026-11-27-layers.md).
Level 1 is not watched: a large quote at the touch is cancelled and re-posted all day by market makers on liquid
books, and without a measure of level 1's own churn a vanished touch says nothing. O(levels) per book.

Two ways a large level leaves that are not a cancellation:

* it *moved*: the same side gained at least half its size at another price in the same update (a market maker
  re-quoting its wall after the price ticked, an order repriced);
* the book was *pulled*: large levels vanished on both sides in the same update (a market maker withdrawing its
  quotes ahead of news takes both sides; a spoofer cancels the side it leaned on).

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
[Vanished(side=1, price=9.9, size=1900.0, books=2, move_bps=0.0, level=2, typical=118.6...)]

The price move over a layer's life is what a spoofer wants from it: the mid when the layer first showed
against the mid when it is gone, signed so that a move *away* from the layer's side (a bid layer and the price
up) is positive. A long-lived layer's price effect shows here even when the move came long before the
cancellation, outside any short feature window.

>>> layers.on_book(20_000, *layered), layers.on_book(25_000, *layered)
([], [])
>>> up = ((10.1, 100.0), (10.0, 100.0)), ((10.2, 100.0), (10.3, 100.0))
>>> [(side, price, round(move_bps)) for side, price, _, _, move_bps, *_ in layers.on_book(30_000, *up)]
[(1, 9.9, 99)]

The mean's memory is time, not a number of books: a layer resting two minutes on a 1 s book is still large
when it goes (weighted per book, the mean had risen until the layer no longer counted and it left unseen).

>>> resting = LayerTracker(factor=4.0, min_books=2)
>>> resting.on_book(0, *book), [resting.on_book(t * 1_000, *layered) for t in range(1, 121)][-1]
([], [])
>>> [(side, price, books) for side, price, _, books, *_ in resting.on_book(121_000, *book)]
[(1, 9.9, 120)]

On books 5 s apart an order resting a few seconds shows in one snapshot, and one is enough; on books 1 s
apart the same single sighting is churn until it shows again:

>>> coarse, fine = LayerTracker(factor=4.0, min_books=2), LayerTracker(factor=4.0, min_books=2)
>>> for t in range(4):
...     _ = coarse.on_book(t * 5_000, *book), fine.on_book(t * 1_000, *book)
>>> coarse.books_needed, fine.books_needed
(1, 2)
>>> coarse.on_book(20_000, *layered), coarse.on_book(25_000, *book)
([], [Vanished(side=1, price=9.9, size=1900.0, books=1, move_bps=0.0, level=2, typical=109.4...)])
>>> fine.on_book(4_000, *layered), fine.on_book(5_000, *book)
([], [])

Where either book had no ask (or no bid) the mid is unknown, and so is the move — ``None``, not zero:

>>> one_sided = (((10.0, 100.0), (9.9, 2000.0)), ())
>>> layers.on_book(35_000, *one_sided), layers.on_book(40_000, *one_sided)
([], [])
>>> [layer.move_bps for layer in layers.on_book(45_000, *up)]
[None]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

Levels = Sequence[tuple[float, float]]
#: a level this many typical levels or more is large
LARGE_FACTOR = 4.0
#: the typical level's memory in event time (as a 50-book mean of TWSE's 5 s snapshots remembered)
MEAN_LEVEL_TAU_MS = 250_000.0
#: a layer has vanished when less than this share of the largest size it showed is left at its price
VANISHED_SHARE = 0.25
#: a layer whose side gained this share of its size at another price in the same update moved (re-quoted)
MOVED_SHARE = 0.5
#: books this far apart or more are *coarse*: an order resting longer than a fleeting one (≈ 2 s) may show in
#: one snapshot only, so one snapshot counts as persistent there
COARSE_GAP_MS = 2_000.0
#: the mean gap between books learns with this weight per book; a gap is capped at this (a session's break
#: or a halted symbol is not the book's cadence)
GAP_WEIGHT = 1.0 / 16.0
GAP_CAP_MS = 30_000.0
#: (side, price) → size of one book, both sides
Sizes = dict[tuple[int, float], float]


class Vanished(NamedTuple):
    """A layer that vanished."""

    #: +1 bid, -1 ask
    side: int
    price: float
    #: the size that left
    size: float
    #: snapshots it was shown in
    books: int
    #: the mid's move over its life away from its side (bps; None where a one-sided book left the mid unknown:
    #: not a zero move)
    move_bps: float | None
    #: the level (2–5) it last showed at
    level: int
    #: the typical level size it was judged against
    typical: float


class _Layer:
    """One large level while it shows: snapshots in a row, largest size, mid when it first showed, its level."""

    __slots__ = ("books", "first_mid", "level", "size")

    def __init__(self, books: int, size: float, first_mid: float | None, level: int) -> None:
        self.books = books
        self.size = size
        self.first_mid = first_mid
        self.level = level


class LayerTracker:
    """Tracks large levels 2–5 per side and price; :meth:`on_book` returns the persistent ones that vanished."""

    __slots__ = (
        "coarse_gap_ms",
        "factor",
        "gap_ms",
        "last_sizes",
        "last_ts",
        "layers",
        "mean_level",
        "min_books",
        "tau_ms",
    )

    def __init__(
        self,
        factor: float = LARGE_FACTOR,
        min_books: int = 2,
        tau_ms: float = MEAN_LEVEL_TAU_MS,
        coarse_gap_ms: float = COARSE_GAP_MS,
    ) -> None:
        self.factor = factor
        self.min_books = min_books
        self.tau_ms = tau_ms
        self.coarse_gap_ms = coarse_gap_ms
        self.mean_level: float | None = None  # the typical level: weighted mean of the books' mean levels
        self.last_ts: int | None = None  # the last book the mean learned from
        self.gap_ms: float | None = None  # mean gap between books (event time); None until two books came
        self.layers: dict[tuple[int, float], _Layer] = {}  # (side, price) → the layer showing there
        self.last_sizes: Sizes = {}  # the previous book's sizes (what moved where)

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
                for level, (price, size) in enumerate(levels[1:], 2):
                    if size >= large:
                        before = self.layers.get((side, price))
                        shown[(side, price)] = (
                            _Layer(before.books + 1, max(before.size, size), before.first_mid, level)
                            if before
                            else _Layer(1, size, mid, level)
                        )
        now = {(side, price): size for side, levels in ((1, bids), (-1, asks)) for price, size in levels}
        vanished = self._vanished(now, bids, asks, mid) if self.layers else []
        if len({side for side, *_ in vanished}) > 1:  # both sides at once: the book was pulled
            vanished = []
        self.layers = shown
        self.last_sizes = now
        self._learn(ts, bids, asks)
        return vanished

    def _vanished(self, now: Sizes, bids: Levels, asks: Levels, mid: float | None) -> list[Vanished]:
        """The tracked layers that are gone from this book: most of the size left the book (not merely dipped
        below "large"), not by scrolling out of view, and not to another price of its side."""
        vanished = []
        needed = self.books_needed
        typical = self.mean_level or 0.0
        for (side, price), layer in self.layers.items():
            left = now.get((side, price), 0.0)
            if (
                layer.books >= needed
                and left < VANISHED_SHARE * layer.size
                and _visible(price, bids if side > 0 else asks, side)
                and self._gained_elsewhere(now, side, price) < MOVED_SHARE * layer.size
            ):
                move = side * 1e4 * math.log(mid / layer.first_mid) if mid and layer.first_mid else None
                vanished.append(Vanished(side, price, layer.size - left, layer.books, move, layer.level, typical))
        return vanished

    def _gained_elsewhere(self, now: Sizes, side: int, price: float) -> float:
        """The largest size the side gained at another price since the previous book."""
        before = self.last_sizes
        return max(
            (size - before.get(key, 0.0) for key, size in now.items() if key[0] == side and key[1] != price),
            default=0.0,
        )

    def _learn(self, ts: int, bids: Levels, asks: Levels) -> None:
        """Exponentially weighted in event time (``tau_ms``), not per book: weighted per book, a layer resting
        a minute on a 1 s book lifted the mean five times faster than on a 5 s book, until it no longer
        counted as large and left unseen. The gap between books is learnt here too, from every book."""
        if self.last_ts is not None and ts > self.last_ts:
            gap = min(float(ts - self.last_ts), GAP_CAP_MS)
            self.gap_ms = gap if self.gap_ms is None else self.gap_ms + GAP_WEIGHT * (gap - self.gap_ms)
        if not bids and not asks:
            return
        # left to right over bids then asks, as one list summed would be
        typical = sum([q for _, q in asks], sum([q for _, q in bids], 0.0)) / (len(bids) + len(asks))
        if self.mean_level is None:
            self.mean_level = typical
        elif self.last_ts is not None:
            weight = -math.expm1(-max(0, ts - self.last_ts) / self.tau_ms)
            self.mean_level += weight * (typical - self.mean_level)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)

    def to_state(self) -> list[Any]:
        layers = [[s, p, x.books, x.size, x.first_mid, x.level] for (s, p), x in self.layers.items()]
        sizes = [[s, p, q] for (s, p), q in self.last_sizes.items()]
        return [self.mean_level, layers, self.last_ts, self.gap_ms, sizes]

    @classmethod
    def from_state(
        cls,
        state: list[Any],
        factor: float = LARGE_FACTOR,
        min_books: int = 2,
        tau_ms: float = MEAN_LEVEL_TAU_MS,
        coarse_gap_ms: float = COARSE_GAP_MS,
    ) -> LayerTracker:
        """Restore :meth:`to_state`."""
        tracker = cls(factor, min_books, tau_ms, coarse_gap_ms)
        tracker.mean_level = None if state[0] is None else float(state[0])
        tracker.last_ts = None if state[2] is None else int(state[2])
        tracker.gap_ms = None if state[3] is None else float(state[3])
        tracker.layers = {
            (int(s), float(p)): _Layer(int(c), float(q), None if m is None else float(m), int(level))
            for s, p, c, q, m, level in state[1]
        }
        tracker.last_sizes = {(int(s), float(p)): float(q) for s, p, q in state[4]}
        return tracker


def _visible(price: float, levels: Levels, side: int) -> bool:
    """Whether ``price`` lies inside the side's visible range (a full side hides what is beyond its 5th
    price: a layer scrolled out of view has not vanished)."""
    if len(levels) < 5:
        return True
    worst = levels[-1][0]
    return price >= worst if side > 0 else price <= worst
