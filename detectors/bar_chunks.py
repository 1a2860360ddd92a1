"""One symbol's closed 1-minute bars as the order flow's chunks, so the pattern detectors that read prices and
volumes alone run on bar input.

Each bar is one 1-minute chunk of :mod:`tapewatch.detectors.flow` (``FlowConfig.chunk_ms`` 60,000), and its values
are the flow features a bar can give, by the flow's own definitions (the baseline's exact sums and z-scores of
:mod:`tapewatch.detectors.flow.baseline`):

* the chunk: ``ret_bps`` (the close against the previous bar's close; a session's first bar against its open),
  ``range_bps``, ``volume``, and ``trades`` where the bars count their trades;
* the long window (the bars of the last ``long_chunks`` minutes): ``ret_bps_long``, ``range_bps_long``,
  ``volume_long``, ``trades_long``;
* against the baseline (the bars of the ``baseline_chunks`` minutes before, a minute without a bar as zeros, none
  until ``baseline_min_chunks`` minutes since the session began): ``volume_z``, ``volume_z_long``, ``trades_z``,
  ``trades_z_long`` and ``ret_sigma_bps``.

Every other feature needs prints, their sides or books, and is ``None``: a detector that needs one does not run on
bars (:data:`tapewatch.detectors.patterns.base.CARRIED`). The same minutes as trades give the same values as the flow
over 1-minute chunks (``tests/unit/test_bar_chunks.py``) but in one place: a session begins (as the flow's baseline
does) after a gap longer than the baseline, and its first bar is measured from its own open, not from the last
session's close. Bars are sold by the session, and the night's gap is the opening auction's news, not a move in a
minute (the flow's first chunk after a night reads from the last print before it). O(1) per bar (running sums; the
windows are deques).

>>> chunks = BarChunks(FlowConfig(chunk_ms=60_000, long_chunks=2, baseline_chunks=60, baseline_min_chunks=2))
>>> [round(chunks.on_bar(m * 60_000, 100.0, 101.0, 99.0, 100.0 + m, 1_000.0 + m)["ret_bps"], 1) for m in range(3)]
[0.0, 99.5, 98.5]
>>> v = chunks.on_bar(3 * 60_000, 103.0, 110.0, 103.0, 110.0, 5_000.0)
>>> v["volume_long"], round(v["volume_z_long"], 1), v["buy_orders"]  # 2 bars; no sides on bars
(6002.0, 3464.1, None)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from tapewatch.detectors.bars import MINUTE_MS
from tapewatch.detectors.flow import FLOW_FEATURE_NAMES, FlowConfig
from tapewatch.detectors.flow.baseline import _exact_sums, _IntSums, _mean_var, sum_z

Values = dict[str, float | None]

#: the flow features a bar gives (every other one is ``None``)
BAR_FEATURES: Final = frozenset(
    {
        "ret_bps",
        "range_bps",
        "volume",
        "trades",
        "ret_bps_long",
        "range_bps_long",
        "volume_long",
        "trades_long",
        "volume_z",
        "volume_z_long",
        "trades_z",
        "trades_z_long",
        "ret_sigma_bps",
    }
)


class _Minute(NamedTuple):
    """One bar as the windows keep it."""

    minute: int
    high: float
    low: float
    close: float
    #: the close before it (``None``: the first bar, whose reference is its open)
    prev_close: float | None
    open: float
    volume: float
    #: ``None``: the bars do not count their trades
    trades: int | None
    ret_bps: float


class BarChunks:
    """The chunk values of each closed bar (:meth:`on_bar`, bars in time order); state: :meth:`to_state`."""

    __slots__ = ("baseline", "config", "last_close", "origin", "recent", "ret_sums", "trade_sums", "volume_sums")

    def __init__(self, config: FlowConfig) -> None:
        if config.chunk_ms != MINUTE_MS:
            raise ValueError(f"bar chunks are 1-minute chunks: chunk_ms must be {MINUTE_MS}, got {config.chunk_ms}")
        self.config = config
        self.recent: deque[_Minute] = deque()  # the long window's bars before the current one
        self.baseline: deque[_Minute] = deque()  # the baseline window's bars
        self.origin = 0  # the first minute of the baseline's session
        self.last_close: float | None = None
        self.volume_sums = _exact_sums(())
        self.ret_sums = _exact_sums(())
        self.trade_sums = _IntSums()

    def on_bar(
        self, start: int, open_: float, high: float, low: float, close: float, volume: float, trades: int | None = None
    ) -> Values:
        """The values of the bar that starts at ``start`` (ms), after the bars before it."""
        n = start // MINUTE_MS
        span = self._slide(n)
        before = self.last_close if self.origin != n else None  # a session's first bar: the gap is the auction's
        ref = before if before is not None else open_
        bar = _Minute(n, high, low, close, before, open_, volume, trades, 1e4 * math.log(close / ref))
        window = self._long_window(bar)
        v: Values = dict.fromkeys(FLOW_FEATURE_NAMES)
        v["ret_bps"], v["range_bps"], v["volume"] = bar.ret_bps, 1e4 * math.log(high / low), volume
        v["trades"] = None if trades is None else float(trades)
        self._long_values(v, window)
        if span >= self.config.baseline_min_chunks:
            self._baseline_values(v, span, bar)
        self._join(bar)
        return v

    def _slide(self, n: int) -> int:
        """Moves the baseline to minute ``n`` (the bars before it only), a new session after a gap longer than the
        baseline; returns its span in minutes (the flow's
        :meth:`~tapewatch.detectors.flow.baseline.Baseline.slide`)."""
        big_b = self.config.baseline_chunks
        last = self.baseline[-1].minute if self.baseline else None
        if last is None or n - last > big_b:
            self.origin = n
        while self.baseline and self.baseline[0].minute < n - big_b:
            gone = self.baseline.popleft()
            self.volume_sums.remove(gone.volume)
            self.ret_sums.remove(gone.ret_bps)
            if gone.trades is not None:
                self.trade_sums.remove(gone.trades)
        return min(big_b, n - self.origin)

    def _long_window(self, bar: _Minute) -> list[_Minute]:
        while self.recent and self.recent[0].minute <= bar.minute - self.config.long_chunks:
            self.recent.popleft()
        return [*self.recent, bar]

    @staticmethod
    def _long_values(v: Values, window: list[_Minute]) -> None:
        first = window[0].prev_close if window[0].prev_close is not None else window[0].open
        v["ret_bps_long"] = 1e4 * math.log(window[-1].close / first)
        v["range_bps_long"] = 1e4 * math.log(max(w.high for w in window) / min(w.low for w in window))
        v["volume_long"] = math.fsum(w.volume for w in window)
        counts = [w.trades for w in window]
        v["trades_long"] = None if None in counts else float(sum(c or 0 for c in counts))

    def _baseline_values(self, v: Values, span: int, bar: _Minute) -> None:
        """z-scores and the volatility unit against the baseline (the flow's ``sum_z_scores`` and
        ``own_scale_values``: a minute without a bar is a zero)."""
        big_l = self.config.long_chunks
        volume_long = v["volume_long"]
        assert volume_long is not None  # every bar has a volume
        sum_z(v, "volume", self.volume_sums, span, big_l, bar.volume, volume_long)
        if bar.trades is not None and v["trades_long"] is not None:
            sum_z(v, "trades", self.trade_sums, span, big_l, bar.trades, v["trades_long"])
        _, var = _mean_var(self.ret_sums, span)
        if var > 0:
            v["ret_sigma_bps"] = math.sqrt(var)

    def _join(self, bar: _Minute) -> None:
        self.recent.append(bar)
        self.baseline.append(bar)
        self.volume_sums.add(bar.volume)
        self.ret_sums.add(bar.ret_bps)
        if bar.trades is not None:
            self.trade_sums.add(bar.trades)
        self.last_close = bar.close

    def to_state(self) -> dict[str, Any]:
        return {"bars": [list(bar) for bar in self.baseline], "origin": self.origin, "last_close": self.last_close}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], config: FlowConfig) -> BarChunks:
        chunks = cls(config)
        for raw in state["bars"]:
            chunks._join(_Minute(*raw))
        long_from = chunks.baseline[-1].minute - config.long_chunks if chunks.baseline else 0
        chunks.recent = deque(bar for bar in chunks.baseline if bar.minute > long_from)
        chunks.origin, chunks.last_close = int(state["origin"]), state["last_close"]
        return chunks


#: the bars' chunking: 1-minute chunks, a 5-minute long window, and a baseline of four hours given after a quarter
#: of an hour. An hour holds 720 of the flow's 5-s returns but 60 bars: a 30-minute pump would be half of those, and
#: its own returns would lift the σ it is judged in; fewer than 15 bars give no σ worth the name.
BAR_FLOW: Final = FlowConfig(chunk_ms=MINUTE_MS, long_chunks=5, baseline_chunks=240, baseline_min_chunks=15)
