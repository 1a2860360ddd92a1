"""One symbol's public trades, as the firm's detectors read them: how much the whole market traded between two times,
the last price before a time, and the symbol's own volatility before it, each **as of** a time the public feed has
passed, so that the answer does not depend on how far ahead of the drop copy the public feed was read.

Trades are kept in buckets of ``bucket_ms`` (volume, last price), for ``keep_ms``; a question about time ``t`` reads
the buckets that ended by ``t``'s own bucket, which are complete once the public clock has reached ``t``. The
volatility is of one-minute returns of the last price (an exponentially weighted mean of their squares, returns
over a gap scaled to one minute), known once ``min_minutes`` returns were seen; it is remembered minute by minute,
so the volatility *before* an account started trading is read, not the one its own trading made.

Memory: the buckets and minutes of ``keep_ms``, whatever the number of trades.

>>> tape = PublicTape(keep_ms=600_000, min_minutes=2)
>>> for second in range(0, 240, 10):
...     tape.on_trade(second * 1_000, 10.0 + 0.01 * (second // 60), 100.0)
>>> tape.volume(60_000, 120_000), tape.price_before(125_000)
(600.0, 10.02)
>>> round(tape.sigma_bps(239_000), 1)  # each minute ~10 bps
10.0
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Mapping
from typing import Any

MINUTE_MS = 60_000


class PublicTape:
    """The public trades of one symbol (``on_trade``) in buckets, and questions about them as of a time."""

    def __init__(self, keep_ms: int, bucket_ms: int = 1_000, halflife_min: float = 60.0, min_minutes: int = 20) -> None:
        self.keep_ms, self.bucket_ms, self.min_minutes = keep_ms, bucket_ms, min_minutes
        self.decay = math.pow(0.5, 1.0 / halflife_min)
        #: bucket start, the volume traded up to its end since the tape began, its last price
        self.starts: deque[int] = deque()
        self.cumulative: deque[float] = deque()
        self.prices: deque[float] = deque()
        self.traded = 0.0
        #: the newest trade's minute; the last closed minute and its closing price; the weighted variance of the
        #: returns between closed minutes and how many made it
        self.minute, self.reference_minute, self.reference = -1, -1, 0.0
        self.variance, self.returns = 0.0, 0
        #: (minute end, volatility in bps known then), for ``keep_ms``
        self.sigmas: deque[tuple[int, float]] = deque()

    def on_trade(self, ts: int, price: float, size: float) -> None:
        start = ts - ts % self.bucket_ms
        self._minute(ts)
        self.traded += size
        if self.starts and self.starts[-1] == start:
            self.cumulative[-1], self.prices[-1] = self.traded, price
        elif not self.starts or start > self.starts[-1]:
            self.starts.append(start)
            self.cumulative.append(self.traded)
            self.prices.append(price)
        else:  # a late trade (the venue's clock stepped back): counted in the newest bucket
            self.cumulative[-1] = self.traded
        self._forget(start - self.keep_ms)

    def _minute(self, ts: int) -> None:
        """Close the newest minute when ``ts`` is in a later one: its return over the last closed minute's price."""
        minute = ts - ts % MINUTE_MS
        if minute <= self.minute:
            return
        if self.minute >= 0:
            closed = self.prices[-1]
            if self.reference_minute >= 0:
                gap = (self.minute - self.reference_minute) / MINUTE_MS
                ret = math.log(closed / self.reference) * 1e4 / math.sqrt(gap)
                self.variance = ret * ret if self.returns == 0 else self._weighted(ret)
                self.returns += 1
            self.reference, self.reference_minute = closed, self.minute
            if self.returns >= self.min_minutes:
                self.sigmas.append((self.minute + MINUTE_MS, math.sqrt(self.variance)))
        self.minute = minute

    def _weighted(self, ret: float) -> float:
        return self.decay * self.variance + (1 - self.decay) * ret * ret

    def _forget(self, before: int) -> None:
        while len(self.starts) > 1 and self.starts[1] <= before:
            self.starts.popleft()
            self.cumulative.popleft()
            self.prices.popleft()
        while len(self.sigmas) > 1 and self.sigmas[1][0] <= before:
            self.sigmas.popleft()

    # --- questions, as of a time ------------------------------------------------------------------------------
    def _bucket(self, ts: int) -> int:
        """The index of the first bucket that starts at or after ``ts``'s bucket (the buckets before it ended by
        then)."""
        return bisect_left(self.starts, ts - ts % self.bucket_ms)

    def covers(self, ts: int) -> bool:
        """Whether the tape still holds what happened just before ``ts``."""
        return bool(self.starts) and self.starts[0] < ts - ts % self.bucket_ms

    def volume(self, since: int, until: int) -> float | None:
        """What traded from ``since``'s bucket to before ``until``'s; None when the tape no longer reaches back."""
        if not self.covers(since):
            return None
        first, last = self._bucket(since), self._bucket(until)
        return (self.cumulative[last - 1] if last else 0.0) - (self.cumulative[first - 1] if first else 0.0)

    def price_before(self, ts: int) -> float | None:
        """The last price traded before ``ts``'s bucket."""
        index = self._bucket(ts)
        return self.prices[index - 1] if index else None

    def sigma_bps(self, ts: int) -> float | None:
        """The symbol's one-minute volatility (bps) known by ``ts``; None before ``min_minutes`` returns."""
        sigmas = self.sigmas
        index = bisect_left(sigmas, (ts + 1,)) - 1
        return sigmas[index][1] if index >= 0 else None

    # --- state ------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "buckets": [[s, c, p] for s, c, p in zip(self.starts, self.cumulative, self.prices, strict=True)],
            "traded": self.traded,
            "minutes": [self.minute, self.reference_minute, self.reference, self.variance, self.returns],
            "sigmas": [list(entry) for entry in self.sigmas],
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        keep_ms: int,
        bucket_ms: int = 1_000,
        halflife_min: float = 60.0,
        min_minutes: int = 20,
    ) -> PublicTape:
        tape = cls(keep_ms, bucket_ms, halflife_min, min_minutes)
        for start, cumulative, price in state["buckets"]:
            tape.starts.append(int(start))
            tape.cumulative.append(float(cumulative))
            tape.prices.append(float(price))
        tape.traded = float(state["traded"])
        minute, reference_minute, reference, variance, returns = state["minutes"]
        tape.minute, tape.reference_minute, tape.reference = int(minute), int(reference_minute), float(reference)
        tape.variance, tape.returns = float(variance), int(returns)
        tape.sigmas = deque((int(end), float(sigma)) for end, sigma in state["sigmas"])
        return tape
