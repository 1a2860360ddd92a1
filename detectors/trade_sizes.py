"""Counts of a tape's trade sizes that the statistical wash tests read: O(1) per trade, bounded memory.

Per trade size ``s > 0``, written as ``m × 10^e`` with ``1 ≤ m < 10``, the tally counts

* ``digits[d]``: the first significant digit ``d = ⌊m⌋`` (Benford's test);
* ``decades[e]``: the decade of the size (whether the sizes span enough orders of magnitude for Benford);
* ``steps[p]``: the exponent ``p`` of the size's last significant digit (``0.0153`` → −4): the lot, learnt as the
  coarsest power of ten nearly every size is a multiple of;
* ``leading[100·e + f]``: the first two significant digits ``f`` (10 … 99) with the decade: a histogram of the sizes
  in bins a tenth of a decade wide or narrower, from which the tail exponent is estimated;
* ``round_at[E]`` and ``round_near[E]``: the sizes exactly at a round size ``R = r × 10^E`` (``r`` = 1 … 9, one
  significant digit) and those just beside it on ``R``'s own grid of hundredths of its decade (``R ± j × 10^(E−2)``,
  ``j`` = 1 … ``neighbours``), by ``E``. A size of ``R``'s precision that is not that close to a round size, or of
  finer precision (``0.01534``), is in neither.

Every decade is a small integer within [−10, 14] (sizes lie within [1e-9, 1e13]): at most a few thousand counters,
a few hundred on a real day.

>>> tally = SizeTally(neighbours=5)
>>> for size in (100, 100, 101, 97, 250, 0.5, 0.0153):
...     tally.observe(size)
>>> dict(tally.digits), tally.round_at, tally.round_near
({1: 4, 9: 1, 2: 1, 5: 1}, {2: 2, -1: 1}, {2: 2})
>>> SizeTally.from_state(tally.to_state()) == tally
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

#: sizes are read to 13 significant digits (a float carries 15 to 17; 99,999.99999999 has 13): a size is the integer
#: ``q`` of its 13 digits, 10^12 ≤ q < 10^13, and its decade ``e`` (size = q × 10^(e − 12)), so float noise (0.1 + 0.2)
#: never changes a digit and every test below is exact integer arithmetic
DIGITS: Final = 13
_LOW: Final = 10 ** (DIGITS - 1)
_HIGH: Final = 10**DIGITS
#: ``q``'s unit in tenths of its decade (its first two digits)
_TENTH: Final = 10 ** (DIGITS - 2)
#: ``q``'s unit in hundredths of its decade
_HUNDREDTH: Final = 10 ** (DIGITS - 3)
#: the widest band beside a round size: wider, the band under a power of ten (ten hundredths a step) would reach
#: the band of the 9 below it
MAX_NEIGHBOURS: Final = 9
#: 10^(12 − e) for every decade a size can have (the records' sizes lie within [1e-9, 1e13])
_SCALE: Final = {e: 10.0 ** (DIGITS - 1 - e) for e in range(-12, 17)}


def significand(size: float) -> tuple[int, int]:
    """``(q, e)``: the size's 13 significant digits as an integer and its decade (``size ≈ q × 10^(e − 12)``).

    >>> significand(0.0153), significand(0.1 + 0.2), significand(9.99999999999999)
    ((1530000000000, -2), (3000000000000, -1), (1000000000000, 1))
    """
    exponent = math.floor(math.log10(size))
    digits = round(size * _SCALE[exponent])
    if digits >= _HIGH:
        return (digits + 5) // 10, exponent + 1
    if digits < _LOW:
        return round(size * _SCALE[exponent - 1]), exponent - 1
    return digits, exponent


def round_offset(step: int, exponent: int, neighbours: int) -> tuple[int, int] | None:
    """``(E, j)`` when a size of ``step`` hundredths of its decade ``exponent`` (100 … 999) is the round size
    ``R = r × 10^E`` (``j = 0``) or ``j`` hundredths of ``R``'s decade from it (``0 < |j| ≤ neighbours``); None
    otherwise. Below a power of ten the grid is the power's own: 9.9 is one of 10's hundredths under 10; 9.95 is
    off that grid."""
    if step >= 1000 - 10 * neighbours:  # beside the next power of ten: its grid is ten of these steps
        return (exponent + 1, (step - 1000) // 10) if step % 10 == 0 else None
    offset = step - 100 * ((step + 50) // 100)
    return (exponent, offset) if abs(offset) <= neighbours else None


@dataclass(slots=True)
class SizeTally:
    """The counts of one window of one symbol's trade sizes (see the module's note)."""

    neighbours: int = 5
    trades: int = 0
    #: trades of size 0 (or negative): no digit, counted only
    empty: int = 0
    digits: dict[int, int] = field(default_factory=dict)
    decades: dict[int, int] = field(default_factory=dict)
    steps: dict[int, int] = field(default_factory=dict)
    leading: dict[int, int] = field(default_factory=dict)
    round_at: dict[int, int] = field(default_factory=dict)
    round_near: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.neighbours, bool) or not 1 <= self.neighbours <= MAX_NEIGHBOURS:
            raise ValueError(f"neighbours must be within 1 … {MAX_NEIGHBOURS} hundredths, got {self.neighbours!r}")

    def observe(self, size: float) -> None:
        """Counts one trade of ``size`` (units of the instrument: shares, contracts, coins)."""
        self.trades += 1
        if not 0.0 < size < math.inf:
            self.empty += 1
            return
        digits, exponent = significand(size)
        first, decades, steps = digits // _LOW, self.decades, self.steps
        self.digits[first] = self.digits.get(first, 0) + 1
        decades[exponent] = decades.get(exponent, 0) + 1
        significant = str(digits).rstrip("0")
        last = exponent - len(significant) + 1
        steps[last] = steps.get(last, 0) + 1
        leading = 100 * exponent + digits // _TENTH
        self.leading[leading] = self.leading.get(leading, 0) + 1
        if len(significant) <= 3:  # on its decade's grid of hundredths
            offset = round_offset(digits // _HUNDREDTH, exponent, self.neighbours)
            if offset is not None:
                counts = self.round_at if offset[1] == 0 else self.round_near
                counts[offset[0]] = counts.get(offset[0], 0) + 1

    def to_state(self) -> dict[str, Any]:
        """JSON-able (keys as strings): :meth:`from_state` restores it."""
        counts = {name: _keyed(getattr(self, name)) for name in _COUNTS}
        return {"neighbours": self.neighbours, "trades": self.trades, "empty": self.empty, **counts}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SizeTally:
        counts = {name: {int(k): int(v) for k, v in state[name].items()} for name in _COUNTS}
        return cls(int(state["neighbours"]), int(state["trades"]), int(state["empty"]), **counts)


_COUNTS: Final = ("digits", "decades", "steps", "leading", "round_at", "round_near")


def _keyed(counts: Mapping[int, int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(counts.items())}
