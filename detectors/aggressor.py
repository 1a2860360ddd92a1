"""Aggressor-side inference for feeds that do not say who crossed the spread (TWSE MIS, most snapshot feeds).

Lee and Ready (1991): a trade above the midpoint of the quote in force *before* it was buyer-initiated, below
it seller-initiated; at the midpoint (or without a quote) the tick rule decides — up from the previous trade
price: a buy, down: a sell, unchanged: the direction of the last change. The quote comes with the trade
(``Quote.bid``/``Quote.ask``: producers attach the book in force before it), so the inference reads one stream
only and does not depend on how quotes and books interleave. O(1) per trade.

>>> sides = AggressorInference()
>>> sides.infer(10.1, bid=10.0, ask=10.1)  # at the ask
'B'
>>> sides.observe(10.1)
>>> sides.infer(10.05, bid=10.0, ask=10.1)  # at the midpoint: the tick rule, down from 10.1
'S'
>>> sides.observe(10.05)
>>> sides.infer(10.05, None, None)  # unchanged: the last change was down
'S'
"""

from __future__ import annotations

from typing import Any


class AggressorInference:
    """The quote rule, then the tick rule; :meth:`observe` every trade (sided or not) in stream order."""

    __slots__ = ("last_price", "last_tick")

    def __init__(self) -> None:
        self.last_price: float | None = None
        self.last_tick = 0  # +1 / -1: the direction of the last price change; 0: none yet

    def infer(self, price: float, bid: float | None, ask: float | None) -> str | None:
        """``"B"``, ``"S"`` or ``None`` (no quote, and no price change seen yet)."""
        if bid is not None and ask is not None and ask >= bid:
            mid = (bid + ask) / 2
            if price > mid:
                return "B"
            if price < mid:
                return "S"
        tick = self.last_tick
        if self.last_price is not None and price != self.last_price:
            tick = 1 if price > self.last_price else -1
        return "B" if tick > 0 else "S" if tick < 0 else None

    def observe(self, price: float) -> None:
        if self.last_price is not None and price != self.last_price:
            self.last_tick = 1 if price > self.last_price else -1
        self.last_price = price

    def to_state(self) -> list[Any]:
        return [self.last_price, self.last_tick]

    @classmethod
    def from_state(cls, state: list[Any]) -> AggressorInference:
        inference = cls()
        inference.last_price = None if state[0] is None else float(state[0])
        inference.last_tick = int(state[1])
        return inference
