"""The largest value a symbol's series reached in each of its last sessions: what "rare for this symbol" means
whatever the shape of its tails.

A generic outlier (a price or volume burst) judged in σ or in multiples of a typical move fires as often as the
symbol's tails are fat: a market whose 25-second moves of four typical ones happen ten times a day raises ten
alerts a day. Judged against the symbol's own *records* instead, an outlier is the largest value of the last
``memory_sessions`` venue-local days and of today so far; whatever the distribution, a stationary series beats
such a record about once per ``memory_sessions`` days, so the rate does not depend on the tails at all. A gap in the
tape (a weekend, a holiday) is not a session: the memory is of the sessions the symbol traded.

O(1) per chunk; :meth:`record` looks at ``memory_sessions + 1`` numbers per series.

>>> records = SessionRecords(("move",), RecordParams(memory_sessions=2), utc_offset_min=0)
>>> day = 86_400_000
>>> records.observe(1_000, (50.0,))
>>> records.observe(2_000, (20.0,))
>>> records.record(0)  # today so far
RecordHigh(value=50.0, sessions=0)
>>> records.observe(day + 1_000, (30.0,))  # the next day
>>> records.record(0)
RecordHigh(value=50.0, sessions=1)
>>> records.observe(3 * day + 1_000, (10.0,)), records.observe(4 * day + 1_000, (10.0,))
(None, None)
>>> records.record(0)  # the 50 fell out of the last two sessions
RecordHigh(value=30.0, sessions=2)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from tapewatch.detectors.seasonal import DAY_MS, nullable_floats


@dataclass(frozen=True, slots=True)
class RecordParams:
    """How many sessions a record spans; validated on construction."""

    #: a value is a record when it is the largest of this many past sessions and of today so far
    memory_sessions: int = 5
    #: past sessions a record must span before a value with nothing but its size can be called rare (a symbol's
    #: first hours do not tell what is rare for it); a calibration's history counts
    min_sessions: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.memory_sessions <= 250:
            raise ValueError(f"memory_sessions must be 1…250, got {self.memory_sessions}")
        if not 0 <= self.min_sessions <= self.memory_sessions:
            raise ValueError(f"min_sessions must be 0…memory_sessions, got {self.min_sessions}")


class RecordHigh(NamedTuple):
    """The largest value seen (``None``: nothing yet) and how many past sessions besides today it spans."""

    value: float | None
    sessions: int


class SessionRecords:
    """Per named series, the maximum of each of the last sessions and of the current one."""

    __slots__ = ("_day", "_past", "_today", "names", "offset_ms", "params")

    def __init__(self, names: Sequence[str], params: RecordParams, utc_offset_min: int) -> None:
        self.names = tuple(names)
        self.params = params
        self.offset_ms = utc_offset_min * 60_000
        self._day: int | None = None
        self._today: list[float | None] = [None] * len(self.names)
        self._past: deque[list[float | None]] = deque(maxlen=params.memory_sessions)

    def observe(self, ts: int, values: Sequence[float | None]) -> None:
        """One chunk ending at ``ts`` (UTC ms) with one value per series (``None``: not measured, the session still
        counts as one the symbol traded)."""
        day = (ts - 1 + self.offset_ms) // DAY_MS
        if day != self._day:
            if self._day is not None:  # a session the symbol traded, whether or not a series had a value in it
                self._past.append(self._today)
            self._day, self._today = day, [None] * len(self.names)
        today = self._today
        for i, value in enumerate(values):
            if value is not None and (today[i] is None or value > today[i]):  # type: ignore[operator]
                today[i] = value

    def record(self, index: int) -> RecordHigh:
        """Series ``index``'s largest value over the past sessions and today (up to the last chunk observed)."""
        known = [row[index] for row in self._past if row[index] is not None]
        if self._today[index] is not None:
            known.append(self._today[index])
        return RecordHigh(max(known) if known else None, len(self._past))  # type: ignore[type-var]

    def counted(self, ts: int, index: int, size: float) -> RecordHigh:
        """The record a hit of ``size`` at ``ts`` must beat (series ``index``'s, before it), the hit then counted."""
        record = self.record(index)
        self.observe(ts, tuple(size if i == index else None for i in range(len(self.names))))
        return record

    def to_state(self) -> dict[str, Any]:
        return {"names": list(self.names), "day": self._day, "today": self._today, "past": list(self._past)}

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], names: Sequence[str], params: RecordParams, utc_offset_min: int
    ) -> SessionRecords:
        """Restores a state of the same series; another (or none) starts empty."""
        records = cls(names, params, utc_offset_min)
        if list(state.get("names", [])) != list(records.names):
            return records
        records._day = state.get("day")
        records._today = nullable_floats(state.get("today") or records._today)
        records._past.extend(nullable_floats(row) for row in state.get("past", []))
        return records

    def sessions(self) -> list[list[float | None]]:
        """Every session's maxima kept, the last one today's (a history replayed for calibration ends inside it)."""
        today = [self._today] if self._day is not None else []
        return [list(row) for row in self._past] + today

    def seed(self, past: Sequence[Sequence[float | None]]) -> None:
        """Starts from the records of sessions seen elsewhere (a calibration over the symbol's history)."""
        self._past = deque((nullable_floats(row) for row in past), maxlen=self.params.memory_sessions)
