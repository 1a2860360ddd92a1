"""A resting limit order's place in the queue, and what later prints on the tape fill of it.

The model is the conservative one a quant can trust, and the only facts it reads are the venue's own:

* **placed**: a buy at a price the displayed bids hold waits behind all of that level's size (it arrived last);
  a buy above the best bid opens a level of its own (nobody ahead); a buy at or above the best ask is
  marketable (a taker) and waits for nobody;
* **book updates** can only shorten the queue: the quantity ahead can never exceed what the book now shows at
  the order's price; a level that vanished because the bids moved below the price leaves nobody ahead;
* **prints** (trades after the order was placed) fill it: a print at the order's price first eats the queue
  ahead, then the order; a print *through* the price (a buy's, lower) means the level was taken, so nobody is
  ahead — and still the order fills at most the printed size. A fill is always at the price of the print
  that caused it (:mod:`tapewatch.execution.exchange`): never a price the tape did not print, never better than it.

>>> order = Resting(side="BUY", price=100.0, quantity=300.0, queue_ahead=500.0)
>>> order.on_print(100.0, 400.0), order.queue_ahead          # eats the queue ahead only
(0.0, 100.0)
>>> order.on_book([(100.0, 80.0)], [(100.5, 10.0)]), order.queue_ahead   # cancels ahead of it
(None, 80.0)
>>> order.on_print(100.0, 200.0)                             # 80 ahead, then 120 of ours
120.0
>>> order.on_print(99.5, 1000.0)                             # traded through: the rest, at most the print
180.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Levels = Sequence[tuple[float, float]] | Sequence[list[float]]


@dataclass(slots=True)
class Resting:
    """Where a resting order stands: its side, limit, size, what is filled and what is ahead of it."""

    side: str  # "BUY" | "SELL"
    price: float
    quantity: float
    queue_ahead: float = 0.0
    filled: float = 0.0

    @property
    def remaining(self) -> float:
        return max(0.0, self.quantity - self.filled)

    def at_or_through(self, price: float) -> bool:
        """Whether a print at ``price`` reaches this order (a buy: at or below its limit)."""
        return price <= self.price if self.side == "BUY" else price >= self.price

    def on_print(self, price: float, size: float) -> float:
        """The quantity a print of ``size`` at ``price`` fills (0 when it does not reach the order)."""
        if size <= 0 or self.remaining <= 0 or not self.at_or_through(price):
            return 0.0
        if price != self.price:
            self.queue_ahead = 0.0  # traded through: the whole level ahead was taken
        eaten = min(self.queue_ahead, size)
        self.queue_ahead -= eaten
        fill = min(self.remaining, size - eaten)
        self.filled += fill
        return fill

    def on_book(self, bids: Levels, asks: Levels) -> None:
        """A new book: the queue ahead shrinks to what the book shows at the order's price."""
        own = bids if self.side == "BUY" else asks
        if not own:
            return
        shown = level_size(own, self.price)
        if shown is not None:
            self.queue_ahead = min(self.queue_ahead, shown)
        elif _better_than_best(self.side, self.price, own[0][0]):
            self.queue_ahead = 0.0  # the level is gone: the best moved behind the order
        # a price between displayed levels or beyond the fifth: no news about the queue


def level_size(levels: Levels, price: float) -> float | None:
    """The displayed size at exactly ``price`` (0 for a gap between displayed levels), None beyond them."""
    if not levels:
        return None
    for level_price, size in levels:
        if level_price == price:
            return float(size)
    inside = min(levels[0][0], levels[-1][0]) <= price <= max(levels[0][0], levels[-1][0])
    return 0.0 if inside else None


def _better_than_best(side: str, price: float, best: float) -> bool:
    return price > best if side == "BUY" else price < best


def placed(side: str, price: float, bids: Levels, asks: Levels) -> tuple[float, bool]:
    """(quantity ahead, marketable) of an order placed now at ``price`` against the book (bids, asks).

    >>> placed("BUY", 100.5, [(100.0, 7.0)], [(100.5, 3.0)]), placed("BUY", 100.0, [(100.0, 7.0)], [])
    ((0.0, True), (7.0, False))
    """
    own, other = (bids, asks) if side == "BUY" else (asks, bids)
    if other and not _better_than_best(side, other[0][0], price):
        return 0.0, True  # at or through the opposite best: a taker, nobody ahead
    if not own or _better_than_best(side, price, own[0][0]):
        return 0.0, False  # a new best level of its own
    shown = level_size(own, price)
    # beyond the displayed levels nobody knows the queue: as long as the largest level shown (conservative)
    return (shown if shown is not None else max(float(s) for _, s in own)), False
