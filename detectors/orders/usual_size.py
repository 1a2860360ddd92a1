"""What size a symbol's orders usually are: a quantile of the recent order sizes, learnt one order at a time.

Sizes are counted in buckets of a quarter octave (a size and 1.19 times it share a bucket), so a quantile is read to
within 19 %, whatever the instrument's lot; older orders weigh less (their weight halves every ``half_life`` orders),
so the estimate follows a symbol whose orders grow or shrink through the day. ``observe`` is O(1); a quantile is read
over the buckets in use (tens).

>>> usual = UsualSize()
>>> for size in [100.0] * 50 + [300.0] * 40 + [5_000.0] * 10:
...     usual.observe(size)
>>> round(usual.quantile(0.5)), round(usual.quantile(0.95))  # 300 and 5,000, to within a bucket
(279, 5312)
"""

from __future__ import annotations

import math
from bisect import bisect_left
from itertools import accumulate
from typing import Any, Final

#: buckets per octave
RESOLUTION: Final = 4
#: the weights are brought back near 1 when they grow past this (no float ever overflows)
RESCALE_AT: Final = 1e100


class UsualSize:
    """A decaying histogram of log sizes (estimator: ``observe``; asked ``quantile`` and ``count``)."""

    def __init__(self, half_life: int = 2_000) -> None:
        if half_life < 1:
            raise ValueError("half_life must be at least one order")
        self.half_life = half_life
        self.growth = 2.0 ** (1.0 / half_life)
        self.weight = 1.0
        self.buckets: dict[int, float] = {}
        self.total = 0.0
        self.seen = 0
        #: the buckets in use, sorted, and the dict they were read from: kept between quantiles (new buckets are
        #: rare once a symbol has traded a while), read again when a bucket came or the dict was replaced
        self._ordered: list[int] = []
        self._ordered_of: dict[int, float] | None = None

    def observe(self, size: float) -> None:
        if not size > 0:
            return
        bucket = math.floor(math.log2(size) * RESOLUTION)
        self.buckets[bucket] = self.buckets.get(bucket, 0.0) + self.weight
        self.total += self.weight
        self.seen += 1
        self.weight *= self.growth
        if self.weight > RESCALE_AT:
            self._rescale()

    def count(self) -> int:
        """How many orders it has seen."""
        return self.seen

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of the recent sizes (the middle of its bucket); None before any order."""
        return self.quantiles(q)[0]

    def quantiles(self, *qs: float) -> list[float | None]:
        """Each of the ``qs`` quantiles of the recent sizes, from one sorted pass over the buckets: the first bucket
        whose running weight reaches ``q`` of the total (the weights are positive, so the running sums ascend)."""
        if not self.buckets:
            return [None] * len(qs)
        ordered = self._sorted()
        running = list(accumulate(map(self.buckets.__getitem__, ordered)))
        last = len(ordered) - 1
        return [_middle(ordered[min(bisect_left(running, q * self.total), last)]) for q in qs]

    def _sorted(self) -> list[int]:
        """The buckets in use, in order. Buckets only come while the dict lives (a rescale makes a new one), so one
        as long as the sorted list has the same keys."""
        buckets = self.buckets
        if self._ordered_of is not buckets or len(self._ordered) != len(buckets):
            self._ordered, self._ordered_of = sorted(buckets), buckets
        return self._ordered

    def _rescale(self) -> None:
        scale = 1.0 / self.weight
        self.buckets = {b: w * scale for b, w in self.buckets.items() if w * scale > 1e-12}
        self.total = sum(self.buckets.values())
        self.weight = 1.0

    def to_state(self) -> dict[str, Any]:
        buckets = {str(bucket): weight for bucket, weight in self.buckets.items()}  # JSON keys are strings
        return {"weight": self.weight, "buckets": buckets, "total": self.total, "seen": self.seen}

    @classmethod
    def from_state(cls, state: dict[str, Any], half_life: int = 2_000) -> UsualSize:
        usual = cls(half_life)
        usual.weight, usual.total, usual.seen = state["weight"], state["total"], state["seen"]
        usual.buckets = {int(b): float(w) for b, w in state["buckets"].items()}
        return usual


def _middle(bucket: int) -> float:
    """The size in the middle of ``bucket`` (on the log scale)."""
    return float(2.0 ** ((bucket + 0.5) / RESOLUTION))
