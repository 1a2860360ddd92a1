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
from itertools import accumulate, islice
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
        # the buckets in use in order, their weights, middles and running sums, read off ``_of`` (the dict of
        # buckets they follow; None: read them again): a quantile is asked at every placement, and an observation
        # changes only the running sums from its bucket on, so those are added again from there (``_valid``), the
        # same additions in the same order as over all of them
        self._of: dict[int, float] | None = None
        self._ordered: list[int] = []
        self._at: dict[int, int] = {}
        self._weights: list[float] = []
        self._middles: list[float] = []
        self._running: list[float] = []
        self._valid = 0

    def observe(self, size: float) -> None:
        if not size > 0:
            return
        bucket = math.floor(math.log2(size) * RESOLUTION)
        buckets = self.buckets
        weight = buckets[bucket] = buckets.get(bucket, 0.0) + self.weight
        self.total += self.weight
        self.seen += 1
        self.weight *= self.growth
        at = self._at.get(bucket) if self._of is buckets else None
        if at is None:  # a new bucket (or new buckets): the order is read again
            self._of = None
        else:
            self._weights[at] = weight
            self._valid = min(self._valid, at)
        if self.weight > RESCALE_AT:
            self._rescale()

    def count(self) -> int:
        """How many orders it has seen."""
        return self.seen

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of the recent sizes (the middle of its bucket); None before any order."""
        return self.quantiles(q)[0]

    def quantiles(self, *qs: float) -> list[float | None]:
        """Each of the ``qs`` quantiles of the recent sizes, from the running sums of the buckets in order: the first
        bucket whose running weight reaches ``q`` of the total (the weights are positive, so the sums ascend)."""
        buckets = self.buckets
        if not buckets:
            return [None] * len(qs)
        if self._of is not buckets or len(self._ordered) != len(buckets):
            self._read(buckets)
        running, valid = self._running, self._valid
        if valid < len(running):
            if valid == 0:
                running[:] = accumulate(self._weights)
            else:  # from the first changed bucket on, each sum the one before it plus the bucket's weight
                running[valid:] = islice(accumulate(self._weights[valid:], initial=running[valid - 1]), 1, None)
            self._valid = len(running)
        middles, last, total = self._middles, len(running) - 1, self.total
        return [middles[min(bisect_left(running, q * total), last)] for q in qs]

    def _read(self, buckets: dict[int, float]) -> None:
        """The buckets in order, their weights and middles, read afresh; every running sum to be added again."""
        self._ordered = sorted(buckets)
        self._at = {bucket: at for at, bucket in enumerate(self._ordered)}
        self._weights = [buckets[bucket] for bucket in self._ordered]
        self._middles = [_middle(bucket) for bucket in self._ordered]
        self._running = [0.0] * len(self._ordered)
        self._of, self._valid = buckets, 0

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
