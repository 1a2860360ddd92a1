"""The statistical wash tests on an anonymous trade tape, per symbol and window: a venue-level indicator, not an alert.

Genuine trading leaves two marks on trade sizes that fabricated volume tends to miss (the forensic tests of Cong,
Li, Tang and Yang, "Crypto Wash Trading", on 29 crypto exchanges):

* **Benford's law.** Sizes that span several orders of magnitude have first significant digits ``d`` with shares
  ``log10(1 + 1/d)`` (30.1 % ones, 4.6 % nines). The verdict is Nigrini's mean absolute deviation (MAD) band for
  first digits: close ≤ 0.006, acceptable ≤ 0.012, marginal ≤ 0.015, nonconformity above, which alone does not
  conform. Pearson's chi-square (8 degrees of freedom) and its p-value are reported beside it; on tens of thousands of
  trades the chi-square rejects deviations too small to matter, which is why the MAD decides. Sizes spanning fewer
  than ``min_decades`` decades between their 10th and 90th percentiles (one-lot futures, 100-share blocks) are not
  a Benford population: ``not_applicable``.
* **Round-size clustering.** People trade 1, 5, 100 or 0.1 far more often than 0.99 or 1.03. Trades exactly at a
  round size ``R`` (one significant digit) are compared with trades on ``R``'s grid just beside it (``R ± j``
  hundredths of its decade, ``j`` = 1 … ``neighbours``): with no preference, a trade among them is at ``R`` with
  probability ``1 / (2·neighbours + 1)``. The test is one-sided (binomial upper tail): clustering found at ``alpha``
  conforms; none found does not. Only round sizes of at least 100 lots count (below that the grid beside ``R`` is
  finer than the lot: 0.99 of a one-lot contract cannot trade).

Beside them, without a verdict, the **tail exponent** of the sizes: Hill's estimator over the largest
``tail_share`` of the window's trades (from the sizes' histogram in tenths of a decade). Trade sizes on stock markets
have power-law tails with exponents near 1.5; a venue whose exponent moves far from its own history has a tape that
changed shape.

The lot is configured per venue (``lot``) or learnt: the coarsest power of ten that all but ``lot_tolerance`` of
the sizes are multiples of (1 for futures lots, 1e-8 for satoshis, 1000 for board lots in shares).

A window is a span of event time (``window_ms``, aligned to ``utc_offset_min``: a venue-local day by default); the
first trade of a later window closes it. Each test needs its own minimum sample, below which it says
``not_enough_trades``, never a verdict. Per trade the work is a few counter increments (:class:`SizeTally`).

>>> import random
>>> rng = random.Random(7)
>>> tape = VenueWash("BTCUSD", "bitstamp", VenueWashParams(window_ms=3_600_000, lot=1e-8))
>>> for i in range(5000):  # log-uniform sizes over four decades, a fifth of them rounded to one digit
...     size = round(10 ** rng.uniform(-4, 0), 8)
...     _ = tape.on_quote_values(i * 500, float(f"{size:.0e}") if i % 5 == 0 else size)
>>> indicator = tape.flush()
>>> indicator.benford.value, indicator.benford_band, indicator.rounding.value, indicator.trades
('conforms', 'close', 'conforms', 5000)
>>> indicator.window_start, indicator.window_end, indicator.complete
(0, 3600000, False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from tapewatch.detectors.patterns.checks import positive, shares
from tapewatch.detectors.trade_sizes import MAX_NEIGHBOURS, SizeTally
from tapewatch.records import Quote, VenueIndicator, WashTest
from tapewatch.state_versions import StateVersions

#: the tests' version (on every record): a change of a test or its defaults is a new version
VERSION: Final = "venue-wash-1"
VENUE_WASH_STATE: Final = StateVersions("venue wash state")
#: Benford's shares of the first significant digits 1 … 9
BENFORD: Final = tuple(math.log10(1.0 + 1.0 / d) for d in range(1, 10))
#: Nigrini's first-digit MAD bands (upper edges); above the last: nonconformity
MAD_BANDS: Final = ((0.006, "close"), (0.012, "acceptable"), (0.015, "marginal"))
#: a round size counts when it is at least this many lots (its grid of hundredths is then at least one lot)
MIN_ROUND_LOTS: Final = 100
DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class VenueWashParams:
    """The window, the minimum samples and the tests' levels (see the module's note)."""

    GROUP: ClassVar[str] = "venue_wash"
    window_ms: int = DAY_MS
    #: where windows start: a venue-local midnight (480 for Taipei)
    utc_offset_min: int = 0
    min_trades: int = 1_000
    min_round_trades: int = 200
    min_decades: int = 2
    neighbours: int = 5
    alpha: float = 0.001
    #: the size step; None: learnt from the window's sizes
    lot: float | None = None
    lot_tolerance: float = 0.01
    #: the largest trades the tail exponent is estimated on, and at least how many of them
    tail_share: float = 0.1
    min_tail_trades: int = 50

    def __post_init__(self) -> None:
        positive(self, "window_ms", "min_trades", "min_round_trades", "neighbours", "alpha")
        shares(self, "alpha", "lot_tolerance", "tail_share")
        positive(self, "tail_share", "min_tail_trades")
        if self.lot is not None:
            positive(self, "lot")
        if not 0 <= self.min_decades <= 20 or not -1440 < self.utc_offset_min < 1440:
            raise ValueError(f"{self.GROUP}: min_decades within 0 … 20, utc_offset_min within a day")
        if not self.neighbours <= MAX_NEIGHBOURS:
            raise ValueError(f"{self.GROUP}.neighbours must be within 1 … {MAX_NEIGHBOURS}, got {self.neighbours!r}")


def chi2_sf_8(statistic: float) -> float:
    """P(χ² ≥ ``statistic``) with 8 degrees of freedom: for an even df the sum ``e^(−x/2) Σ_k<4 (x/2)^k / k!``.

    >>> round(chi2_sf_8(15.507), 4)  # the 5 % critical value
    0.05
    """
    half = max(statistic, 0.0) / 2.0
    return min(1.0, math.exp(-half) * sum(half**k / math.factorial(k) for k in range(4)))


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X ≥ ``k``) for X ~ Binomial(``n``, ``p``), summed in logs from ``k`` up until the terms vanish.

    >>> round(binomial_sf(3, 10, 0.1), 4)
    0.0702
    """
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    log_p, log_q, base = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    total = 0.0
    for i in range(k, n + 1):
        term = math.exp(base - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
        total += term
        if i > n * p and term < total * 1e-17:
            break
    return min(total, 1.0)


@dataclass(frozen=True, slots=True)
class Benford:
    verdict: WashTest
    n: int
    chi2: float | None = None
    p_value: float | None = None
    mad: float | None = None
    band: str | None = None


@dataclass(frozen=True, slots=True)
class Rounding:
    verdict: WashTest
    at: int
    near: int
    ratio: float | None = None
    p_value: float | None = None


def benford_test(digits: Mapping[int, int], decades: int, params: VenueWashParams) -> Benford:
    """Benford's first-digit test over ``digits`` (digit → trades); its verdict by Nigrini's MAD band."""
    n = sum(digits.get(d, 0) for d in range(1, 10))
    if n < params.min_trades:
        return Benford(WashTest.NOT_ENOUGH_TRADES, n)
    observed = [digits.get(d, 0) / n for d in range(1, 10)]
    chi2 = n * sum((o - e) ** 2 / e for o, e in zip(observed, BENFORD, strict=True))
    mad = sum(abs(o - e) for o, e in zip(observed, BENFORD, strict=True)) / 9
    band = next((name for edge, name in MAD_BANDS if mad <= edge), "nonconformity")
    if decades < params.min_decades:
        verdict = WashTest.NOT_APPLICABLE
    else:
        verdict = WashTest.DOES_NOT_CONFORM if band == "nonconformity" else WashTest.CONFORMS
    return Benford(verdict, n, chi2, chi2_sf_8(chi2), mad, band)


def rounding_test(at: int, near: int, params: VenueWashParams) -> Rounding:
    """The one-sided test of ``at`` trades at round sizes against ``near`` just beside them."""
    n = at + near
    if n < params.min_round_trades:
        verdict = WashTest.NOT_APPLICABLE if n == 0 else WashTest.NOT_ENOUGH_TRADES
        return Rounding(verdict, at, near)
    share = 1.0 / (2 * params.neighbours + 1)
    p_value = binomial_sf(at, n, share)  # P(X ≥ at) under no preference
    ratio = at * 2 * params.neighbours / near if near else None
    verdict = WashTest.CONFORMS if p_value < params.alpha else WashTest.DOES_NOT_CONFORM
    return Rounding(verdict, at, near, ratio, p_value)


def learnt_lot(steps: Mapping[int, int], tolerance: float) -> float | None:
    """The coarsest power of ten all but ``tolerance`` of the sizes are multiples of (``steps``: exponent of each
    size's last significant digit → trades)."""
    total = sum(steps.values())
    if not total:
        return None
    below = 0  # trades whose last digit sits below the candidate exponent
    for exponent in sorted(steps):
        if below + steps[exponent] > tolerance * total:
            return float(10.0**exponent)
        below += steps[exponent]
    return float(10.0 ** max(steps))


def tail_exponent(leading: Mapping[int, int], params: VenueWashParams) -> tuple[float | None, int]:
    """Hill's estimator of the sizes' tail exponent over their largest ``tail_share`` (``leading``: the histogram
    ``100·decade + first two digits`` → trades), each bin's trades at its geometric middle, the smallest tail bin's
    lower edge the threshold; (None, n) below ``min_tail_trades`` trades in the tail.

    >>> import random
    >>> rng = random.Random(5)
    >>> tally = SizeTally()
    >>> for _ in range(20_000):
    ...     tally.observe(round(rng.paretovariate(1.5), 6))
    >>> alpha, n = tail_exponent(tally.leading, VenueWashParams())
    >>> round(alpha, 1), n
    (1.5, 2009)
    """
    total = sum(leading.values())
    tail: list[tuple[float, int]] = []  # (the bin's geometric middle, its trades), largest first
    count, floor = 0, 0.0
    for key in sorted(leading, reverse=True):
        if count >= params.tail_share * total:
            break
        decade, first = divmod(key, 100)
        floor = first * 10.0 ** (decade - 1)
        tail.append((math.sqrt(first * (first + 1)) * 10.0 ** (decade - 1), leading[key]))
        count += leading[key]
    if count < params.min_tail_trades:
        return None, count
    logs = sum(n * math.log(middle / floor) for middle, n in tail)
    return count / logs, count


def decade_span(decades: Mapping[int, int]) -> int:
    """Decades between the sizes' 10th and 90th percentiles (0 when they share one)."""
    total = sum(decades.values())
    if not total:
        return 0
    ordered = sorted(decades.items())
    return _quantile(ordered, 0.9 * total) - _quantile(ordered, 0.1 * total)


def _quantile(ordered: list[tuple[int, int]], rank: float) -> int:
    seen = 0
    for decade, count in ordered:
        seen += count
        if seen >= rank:
            return decade
    return ordered[-1][0]


def round_counts(tally: SizeTally, lot: float | None) -> tuple[int, int, int]:
    """Trades at and beside round sizes of at least :data:`MIN_ROUND_LOTS` lots, and all trades that large."""
    if lot is None:
        return 0, 0, 0
    floor = math.log10(lot * MIN_ROUND_LOTS) - 1e-9
    at = sum(n for e, n in tally.round_at.items() if e >= floor)
    near = sum(n for e, n in tally.round_near.items() if e >= floor)
    large = sum(n for e, n in tally.decades.items() if e >= floor)
    return at, near, large


@dataclass(slots=True)
class VenueWash:
    """One symbol's window of trades and the indicator of each window it closes (see the module's note)."""

    symbol: str
    venue: str
    params: VenueWashParams = field(default_factory=VenueWashParams)
    tally: SizeTally = field(init=False)
    #: the open window's index (event time // window_ms), None before the first trade
    window: int | None = None
    last_ts: int = 0

    def __post_init__(self) -> None:
        self.tally = SizeTally(self.params.neighbours)

    def _index(self, ts: int) -> int:
        return (ts + self.params.utc_offset_min * 60_000) // self.params.window_ms

    def on_quote(self, quote: Quote) -> VenueIndicator | None:
        """A trade of the venue's tape (its quotes are its trades one by one): :meth:`on_quote_values`."""
        return self.on_quote_values(quote.ts, quote.size)

    def on_quote_values(self, ts: int, size: float) -> VenueIndicator | None:
        """Counts one trade; the indicator of the window it closes, if it opens a later one. A trade earlier than
        the open window counts in it (it arrived while that window was open)."""
        index = self._index(ts)
        closed = None
        if self.window is None:
            self.window = index
        elif index > self.window:
            closed = self.indicator(complete=True)
            self.window, self.tally = index, SizeTally(self.params.neighbours)
        self.tally.observe(size)
        self.last_ts = max(self.last_ts, ts)
        return closed

    def flush(self) -> VenueIndicator | None:
        """The open window's indicator, cut short (the end of a file); the window stays open."""
        return None if self.window is None else self.indicator(complete=False)

    def indicator(self, complete: bool) -> VenueIndicator:
        """The tests over the open window's trades."""
        assert self.window is not None
        params, tally = self.params, self.tally
        start = self.window * params.window_ms - params.utc_offset_min * 60_000
        end = start + params.window_ms
        lot = params.lot if params.lot is not None else learnt_lot(tally.steps, params.lot_tolerance)
        decades = decade_span(tally.decades)
        benford = benford_test(tally.digits, decades, params)
        at, near, large = round_counts(tally, lot)
        tail_alpha, tail_n = tail_exponent(tally.leading, params)
        rounding = rounding_test(at, near, params)
        return VenueIndicator(
            symbol=self.symbol, venue=self.venue, ts=end if complete else min(self.last_ts, end - 1),
            window_start=max(start, 0), window_end=end, complete=complete, trades=tally.trades, lot=lot,
            benford=benford.verdict, benford_n=benford.n, benford_chi2=benford.chi2, benford_p=benford.p_value,
            benford_mad=benford.mad, benford_band=benford.band, decades=decades,
            rounding=rounding.verdict, round_at=rounding.at, round_near=rounding.near,
            round_ratio=rounding.ratio, round_share=at / large if large else None, round_p=rounding.p_value,
            tail_alpha=tail_alpha, tail_n=tail_n, version=VERSION,
        )  # fmt: skip

    def to_state(self) -> dict[str, Any]:
        """JSON-able; :meth:`from_state` with the same params restores it."""
        return {
            "v": VENUE_WASH_STATE.current,
            "window": self.window,
            "last_ts": self.last_ts,
            "tally": self.tally.to_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], symbol: str, venue: str, params: VenueWashParams) -> VenueWash:
        state = VENUE_WASH_STATE.upgrade(state, of=symbol)
        wash = cls(symbol, venue, params)
        wash.window = None if state["window"] is None else int(state["window"])
        wash.last_ts = int(state["last_ts"])
        tally = SizeTally.from_state(state["tally"])
        if tally.neighbours == params.neighbours:  # else the grid changed: the window's counts start afresh
            wash.tally = tally
        return wash
