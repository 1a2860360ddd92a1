"""A symbol's news indicator: its news sentiment, decayed in time, in [−100 %, +100 %], and its news count per hour.

The indicator at time ``t`` over the items published up to ``t`` (sentiment ``s_i`` ∈ [−1, 1], published ``t_i``):

    indicator(t) = 100 % × Σ s_i·w_i / max(Σ w_i, 1),   w_i = 2^(−(t − t_i) / half_life)

Several fresh items give their mean; one item alone fades towards 0 as it ages (the ``max(…, 1)``: a lone piece of
yesterday's news is not today's full-strength sentiment). It is the seed's per-stock news indicator (the share of
positive minus negative items) made continuous in time, so it exists at every bar, not once a day.

Per item the work is O(1): the weighted sums are kept at the newest publication time seen and rescaled as it
advances. An item published before one already seen (sources deliver late) is added with its own weight; the value
reported for it counts only the items published up to it, recomputed from the history the symbol keeps: the items of
the last eight half-lives (or of the count window, if longer) before the newest one, at most :data:`HISTORY_MAX`. An
item later than that sees only those.

>>> indicator = NewsIndicator(NewsIndicatorParams(half_life_ms=3_600_000))
>>> indicator.observe(0, 0.8)
(80.0, 1)
>>> indicator.observe(1_800_000, -0.4)  # half an hour later: the first weighs 0.71, the second 1
(9.706, 2)
>>> indicator.at(5_399_999)  # an hour after the second: the weights are 0.35 and 0.5, their sum under 1
(8.284, 1)
>>> indicator.observe(900_000, 1.0)  # a late item: its value counts the items published up to it
(90.864, 2)
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from tapewatch.detectors.patterns.checks import positive
from tapewatch.state_versions import StateVersions

if TYPE_CHECKING:
    from tapewatch.settings import NewsSettings

#: the news indicator's state versions (one so far: no steps)
INDICATOR_STATE: Final = StateVersions("news indicator state")
STATE_VERSION: Final = INDICATOR_STATE.current
#: the items a symbol keeps for the hour count and late items (a symbol with more news in its window than this is
#: a wire repeating itself; the oldest go first)
HISTORY_MAX: Final = 512


@dataclass(frozen=True, slots=True)
class NewsIndicatorParams:
    """How fast news fades and what "recent" means for the count."""

    GROUP: ClassVar[str] = "news"
    #: an item's weight halves every ``half_life_ms``: the morning's news still colours the afternoon, yesterday's has
    #: faded to a few per cent by the next open
    half_life_ms: int = 4 * 3_600_000
    #: the window of ``count_1h``
    count_window_ms: int = 3_600_000

    def __post_init__(self) -> None:
        positive(self, "half_life_ms", "count_window_ms")

    @classmethod
    def from_settings(cls, news: NewsSettings) -> NewsIndicatorParams:
        """How fast news fades, from ``TAPEWATCH_NEWS_HALF_LIFE_MS``."""
        return cls(half_life_ms=news.half_life_ms)


class NewsIndicator:
    """One symbol's indicator (see the module's note); :meth:`observe` an item, read it :meth:`at` any time."""

    __slots__ = ("_history", "_newest", "_total", "_weights", "params")

    def __init__(self, params: NewsIndicatorParams | None = None) -> None:
        self.params = params or NewsIndicatorParams()
        self._newest: int | None = None
        self._total = 0.0  # Σ s_i·w_i at ``_newest``
        self._weights = 0.0  # Σ w_i at ``_newest``
        self._history: list[tuple[int, float]] = []  # (published, sentiment), by publication time

    def _decay(self, age_ms: int) -> float:
        return math.pow(2.0, -age_ms / self.params.half_life_ms)

    def observe(self, ts: int, sentiment: float) -> tuple[float, int]:
        """Adds an item published at ``ts``; the indicator and count over the items published up to ``ts``."""
        sentiment = min(max(sentiment, -1.0), 1.0)
        if self._newest is None or ts >= self._newest:
            scale = 1.0 if self._newest is None else self._decay(ts - self._newest)
            self._total, self._weights, self._newest = self._total * scale + sentiment, self._weights * scale + 1, ts
        else:
            weight = self._decay(self._newest - ts)
            self._total, self._weights = self._total + sentiment * weight, self._weights + weight
        bisect.insort(self._history, (ts, sentiment))
        value = self._value(self._total, self._weights) if ts == self._newest else self._recomputed(ts)
        count = self._count(ts)
        self._forget()
        return value, count

    def at(self, ts: int) -> tuple[float, int]:
        """The indicator and count at ``ts`` over the items published up to it (0 and 0 without any)."""
        if self._newest is None:
            return 0.0, 0
        if ts >= self._newest:
            scale = self._decay(ts - self._newest)
            return self._value(self._total * scale, self._weights * scale), self._count(ts)
        return self._recomputed(ts), self._count(ts)

    def _recomputed(self, ts: int) -> float:
        end = bisect.bisect_right(self._history, (ts, math.inf))
        weights = [self._decay(ts - published) for published, _ in self._history[:end]]
        total = sum(w * s for w, (_, s) in zip(weights, self._history[:end], strict=True))
        return self._value(total, sum(weights))

    def _count(self, ts: int) -> int:
        low = bisect.bisect_right(self._history, (ts - self.params.count_window_ms, math.inf))
        return bisect.bisect_right(self._history, (ts, math.inf)) - low

    @staticmethod
    def _value(total: float, weights: float) -> float:
        return round(100.0 * total / max(weights, 1.0), 3)

    def _forget(self) -> None:
        """Keeps the items a late arrival or the hour count may still need: those whose weight is not yet negligible
        (eight half-lives: under 0.4 %) or inside the count window, at most :data:`HISTORY_MAX`."""
        assert self._newest is not None
        horizon = self._newest - max(8 * self.params.half_life_ms, self.params.count_window_ms)
        start = bisect.bisect_left(self._history, (horizon, -math.inf))
        start = max(start, len(self._history) - HISTORY_MAX)
        if start > 0:
            del self._history[:start]

    # -- state -----------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "newest": self._newest,
            "total": self._total,
            "weights": self._weights,
            "history": [list(item) for item in self._history],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], params: NewsIndicatorParams | None = None) -> NewsIndicator:
        state = INDICATOR_STATE.upgrade(state)
        indicator = cls(params)
        newest = state["newest"]
        indicator._newest = None if newest is None else int(newest)
        indicator._total, indicator._weights = float(state["total"]), float(state["weights"])
        indicator._history = [(int(ts), float(s)) for ts, s in state["history"]]
        return indicator
