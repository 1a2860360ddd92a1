"""What a feed's prints are, learnt from one symbol's own records when its venue's profile does not say.

A venue named in no feed profile (a file without a ``venue`` column, a new exchange) may send one record per
trade or one per snapshot (the size traded since the previous one, TWSE MIS's shape). The difference decides
what the order flow can show: rush orders, runs of fills, alternation and mirror trades exist only between
individual prints. The two shapes differ in time: snapshots come on a clock — one record per symbol per
interval, the gaps between records whole multiples of the cadence, never two in one millisecond — while
prints come when orders arrive, with gaps of every length and same-millisecond fills.

:class:`PrintsLearner` watches the timestamps of a symbol's first :data:`LEARN_RECORDS` quote records (trades
and snapshots that did not print alike) and decides. Only the quote stream is read, in its order, so the
decision does not depend on how quotes and books interleave: the stream worker and ``detect file`` decide
alike. O(1) per record; the state is at most :data:`LEARN_RECORDS` gaps.

>>> snapshots = PrintsLearner()
>>> [snapshots.observe(5_000 * i + (i % 3) * 40) for i in range(LEARN_RECORDS)][-1]  # every 5 s, jittered
'snapshots'
>>> import random
>>> rng, ts, prints = random.Random(7), 0, PrintsLearner()
>>> for _ in range(LEARN_RECORDS):
...     ts += int(rng.expovariate(1 / 4_000))  # prints arriving at random, one per 4 s on average
...     decided = prints.observe(ts)
>>> decided
'trades'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from tapewatch.feeds import Prints

#: records watched before deciding (5 s snapshots: 2.5 minutes; 1 s: half a minute)
LEARN_RECORDS: Final = 32
#: the fastest snapshot cadence recognised: a clock faster than this is read as prints
MIN_CADENCE_MS: Final = 500
#: a gap counts as on the clock within this share of the cadence of a whole multiple (polling jitter)
GRID_TOLERANCE: Final = 0.2
#: snapshots: at least this share of the gaps on the clock (prints arriving at random: about 0.4)
GRID_SHARE: Final = 0.8
#: prints: more than this share of the records in the millisecond of the previous one
MAX_SAME_MS_SHARE: Final = 0.1
#: the cadences tried: each gap divided by 1 … this (a symbol may print in only some of its snapshots)
MAX_MULTIPLE: Final = 4


def classify_prints(gaps: Sequence[int]) -> Prints:
    """``snapshots`` when the gaps between consecutive records (ms, in stream order) keep a clock, else
    ``trades``. A clock: few same-millisecond records, and a cadence of at least :data:`MIN_CADENCE_MS` with
    most gaps within :data:`GRID_TOLERANCE` of a whole multiple of it (the tolerance is relative, so gaps of
    prints arriving at random land on any cadence's clock about 40 % of the time). A symbol that printed in
    only some of its snapshots keeps the clock, its gaps being multiples of it.

    >>> classify_prints([1_000] * 20 + [2_000, 3_000])
    'snapshots'
    >>> classify_prints([5_000] * 4 + [10_000] * 8 + [15_000] * 4)  # printed in half of its snapshots
    'snapshots'
    >>> classify_prints([0, 0, 0, 1_000, 1_000, 1_000])  # fills in one millisecond: prints
    'trades'
    >>> classify_prints([200, 250, 200, 200])  # faster than any snapshot clock
    'trades'
    """
    if not gaps or sum(g == 0 for g in gaps) > MAX_SAME_MS_SHARE * len(gaps):
        return "trades"
    positive = [g for g in gaps if g > 0]
    # a clock's cadence divides its gaps: try every gap and its halves, thirds and quarters
    cadences = {g // k for g in positive for k in range(1, MAX_MULTIPLE + 1) if g // k >= MIN_CADENCE_MS}
    best = max((_on_clock(positive, cadence) for cadence in cadences), default=0)
    return "snapshots" if best >= GRID_SHARE * len(gaps) else "trades"


def _on_clock(gaps: Sequence[int], cadence: int) -> int:
    """How many ``gaps`` lie within :data:`GRID_TOLERANCE` of the cadence of a whole multiple of it."""
    return sum(
        g >= (1 - GRID_TOLERANCE) * cadence and abs(g / cadence - round(g / cadence)) <= GRID_TOLERANCE for g in gaps
    )


class PrintsLearner:
    """Watches one symbol's quote-record timestamps; :meth:`observe` returns the decision once made."""

    __slots__ = ("decided", "gaps", "last_ts")

    def __init__(self) -> None:
        self.gaps: list[int] = []
        self.last_ts: int | None = None
        self.decided: Prints | None = None

    def observe(self, ts: int) -> Prints | None:
        """Record one quote record's ts; the decision from the :data:`LEARN_RECORDS`-th record on."""
        if self.decided is None:
            if self.last_ts is not None:
                self.gaps.append(ts - self.last_ts)
            self.last_ts = ts
            if len(self.gaps) >= LEARN_RECORDS - 1:
                self.decided = classify_prints(self.gaps)
                self.gaps = []
        return self.decided

    def to_state(self) -> list[Any]:
        return [self.decided, self.last_ts, list(self.gaps)]

    @classmethod
    def from_state(cls, state: Sequence[Any]) -> PrintsLearner:
        learner = cls()
        decided, last_ts, gaps = state
        if decided not in (None, "trades", "snapshots"):
            raise ValueError(f"learnt prints {decided!r} is neither trades nor snapshots")
        learner.decided = decided
        learner.last_ts = None if last_ts is None else int(last_ts)
        learner.gaps = [int(g) for g in gaps]
        return learner
