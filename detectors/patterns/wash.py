"""Wash trading — a *proxy from anonymous data*, by two paths, each on the feeds it works on.

The feed does not say who traded, so the detector sees only the footprint of one trader crossing with
himself.

* **Mirror trades** (where the feed gives the sides: ``inferred_share_long ≤ 0.5``): a print of the
  same size as the previous one, on the other side, within ``FlowConfig.mirror_ms``. A *mirror chunk*: the
  long window's mirror volume far above the symbol's own (``mirror_z_long ≥ wash.mirror_z`` with
  ``mirror_vol_share_long ≥ wash.mirror_share`` of the volume, or ``mirror_z_long ≥ wash.mirror_z_alone``
  whatever the share: in a busy tape other prints dilute it) and balanced by order count
  (``|order_imbalance_long| ≤ wash.mirror_balance``: a surge of small one-sided orders, as in a pump, pairs up
  by chance), repeated (``mirror_trades_long ≥ wash.mirror_min_trades``: one pair of equal prints on opposite
  sides is chance on any symbol trading round lots) and more of the volume than the symbol's own chance pairs
  (the window's mirror share ``≥ wash.mirror_lift`` × the baseline's, read from ``mirror_excess_share_long``:
  chance pairs grow with the tape, so a surge of two-sided volume surges them too). Hit when
  ``wash.min_chunks`` chunks of the last ``wash.window_ms`` are mirror chunks. Inferred
  sides alternate at every bid-ask bounce, so this path is off where sides are inferred.
* **Volume at a pinned quote** (where sides are inferred — snapshot feeds aggregate the prints, so equal
  alternating sizes cannot show): the pair's trades neither move the price nor consume depth.
  A *pinned chunk*: the long window traded far more than the symbol's own (``volume_rel_p95_long ≥
  wash.pinned_volume_p95``: against the 95th percentile of its long windows, robust to bursty volume) over
  several prints' worth (:func:`effective_prints` ``≥ wash.pinned_prints``: one block print is not a wash), the
  quote did not move (``|mid_ret_bps_long| ≤`` half the spread) and every
  print sat within it, at both quotes (``0 < range_bps_long ≤ spread_bps_long``), level 1 lost at most
  ``wash.pinned_consumed`` of the traded size (``consumed_share_long``), both sides traded about equally
  (``|aggr_imbalance_long| ≤ wash.pinned_balance``: one account buys and sells; one-sided volume at a pinned
  quote is a large order being absorbed), and the price is not drifting
  (``|drift z| < wash.pinned_drift_z``: a pump or a closing push moves it). Hit when
  ``wash.pinned_min_chunks`` chunks of the last ``wash.pinned_window_ms`` are pinned chunks (colluding
  accounts trade in repeated bursts, one busy stretch at a pinned quote is ordinary) and at most
  ``wash.pinned_prior_max`` were in the ``wash.pinned_history_ms`` before them (where the book is deep and busy,
  volume surges at a pinned quote are the symbol's everyday trading).

Evidence: ``wash_chunks`` or ``pinned_chunks``, and the window's values of :data:`_EVIDENCE`.

>>> from tapewatch.detectors.patterns.context import TapeContext
>>> from tapewatch.detectors.patterns.params import TapeParams
>>> params = TapeParams(close_time=None)
>>> tape, wash = TapeContext(params), WashTrading(params, WashTradingParams())
>>> burst = {"mirror_z_long": 9.0, "mirror_vol_share_long": 0.6, "order_imbalance_long": 0.0,
...          "mirror_trades_long": 6.0, "mirror_excess_share_long": 0.5}
>>> chance = {**burst, "mirror_trades_long": 1.0}  # one pair of equal prints: chance, however rare
>>> wash.on_chunk(tape.on_chunk(0, chance), chance)
[]
>>> [h.kind.value for h in wash.on_chunk(tape.on_chunk(5_000, burst), burst)]
['wash_trading']
>>> wash.on_chunk(tape.on_chunk(10_000, {**burst, "inferred_share_long": 1.0}), {**burst, "inferred_share_long": 1.0})
[]
>>> round(effective_prints({"trades_long": 4.0, "size_mean_long": 10.0, "size_std_long": 0.0}), 2)
4.0
>>> round(effective_prints({"trades_long": 4.0, "size_mean_long": 10.0, "size_std_long": 17.32}), 2)  # one block
1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Evidence, Key, Rule, bound, derived, fixed, number
from tapewatch.detectors.patterns.base import ChunkContext, Run, Values, cited, context, ge, get, strength
from tapewatch.detectors.patterns.checks import at_most_one, finite, non_negative, positive
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: params.py composes this module's record
    from tapewatch.detectors.patterns.params import PatternParams, TapeParams


@dataclass(frozen=True, slots=True)
class WashTradingParams:
    """Wash trading (a proxy: the feed is anonymous), by mirror trades where the feed gives the sides and by volume at
    a pinned quote where it infers them."""

    GROUP: ClassVar[str] = "wash"

    #: hit when ``min_chunks`` chunks of the last ``window_ms`` are mirror chunks (a count: one burst suffices)
    window_ms: int = 30_000
    min_chunks: int = 1
    #: mirror trades: equal prints on alternating sides far above the symbol's own mirror volume …
    mirror_z: float = 7.0
    #: … carrying this share of the window's volume, or far above it whatever the share (busy symbols)
    mirror_share: float = 0.4
    mirror_z_alone: float = 12.0
    #: … and balanced by order count (a pump's many small buys also pair up by chance: one-sided)
    mirror_balance: float = 0.35
    #: … repeated: at least this many mirror trades in the long window (``mirror_trades_long``). Where the
    #: baseline holds almost no mirror volume (a slow symbol trading round lots), one chance pair of equal prints
    #: on opposite sides scores a huge ``mirror_z_long``; a washer prints pair after pair
    mirror_min_trades: float = 3.0
    #: … and the window's mirror share at least this many times the symbol's own (``mirror_vol_share_long``
    #: against ``mirror_vol_share_long - mirror_excess_share_long``): equal prints meet by chance in
    #: proportion to the tape, so a surge of two-sided volume (a closing push, ignition followers) surges its
    #: chance mirrors too, at about the symbol's own share
    mirror_lift: float = 1.5
    #: the pinned-quote path (where the feed's sides are inferred, mirror trades cannot show): a chunk whose long
    #: window traded this many times the 95th percentile of the symbol's own long windows
    #: (``volume_rel_p95_long``: a percentile, not a z-score, because a z of 4 is everyday trading for a symbol
    #: with bursty volume and a rare event for a steady one) …
    pinned_volume_p95: float = 1.5
    #: … spread over at least this many prints' worth (``volume² / Σ size²``: one block print is 1) …
    pinned_prints: float = 3.0
    #: … while level 1 lost at most this share of the traded size (the pair crosses with itself: no depth
    #: consumed), the quote did not move and every print sat within it, and the price is not drifting
    #: (``|drift z|`` below ``pinned_drift_z``: a pump or a push moves the price, a wash does not)
    pinned_consumed: float = 0.3
    pinned_drift_z: float = 2.0
    #: … and both sides traded about equally (``|aggr_imbalance_long|`` at most this: one account is the buyer
    #: and the seller; a one-sided flow at a pinned quote is a large order being absorbed)
    pinned_balance: float = 0.3
    #: hit when this many such chunks fall within the last ``pinned_window_ms`` (colluding accounts trade in
    #: repeated bursts; one busy stretch at a pinned quote is ordinary)
    pinned_min_chunks: int = 4
    pinned_window_ms: int = 120_000
    #: … and such chunks are unusual for this symbol: at most this many in the ``pinned_history_ms`` before the
    #: window (a deep, busy book trades surges at a pinned quote every day; below zero the path never fires)
    pinned_prior_max: int = 2
    pinned_history_ms: int = 3_600_000

    def __post_init__(self) -> None:
        positive(self, "window_ms", "min_chunks", "mirror_z", "mirror_lift", "pinned_volume_p95")
        positive(self, "pinned_min_chunks", "pinned_window_ms")
        non_negative(self, "mirror_z_alone", "mirror_min_trades", "pinned_prints", "pinned_drift_z")
        non_negative(self, "pinned_history_ms")
        non_negative(self, "mirror_share")  # an imbalance or share bar: above 1 turns the path off
        # bars a value must stay under: a negative one turns its path off
        at_most_one(self, "mirror_balance", "pinned_consumed", "pinned_balance")
        finite(self, "pinned_prior_max")


_EVIDENCE = (
    "mirror_z_long",
    "mirror_vol_share_long",
    "mirror_excess_share_long",
    "mirror_trades_long",
    "mirror_trades",
    "order_imbalance_long",
    "aggr_imbalance_long",
    "alternation_long",
    "size_mode_vol_share_long",
    "volume_z_long",
    "volume_rel_p95_long",
    "consumed_share_long",
    "mid_ret_bps_long",
    "range_bps_long",
    "spread_bps_long",
    "ret_bps_long",
    "inferred_share_long",
)
#: the window's spread is a mean over its books, the price range is exact: a little room for the mean
_SPREAD_SLACK = 1.05


def effective_prints(v: Values) -> float | None:
    """How many equal prints would carry the window's volume as concentrated as it is: ``volume² / Σ size²``
    (= ``n / (1 + cv²)`` of the window's print sizes); ``None`` without prints."""
    n, mean, std = get(v, "trades_long"), get(v, "size_mean_long"), get(v, "size_std_long")
    if not n or mean is None or mean <= 0.0:
        return None
    return n / (1.0 + ((std or 0.0) / mean) ** 2)


def _keys(gated: Mapping[str, Key]) -> dict[str, Key]:
    """A rule's declarations: the values it compares, then the rest of :data:`_EVIDENCE` as context."""
    return {**gated, **context(*(name for name in _EVIDENCE if name not in gated))}


def _lifted(p: PatternParams, e: Evidence) -> float | None:
    share = number(e, "mirror_vol_share_long")
    return None if share is None else (1.0 - 1.0 / p.wash.mirror_lift) * share


def _half_spread(_: PatternParams, e: Evidence) -> float | None:
    spread = number(e, "spread_bps_long")
    return None if spread is None else 0.5 * spread


def _spread(_: PatternParams, e: Evidence) -> float | None:
    spread = number(e, "spread_bps_long")
    return None if spread is None else spread * _SPREAD_SLACK


class WashTrading:
    """State keys ``wash`` (mirror chunks), ``wash_pinned`` (pinned chunks) and ``wash_pinned_history``."""

    __slots__ = ("history", "min_pinned", "min_washes", "params", "pinned", "tape", "washes")

    PARAMS: ClassVar[type[WashTradingParams]] = WashTradingParams
    NEEDS: ClassVar[frozenset[str]] = frozenset({"prints"})

    #: the hits' evidence (:mod:`tapewatch.detectors.evidence`), one rule per path. Not in it: the pinned path's prints'
    #: worth (``≥ wash.pinned_prints``) and drift z (``|z| < wash.pinned_drift_z``)
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.WASH_TRADING,
            "wash trading: mirror trades",
            "wash_chunks",
            _keys(
                {
                    "wash_chunks": Key("mirror chunks in the wash window", "chunks", bound("≥", "wash.min_chunks")),
                    "mirror_z_long": cited(
                        "mirror_z_long", bound("≥", "wash.mirror_z", unless="mirror_z_long ≥ wash.mirror_z_alone")
                    ),
                    "mirror_vol_share_long": cited(
                        "mirror_vol_share_long",
                        bound("≥", "wash.mirror_share", unless="mirror_z_long ≥ wash.mirror_z_alone"),
                    ),
                    "mirror_excess_share_long": cited(
                        "mirror_excess_share_long",
                        derived("≥", "wash.mirror_lift", "(1 − 1 / wash.mirror_lift) × mirror_vol_share_long", _lifted),
                    ),
                    "mirror_trades_long": cited("mirror_trades_long", bound("≥", "wash.mirror_min_trades")),
                    "order_imbalance_long": cited("order_imbalance_long", bound("|x| ≤", "wash.mirror_balance")),
                    "inferred_share_long": cited("inferred_share_long", fixed("≤", 0.5)),
                }
            ),
        ),
        Rule(
            AlertKind.WASH_TRADING,
            "wash trading: volume at a pinned quote",
            "pinned_chunks",
            _keys(
                {
                    "pinned_chunks": Key(
                        "pinned chunks in the pinned window", "chunks", bound("≥", "wash.pinned_min_chunks")
                    ),
                    "pinned_chunks_before": Key(
                        "pinned chunks in the history before the window", "chunks", bound("≤", "wash.pinned_prior_max")
                    ),
                    "volume_rel_p95_long": cited("volume_rel_p95_long", bound("≥", "wash.pinned_volume_p95")),
                    "mid_ret_bps_long": cited(
                        "mid_ret_bps_long", derived("|x| ≤", None, "0.5 × spread_bps_long", _half_spread)
                    ),
                    "range_bps_long": cited(
                        "range_bps_long", derived("0 < x ≤", None, f"{_SPREAD_SLACK:g} × spread_bps_long", _spread)
                    ),
                    "consumed_share_long": cited("consumed_share_long", bound("≤", "wash.pinned_consumed")),
                    "aggr_imbalance_long": cited("aggr_imbalance_long", bound("|x| ≤", "wash.pinned_balance")),
                    "inferred_share_long": cited("inferred_share_long", fixed(">", 0.5)),
                }
            ),
        ),
    )

    def __init__(self, tape: TapeParams, params: WashTradingParams) -> None:
        self.tape, self.params = tape, params
        self.washes = Run(tape.chunks(params.window_ms))
        self.min_washes = params.min_chunks
        self.pinned = Run(tape.chunks(params.pinned_window_ms))
        self.min_pinned = params.pinned_min_chunks
        self.history = Run(tape.chunks(params.pinned_history_ms + params.pinned_window_ms))

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p, chunk_ms = self.params, self.tape.chunk_ms
        inferred = (get(v, "inferred_share_long") or 0.0) > 0.5
        mirror = not inferred and self._mirror(v)
        pinned = inferred and self._pinned(ctx, v)
        washes = self.washes.observe(ctx.start, mirror, chunk_ms)
        pins = self.pinned.observe(ctx.start, pinned, chunk_ms)
        before = self.history.observe(ctx.start, pinned, chunk_ms) - pins  # pinned chunks before the window
        if mirror and washes >= self.min_washes and self.washes.first_start is not None:
            ratio = (get(v, "mirror_z_long") or 0.0) / p.mirror_z * washes / self.min_washes
            message = "alternating buy/sell prints of one repeated size (wash-trading proxy: the feed is anonymous)"
            return [self._hit(ctx, v, self.washes.first_start, ratio, {"wash_chunks": washes}, message)]
        unusual = before <= p.pinned_prior_max
        if pinned and pins >= self.min_pinned and unusual and self.pinned.first_start is not None:
            ratio = (get(v, "volume_rel_p95_long") or 0.0) / p.pinned_volume_p95 * pins / self.min_pinned
            message = "repeated volume surges at a pinned quote that consume no depth (wash-trading proxy)"
            count = {"pinned_chunks": pins, "pinned_chunks_before": before}
            return [self._hit(ctx, v, self.pinned.first_start, ratio, count, message)]
        return []

    def _mirror(self, v: Values) -> bool:
        p = self.params
        mirror_z, balance = get(v, "mirror_z_long"), get(v, "order_imbalance_long")
        share, excess = get(v, "mirror_vol_share_long"), get(v, "mirror_excess_share_long")
        return (
            mirror_z is not None
            and balance is not None
            and abs(balance) <= p.mirror_balance
            and ge(v, "mirror_trades_long", p.mirror_min_trades)
            # share ≥ lift × (share − excess), the symbol's own share: excess ≥ (1 − 1 / lift) × share
            and share is not None
            and excess is not None
            and excess >= (1.0 - 1.0 / p.mirror_lift) * share
            and (
                mirror_z >= p.mirror_z_alone
                or (mirror_z >= p.mirror_z and ge(v, "mirror_vol_share_long", p.mirror_share))
            )
        )

    def _pinned(self, ctx: ChunkContext, v: Values) -> bool:
        p = self.params
        mid_ret, spread = get(v, "mid_ret_bps_long"), get(v, "spread_bps_long")
        price_range, consumed = get(v, "range_bps_long"), get(v, "consumed_share_long")
        prints, drift_z, balance = effective_prints(v), ctx.drift_z_abs, get(v, "aggr_imbalance_long")
        return (
            mid_ret is not None
            and spread is not None
            and price_range is not None
            and consumed is not None
            and prints is not None
            and abs(mid_ret) <= 0.5 * spread
            and 0.0 < price_range <= spread * _SPREAD_SLACK
            and consumed <= p.pinned_consumed
            and prints >= p.pinned_prints
            and ge(v, "volume_rel_p95_long", p.pinned_volume_p95)
            and balance is not None
            and abs(balance) <= p.pinned_balance
            and (drift_z is None or abs(drift_z) < p.pinned_drift_z)
        )

    def _hit(self, ctx: ChunkContext, v: Values, first: int, ratio: float, count: dict[str, int], message: str) -> Hit:
        evidence = {**count, **{name: get(v, name) for name in _EVIDENCE}}
        return ctx.hit(AlertKind.WASH_TRADING, first, strength(ratio), evidence, message)

    def to_state(self) -> dict[str, Any]:
        return {
            "wash": self.washes.to_state(),
            "wash_pinned": self.pinned.to_state(),
            "wash_pinned_history": self.history.to_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: WashTradingParams) -> WashTrading:
        detector = cls(tape, params)
        detector.washes = Run.from_state(state["wash"], detector.washes.window)
        detector.pinned = Run.from_state(state["wash_pinned"], detector.pinned.window)
        detector.history = Run.from_state(state["wash_pinned_history"], detector.history.window)
        return detector
