"""What a symbol's tape usually looks like at this time of day: per-symbol baselines by venue-local time of day,
learnt across sessions.

The day (venue-local, so a 24-hour venue's cycle too) is cut into buckets of ``bucket_minutes``. Within a session,
each bucket accumulates the mean of every tracked series over the chunks it saw (O(1) per chunk). When the tape
leaves the bucket, that session's mean is folded into the bucket's memory: a plain mean over the first sessions,
then an exponentially weighted one over ``memory_sessions``. One session cannot teach a bucket more than
``max_growth`` times what it knew (a pump inside a bucket does not become the bucket's norm), and a bucket seen for
fewer than ``min_chunks`` chunks teaches nothing (the tape started or stopped inside it).

What happens every day at 08:30 is then the 08:30 bucket's baseline, not an anomaly against the quiet hour
before it. A bucket never learnt (the first session, or a time the symbol never traded) falls back on the median
of the buckets that were, said so in :attr:`Baseline.sessions` (0).

>>> params = SeasonalParams(bucket_minutes=30, min_chunks=2)
>>> profile = TimeOfDayProfile(("move_sq",), params, utc_offset_min=0)
>>> minute = 60_000
>>> for ts in range(5_000, 30 * minute + 1, 5_000):  # chunks ending 00:00:05-00:30 of day 0: quiet
...     profile.observe(ts, (1.0,))
>>> for ts in range(30 * minute + 5_000, 60 * minute + 1, 5_000):  # 00:30-01:00: busy
...     profile.observe(ts, (9.0,))
>>> profile.observe(60 * minute + 5_000, (1.0,))  # leaves the busy bucket: day 0 is learnt
>>> profile.typical(86_400_000 + 45 * minute, 0)  # the next day at 00:45
Baseline(value=9.0, sessions=1)
>>> profile.typical(86_400_000 + 5 * 60 * minute, 0)  # 05:00 was never seen: the day's median, no session of its own
Baseline(value=5.0, sessions=0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class SeasonalParams:
    """How a time-of-day profile learns; validated on construction."""

    #: the width of one time-of-day bucket (divides the day)
    bucket_minutes: int = 30
    #: sessions of memory: a bucket's baseline is the plain mean of its first sessions, then weighted 1/this
    memory_sessions: int = 10
    #: a bucket seen for fewer chunks than this in a session learns nothing from it
    min_chunks: int = 24
    #: one session raises a bucket's learnt mean at most this many times
    max_growth: float = 4.0

    def __post_init__(self) -> None:
        if not 1 <= self.bucket_minutes <= 1440 or 1440 % self.bucket_minutes:
            raise ValueError(f"bucket_minutes must divide the day (1440), got {self.bucket_minutes}")
        if self.memory_sessions < 1:
            raise ValueError(f"memory_sessions must be at least 1, got {self.memory_sessions}")
        if self.min_chunks < 1:
            raise ValueError(f"min_chunks must be at least 1, got {self.min_chunks}")
        if not self.max_growth > 1.0:
            raise ValueError(f"max_growth must exceed 1, got {self.max_growth}")

    @property
    def bucket_ms(self) -> int:
        return self.bucket_minutes * 60_000


class Baseline(NamedTuple):
    """A series' usual value at a time of day (``None``: nothing learnt yet) and how many past sessions it
    is the memory of at that bucket (0: the day's other buckets stand in)."""

    value: float | None
    sessions: int


class TimeOfDayProfile:
    """Baselines of a fixed set of named series by venue-local time of day; O(1) per :meth:`observe`."""

    __slots__ = ("_acc", "_day_level", "learnt", "names", "offset_ms", "params")

    def __init__(self, names: Sequence[str], params: SeasonalParams, utc_offset_min: int) -> None:
        self.names = tuple(names)
        self.params = params
        self.offset_ms = utc_offset_min * 60_000
        #: bucket → [sessions, mean of each series (``None``: never measured there)]
        self.learnt: dict[int, list[float | None]] = {}
        #: the session's bucket being accumulated: [day, bucket, chunks, (sum, count) of each series]
        self._acc: list[float] | None = None
        self._day_level: list[float | None] | None = None  # cached fallback, dropped when a bucket is learnt

    def _slot(self, ts: int) -> tuple[int, int]:
        local = ts + self.offset_ms
        return local // DAY_MS, (local % DAY_MS) // self.params.bucket_ms

    def observe(self, ts: int, values: Sequence[float | None]) -> None:
        """One chunk ending at ``ts`` (UTC ms) with one value per series (``None``: not measured)."""
        day, bucket = self._slot(ts - 1)  # a chunk ending on a bucket's edge belongs to the bucket it closes
        acc = self._acc
        if acc is None or acc[0] != day or acc[1] != bucket:
            if acc is not None:
                self._fold(acc)
            acc = self._acc = [float(day), float(bucket), 0.0] + [0.0] * (2 * len(self.names))
        acc[2] += 1
        for i, value in enumerate(values):
            if value is not None:
                acc[3 + 2 * i] += value
                acc[4 + 2 * i] += 1

    def _fold(self, acc: Sequence[float]) -> None:
        if acc[2] < self.params.min_chunks:
            return
        bucket = int(acc[1])
        held = self.learnt.get(bucket)
        sessions = 1 if held is None else int(held[0] or 0) + 1
        alpha = max(1.0 / sessions, 1.0 / self.params.memory_sessions)
        row: list[float | None] = [float(sessions)]
        for i in range(len(self.names)):
            total, count = acc[3 + 2 * i], acc[4 + 2 * i]
            old = None if held is None else held[1 + i]
            mean = total / count if count else old
            if mean is not None and old is not None:  # what the bucket knew caps what one session teaches
                capped = min(mean, self.params.max_growth * old) if old > 0 else mean
                mean = old + alpha * (capped - old)
            row.append(mean)
        self.learnt[bucket] = row
        self._day_level = None

    def flush(self) -> None:
        """End of input: folds the bucket in progress, the tape having ended inside it (a history replayed for
        calibration)."""
        if self._acc is not None:
            self._fold(self._acc)
            self._acc = None

    def typical(self, ts: int, index: int) -> Baseline:
        """Series ``index``'s baseline at the time of day of ``ts``."""
        row = self.learnt.get(self._slot(ts - 1)[1])
        if row is not None and row[1 + index] is not None:
            return Baseline(row[1 + index], int(row[0] or 0))
        if self._day_level is None:
            self._day_level = [self._median_of(i) for i in range(len(self.names))]
        return Baseline(self._day_level[index], 0)

    def _median_of(self, index: int) -> float | None:
        """The median over the learnt buckets: a bucket that held an episode does not set the day's level."""
        known = sorted(value for row in self.learnt.values() if (value := row[1 + index]) is not None)
        if not known:
            return None
        middle = len(known) // 2
        return known[middle] if len(known) % 2 else 0.5 * (known[middle - 1] + known[middle])

    def to_state(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "bucket_minutes": self.params.bucket_minutes,
            "learnt": {str(bucket): row for bucket, row in sorted(self.learnt.items())},
            "acc": self._acc,
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], names: Sequence[str], params: SeasonalParams, utc_offset_min: int
    ) -> TimeOfDayProfile:
        """Restores a state of the same series and buckets; another layout (or none) starts empty."""
        profile = cls(names, params, utc_offset_min)
        if list(state.get("names", [])) != list(profile.names):
            return profile
        if state.get("bucket_minutes") != params.bucket_minutes:
            return profile
        profile.learnt = {int(bucket): nullable_floats(row) for bucket, row in state.get("learnt", {}).items()}
        acc = state.get("acc")
        profile._acc = None if acc is None else [float(x) for x in acc]
        return profile

    def seed(self, learnt: Mapping[int, Sequence[float | None]]) -> None:
        """Starts from baselines learnt elsewhere (a calibration over the symbol's history): the memory only, not a
        bucket in progress."""
        self.learnt = {int(bucket): nullable_floats(row) for bucket, row in learnt.items()}
        self._day_level = None


def nullable_floats(raw: Sequence[float | None]) -> list[float | None]:
    """A stored row of numbers (JSON: ints or floats, ``None`` where unknown) as floats."""
    return [None if x is None else float(x) for x in raw]
