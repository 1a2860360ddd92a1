"""Pump-and-dump, fourth path (feeds that print every trade with its side): a *crowd* of buy orders, sustained.

The onset path (:mod:`tapewatch.detectors.patterns.pump_onset`) fires within seconds but needs rush orders — many small
buys in one millisecond, the signature of a crypto pump group's bots. A pump without them (orders placed by hand, or by
a manipulator who spreads them out) shows the same crowd of aggressive buy orders, only without the rush; the ramp path
sees it once the price has moved several σ, minutes later. A *crowd chunk* has aggressive **buy orders** far above the
symbol's own rate (``buy_orders_z_long ≥ pump_crowd.buy_orders_z``) and one-sided **by count** (``order_imbalance_z_long
≥ pump_crowd.order_imbalance_z``) — the onset's two conditions, on bars of its own — net buying by volume too
(``aggr_imbalance_long ≥ pump_crowd.imbalance``: many small buys against a few large sells is a market absorbing a
seller) and the price following (``drift_bps ≥ pump_crowd.drift_bps`` and the drift ``≥ pump_crowd.drift_z`` of the
symbol's own σ over as long: a pump buys to lift the price; a crowd of buys the price does not follow is a seller being
absorbed or a parent order worked patiently).

What replaces the rush is *persistence*: crowd chunks covering ``pump_crowd.min_ms`` within the last
``pump_crowd.window_ms``. A momentum ignition's followers buy as hard for 20–60 s after a sweep; a pump's crowd keeps
buying for minutes. Hit outside the closing window (a closing push is marking the close), not next to a sweep and on
a rise that was walked, not jumped (the ramp path's guards:
:meth:`~tapewatch.detectors.patterns.base.ChunkContext.rise_jumped`).

A snapshot feed has no orders and no sides (the features are null there): this path is off, its pumps are the
surge's (:mod:`~tapewatch.detectors.patterns.pump_surge`: volume in place of orders), the ramp's and the dump's.

Evidence: ``crowd_chunks``, ``buy_orders_z_long``, ``order_imbalance_z_long``, ``trades_z_long``,
``aggr_imbalance_long``, ``ret_bps_long``, ``drift_bps``.

>>> from tapewatch.detectors.patterns.context import TapeContext
>>> from tapewatch.detectors.patterns.params import TapeParams
>>> params, own = TapeParams(close_time=None), PumpCrowdParams()
>>> tape, crowd = TapeContext(params), PumpCrowd(params, own)
>>> buying = {"buy_orders_z_long": 6.0, "order_imbalance_z_long": 3.0, "aggr_imbalance_long": 0.5, "ret_bps": 3.0,
...           "ret_sigma_bps": 2.0}
>>> hits = [(i, h) for i in range(1, 20) for h in crowd.on_chunk(tape.on_chunk(i * 5_000, buying), buying)]
>>> hits[0][0], hits[0][1].window_start, hits[0][1].evidence["crowd_chunks"]  # a minute of crowd chunks
(13, 5000, 12)

(the first chunk is not a crowd chunk: 3 bps is under half a σ of the drift's window, 2 bps × √24)

The same crowd with a price that does not follow (a seller absorbing it, a parent order worked patiently):

>>> tape, crowd = TapeContext(params), PumpCrowd(params, own)
>>> absorbed = {**buying, "ret_bps": 0.1}
>>> [h for i in range(1, 20) for h in crowd.on_chunk(tape.on_chunk(i * 5_000, absorbed), absorbed)]
[]

Thirty seconds of the same buying, as a momentum ignition's followers do, is not a pump:

>>> tape, crowd = TapeContext(params), PumpCrowd(params, own)
>>> quiet = {"buy_orders_z_long": 0.0, "order_imbalance_z_long": 0.0, "ret_bps": 0.0}
>>> flow = [buying] * 6 + [quiet] * 20
>>> [h for i, v in enumerate(flow, 1) for h in crowd.on_chunk(tape.on_chunk(i * 5_000, v), v)]
[]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Key, Rule, bound
from tapewatch.detectors.patterns.base import (
    ChunkContext,
    Run,
    Values,
    buy_orders_surge,
    cited,
    context,
    ge,
    get,
    strength,
)
from tapewatch.detectors.patterns.checks import finite, non_negative, not_longer, positive
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: params.py composes this module's record
    from tapewatch.detectors.patterns.params import TapeParams

_EVIDENCE = ("order_imbalance_z_long", "trades_z_long", "aggr_imbalance_long", "ret_bps_long")


@dataclass(frozen=True, slots=True)
class PumpCrowdParams:
    """A crowd of buy orders, one-sided, the price following, held for a minute (no rush needed)."""

    GROUP: ClassVar[str] = "pump_crowd"

    #: a crowd chunk: buy orders this far above the symbol's own rate (``buy_orders_z_long``) …
    buy_orders_z: float = 4.0
    #: … one-sided by count (``order_imbalance_z_long``, a fair coin's z of buy vs sell orders) …
    order_imbalance_z: float = 2.0
    #: … and net buying by volume too (a crowd of small buys against a few large sells is a market absorbing a
    #: seller, not a pump)
    imbalance: float = 0.2
    #: … and the price follows: the drift over ``tape.drift_ms`` at least this (bps; ≥ 0: not falling) …
    drift_bps: float = 0.0
    #: … and at least this many of the symbol's σ over as long (a pump buys to lift the price; buying the price does
    #: not follow is a seller being absorbed or a patient parent order). Low, because a convex ramp is flat at first:
    #: a higher bar delays those pumps by minutes
    drift_z: float = 0.5
    #: crowd chunks covering this much time within this window (a momentum ignition's followers buy for 20–60 s)
    min_ms: int = 60_000
    window_ms: int = 90_000

    def __post_init__(self) -> None:
        positive(self, "min_ms", "window_ms")
        finite(self, "buy_orders_z", "order_imbalance_z", "drift_z")
        non_negative(self, "drift_bps")
        non_negative(self, "imbalance")  # an imbalance or share bar: above 1 turns the path off
        not_longer(self, "min_ms", "window_ms")


class PumpCrowd:
    """State key ``pump_crowd`` (crowd chunks)."""

    __slots__ = ("crowd", "min_chunks", "params", "tape")

    PARAMS: ClassVar[type[PumpCrowdParams]] = PumpCrowdParams
    NEEDS: ClassVar[frozenset[str]] = frozenset({"prints"})

    #: the hit's evidence (:mod:`tapewatch.detectors.evidence`); the drift's z (``≥ pump_crowd.drift_z``) is not in it
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.PUMP_AND_DUMP,
            "pump crowd",
            "crowd_chunks",
            {
                "crowd_chunks": Key(
                    "crowd chunks in the crowd window", "chunks", bound("≥", "pump_crowd.min_ms", chunks=True)
                ),
                "buy_orders_z_long": cited("buy_orders_z_long", bound("≥", "pump_crowd.buy_orders_z")),
                "order_imbalance_z_long": cited("order_imbalance_z_long", bound("≥", "pump_crowd.order_imbalance_z")),
                "aggr_imbalance_long": cited("aggr_imbalance_long", bound("≥", "pump_crowd.imbalance")),
                "drift_bps": cited("drift_bps", bound("≥", "pump_crowd.drift_bps")),
                **context("trades_z_long", "ret_bps_long"),
            },
        ),
    )

    def __init__(self, tape: TapeParams, params: PumpCrowdParams) -> None:
        self.tape, self.params = tape, params
        self.crowd = Run(tape.chunks(params.window_ms))
        self.min_chunks = tape.chunks(params.min_ms)

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p = self.params
        buy_orders_z = buy_orders_surge(v, p.buy_orders_z, p.order_imbalance_z)
        crowd = (
            buy_orders_z is not None
            and ge(v, "aggr_imbalance_long", p.imbalance)
            and ctx.drift_bps >= p.drift_bps
            # where the symbol has no volatility yet (or its price never moved), the rise alone is the unit
            and (ctx.drift_z_short is None or ctx.drift_z_short >= p.drift_z)
        )
        sustained = ctx.sustained_rise(self.crowd, crowd, self.min_chunks, self.tape)
        if sustained is None:
            return []
        chunks, first = sustained
        evidence = {
            "crowd_chunks": chunks,
            "buy_orders_z_long": buy_orders_z,
            **{name: get(v, name) for name in _EVIDENCE},
            "drift_bps": ctx.drift_bps,
        }
        return [
            ctx.hit(
                AlertKind.PUMP_AND_DUMP,
                first,
                strength((buy_orders_z or 0.0) / p.buy_orders_z * chunks / self.min_chunks),
                evidence,
                f"buy orders {buy_orders_z or 0.0:.0f} σ above the symbol's rate, one-sided, sustained"
                f" ({chunks} of the last {self.crowd.window} chunks)",
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {"pump_crowd": self.crowd.to_state()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: PumpCrowdParams) -> PumpCrowd:
        detector = cls(tape, params)
        detector.crowd = Run.from_state(state["pump_crowd"], detector.crowd.window)
        return detector
