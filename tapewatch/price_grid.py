"""Venues' price grids: the one definition of the TWSE tick ladder, read by the simulator and the paper trader.

TWSE (and TPEx) quote stocks on a ladder whose tick grows with the price: < 10 → 0.01, < 50 → 0.05,
< 100 → 0.1, < 500 → 0.5, < 1000 → 1, else 5. Band boundaries are multiples of the coarser tick, so a single
integer index runs over all bands (the simulator's tick index).
"""

from __future__ import annotations

from typing import Final

import numpy as np

TWSE_BAND_LOW: Final = np.array([0.0, 10.0, 50.0, 100.0, 500.0, 1000.0])
TWSE_BAND_TICK: Final = np.array([0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
_LADDER: Final = tuple(zip(TWSE_BAND_LOW[::-1].tolist(), TWSE_BAND_TICK[::-1].tolist(), strict=True))


def twse_tick(price: float) -> float:
    """TWSE tick for a price.

    >>> twse_tick(9.99), twse_tick(10.0), twse_tick(499.5), twse_tick(1000.0)
    (0.01, 0.05, 0.5, 5.0)
    """
    for low, tick in _LADDER:
        if price >= low:
            return float(tick)
    return float(TWSE_BAND_TICK[0])
