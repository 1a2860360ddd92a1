"""Pump-and-dump, first path: the *onset* of the ramp on a feed that prints every trade with its side.

From the flow features that compare the long window with the symbol's own last hour (La Morgia et al.
2020: rush orders and z-scores against a rolling window): an *onset chunk* has aggressive **buy orders** far
above the symbol's rate (``buy_orders_z_long ≥ pump_buy_orders_z``; orders, not trades: one order's fills count
once), one-sided **by count** (``order_imbalance_z_long ≥ pump_order_imbalance_z``, a fair coin's z of buy vs
sell orders — a few large sells do not mask a crowd of small buys, which volume imbalance lets them do) and a
**rush** far bigger than the symbol's usual largest one (``rush_max_z_long ≥ pump_rush_max_z``: many small
buys in one millisecond). Hit when onset chunks covering ``pump_onset_min_ms`` fall within the last
``pump_onset_window_ms``, outside the closing window, and the run did not start within
``pump_onset_sweep_ms`` of a sweep (:mod:`detectors.patterns.context`): a surge that opens with a sweep is a
momentum ignition's followers. The price barely matters: the ramp is convex and barely moves in its first
minute, so an onset chunk asks only that it rose at all over the drift window (``drift_bps > pump_drift_bps`` by
more than :data:`~detectors.patterns.base.RISE_EPSILON_BPS`): a crowd of buy orders with outsized ones that
leaves the price exactly where it was two minutes ago is liquidity absorbing it, not a pump lifting it (on an
order-book market every large market order walks the book in one millisecond and looks like a rush). The cost: a
pump whose price first falls and stays flat is seen once it rises. The alert fires at first evidence and escalates
(same alert id) as the score grows.

The *surge* (activity ``≥ pump_surge_z``, :func:`~detectors.patterns.base.surge_z`; ``aggr_imbalance_long ≥
pump_imbalance``, a drift ``≥ pump_drift_bps``, ``rush_orders_long ≥ pump_rush``; version 1's pump rule, a
minute or more late) no longer alerts; it tells momentum ignition that a pump is under way
(:attr:`ChunkContext.surge_chunks`). A snapshot feed shows neither rush orders nor buy orders (they are null
there): its pumps are the surge's (:mod:`detectors.patterns.pump_surge`), the ramp's
(:mod:`detectors.patterns.pump_ramp`) and the dump's.

Evidence: ``onset_chunks``, ``buy_orders_z_long``, ``order_imbalance_z_long``, ``rush_max_long``,
``rush_max_z_long``, ``trades_z_long``, ``aggr_imbalance_long``, ``ret_bps_long``, ``drift_bps``.

>>> from detectors.patterns.context import TapeContext
>>> from detectors.patterns.params import PatternParams
>>> params = PatternParams(close_time=None)
>>> tape, pump = TapeContext(params), PumpOnset(params)
>>> onset = {"buy_orders_z_long": 7.0, "order_imbalance_z_long": 3.5, "rush_max_z_long": 8.0, "ret_bps": 1.0}
>>> [len(pump.on_chunk(tape.on_chunk(ts, onset), onset)) for ts in (5_000, 10_000)]
[0, 1]

The same buying with the price where it was is absorbed, not a pump:

>>> tape, pump = TapeContext(params), PumpOnset(params)
>>> absorbed = {**onset, "ret_bps": 0.0}
>>> [len(pump.on_chunk(tape.on_chunk(ts, absorbed), absorbed)) for ts in (5_000, 10_000)]
[0, 0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from detectors.alerting import Hit
from detectors.evidence import Key, Rule, bar
from detectors.patterns.base import (
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
from detectors.patterns.params import PatternParams
from tapewatch.records import AlertKind


class PumpOnset:
    """State keys ``pump`` (surge chunks) and ``onset`` (onset chunks); sets the context's surge/onset counts."""

    __slots__ = ("min_onsets", "onset", "params", "surge")

    #: the hit's evidence (:mod:`detectors.evidence`); the drift must have risen at all (by more than
    #: :data:`~detectors.patterns.base.RISE_EPSILON_BPS`). The surge does not gate the hit: its values are context
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.PUMP_AND_DUMP,
            "pump onset",
            "onset_chunks",
            {
                "onset_chunks": Key(
                    "onset chunks in the onset window", "chunks", bar("≥", "pump_onset_min_ms", chunks=True)
                ),
                "buy_orders_z_long": cited("buy_orders_z_long", bar("≥", "pump_buy_orders_z")),
                "order_imbalance_z_long": cited("order_imbalance_z_long", bar("≥", "pump_order_imbalance_z")),
                "rush_max_z_long": cited("rush_max_z_long", bar("≥", "pump_rush_max_z")),
                "drift_bps": cited("drift_bps", bar(">", "pump_drift_bps")),
                **context("rush_max_long", "trades_z_long", "aggr_imbalance_long", "ret_bps_long"),
            },
        ),
    )

    def __init__(self, params: PatternParams) -> None:
        self.params = params
        self.surge = Run(params.chunks(params.pump_window_ms))
        self.onset = Run(params.chunks(params.pump_onset_window_ms))
        self.min_onsets = params.chunks(params.pump_onset_min_ms)

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p = self.params
        surge = (
            (activity := surge_z(v, p.prints)) is not None
            and activity >= p.pump_surge_z
            and ge(v, "aggr_imbalance_long", p.pump_imbalance)
            and ctx.drift_bps >= p.pump_drift_bps
            and ge(v, "rush_orders_long", p.pump_rush)
        )
        ctx.surge_chunks = self.surge.push(ctx.start, surge, p.chunk_ms)
        buy_orders_z = buy_orders_surge(v, p)
        onset = (
            buy_orders_z is not None
            and ge(v, "rush_max_z_long", p.pump_rush_max_z)
            and ctx.drift_bps > p.pump_drift_bps + RISE_EPSILON_BPS
        )
        onsets = ctx.onset_chunks = self.onset.push(ctx.start, onset, p.chunk_ms)
        first = self.onset.first_start
        if not onset or onsets < self.min_onsets or first is None or ctx.in_close:
            return []
        if ctx.near_sweep(first, p.pump_onset_sweep_ms):
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
                strength((buy_orders_z or 0.0) / p.pump_buy_orders_z * onsets / self.min_onsets),
                evidence,
                f"buy orders {buy_orders_z or 0.0:.0f} σ above the symbol's rate with outsized rush orders"
                f" ({onsets} of the last {self.onset.window} chunks)",
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {"pump": self.surge.to_state(), "onset": self.onset.to_state()}

    def load(self, state: Mapping[str, Any]) -> None:
        self.surge.load(state["pump"])
        if "onset" in state:  # absent before version 3
            self.onset.load(state["onset"])
