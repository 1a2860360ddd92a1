"""Counts of a tape's trade sizes that the statistical wash tests read: O(1) per trade, bounded memory.

Per trade size ``s > 0``, written as ``m × 10^e`` with ``1 ≤ m < 10``, the tally counts

* ``digits[d]``: the first significant digit ``d = ⌊m⌋`` (Benford's test);
* ``decades[e]``: the decade of the size (whether the sizes span enough orders of magnitude for Benford);
* ``steps[p]``: the exponent ``p`` of the size's last significant digit (``0.0153`` → −4): the lot, learnt as the
  coarsest power of ten nearly every size is a multiple of;
* ``round_at[E]`` and ``round_near[E]``: the sizes exactly at a round size ``R = r × 10^E`` (``r`` = 1 … 9, one
  significant digit) and those just beside it on ``R``'s own grid of hundredths of its decade (``R ± j × 10^(E−2)``,
  ``j`` = 1 … ``neighbours``), by ``E``. A size of ``R``'s precision that is not that close to a round size, or of
  finer precision (``0.01534``), is in neither.

Every key is a small integer within [−10, 14] (sizes lie within [1e-9, 1e13]): at most a few hundred counters.

>>> tally = SizeTally(neighbours=5)
>>> for size in (100, 100, 101, 97, 250, 0.5, 0.0153):
...     tally.add(size)
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

#: a size's significand is snapped to this many decimals: sizes are read to 13 significant digits (a float carries
#: 15 to 17; 99,999.99999999 has 13), so float noise (0.1 + 0.2) never changes a digit
_SNAP: Final = 12
#: the widest band beside a round size: wider, the band under a power of ten (ten hundredths a step) would reach
#: the band of the 9 below it
MAX_NEIGHBOURS: Final = 9
#: how far from an integer a size counted in hundredths of its decade (100 … 1000) may be and still be on that grid:
#: well above the float error of a snapped significand (~1e-13), well below its last digit (1e-10)
_ON_GRID: Final = 1e-11


def significand(size: float) -> tuple[float, int]:
    """``(m, e)`` with ``size = m × 10^e`` and ``1 ≤ m < 10``, ``m`` snapped against float noise.

    >>> significand(0.0153), significand(1000.0), significand(9.99999999999999)
    ((1.53, -2), (1.0, 3), (1.0, 1))
    """
    exponent = math.floor(math.log10(size))
    mantissa = round(size / 10.0**exponent, _SNAP)
    if mantissa >= 10.0:
        mantissa, exponent = round(mantissa / 10.0, _SNAP), exponent + 1
    elif mantissa < 1.0:
        mantissa, exponent = round(mantissa * 10.0, _SNAP), exponent - 1
    return mantissa, exponent


def last_digit_exponent(mantissa: float, exponent: int) -> int:
    """The exponent of the last significant digit of ``mantissa × 10^exponent`` (``1.53 × 10^-2`` → −4)."""
    for decimals in range(_SNAP + 1):
        scaled = mantissa * 10.0**decimals
        if abs(scaled - round(scaled)) < 10.0 ** (decimals - _SNAP - 1):  # the float error of ``scaled``, × 100
            return exponent - decimals
    return exponent - _SNAP


def round_offset(mantissa: float, exponent: int, neighbours: int) -> tuple[int, int] | None:
    """``(E, j)`` when the size is the round size ``R = r × 10^E`` (``j = 0``) or ``j`` hundredths of ``R``'s decade
    from it (``0 < |j| ≤ neighbours``); None otherwise. Below a power of ten the grid is the power's own: 9.9 and
    9.95 are one and a half hundredths of 10's decade under 10; 9.95 is off it."""
    hundredths = mantissa * 100.0  # within [100, 1000): the size on its own decade's grid of hundredths
    step = round(hundredths)
    if abs(hundredths - step) > _ON_GRID:
        return None
    nearest = round(step / 100.0)  # 1 … 10
    if nearest == 10:  # beside the next power of ten: its grid is ten of these steps
        if step % 10:
            return None
        offset, exponent = (step - 1000) // 10, exponent + 1
    else:
        offset = step - 100 * nearest
    if abs(offset) > neighbours:
        return None
    return exponent, offset


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
    round_at: dict[int, int] = field(default_factory=dict)
    round_near: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.neighbours, bool) or not 1 <= self.neighbours <= MAX_NEIGHBOURS:
            raise ValueError(f"neighbours must be within 1 … {MAX_NEIGHBOURS} hundredths, got {self.neighbours!r}")

    def add(self, size: float) -> None:
        """Counts one trade of ``size`` (units of the instrument: shares, contracts, coins)."""
        self.trades += 1
        if not size > 0.0 or not math.isfinite(size):
            self.empty += 1
            return
        mantissa, exponent = significand(size)
        _bump(self.digits, int(mantissa))
        _bump(self.decades, exponent)
        _bump(self.steps, last_digit_exponent(mantissa, exponent))
        offset = round_offset(mantissa, exponent, self.neighbours)
        if offset is not None:
            _bump(self.round_at if offset[1] == 0 else self.round_near, offset[0])

    def to_state(self) -> dict[str, Any]:
        """JSON-able (keys as strings): :meth:`from_state` restores it."""
        counts = {name: _keyed(getattr(self, name)) for name in _COUNTS}
        return {"neighbours": self.neighbours, "trades": self.trades, "empty": self.empty, **counts}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SizeTally:
        counts = {name: {int(k): int(v) for k, v in state[name].items()} for name in _COUNTS}
        return cls(int(state["neighbours"]), int(state["trades"]), int(state["empty"]), **counts)


_COUNTS: Final = ("digits", "decades", "steps", "round_at", "round_near")


def _bump(counts: dict[int, int], key: int) -> None:
    counts[key] = counts.get(key, 0) + 1


def _keyed(counts: Mapping[int, int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(counts.items())}
