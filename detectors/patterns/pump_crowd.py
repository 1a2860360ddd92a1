"""Pump-and-dump, fourth path (feeds that print every trade with its side): a *crowd* of buy orders, sustained.

The onset path (:mod:`detectors.patterns.pump_onset`) fires within seconds but needs rush orders — many small buys
in one millisecond, the signature of a crypto pump group's bots. A pump without them (orders placed by hand, or by a
manipulator who spreads them out) shows the same crowd of aggressive buy orders, only without the rush; the ramp
path sees it once the price has moved several σ, minutes later. A *crowd chunk* has aggressive **buy orders** far
above the symbol's own rate (``buy_orders_z_long ≥ pump_buy_orders_z``) and one-sided **by count**
(``order_imbalance_z_long ≥ pump_order_imbalance_z``) — the onset's own two conditions — net buying by volume too
(``aggr_imbalance_long ≥ pump_crowd_imbalance``: many small buys against a few large sells is a market absorbing a
seller) and the price following (``drift_bps ≥ pump_drift_bps`` and the drift ``≥ pump_crowd_drift_z`` of the
symbol's own σ over as long: a pump buys to lift the price; a crowd of buys the price does not follow is a seller
being absorbed or a parent order worked patiently).

What replaces the rush is *persistence*: crowd chunks covering ``pump_crowd_min_ms`` within the last
``pump_crowd_window_ms``. A momentum ignition's followers buy as hard for 20–60 s after a sweep; a pump's crowd keeps
buying for minutes. Hit outside the closing window (a closing push is marking the close), not next to a sweep and on
a rise that was walked, not jumped (the ramp path's guards: :meth:`~detectors.patterns.base.ChunkContext.rise_jumped`).

A snapshot feed has no orders and no sides (the features are null there): this path is off, its pumps are the
surge's (:mod:`~detectors.patterns.pump_surge`: volume in place of orders), the ramp's and the dump's.

Evidence: ``crowd_chunks``, ``buy_orders_z_long``, ``order_imbalance_z_long``, ``trades_z_long``,
``aggr_imbalance_long``, ``ret_bps_long``, ``drift_bps``.

>>> from detectors.patterns.context import TapeContext
>>> from detectors.patterns.params import PatternParams
>>> params = PatternParams(close_time=None)
>>> tape, crowd = TapeContext(params), PumpCrowd(params)
>>> buying = {"buy_orders_z_long": 6.0, "order_imbalance_z_long": 3.0, "aggr_imbalance_long": 0.5, "ret_bps": 3.0,
...           "ret_sigma_bps": 2.0}
>>> hits = [(i, h) for i in range(1, 20) for h in crowd.on_chunk(tape.on_chunk(i * 5_000, buying), buying)]
>>> hits[0][0], hits[0][1].window_start, hits[0][1].evidence["crowd_chunks"]  # a minute of crowd chunks
(13, 5000, 12)

(the first chunk is not a crowd chunk: 3 bps is under half a σ of the drift's window, 2 bps × √24)

The same crowd with a price that does not follow (a seller absorbing it, a parent order worked patiently):

>>> tape, crowd = TapeContext(params), PumpCrowd(params)
>>> absorbed = {**buying, "ret_bps": 0.1}
>>> [h for i in range(1, 20) for h in crowd.on_chunk(tape.on_chunk(i * 5_000, absorbed), absorbed)]
[]

Thirty seconds of the same buying, as a momentum ignition's followers do, is not a pump:

>>> tape, crowd = TapeContext(params), PumpCrowd(params)
>>> quiet = {"buy_orders_z_long": 0.0, "order_imbalance_z_long": 0.0, "ret_bps": 0.0}
>>> flow = [buying] * 6 + [quiet] * 20
>>> [h for i, v in enumerate(flow, 1) for h in crowd.on_chunk(tape.on_chunk(i * 5_000, v), v)]
[]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from detectors.alerting import Hit
from detectors.evidence import Key, Rule, bar
from detectors.patterns.base import ChunkContext, Run, Values, buy_orders_surge, cited, context, ge, get, strength
from detectors.patterns.params import PatternParams
from tapewatch.records import AlertKind

_EVIDENCE = ("order_imbalance_z_long", "trades_z_long", "aggr_imbalance_long", "ret_bps_long")


class PumpCrowd:
    """State key ``pump_crowd`` (crowd chunks)."""

    __slots__ = ("crowd", "min_chunks", "params")

    #: the hit's evidence (:mod:`detectors.evidence`); the drift's z (``≥ pump_crowd_drift_z``) is not in it
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.PUMP_AND_DUMP,
            "pump crowd",
            "crowd_chunks",
            {
                "crowd_chunks": Key(
                    "crowd chunks in the crowd window", "chunks", bar("≥", "pump_crowd_min_ms", chunks=True)
                ),
                "buy_orders_z_long": cited("buy_orders_z_long", bar("≥", "pump_buy_orders_z")),
                "order_imbalance_z_long": cited("order_imbalance_z_long", bar("≥", "pump_order_imbalance_z")),
                "aggr_imbalance_long": cited("aggr_imbalance_long", bar("≥", "pump_crowd_imbalance")),
                "drift_bps": cited("drift_bps", bar("≥", "pump_drift_bps")),
                **context("trades_z_long", "ret_bps_long"),
            },
        ),
    )

    def __init__(self, params: PatternParams) -> None:
        self.params = params
        self.crowd = Run(params.chunks(params.pump_crowd_window_ms))
        self.min_chunks = params.chunks(params.pump_crowd_min_ms)

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p = self.params
        buy_orders_z = buy_orders_surge(v, p)
        crowd = (
            buy_orders_z is not None
            and ge(v, "aggr_imbalance_long", p.pump_crowd_imbalance)
            and ctx.drift_bps >= p.pump_drift_bps
            # where the symbol has no volatility yet (or its price never moved), the rise alone is the unit
            and (ctx.drift_z_short is None or ctx.drift_z_short >= p.pump_crowd_drift_z)
        )
        sustained = ctx.sustained_rise(self.crowd, crowd, self.min_chunks, p)
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
                strength((buy_orders_z or 0.0) / p.pump_buy_orders_z * chunks / self.min_chunks),
                evidence,
                f"buy orders {buy_orders_z or 0.0:.0f} σ above the symbol's rate, one-sided, sustained"
                f" ({chunks} of the last {self.crowd.window} chunks)",
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {"pump_crowd": self.crowd.to_state()}

    def load(self, state: Mapping[str, Any]) -> None:
        if "pump_crowd" in state:  # absent before patterns-v14
            self.crowd.load(state["pump_crowd"])
