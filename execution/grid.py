"""Each venue's price grid and lot: where a limit price may sit and how much one order may ask for.

A venue's rules come from what it publishes: the TWSE/TPEx tick ladder with its 1,000-share board lot, and
Binance's exchange information (``PRICE_FILTER.tickSize``, ``LOT_SIZE.stepSize``, ``NOTIONAL.minNotional``) per
symbol. A symbol without rules gets no order: the executor dead-letters its decisions instead of guessing.

>>> rules = TickRules.ladder(lot=1000.0)
>>> rules.tick(123.4), rules.floor_price(123.4), rules.ceil_price(123.4), rules.lots(2750.0)
(0.5, 123.0, 123.5, 2000.0)
>>> grid = TickRules.fixed(tick=0.01, lot=0.001, min_notional=5.0)
>>> grid.floor_price(100.0149), grid.lots(0.12345), grid.notional_ok(0.001, 100.0)
(100.01, 0.123, False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from tapewatch.price_grid import twse_tick

#: venues on the TWSE ladder (the simulator quotes on it too)
LADDER_VENUES: Final = frozenset({"twse", "tpex", "sim", "sim-snapshots"})
TWSE_BOARD_LOT: Final = 1000.0
#: float noise allowed when a price is compared with its grid (prices are at most 1e10, ticks at least 1e-9)
_EPS: Final = 1e-9


@dataclass(frozen=True, slots=True)
class TickRules:
    """A symbol's grid: a fixed tick (``tick_size``) or the TWSE ladder (``tick_size`` None), a lot step and a
    minimum order value."""

    tick_size: float | None
    lot: float
    min_notional: float = 0.0

    @classmethod
    def ladder(cls, lot: float = TWSE_BOARD_LOT) -> TickRules:
        return cls(None, lot)

    @classmethod
    def fixed(cls, tick: float, lot: float, min_notional: float = 0.0) -> TickRules:
        if not (tick > 0 and lot > 0):
            raise ValueError("tick and lot must be positive")
        return cls(tick, lot, min_notional)

    def tick(self, price: float) -> float:
        return twse_tick(price) if self.tick_size is None else self.tick_size

    def floor_price(self, price: float) -> float:
        """The highest grid price at or below ``price`` (a buyer's passive price)."""
        tick = self.tick(price)
        return _clean(math.floor(price / tick + _EPS) * tick, tick)

    def ceil_price(self, price: float) -> float:
        """The lowest grid price at or above ``price`` (a seller's passive price)."""
        tick = self.tick(price)
        up = _clean(math.ceil(price / tick - _EPS) * tick, tick)
        # the ladder's tick grows at a band edge: the price above may sit on the next band's grid
        return up if self.tick_size is not None or self.tick(up) == tick else self.floor_price(up)

    def lots(self, quantity: float) -> float:
        """``quantity`` rounded down to whole lots (never more than asked)."""
        return _clean(math.floor(quantity / self.lot + _EPS) * self.lot, self.lot)

    def notional_ok(self, quantity: float, price: float) -> bool:
        return quantity > 0 and quantity * price >= self.min_notional


def _clean(value: float, step: float) -> float:
    """A grid value without float dust: as many decimals as the step has."""
    decimals = max(0, -math.floor(math.log10(step)) + 1) if step < 1 else 0
    return round(value, decimals + 6)


class VenueRules:
    """Symbol → :class:`TickRules`: the ladder for TWSE-style venues, per-symbol rules loaded from exchange
    information (``{"BTCUSDT": {"tick": "0.01", "step": "0.00001", "min_notional": "5"}}``), None otherwise."""

    def __init__(self, symbols: Mapping[tuple[str, str], TickRules] | None = None) -> None:
        self._symbols = dict(symbols or {})

    def __call__(self, venue: str, symbol: str) -> TickRules | None:
        found = self._symbols.get((venue, symbol))
        if found is not None:
            return found
        return TickRules.ladder() if venue in LADDER_VENUES else None

    @classmethod
    def from_exchange_info(cls, venue: str, info: Mapping[str, Mapping[str, Any]]) -> VenueRules:
        """Rules of ``venue``'s symbols from its exchange information; a symbol without a tick or lot is left
        out (its decisions are refused, never traded on a guessed grid)."""
        symbols: dict[tuple[str, str], TickRules] = {}
        for symbol, entry in info.items():
            tick, step = _positive(entry.get("tick")), _positive(entry.get("step"))
            if tick is None or step is None:
                continue
            symbols[(venue, symbol.upper())] = TickRules.fixed(tick, step, _positive(entry.get("min_notional")) or 0.0)
        return cls(symbols)

    def merged(self, other: VenueRules) -> VenueRules:
        return VenueRules({**self._symbols, **other._symbols})


def _positive(value: Any) -> float | None:
    """A positive decimal from exchange information (strings, as the exchange states them), else None."""
    try:
        number = float(Decimal(str(value)))
    except (ArithmeticError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None
