"""Wash trading — a *proxy from anonymous data*.

The feed does not say who traded, so the detector sees only the footprint of one trader crossing with
himself: *mirror trades* (flow-v2: a print of the same size as the previous one, on the other side, within
``FlowConfig.mirror_ms``). A *wash chunk*: the long window's mirror volume far above the symbol's own
(``mirror_z_long ≥ wash_mirror_z`` with ``mirror_vol_share_long ≥ wash_mirror_share`` of the volume, or
``mirror_z_long ≥ wash_mirror_z_alone`` whatever the share: in a busy tape other prints dilute it) and
balanced by order count (``|order_imbalance_long| ≤ wash_mirror_balance``: a surge of small one-sided
orders, as in a pump, pairs up by chance). Hit when ``wash_min_chunks`` chunks of the last ``wash_window_ms`` are wash
chunks. Only where the feed gives the sides (``inferred_share_long ≤ 0.5``): inferred sides
alternate at every bid-ask bounce. (Version 1's alternation/repeated-size/two-price-tape rules fitted the
tuning days and not the held-out ones: precision 0.62.)

Evidence: ``wash_chunks``, ``mirror_z_long``, ``mirror_vol_share_long``, ``mirror_trades``,
``order_imbalance_long``, ``alternation_long``, ``size_mode_vol_share_long``, ``volume_z_long``,
``ret_bps_long``.

>>> from detectors.patterns.context import TapeContext
>>> from detectors.patterns.params import PatternParams
>>> params = PatternParams(close_time=None)
>>> tape, wash = TapeContext(params), WashTrading(params)
>>> burst = {"mirror_z_long": 9.0, "mirror_vol_share_long": 0.6, "order_imbalance_long": 0.0}
>>> [h.kind.value for h in wash.on_chunk(tape.on_chunk(5_000, burst), burst)]
['wash_trading']
>>> wash.on_chunk(tape.on_chunk(10_000, {**burst, "inferred_share_long": 1.0}), {**burst, "inferred_share_long": 1.0})
[]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detectors.alerting import Hit
from detectors.patterns.base import ChunkContext, Run, Values, ge, get, strength
from detectors.patterns.params import PatternParams
from tapewatch.records import AlertKind

_EVIDENCE = (
    "mirror_z_long",
    "mirror_vol_share_long",
    "mirror_trades",
    "order_imbalance_long",
    "alternation_long",
    "size_mode_vol_share_long",
    "volume_z_long",
    "ret_bps_long",
)


class WashTrading:
    """State key ``wash``."""

    __slots__ = ("min_washes", "params", "washes")

    def __init__(self, params: PatternParams) -> None:
        self.params = params
        self.washes = Run(params.chunks(params.wash_window_ms))
        self.min_washes = params.wash_min_chunks

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p = self.params
        mirror_z = get(v, "mirror_z_long")
        balance = get(v, "order_imbalance_long")
        wash = (
            (get(v, "inferred_share_long") or 0.0) <= 0.5  # mirror trades need the feed's own sides
            and mirror_z is not None
            and balance is not None
            and abs(balance) <= p.wash_mirror_balance
            and (
                mirror_z >= p.wash_mirror_z_alone
                or (mirror_z >= p.wash_mirror_z and ge(v, "mirror_vol_share_long", p.wash_mirror_share))
            )
        )
        washes = self.washes.push(ctx.start, wash, p.chunk_ms)
        first = self.washes.first_start
        if not wash or washes < self.min_washes or first is None:
            return []
        return [
            ctx.hit(
                AlertKind.WASH_TRADING,
                first,
                strength((mirror_z or 0.0) / p.wash_mirror_z * washes / self.min_washes),
                {"wash_chunks": washes, **{name: get(v, name) for name in _EVIDENCE}},
                "alternating buy/sell prints of one repeated size (wash-trading proxy: the feed is anonymous)",
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {"wash": self.washes.to_state()}

    def load(self, state: Mapping[str, Any]) -> None:
        self.washes.load(state["wash"])
