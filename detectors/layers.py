"""Layers: large orders resting at levels 2–5 over several book snapshots, and the moment they vanish.

A spoofer's layer is *persistent* (displayed over consecutive snapshots) and then *vanishes* (cancelled, not
traded). A book whose sizes churn every snapshot shows large sizes too, but rarely at one price twice in a
row; requiring ``min_books`` consecutive snapshots separates the two whatever the churn. Sizes are judged
against an exponentially weighted mean level size of the levels that are not layers, updated from the book
stream alone (so the result does not depend on how quotes and books interleave). O(levels) per book.

>>> layers = LayerTracker(factor=4.0, min_books=2)
>>> book = ((10.0, 100.0), (9.9, 100.0)), ((10.1, 100.0), (10.2, 100.0))
>>> layers.on_book(*book)
[]
>>> layered = ((10.0, 100.0), (9.9, 2000.0)), ((10.1, 100.0), (10.2, 100.0))
>>> layers.on_book(*layered), layers.on_book(*layered)
([], [])
>>> layers.on_book(*book)  # 1,900 of the 2,000 at 9.9 (bid side: +1) left after two snapshots, mid unmoved
[(1, 9.9, 1900.0, 2, 0.0)]

The price move over a layer's life is what a spoofer wants from it: the mid when the layer first showed
against the mid when it is gone, signed so that a move *away* from the layer's side (a bid layer and the price
up) is positive. A long-lived layer's price effect shows here even when the move came long before the
cancellation, outside any short feature window.

>>> layers.on_book(*layered), layers.on_book(*layered)
([], [])
>>> up = ((10.1, 100.0), (10.0, 100.0)), ((10.2, 100.0), (10.3, 100.0))
>>> [(side, price, round(move_bps)) for side, price, _, _, move_bps in layers.on_book(*up)]
[(1, 9.9, 99)]

A layer that rests long is still large when it goes: the mean level it is judged against learns from the
book's other levels, not from the layer.

>>> resting = LayerTracker(factor=4.0, min_books=2)
>>> resting.on_book(*book), [resting.on_book(*layered) for _ in range(300)][-1]
([], [])
>>> [(side, price, books) for side, price, _, books, _ in resting.on_book(*book)]
[(1, 9.9, 300)]

Where either book had no ask (or no bid) the mid is unknown, and so is the move — ``None``, not zero:

>>> one_sided = (((10.0, 100.0), (9.9, 2000.0)), ())
>>> layers.on_book(*one_sided), layers.on_book(*one_sided)
([], [])
>>> [move_bps for *_, move_bps in layers.on_book(*up)]
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
#: a layer has vanished when less than this share of the largest size it showed is left at its price
VANISHED_SHARE = 0.25


class _Layer:
    """One large level while it shows: snapshots in a row, largest size, mid when it first showed."""

    __slots__ = ("books", "first_mid", "size")

    def __init__(self, books: int, size: float, first_mid: float | None) -> None:
        self.books = books
        self.size = size
        self.first_mid = first_mid


class LayerTracker:
    """Tracks large levels 2–5 per side and price; :meth:`on_book` returns the persistent ones that vanished."""

    __slots__ = ("alpha", "factor", "layers", "mean_level", "min_books")

    def __init__(self, factor: float = 4.0, min_books: int = 2, alpha: float = 0.02) -> None:
        self.factor = factor
        self.min_books = min_books
        self.alpha = alpha
        self.mean_level: float | None = None
        self.layers: dict[tuple[int, float], _Layer] = {}  # (side, price) → the layer showing there

    def on_book(self, bids: Levels, asks: Levels) -> list[Vanished]:
        large = self.factor * self.mean_level if self.mean_level else float("inf")
        mid = (bids[0][0] + asks[0][0]) / 2 if bids and asks else None
        shown: dict[tuple[int, float], _Layer] = {}
        for side, levels in ((1, bids), (-1, asks)):
            for price, size in levels[1:]:
                if size >= large:
                    before = self.layers.get((side, price))
                    shown[(side, price)] = (
                        _Layer(before.books + 1, max(before.size, size), before.first_mid)
                        if before
                        else _Layer(1, size, mid)
                    )
        now = {(side, price): size for side, levels in ((1, bids), (-1, asks)) for price, size in levels}
        vanished = []
        for (side, price), layer in self.layers.items():
            left = now.get((side, price), 0.0)
            # gone: most of it left the book (not merely dipped below "large"), and not by scrolling out of view
            if (
                layer.books >= self.min_books
                and left < VANISHED_SHARE * layer.size
                and _visible(price, bids if side > 0 else asks, side)
            ):
                move = side * 1e4 * math.log(mid / layer.first_mid) if mid and layer.first_mid else None
                vanished.append((side, price, layer.size - left, layer.books, move))
        self.layers = shown
        self._learn(bids, asks, shown)
        return vanished

    def _learn(self, bids: Levels, asks: Levels, layers: dict[tuple[int, float], _Layer]) -> None:
        """The mean level learns from the book's ordinary levels only: a layer resting for a minute would
        otherwise lift the mean until the layer itself no longer counts as large, and then leave unseen."""
        sizes = [q for side, levels in ((1, bids), (-1, asks)) for p, q in levels if (side, p) not in layers]
        if not sizes:
            return
        mean = sum(sizes) / len(sizes)
        self.mean_level = mean if self.mean_level is None else self.mean_level + self.alpha * (mean - self.mean_level)

    def to_state(self) -> list[Any]:
        return [self.mean_level, [[s, p, x.books, x.size, x.first_mid] for (s, p), x in self.layers.items()]]

    def load(self, state: list[Any]) -> None:
        """Restore :meth:`to_state`; a flow-v3 entry (no first mid) loads with the mid unknown."""
        self.mean_level = None if state[0] is None else float(state[0])
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
