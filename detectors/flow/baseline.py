"""The baseline of one symbol: its closed non-empty chunks of the last ``baseline_chunks``, their exact running
sums, the session origin, the robust baseline of the long volume, and the z-scores against them. What the
windows are is defined in the package docstring (:mod:`tapewatch.detectors.flow`: *Chunks and windows*).
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Collection, Iterable
from typing import Any, Final, NamedTuple

from tapewatch.detectors.features import _ExactSums  # the one exact rolling-sum definition of the feature library
from tapewatch.detectors.flow.catalogue import FlowConfig
from tapewatch.detectors.flow.chunk import _Chunk


class BaselineEntry(NamedTuple):
    """One closed non-empty chunk in the baseline window (the state keeps the fields as columns, in this order)."""

    #: the chunk's index (its start over ``chunk_ms``)
    chunk: int
    trades: int
    volume: float
    rush_orders: int
    #: mean displayed level size (None without books)
    level_mean: float | None
    buy_orders: int
    #: largest rush (trades in one millisecond)
    rush_max: int
    mirror_volume: float
    #: size cancelled at levels 2–5
    cancel_l25: float
    #: largest single displayed level (0 without books)
    level_max: float
    #: return and mid return (bps; 0 without trades, without books)
    ret_bps: float
    mid_ret_bps: float


_BASELINE_COLUMNS: Final = len(BaselineEntry._fields)


class _IntSums:
    """``Σx`` and ``Σx²`` of a multiset of integers — the baseline's counts — as plain (exact) ints: the
    interface of :class:`tapewatch.detectors.features._ExactSums` with ``shift`` 0, so :func:`_mean_var` reads both, at
    a fraction of the cost (no float decomposition per value)."""

    __slots__ = ("count", "s1", "s2", "shift")

    def __init__(self, values: Collection[int] = ()) -> None:
        self.count = len(values)
        self.s1 = sum(values)
        self.s2 = sum(map(operator.mul, values, values))
        self.shift = 0

    def add(self, x: int) -> None:
        self.s1 += x
        self.s2 += x * x
        self.count += 1

    def remove(self, x: int) -> None:
        self.s1 -= x
        self.s2 -= x * x
        self.count -= 1


def _mean_var(sums: _ExactSums | _IntSums, span: int) -> tuple[float, float]:
    """Mean and population variance of ``span`` values whose non-zero ones are in ``sums`` (zeros implied),
    correctly rounded from the exact sums."""
    den = span << sums.shift
    # CPython divides two ints correctly rounded; mypyc's compiled `/` makes each a float first, rounding twice
    # once they pass 2**53 (tapewatch.compiled): operator.truediv keeps CPython's division in both forms
    return operator.truediv(sums.s1, den), operator.truediv(span * sums.s2 - sums.s1 * sums.s1, den * den)


def sum_z(v: dict[str, float | None], name: str, sums: _ExactSums | _IntSums, span: int, big_l: int, x: float,
          x_long: float) -> None:  # fmt: skip
    """``{name}_z`` and ``{name}_z_long``: a chunk's ``x`` and its long chunk's ``x_long`` (``big_l`` chunks) against
    the ``span`` baseline chunks in ``sums`` (empty chunks are zeros); none where the baseline does not vary."""
    mean, var = _mean_var(sums, span)
    if var > 0:
        std = math.sqrt(var)
        v[f"{name}_z"] = (x - mean) / std
        v[f"{name}_z_long"] = (x_long - big_l * mean) / (math.sqrt(big_l) * std)


def _exact_sums(values: Iterable[float]) -> _ExactSums:
    sums = _ExactSums()
    for x in values:
        sums.add(x)
    return sums


class Baseline:
    """The baseline window of one symbol, its running sums and the robust baseline of the long volume.

    ``entries`` is the state (with ``origin``); the sums and the long-volume window are derived from it.
    """

    def __init__(self, config: FlowConfig, entries: Iterable[BaselineEntry] = (), origin: int = 0) -> None:
        self.config = config
        #: closed non-empty chunks of the baseline window
        self.entries: deque[BaselineEntry] = deque(entries)
        self.origin = origin  # first chunk of the baseline's current session
        #: the volumes of the long windows inside the baseline, by last chunk and sorted (derived, not stored)
        self.long_volume_ends: deque[tuple[int, float]] = deque()
        self.long_volumes: list[float] = []
        # column by column, in C where it can: a restore derives the sums of every symbol's whole window
        columns: list[tuple[Any, ...]] = list(zip(*self.entries, strict=True)) or [()] * _BASELINE_COLUMNS
        _, trades, volume, rush, levels, buy_orders, rush_max, mirror, cancels, level_maxes, rets, mid_rets = columns
        self.trades_sums = _IntSums(trades)
        self.rush_sums = _IntSums(rush)
        self.buy_order_sums = _IntSums(buy_orders)
        self.rush_max_sums = _IntSums(rush_max)
        self.volume_sums = _exact_sums(volume)
        self.level_sums = _exact_sums(level for level in levels if level is not None)
        self.mirror_sums = _exact_sums(mirror)
        self.cancel_sums = _exact_sums(cancels)
        self.level_max_sums = _exact_sums(level_maxes)
        self.ret_sums = _exact_sums(rets)
        self.mid_ret_sums = _exact_sums(mid_rets)

    def observe(self, entry: BaselineEntry) -> None:
        """A closed chunk joins the window (after its own features are computed)."""
        self.entries.append(entry)
        self.ret_sums.add(entry.ret_bps)
        self.mid_ret_sums.add(entry.mid_ret_bps)
        self.trades_sums.add(entry.trades)
        self.volume_sums.add(entry.volume)
        self.rush_sums.add(entry.rush_orders)
        if entry.level_mean is not None:
            self.level_sums.add(entry.level_mean)
        self.buy_order_sums.add(entry.buy_orders)
        self.rush_max_sums.add(entry.rush_max)
        self.mirror_sums.add(entry.mirror_volume)
        self.cancel_sums.add(entry.cancel_l25)
        self.level_max_sums.add(entry.level_max)

    def _remove(self, entry: BaselineEntry) -> None:
        self.ret_sums.remove(entry.ret_bps)
        self.mid_ret_sums.remove(entry.mid_ret_bps)
        self.trades_sums.remove(entry.trades)
        self.volume_sums.remove(entry.volume)
        self.rush_sums.remove(entry.rush_orders)
        if entry.level_mean is not None:
            self.level_sums.remove(entry.level_mean)
        self.buy_order_sums.remove(entry.buy_orders)
        self.rush_max_sums.remove(entry.rush_max)
        self.mirror_sums.remove(entry.mirror_volume)
        self.cancel_sums.remove(entry.cancel_l25)
        self.level_max_sums.remove(entry.level_max)

    def slide(self, n: int, last_closed: int | None) -> int:
        """Move the window (previous chunks only) to chunk ``n``, the symbol's last closed chunk being
        ``last_closed``: a new session origin after a long gap, eviction of what fell out; returns its span."""
        big_b = self.config.baseline_chunks
        if last_closed is None or n - last_closed > big_b:
            self.origin = n
        entries = self.entries
        while entries and entries[0].chunk < n - big_b:
            self._remove(entries.popleft())
        return min(big_b, n - self.origin)

    def level_typical(self) -> float | None:
        """The typical displayed level size (``None`` before any chunk with books)."""
        return self.level_sums.mean() if self.level_sums.count else None

    def long_volume_p95(self, n: int) -> float | None:
        """Slide the robust baseline to chunk ``n`` (the window holds chunks ``n - baseline_chunks .. n - 1``);
        the 95th percentile of its long-window volumes, ``None`` with too few windows.

        O(1) per chunk in the steady state (one window leaves, one enters: a bisect and a move of at most
        ``baseline_chunks`` pointers); after a gap or a restore it fills the missing windows from the
        entries, which gives exactly the windows an uninterrupted run holds.
        """
        cfg = self.config
        big_l = cfg.long_chunks
        lo, hi = max(n - cfg.baseline_chunks, self.origin) + big_l - 1, n - big_l
        ends, values = self.long_volume_ends, self.long_volumes
        while ends and ends[0][0] < lo:
            del values[bisect_left(values, ends.popleft()[1])]
        start = ends[-1][0] + 1 if ends else lo
        if start <= hi:
            volumes: dict[int, float] = {}
            for entry in reversed(self.entries):  # the newest chunks: the entering windows are the latest
                if entry.chunk <= start - big_l:
                    break
                volumes[entry.chunk] = entry.volume
            for m in range(start, hi + 1):
                x = math.fsum(volumes.get(k, 0.0) for k in range(m - big_l + 1, m + 1))
                ends.append((m, x))
                insort(values, x)
        if len(values) < cfg.baseline_min_chunks:
            return None
        return values[math.ceil(0.95 * len(values)) - 1]

    # -- z-scores: each needs a span of at least baseline_min_chunks, which the caller checks ----------------
    def sum_z_scores(
        self,
        v: dict[str, float | None],
        span: int,
        trades: tuple[int, int],
        volume: tuple[float, float],
        rush: tuple[int, int],
    ) -> None:
        """z-scores of the chunk's and the long chunk's (``(chunk, long)`` pairs) trades, volume and rush orders
        against the baseline (empty chunks are zeros)."""
        big_l = self.config.long_chunks
        sum_z(v, "trades", self.trades_sums, span, big_l, *trades)
        sum_z(v, "volume", self.volume_sums, span, big_l, *volume)
        sum_z(v, "rush", self.rush_sums, span, big_l, *rush)

    def order_z_scores(self, v: dict[str, float | None], span: int, buy_orders_l: int, mirror_l: float) -> None:
        """The long chunk's buy orders and mirror volume against the baseline, and its mirror share above the
        symbol's own."""
        big_l = self.config.long_chunks
        root_l = math.sqrt(big_l)
        for name, sums, sum_long in (
            ("buy_orders_z_long", self.buy_order_sums, buy_orders_l),
            ("mirror_z_long", self.mirror_sums, mirror_l),
        ):
            mean, var = _mean_var(sums, span)
            if var > 0:
                v[name] = (sum_long - big_l * mean) / (root_l * math.sqrt(var))
        # equal prints on alternating sides meet by chance, the more the busier the tape: the window's
        # mirror share above the symbol's own (a surge of two-sided volume surges its chance mirrors too)
        share = v["mirror_vol_share_long"]
        if share is not None and self.volume_sums.s1 > 0:
            v["mirror_excess_share_long"] = share - self.mirror_sums.mean() / self.volume_sums.mean()

    def own_scale_values(
        self, v: dict[str, float | None], c: _Chunk, span: int, rush_max_l: int, level_max_l: float | None
    ) -> None:
        """Maxima, the book's churn and the volatility units, each against the symbol's own baseline."""
        # a maximum, not a sum: against the baseline chunks' own maxima, not √L-scaled
        mean, var = _mean_var(self.rush_max_sums, span)
        if var > 0:
            v["rush_max_z_long"] = (rush_max_l - mean) / math.sqrt(var)
        # the book against its own churn: how unusual this chunk's cancellation and the window's largest
        # level are for this symbol (a book whose sizes move every snapshot cancels a lot all the time)
        mean, var = _mean_var(self.cancel_sums, span)
        if var > 0 and c.books:
            v["cancel_l25_z"] = (c.cancel_l25 - mean) / math.sqrt(var)
        mean, var = _mean_var(self.level_max_sums, span)
        if var > 0 and level_max_l is not None:
            v["level_max_z_long"] = (level_max_l - mean) / math.sqrt(var)
        # the symbol's own volatility unit: a drift is unusual against it, whatever the stock's tick or pace
        _, var = _mean_var(self.ret_sums, span)
        if var > 0:
            v["ret_sigma_bps"] = math.sqrt(var)
        _, var = _mean_var(self.mid_ret_sums, span)  # the mid does not bounce between bid and ask
        if var > 0:
            v["mid_sigma_bps"] = math.sqrt(var)
