"""Each symbol's last bar feature rows, kept by the stream worker for the forecasters' windows.

Appending a bar is O(1): a bounded deque, and a numpy ring that :meth:`FeatureHistory.window` reads, so a
forecast's window of ``w`` rows is one copy, not ``w`` rows converted again at every bar. The rows hold only
the features some loaded forecaster reads, so the table entry stays small (a 56-bar window of 20 features is
~1,100 numbers). When the loaded models change the names, rows keep the values of names still wanted and read
``None`` for new ones until new bars fill them.

>>> history = FeatureHistory(("ret_1", "rsi_14"), capacity=3)
>>> for k in range(4):
...     history.append({"ret_1": k / 100, "rsi_14": 50.0 + k, "kd_k": 1.0})
>>> len(history), [row["ret_1"] for row in history.rows(2)]
(3, [0.02, 0.03])
>>> again = FeatureHistory.from_state(history.to_state())
>>> again.rows(3) == history.rows(3), again.capacity
(True, 3)
>>> wider = again.resized(("ret_1", "kd_k"), capacity=2)
>>> wider.rows(2)
[{'ret_1': 0.02, 'kd_k': None}, {'ret_1': 0.03, 'kd_k': None}]
>>> wider.complete(2)
False
>>> history.window(2).tolist()  # the newest rows as one array (None → NaN), each converted once, when appended
[[0.02, 52.0], [0.03, 53.0]]
>>> wider.window(2).tolist()
[[0.02, nan], [0.03, nan]]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from tapewatch.state_versions import StateVersions

#: the feature history's state versions (one so far: no steps)
HISTORY_STATE: Final = StateVersions("feature history state")
STATE_VERSION: Final = HISTORY_STATE.current

Row = tuple[float | None, ...]


class FeatureHistory:
    """The last ``capacity`` rows of ``names``, oldest first."""

    def __init__(self, names: Sequence[str], capacity: int, rows: Sequence[Row] = ()) -> None:
        if capacity < 0:
            raise ValueError("capacity must not be negative")
        self.names: tuple[str, ...] = tuple(names)
        self.capacity = capacity
        self._rows: deque[Row] = deque(maxlen=capacity)
        # every row twice (at i and i + capacity): the newest rows are always one contiguous slice
        self._ring = np.full((2 * capacity, len(self.names)), np.nan)
        self._appended = 0
        for row in rows:
            self._push(row)

    def __len__(self) -> int:
        return len(self._rows)

    def append(self, values: Mapping[str, float | None]) -> None:
        if self.capacity:
            self._push(tuple(_number(values.get(name)) for name in self.names))

    def _push(self, row: Row) -> None:
        self._rows.append(row)
        at = self._appended % self.capacity
        self._ring[at] = self._ring[at + self.capacity] = np.array(row, dtype=np.float64)
        self._appended += 1

    def window(self, count: int) -> npt.NDArray[np.float64]:
        """The newest ``count`` rows (fewer when there are fewer) as a read-only ``(rows, names)`` array, NaN for
        a missing value: a view that the next append may change (copy it to keep it)."""
        n = min(count, len(self._rows))
        end = (self._appended - 1) % self.capacity + self.capacity + 1 if n else 0
        view = self._ring[end - n : end]
        view.flags.writeable = False
        return view

    def rows(self, count: int) -> list[dict[str, float | None]]:
        """The newest ``count`` rows (fewer when there are fewer) as name → value, oldest first."""
        start = max(len(self._rows) - count, 0)
        names = self.names
        return [dict(zip(names, self._rows[i], strict=True)) for i in range(start, len(self._rows))]

    def complete(self, count: int, names: Sequence[str] | None = None) -> bool:
        """Whether the newest ``count`` rows exist and hold every one of ``names`` (default: all)."""
        if len(self._rows) < count:
            return False
        wanted = [self.names.index(n) for n in (names if names is not None else self.names)]
        start = len(self._rows) - count
        return all(self._rows[i][j] is not None for i in range(start, len(self._rows)) for j in wanted)

    def snapshot(self) -> FeatureHistory:
        """A copy that later appends do not change (a bar close's rows, while the next bar arrives)."""
        copy = FeatureHistory(self.names, 0)
        copy.capacity, copy._rows, copy._appended = self.capacity, self._rows.copy(), self._appended
        copy._ring = self._ring.copy()  # one memory copy: no row is converted again
        return copy

    def resized(self, names: Sequence[str], capacity: int) -> FeatureHistory:
        """The same bars for other names or another capacity (values of dropped names forgotten)."""
        if tuple(names) == self.names and capacity == self.capacity:
            return self
        index = {name: i for i, name in enumerate(self.names)}
        rows = [tuple(row[index[n]] if n in index else None for n in names) for row in self._rows]
        return FeatureHistory(names, capacity, rows[max(len(rows) - capacity, 0) :])

    def to_state(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, "names": list(self.names), "capacity": self.capacity, "rows": list(self._rows)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureHistory:
        state = HISTORY_STATE.upgrade(state)
        names = [str(n) for n in state["names"]]
        rows = [tuple(_number(v) for v in row) for row in state["rows"]]
        if any(len(row) != len(names) for row in rows):
            raise ValueError("feature history state: a row does not match the names")
        return cls(names, int(state["capacity"]), rows)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
