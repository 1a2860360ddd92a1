"""One symbol's public trades, as the firm's detectors read them: how much the whole market traded between two times,
the price around a time, and the symbol's own volatility before it, each **as of** a time the public feed has passed,
so that the answer does not depend on how far ahead of the drop copy the public feed was read.

Trades are kept in buckets of ``bucket_ms`` (5 s: what traded and its value, added up since the tape began) for
``keep_ms``; a question about time ``t`` reads the buckets that ended by ``t``'s own bucket, which are complete once
the public clock has reached ``t``. Prices are volume-weighted: the price before a time is the VWAP of the
``reference_ms`` before it, and the volatility is of one-minute VWAP returns (an exponentially weighted mean of their
squares, a return over a gap scaled to one minute), known once ``min_minutes`` returns were seen — a last price
bounces between the bid and the ask, which on a wide-tick symbol is more than it moves in a minute. The volatility is
remembered minute by minute, so the volatility *before* an account started trading is read, not the one its own
trading made.

Memory: the buckets and minutes of ``keep_ms``, whatever the number of trades.

>>> tape = PublicTape(keep_ms=600_000, min_minutes=2)
>>> for second in range(0, 240, 10):
...     tape.on_order_values(second * 1_000, 10.0 + 0.01 * (second // 60), 100.0)
>>> tape.volume(60_000, 120_000), tape.price_before(125_000)  # the VWAP of 10.01 at 110 s and 10.02 at 120 s
(600.0, 10.015)
>>> round(tape.sigma_bps(239_000), 1)  # each minute ~10 bps
10.0
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Mapping
from typing import Any

from tapewatch.records import TRADE, OrderBookEvent

MINUTE_MS = 60_000


class PublicTape:
    """The public trades of one symbol (``on_order``: the market-by-order feed's trade events) in buckets, and questions
    about them as of a time."""

    def __init__(
        self,
        keep_ms: int,
        bucket_ms: int = 5_000,
        halflife_min: float = 60.0,
        min_minutes: int = 20,
        reference_ms: int = 15_000,
    ) -> None:
        self.keep_ms, self.bucket_ms, self.reference_ms = keep_ms, bucket_ms, reference_ms
        self.min_minutes = min_minutes
        self.decay = math.pow(0.5, 1.0 / halflife_min)
        #: bucket start; what traded, and its value, up to the bucket's end since the tape began
        self.starts: deque[int] = deque()
        self.volumes: deque[float] = deque()
        self.values: deque[float] = deque()
        self.traded = self.worth = 0.0
        #: the newest trade's minute and what had traded (and its value) before it; the last closed minute and its
        #: VWAP; the weighted variance of the returns between closed minutes and how many made it
        self.minute, self.minute_traded, self.minute_worth = -1, 0.0, 0.0
        self.reference_minute, self.reference = -1, 0.0
        self.variance, self.returns = 0.0, 0
        #: (minute end, volatility in bps known then), for ``keep_ms``
        self.sigmas: deque[tuple[int, float]] = deque()

    def on_order(self, event: OrderBookEvent) -> None:
        """A public market-by-order event: a trade is counted, every other action left alone."""
        if event.action is TRADE and event.price is not None:
            self.on_order_values(event.ts, event.price, event.size)

    def on_order_values(self, ts: int, price: float, size: float) -> None:
        start = ts - ts % self.bucket_ms
        self._minute(ts)
        self.traded += size
        self.worth += size * price
        if self.starts and start <= self.starts[-1]:  # this bucket, or a late trade (counted in the newest)
            self.volumes[-1], self.values[-1] = self.traded, self.worth
        else:
            self.starts.append(start)
            self.volumes.append(self.traded)
            self.values.append(self.worth)
        self._forget(start - self.keep_ms)

    def _minute(self, ts: int) -> None:
        """Close the newest minute when ``ts`` is in a later one: the return of its VWAP over the last closed
        minute's."""
        minute = ts - ts % MINUTE_MS
        if minute <= self.minute:
            return
        traded = self.traded - self.minute_traded
        if self.minute >= 0 and traded > 0:
            vwap = (self.worth - self.minute_worth) / traded
            if self.reference_minute >= 0:
                gap = (self.minute - self.reference_minute) / MINUTE_MS
                ret = math.log(vwap / self.reference) * 1e4 / math.sqrt(gap)
                self.variance = ret * ret if self.returns == 0 else self._weighted(ret)
                self.returns += 1
            self.reference, self.reference_minute = vwap, self.minute
            if self.returns >= self.min_minutes:
                self.sigmas.append((self.minute + MINUTE_MS, math.sqrt(self.variance)))
        self.minute, self.minute_traded, self.minute_worth = minute, self.traded, self.worth

    def _weighted(self, ret: float) -> float:
        return self.decay * self.variance + (1 - self.decay) * ret * ret

    def _forget(self, before: int) -> None:
        while len(self.starts) > 1 and self.starts[1] <= before:
            self.starts.popleft()
            self.volumes.popleft()
            self.values.popleft()
        while len(self.sigmas) > 1 and self.sigmas[1][0] <= before:
            self.sigmas.popleft()

    # --- questions, as of a time ------------------------------------------------------------------------------
    def _bucket(self, ts: int) -> int:
        """The index of the first bucket that starts at or after ``ts``'s bucket (the buckets before it ended by
        then)."""
        return bisect_left(self.starts, ts - ts % self.bucket_ms)

    def _totals(self, since: int, until: int) -> tuple[float, float] | None:
        """What traded, and its value, from ``since``'s bucket to before ``until``'s; None when the tape no longer
        reaches back to ``since``."""
        first, last = self._bucket(since), self._bucket(until)
        if first == 0:
            return None
        if last <= first:
            return 0.0, 0.0
        return self.volumes[last - 1] - self.volumes[first - 1], self.values[last - 1] - self.values[first - 1]

    def volume(self, since: int, until: int) -> float | None:
        """What traded from ``since``'s bucket to before ``until``'s; None when the tape no longer reaches back."""
        totals = self._totals(since, until)
        return None if totals is None else totals[0]

    def price_before(self, ts: int) -> float | None:
        """The VWAP of the ``reference_ms`` before ``ts``'s bucket (of the last bucket that traded, if none did)."""
        totals = self._totals(ts - self.reference_ms, ts)
        if totals is not None and totals[0] > 0:
            return totals[1] / totals[0]
        last = self._bucket(ts) - 1  # every bucket kept traded something
        if last < 1:
            return None
        traded = self.volumes[last] - self.volumes[last - 1]
        return (self.values[last] - self.values[last - 1]) / traded if traded > 0 else None

    def sigma_bps(self, ts: int) -> float | None:
        """The symbol's one-minute volatility (bps) known by ``ts``; None before ``min_minutes`` returns."""
        sigmas = self.sigmas
        index = bisect_left(sigmas, (ts + 1,)) - 1
        return sigmas[index][1] if index >= 0 else None

    # --- state ------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "buckets": [[s, v, w] for s, v, w in zip(self.starts, self.volumes, self.values, strict=True)],
            "traded": [self.traded, self.worth],
            "minutes": [
                self.minute,
                self.minute_traded,
                self.minute_worth,
                self.reference_minute,
                self.reference,
                self.variance,
                self.returns,
            ],
            "sigmas": [list(entry) for entry in self.sigmas],
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        keep_ms: int,
        bucket_ms: int = 5_000,
        halflife_min: float = 60.0,
        min_minutes: int = 20,
        reference_ms: int = 15_000,
    ) -> PublicTape:
        tape = cls(keep_ms, bucket_ms, halflife_min, min_minutes, reference_ms)
        for start, volume, value in state["buckets"]:
            tape.starts.append(int(start))
            tape.volumes.append(float(volume))
            tape.values.append(float(value))
        tape.traded, tape.worth = (float(x) for x in state["traded"])
        minute, traded, worth, reference_minute, reference, variance, returns = state["minutes"]
        tape.minute, tape.minute_traded, tape.minute_worth = int(minute), float(traded), float(worth)
        tape.reference_minute, tape.reference = int(reference_minute), float(reference)
        tape.variance, tape.returns = float(variance), int(returns)
        tape.sigmas = deque((int(end), float(sigma)) for end, sigma in state["sigmas"])
        return tape
