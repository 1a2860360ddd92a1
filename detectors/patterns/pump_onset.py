"""Pump-and-dump, first path: the *onset* of the ramp on a feed that prints every trade with its side.

From the flow features that compare the long window with the symbol's own last hour (La Morgia et al.
2020: rush orders and z-scores against a rolling window): an *onset chunk* has aggressive **buy orders** far
above the symbol's rate (``buy_orders_z_long ≥ pump_onset.buy_orders_z``; orders, not trades: one order's fills
count once), one-sided **by count** (``order_imbalance_z_long ≥ pump_onset.order_imbalance_z``, a fair coin's z of
buy vs sell orders — a few large sells do not mask a crowd of small buys, which volume imbalance lets them do) and a
**rush** far bigger than the symbol's usual largest one (``rush_max_z_long ≥ pump_onset.rush_max_z``: many small
buys in one millisecond). Hit when onset chunks covering ``pump_onset.min_ms`` fall within the last
``pump_onset.window_ms``, outside the closing window, and the run did not start within
``tape.sweep_followers_ms`` of a sweep (:mod:`tapewatch.detectors.patterns.context`): a surge that opens with a sweep is
a momentum ignition's followers. The price barely matters: the ramp is convex and barely moves in its first minute, so
an onset chunk asks only that it rose at all over the drift window (``drift_bps > pump_onset.drift_bps`` by more than
:data:`~tapewatch.detectors.patterns.base.RISE_EPSILON_BPS`): a crowd of buy orders with outsized ones that leaves the
price exactly where it was two minutes ago is liquidity absorbing it, not a pump lifting it (on an order-book market
every large market order walks the book in one millisecond and looks like a rush). The cost: a pump whose price first
falls and stays flat is seen once it rises. The alert fires at first evidence and escalates (same alert id) as the score
grows.

The *surge* (activity ``≥ pump_onset.surge_z``, :func:`~tapewatch.detectors.patterns.base.surge_z`;
``aggr_imbalance_long ≥ pump_onset.surge_imbalance``, a drift ``≥ pump_onset.drift_bps``, ``rush_orders_long ≥
pump_onset.surge_rush`` over the last ``pump_onset.surge_window_ms``; version 1's pump rule, a minute or more late) no
longer alerts; it tells momentum ignition that a pump is under way (:attr:`ChunkContext.surge_chunks`). A snapshot feed
shows neither rush orders nor buy orders (they are null there): its pumps are the surge's
(:mod:`tapewatch.detectors.patterns.pump_surge`), the ramp's (:mod:`tapewatch.detectors.patterns.pump_ramp`) and the
dump's.

Evidence: ``onset_chunks``, ``buy_orders_z_long``, ``order_imbalance_z_long``, ``rush_max_long``,
``rush_max_z_long``, ``trades_z_long``, ``aggr_imbalance_long``, ``ret_bps_long``, ``drift_bps``.

>>> from tapewatch.detectors.patterns.context import TapeContext
>>> from tapewatch.detectors.patterns.params import TapeParams
>>> params, own = TapeParams(close_time=None), PumpOnsetParams()
>>> tape, pump = TapeContext(params), PumpOnset(params, own)
>>> onset = {"buy_orders_z_long": 7.0, "order_imbalance_z_long": 3.5, "rush_max_z_long": 8.0, "ret_bps": 1.0}
>>> [len(pump.on_chunk(tape.on_chunk(ts, onset), onset)) for ts in (5_000, 10_000)]
[0, 1]

The same buying with the price where it was is absorbed, not a pump:

>>> tape, pump = TapeContext(params), PumpOnset(params, own)
>>> absorbed = {**onset, "ret_bps": 0.0}
>>> [len(pump.on_chunk(tape.on_chunk(ts, absorbed), absorbed)) for ts in (5_000, 10_000)]
[0, 0]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Key, Rule, bound
from tapewatch.detectors.patterns.base import (
    RISE_EPSILON_BPS,
    ChunkContext,
    Run,
    Values,
    buy_orders_surge,
    cited,
    context,
    ge,
    get,
    strength,
    surge_z,
)
from tapewatch.detectors.patterns.checks import finite, non_negative, not_longer, positive
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: params.py composes this module's record
    from tapewatch.detectors.patterns.params import TapeParams


@dataclass(frozen=True, slots=True)
class PumpOnsetParams:
    """The onset of a pump on a feed that prints every trade with its side, and the surge that tells momentum
    ignition a pump is under way."""

    GROUP: ClassVar[str] = "pump_onset"

    #: the surge: activity against the symbol's baseline (:func:`~tapewatch.detectors.patterns.base.surge_z`) at least
    #: this, in σ
    surge_z: float = 3.5
    #: … net buying (``aggr_imbalance_long``) at least this …
    surge_imbalance: float = 0.4
    #: … and at least this many rush orders in the long window (``rush_orders_long``), counted over this window
    surge_rush: float = 2.0
    surge_window_ms: int = 120_000
    #: a surge or onset chunk needs the drift over ``tape.drift_ms`` at least this (bps; ≥ 0: not falling)
    drift_bps: float = 0.0
    #: the onset: a chunk whose long window has buy orders this far above the symbol's own rate …
    buy_orders_z: float = 4.0
    #: … one-sided by count (a fair coin's z of buy vs sell orders) …
    order_imbalance_z: float = 2.0
    #: … and a rush bigger than the symbol's usual largest rush (many small buys in one millisecond)
    rush_max_z: float = 5.5
    #: hit when onset chunks covering this much time fall within the last ``window_ms``
    min_ms: int = 10_000
    window_ms: int = 20_000

    def __post_init__(self) -> None:
        positive(self, "surge_window_ms", "min_ms", "window_ms")
        finite(self, "surge_z", "buy_orders_z", "order_imbalance_z", "rush_max_z")
        non_negative(self, "surge_rush", "drift_bps")
        non_negative(self, "surge_imbalance")  # an imbalance or share bar: above 1 turns the path off
        not_longer(self, "min_ms", "window_ms")


class PumpOnset:
    """State keys ``pump`` (surge chunks) and ``onset`` (onset chunks); sets the context's surge/onset counts."""

    __slots__ = ("min_onsets", "onset", "params", "surge", "tape")

    PARAMS: ClassVar[type[PumpOnsetParams]] = PumpOnsetParams
    NEEDS: ClassVar[frozenset[str]] = frozenset({"prints"})

    #: the hit's evidence (:mod:`tapewatch.detectors.evidence`); the drift must have risen at all (by more than
    #: :data:`~tapewatch.detectors.patterns.base.RISE_EPSILON_BPS`). The surge does not gate the hit: its values are
    #: context
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.PUMP_AND_DUMP,
            "pump onset",
            "onset_chunks",
            {
                "onset_chunks": Key(
                    "onset chunks in the onset window", "chunks", bound("≥", "pump_onset.min_ms", chunks=True)
                ),
                "buy_orders_z_long": cited("buy_orders_z_long", bound("≥", "pump_onset.buy_orders_z")),
                "order_imbalance_z_long": cited("order_imbalance_z_long", bound("≥", "pump_onset.order_imbalance_z")),
                "rush_max_z_long": cited("rush_max_z_long", bound("≥", "pump_onset.rush_max_z")),
                "drift_bps": cited("drift_bps", bound(">", "pump_onset.drift_bps")),
                **context("rush_max_long", "trades_z_long", "aggr_imbalance_long", "ret_bps_long"),
            },
        ),
    )

    def __init__(self, tape: TapeParams, params: PumpOnsetParams) -> None:
        self.tape, self.params = tape, params
        self.surge = Run(tape.chunks(params.surge_window_ms))
        self.onset = Run(tape.chunks(params.window_ms))
        self.min_onsets = tape.chunks(params.min_ms)

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p, tape = self.params, self.tape
        surge = (
            (activity := surge_z(v, tape.prints)) is not None
            and activity >= p.surge_z
            and ge(v, "aggr_imbalance_long", p.surge_imbalance)
            and ctx.drift_bps >= p.drift_bps
            and ge(v, "rush_orders_long", p.surge_rush)
        )
        ctx.surge_chunks = self.surge.observe(ctx.start, surge, tape.chunk_ms)
        buy_orders_z = buy_orders_surge(v, p.buy_orders_z, p.order_imbalance_z)
        onset = (
            buy_orders_z is not None
            and ge(v, "rush_max_z_long", p.rush_max_z)
            and ctx.drift_bps > p.drift_bps + RISE_EPSILON_BPS
        )
        onsets = ctx.onset_chunks = self.onset.observe(ctx.start, onset, tape.chunk_ms)
        first = self.onset.first_start
        if not onset or onsets < self.min_onsets or first is None or ctx.in_close:
            return []
        if ctx.near_sweep(first, tape.sweep_followers_ms):
            return []
        evidence = {
            "onset_chunks": onsets,
            "buy_orders_z_long": buy_orders_z,
            **{name: get(v, name) for name in ("order_imbalance_z_long", "rush_max_long", "rush_max_z_long")},
            **{name: get(v, name) for name in ("trades_z_long", "aggr_imbalance_long", "ret_bps_long")},
            "drift_bps": ctx.drift_bps,
        }
        return [
            ctx.hit(
                AlertKind.PUMP_AND_DUMP,
                first,
                strength((buy_orders_z or 0.0) / p.buy_orders_z * onsets / self.min_onsets),
                evidence,
                f"buy orders {buy_orders_z or 0.0:.0f} σ above the symbol's rate with outsized rush orders"
                f" ({onsets} of the last {self.onset.window} chunks)",
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {"pump": self.surge.to_state(), "onset": self.onset.to_state()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: PumpOnsetParams) -> PumpOnset:
        detector = cls(tape, params)
        detector.surge = Run.from_state(state["pump"], detector.surge.window)
        detector.onset = Run.from_state(state["onset"], detector.onset.window)
        return detector
