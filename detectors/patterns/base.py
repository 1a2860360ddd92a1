"""The one contract every flow pattern detector keeps, and the small pieces they share.

A detector (:class:`PatternDetector`) reads one closed flow chunk at a time through :meth:`on_chunk` — the
chunk's values (:mod:`tapewatch.detectors.flow`) and a :class:`ChunkContext` (where the chunk lies in the session, the
price drift, recent sweeps, and what the detectors that ran before it in this chunk concluded) — keeps O(1)
state, and returns its hits. Its state is a JSON-safe dict whose keys no other detector uses.

>>> run = Run(window=3)
>>> [run.observe(start, flagged, 5_000) for start, flagged in ((0, True), (5_000, False), (10_000, True))]
[1, 1, 2]
>>> run.observe(15_000, False, 5_000), run.first_start  # the chunk at 0 left the window; the run goes on
(1, 0)
>>> strength(1.0), strength(4.0)
(0.6, 0.9)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol, Self

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Bound, BoundOf, Key, Rule, bound
from tapewatch.detectors.flow import FEATURE_LABELS
from tapewatch.feeds import Prints
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # for annotations only: the helpers below read the parameters they are given
    from tapewatch.detectors.patterns.params import PatternParams, TapeParams

PATTERNS_VERSION: Final = "patterns-v22"
Values = Mapping[str, float | None]
#: a drift under this many bps is the float residue of returns that cancel (``1e4·ln(a/b) + 1e4·ln(b/a)`` comes to
#: ~1e-13, not 0), not a move: "the price rose" means by more than this (one tick of a 100,000 price on a 0.01 tick
#: is 1e-3 bps)
RISE_EPSILON_BPS: Final = 1e-6


def get(values: Values, name: str) -> float | None:
    value = values.get(name)
    return None if value is None else float(value)


def ge(values: Values, name: str, bound: float) -> bool:
    value = get(values, name)
    return value is not None and value >= bound


def takes_levels(ret_bps: float, values: Values, min_spreads: float) -> bool:
    """Whether a chunk's move is more than ``min_spreads`` of its own spread (``spread_bps``; a chunk without
    one passes): a sweep takes levels, a one-tick step on a coarse-tick stock is the quote ticking once.

    >>> takes_levels(45.4, {"spread_bps": 45.3}, 1.5), takes_levels(91.0, {"spread_bps": 45.3}, 1.5)
    (False, True)
    """
    return abs(ret_bps) >= min_spreads * (get(values, "spread_bps") or 0.0)


def feed_prints(values: Values, prints: Prints | None) -> Prints:
    """The feed's prints: the venue's profile where it says, else what the chunk's features say (the
    print-level ones are null unless the symbol's records were learnt to be individual prints).

    >>> feed_prints({"rush_max_long": None}, None), feed_prints({"rush_max_long": 1.0}, None)
    ('snapshots', 'trades')
    """
    if prints is not None:
        return prints
    return "snapshots" if get(values, "rush_max_long") is None else "trades"


def surge_z(values: Values, prints: Prints | None, *, chunk: bool = False) -> float | None:
    """How far the long window's activity (``chunk``: the chunk's) is above the symbol's usual, in σ of its
    baseline: the trade count (``trades_z_long``, ``trades_z``) where the feed prints every trade. A snapshot
    feed's count only says how many snapshots printed — at 5 s a busy symbol prints in every one, however hard
    it trades — so there the larger of that and the volume's (``volume_z_long``, ``volume_z``). Where the
    venue's profile does not say (``None``), the features do (:func:`feed_prints`).

    >>> busy = {"trades_z_long": 0.3, "volume_z_long": 6.0}
    >>> surge_z(busy, "trades"), surge_z(busy, "snapshots")
    (0.3, 6.0)
    >>> surge_z(busy, None), surge_z({**busy, "rush_max_long": 1.0}, None)
    (6.0, 0.3)
    >>> surge_z({"trades_z": 0.0, "volume_z": 5.0}, "snapshots", chunk=True)
    5.0
    """
    prints = feed_prints(values, prints)
    suffix = "" if chunk else "_long"
    count = get(values, "trades_z" + suffix)
    if prints != "snapshots":
        return count
    volume = get(values, "volume_z" + suffix)
    return volume if count is None else count if volume is None else max(count, volume)


def activity_bounds(param: str, *, chunk: bool = False) -> tuple[BoundOf, BoundOf]:
    """The bounds a rule comparing :func:`surge_z` with ``param`` puts on its inputs as evidence, the trade count's z
    and the volume's (``trades_z_long``, ``volume_z_long``; ``chunk``: ``trades_z``, ``volume_z``). Where the feed
    prints every trade the count is compared and the volume is context; on snapshots (and where the venue's profile
    does not say: the evidence does not tell) the larger of the two is, so either may be under the bound.

    >>> from tapewatch.detectors.patterns.params import PatternParams
    >>> count, volume = activity_bounds("closing.surge_z")
    >>> count(PatternParams()).unless, volume(PatternParams()) is None
    (None, True)
    >>> snapshots = PatternParams().with_values({"tape.prints": "snapshots"})
    >>> count(snapshots).unless, volume(snapshots).unless
    ('volume_z_long ≥ closing.surge_z', 'trades_z_long ≥ closing.surge_z')
    """
    suffix = "" if chunk else "_long"
    count, volume = f"trades_z{suffix}", f"volume_z{suffix}"

    def count_bound(p: PatternParams) -> Bound | None:
        return bound("≥", param, unless=None if p.tape.prints == "trades" else f"{volume} ≥ {param}")

    def volume_bound(p: PatternParams) -> Bound | None:
        return None if p.tape.prints == "trades" else bound("≥", param, unless=f"{count} ≥ {param}")

    return count_bound, volume_bound


#: the evidence values the tape's context gives every detector (:class:`ChunkContext`), as :data:`FEATURE_LABELS`
TAPE_LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "drift_bps": ("price drift over the drift window (drift_ms)", "bps"),
}


def cited(name: str, threshold: Bound | BoundOf | None = None) -> Key:
    """The declaration of a flow feature (:data:`tapewatch.detectors.flow.FEATURE_LABELS`) or a tape value
    (:data:`TAPE_LABELS`) a detector cites as evidence, with the bound its rule compares it with (``None``: context).

    >>> cited("drift_bps", bound(">", "pump_onset.drift_bps")).bound.formula
    'pump_onset.drift_bps'
    """
    label, unit = FEATURE_LABELS[name] if name in FEATURE_LABELS else TAPE_LABELS[name]
    return Key(label, unit, threshold)


def context(*names: str) -> dict[str, Key]:
    """The declarations of values a rule cites without comparing them (:func:`cited` without a bound)."""
    return {name: cited(name) for name in names}


def chunk_volatility(values: Values) -> tuple[float | None, bool]:
    """The symbol's own volatility of a chunk's return (bps) and whether it is the mid's.

    The mid's where the feed has books (it does not bounce between bid and ask, which a snapshot feed's last
    price does), else the trades'; ``None`` before the symbol has a baseline. A drift is read in these units
    with the returns of the same series (``mid_ret_bps`` or ``ret_bps``).
    """
    mid_sigma = get(values, "mid_sigma_bps")
    if mid_sigma:
        return mid_sigma, True
    return get(values, "ret_sigma_bps") or None, False


def strength(ratio: float) -> float:
    """Hit score from how far the evidence exceeds the bound (ratio ≥ 1): 0.6 at the bound, → 1 far beyond."""
    return min(1.0, 0.6 + 0.4 * (1.0 - 1.0 / max(ratio, 1.0)))


class Run:
    """Flags of the last ``window`` chunks (by chunk start, gaps count as unflagged) and the run's first start."""

    __slots__ = ("first_start", "flags", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.flags: deque[int] = deque()  # chunk starts of flagged chunks within the window
        self.first_start: int | None = None

    def observe(self, start: int, flagged: bool, chunk_ms: int) -> int:
        horizon = start - (self.window - 1) * chunk_ms
        while self.flags and self.flags[0] < horizon:
            self.flags.popleft()
        if not self.flags:
            self.first_start = None
        if flagged:
            self.flags.append(start)
            if self.first_start is None:
                self.first_start = start
        return len(self.flags)

    def to_state(self) -> list[Any]:
        return [list(self.flags), self.first_start]

    @classmethod
    def from_state(cls, raw: list[Any], window: int) -> Run:
        run = cls(window)
        run.flags = deque(int(x) for x in raw[0])
        run.first_start = None if raw[1] is None else int(raw[1])
        return run


class DriftScale:
    """The symbol's own typical drift over one horizon, measured directly: an event-time exponentially weighted
    mean of the squared drift over ``window`` chunks, sampled at every chunk close (time constant ``tau_chunks``).

    A drift read in units of one chunk's volatility times √chunks assumes a martingale. A price that catches up
    with news over minutes, or follows a parent order, trends by its nature, and √n understates its typical
    drift (the variance ratio exceeds 1); the direct measure does not assume it. ``None`` until ``2 × window``
    chunks were sampled.

    >>> scale = DriftScale(window=4, tau_chunks=40)
    >>> [scale.observe(x) for x in (10.0, -10.0) * 4][-2:]
    [None, 10.0]
    """

    __slots__ = ("samples", "square", "tau_chunks", "window")

    def __init__(self, window: int, tau_chunks: int) -> None:
        self.window, self.tau_chunks = window, tau_chunks
        self.square = 0.0
        self.samples = 0

    def observe(self, drift_bps: float) -> float | None:
        self.samples += 1
        alpha = max(1.0 / self.samples, 1.0 / self.tau_chunks)  # a plain mean until the time constant is reached
        self.square += alpha * (drift_bps * drift_bps - self.square)
        return math.sqrt(self.square) if self.samples >= 2 * self.window else None

    def to_state(self) -> list[float]:
        return [self.square, float(self.samples)]

    @classmethod
    def from_state(cls, raw: list[float], window: int, tau_chunks: int) -> DriftScale:
        scale = cls(window, tau_chunks)
        scale.square, scale.samples = float(raw[0]), int(raw[1])
        return scale


class Drift:
    """Price drift over the last ``window`` chunks: the sum of their returns.

    A chunk's return is measured from the last price before it, so the returns of consecutive chunks
    telescope: their sum is ``1e4 ln(last price / last price before the window)``. Chunks without a price
    (or not emitted) add nothing, which is exact: the price did not print. The sum is kept exactly (an
    integer over ``2**shift``) and rounded once, so each observation is O(1) and equals ``math.fsum`` of the window.

    >>> drift = Drift(window=3)
    >>> [drift.observe(start, ret, 5_000) for start, ret in ((0, 0.1), (5_000, 0.2), (10_000, 1e-17), (15_000, None))]
    [0.1, 0.30000000000000004, 0.30000000000000004, 0.2]
    """

    __slots__ = ("rets", "shift", "total", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.rets: deque[tuple[int, float]] = deque()
        self.total = 0  # exact sum of the window's returns, over 2**shift
        self.shift = 0

    def _scaled(self, x: float) -> int:
        num, den = x.as_integer_ratio()
        k = den.bit_length() - 1
        if k > self.shift:
            self.total <<= k - self.shift
            self.shift = k
        return num << (self.shift - k)

    def observe(self, start: int, ret_bps: float | None, chunk_ms: int) -> float:
        horizon = start - (self.window - 1) * chunk_ms
        while self.rets and self.rets[0][0] < horizon:
            gone = self._scaled(self.rets.popleft()[1])  # may rescale self.total: read it after
            self.total -= gone
        if ret_bps is not None and ret_bps != 0.0:
            self.rets.append((start, ret_bps))
            scaled = self._scaled(ret_bps)
            self.total += scaled
        return self.value

    @property
    def value(self) -> float:
        """The window's drift as of the last observation (bps)."""
        return self.total / (1 << self.shift)  # int / int: correctly rounded, as math.fsum

    def to_state(self) -> list[list[float]]:
        return [[s, r] for s, r in self.rets]

    @classmethod
    def from_state(cls, raw: list[list[float]], window: int) -> Drift:
        drift = cls(window)
        drift.rets = deque((int(s), float(r)) for s, r in raw)
        for _, r in drift.rets:
            scaled = drift._scaled(r)  # may rescale drift.total: read it after
            drift.total += scaled
        return drift


@dataclass(frozen=True, slots=True)
class Rise:
    """The rise to the path's top: when it began (the start of the first chunk up from the lowest level before
    the top, ms), its base level, the top's time and level (bps), and when the price first stood halfway up."""

    base_ts: int
    base: float
    top_ts: int
    top: float
    half_ts: int
    #: the largest single chunk's return over the rise, as a share of the rise
    step_share: float = 0.0

    @property
    def bps(self) -> float:
        return self.top - self.base

    def jumped(self, max_step_share: float, min_walk_ms: int) -> bool:
        """Whether the rise came in a jump rather than a walk: one chunk carried ``max_step_share`` of it or more
        and it took less than ``min_walk_ms`` from half its height to the top (a sweep and its followers)."""
        return self.step_share >= max_step_share and self.top_ts - self.half_ts < min_walk_ms


def rise_to_top(path: deque[tuple[int, float]], horizon_start: int, chunk_ms: int) -> tuple[Rise, float] | None:
    """The rise to the highest level of a path of chunk returns, and the level now (both from the horizon's start
    at 0 bps); ``None`` for an empty path.

    >>> rise_to_top(deque([(0, -5.0), (5_000, 10.0), (10_000, 10.0), (15_000, -8.0)]), 0, 5_000)
    (Rise(base_ts=5000, base=-5.0, top_ts=15000, top=15.0, half_ts=10000, step_share=0.5), 7.0)
    """
    if not path:
        return None
    points = [(horizon_start, 0.0)]
    level = 0.0
    for start, ret in path:
        level += ret
        points.append((start + chunk_ms, level))
    top_at = max(range(len(points)), key=lambda i: points[i][1])  # the first of equal tops
    # the last of equal lows: a chunk that did not trade (or move) is not in the path, so the rise began with
    # the first chunk after the low
    base_at = max(range(top_at + 1), key=lambda i: (-points[i][1], i))
    base = points[base_at][1]
    top_ts, top = points[top_at]
    if top_at == base_at:
        return Rise(top_ts, top, top_ts, top, top_ts), level
    half = base + 0.5 * (top - base)
    half_ts = next(t for t, x in points[base_at : top_at + 1] if x >= half)
    step = max(b[1] - a[1] for a, b in zip(points[base_at:top_at], points[base_at + 1 : top_at + 1], strict=True))
    return Rise(points[base_at + 1][0] - chunk_ms, base, top_ts, top, half_ts, step / (top - base)), level


def buy_orders_surge(v: Values, buy_orders_z: float, order_imbalance_z: float) -> float | None:
    """The long window's ``buy_orders_z_long`` where aggressive buy orders are far above the symbol's own rate
    (``≥ buy_orders_z``) and one-sided by count (``order_imbalance_z_long ≥ order_imbalance_z``), else ``None``: what
    a pump's onset and its crowd read, each with its own bounds (orders, not trades: one order's fills count once)."""
    z = get(v, "buy_orders_z_long")
    if z is None or z < buy_orders_z or not ge(v, "order_imbalance_z_long", order_imbalance_z):
        return None
    return z


@dataclass(slots=True)
class ChunkContext:
    """What every detector sees of one closed chunk besides its values."""

    #: the chunk's end and start (event time, ms)
    ts: int
    start: int
    #: ms from the chunk end to the venue's session close (``None``: the venue never closes)
    ms_to_close: int | None
    #: the chunk lies in the closing window (the chunk that straddles the close belongs to it)
    in_close: bool
    #: the trade price's drift over ``tape.drift_ms`` (bps)
    drift_bps: float
    #: the short and the long drift in units of the symbol's own volatility (``None``: no volatility yet)
    drift_z_short: float | None
    drift_z_long: float | None
    #: this chunk is a one-sided sweep
    sweep: bool
    #: starts of the recent sweeps, oldest first
    sweeps: deque[int]
    #: the drift over ``tape.slow_ramp_ms`` in units of the symbol's volatility over as long (the ramp path only)
    drift_z_slow: float | None = None
    #: the non-zero chunk returns of the drift series (the mid's where the feed has books) over ``tape.slow_ramp_ms``,
    #: ``(chunk start, bps)`` oldest first, and the symbol's volatility of one chunk's return in that series
    #: (``None`` before there is one): the price path a detector may read back (the context's, not a copy)
    path: deque[tuple[int, float]] | None = None
    sigma_bps: float | None = None
    #: set by the detectors that run before others in the same chunk (see :class:`FlowPatterns`)
    surge_chunks: int = 0
    onset_chunks: int = 0
    close_push: bool = False
    #: a pump-and-dump detector hit in this chunk (set by
    #: :class:`~tapewatch.detectors.patterns.flow_patterns.FlowPatterns`)
    pump_hit: bool = False
    #: the short, long and slow drift in units of the larger of that volatility and the symbol's own typical
    #: drift over as long, measured directly (:class:`DriftScale`; the ramp path reads it)
    trend_z: tuple[float | None, float | None, float | None] = (None, None, None)
    #: the short, long and slow drift (bps) of the series the z's read (the mid's where the feed has books), and the
    #: symbol's typical drift over each horizon this session (:class:`DriftScale`; ``None`` until measured)
    drifts: tuple[float, float, float] = (0.0, 0.0, 0.0)
    typical_drifts: tuple[float | None, float | None, float | None] = (None, None, None)
    #: the non-zero chunk returns of that series over the slow horizon, ``(chunk start, bps)`` oldest first, and
    #: the three horizons' lengths in chunks (the context's, not copies: read, never changed)
    move_path: deque[tuple[int, float]] = field(default_factory=deque)
    horizons: tuple[int, int, int] = (1, 1, 1)

    def excursions(self, chunk_ms: int) -> tuple[float, float, float]:
        """Over each horizon, how far the price now stands from where it stood farthest from it (bps, ≥ the
        horizon's |drift|): a sweep given back or a rise dumped moved the price even where it ended level.
        Reads the path back (O(slow horizon)): call it only on a hit."""
        now = sum(ret for _, ret in self.move_path)
        out: list[float] = []
        for window in self.horizons:
            horizon_start = self.start - (window - 1) * chunk_ms
            level, farthest = now, 0.0
            for start, ret in reversed(self.move_path):
                if start < horizon_start:
                    break
                level -= ret  # the level before this chunk
                farthest = max(farthest, abs(now - level))
            out.append(farthest)
        return out[0], out[1], out[2]

    def run_ups(self, chunk_ms: int) -> tuple[float, float, float]:
        """Over each horizon, the largest rise from a level to a later, higher one (bps, ≥ 0): how far a pump took
        the price up, whether it still stands there or was dumped since. Reads the path back (O(slow horizon)):
        call it only on a hit.

        >>> ctx = ChunkContext(20_000, 15_000, None, False, 0.0, None, None, False, deque(), horizons=(2, 4, 4))
        >>> ctx.move_path = deque([(0, -5.0), (5_000, 10.0), (10_000, 10.0), (15_000, -8.0)])
        >>> ctx.run_ups(5_000)  # the 2-chunk horizon saw +10 then -8; the others the rise from -5 to 15
        (10.0, 20.0, 20.0)
        """
        now = sum(ret for _, ret in self.move_path)
        out: list[float] = []
        for window in self.horizons:
            horizon_start = self.start - (window - 1) * chunk_ms
            level, highest_after, rise = now, now, 0.0
            for start, ret in reversed(self.move_path):
                if start < horizon_start:
                    break
                level -= ret  # the level before this chunk
                rise = max(rise, highest_after - level)
                highest_after = max(highest_after, level)
            out.append(rise)
        return out[0], out[1], out[2]

    @property
    def drift_z(self) -> float | None:
        """The larger (upwards) of the short and the long drift z."""
        short, long = self.drift_z_short, self.drift_z_long
        return None if short is None or long is None else max(short, long)

    @property
    def drift_z_abs(self) -> float | None:
        """The short or the long drift z farther from zero, with its sign (either direction)."""
        short, long = self.drift_z_short, self.drift_z_long
        return None if short is None or long is None else max(short, long, key=abs)

    def near_sweep(self, start: int | None, within_ms: int) -> bool:
        """Whether a sweep started within ``within_ms`` of ``start``."""
        return start is not None and any(abs(x - start) <= within_ms for x in self.sweeps)

    def rise_jumped(self, p: TapeParams) -> bool:
        """Whether the rise to the price's top over ``tape.slow_ramp_ms`` came in a jump (:meth:`Rise.jumped` with
        ``tape.jump_share`` and ``tape.walk_ms``): a sweep's followers hold the price where one chunk took it.
        Reads the path back (O(``tape.slow_ramp_ms`` chunks)): call it only once a detector's rule holds."""
        if not self.path:
            return False
        rise = rise_to_top(self.path, self.ts - p.chunks(p.slow_ramp_ms) * p.chunk_ms, p.chunk_ms)
        return rise is not None and rise[0].jumped(p.jump_share, p.walk_ms)

    def sustained_rise(self, run: Run, flagged: bool, min_chunks: int, p: TapeParams) -> tuple[int, int] | None:
        """Pushes the chunk's flag to a pump path's ``run``; ``(flagged chunks, run's first start)`` when the path
        may hit — this chunk flagged, ``min_chunks`` or more in the window, outside the closing window (a push
        there is marking the close), not next to a sweep (its followers) and on a rise walked, not jumped — else
        ``None``. The guards the sustained pump paths (crowd, surge, ramp) share."""
        chunks = run.observe(self.start, flagged, p.chunk_ms)
        first = run.first_start
        if not flagged or chunks < min_chunks or first is None or self.in_close:
            return None
        if self.near_sweep(first, p.sweep_followers_ms) or self.rise_jumped(p):
            return None
        return chunks, first

    def hit(self, kind: AlertKind, window_start: int, score: float, evidence: dict[str, Any], message: str) -> Hit:
        # a window reaching back past the first record (a chunk or a long window before event time 0) starts at 0:
        # event time is never negative (the record contract), and neither is an alert's window
        return Hit(kind, self.ts, max(0, window_start), self.ts, score, evidence, PATTERNS_VERSION, message)


#: what a feed may carry beyond each chunk's prices and volume: trade-by-trade prints (and the aggressor sides given
#: with them or read from them) and five-level books; 1-minute bars carry neither
CARRIED: Final = ("prints", "books")


class PatternDetector(Protocol):
    """One detector: built from the tape's parameters and its own (``Detector(tape, params)``), O(1) work per chunk,
    hits out, a JSON-safe state under keys of its own (:meth:`to_state`; ``Detector.from_state(state, tape, params)``
    builds it restored), and what its hits' evidence means (``EVIDENCE``: one
    :class:`~tapewatch.detectors.evidence.Rule` per evidence layout it writes, its bounds citing its own parameters and
    the tape's by qualified name)."""

    #: the record of its own parameters (a :class:`~tapewatch.detectors.patterns.checks.Checked` dataclass: ``Any``
    #: here, as a class attribute of a protocol is invariant); its ``GROUP`` is their names' qualifier and the field of
    #: :class:`~tapewatch.detectors.patterns.params.PatternParams` that holds them
    PARAMS: ClassVar[type[Any]]
    EVIDENCE: ClassVar[tuple[Rule, ...]]
    #: what of :data:`CARRIED` it reads (a feed without one of them never runs it: it could never fire there)
    NEEDS: ClassVar[frozenset[str]]

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]: ...

    def to_state(self) -> dict[str, Any]: ...

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: Any) -> Self: ...
