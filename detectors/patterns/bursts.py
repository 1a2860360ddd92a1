"""Generic outliers: a volume burst or a price burst over the long window.

``volume_z_long ≥ bursts.volume_z`` (a volume burst) / ``|ret_bps_long| ≥ bursts.ret_bps`` (a price burst),
each with ``trades_long ≥ bursts.min_trades`` where the trades are counted (1-minute bars may not count them).
Stateless. Evidence: the z-score / the return.

The materiality gate (:mod:`~tapewatch.detectors.patterns.materiality`) holds a burst to the symbol's own records (the
largest burst of its kind in its last sessions and today) and keeps it medium at most.

>>> from tapewatch.detectors.patterns.context import TapeContext
>>> from tapewatch.detectors.patterns.params import TapeParams
>>> params = TapeParams(close_time=None)
>>> burst = {"trades_long": 40.0, "volume_z_long": 30.0, "ret_bps_long": 200.0}
>>> [h.kind.value for h in Bursts(params, BurstsParams()).on_chunk(TapeContext(params).on_chunk(5_000, burst), burst)]
['volume_burst', 'price_burst']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Rule, bound
from tapewatch.detectors.patterns.base import ChunkContext, Values, cited, context, get, strength
from tapewatch.detectors.patterns.checks import non_negative
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: params.py composes this module's record
    from tapewatch.detectors.patterns.params import TapeParams


@dataclass(frozen=True, slots=True)
class BurstsParams:
    """Generic outliers over the long window."""

    GROUP: ClassVar[str] = "bursts"

    #: a volume burst: the long window's volume this far above the symbol's last hour (σ)
    volume_z: float = 25.0
    #: a price burst: the long window's return at least this (bps, either direction)
    ret_bps: float = 150.0
    #: either needs at least this many trades in the long window (a few prints on a quiet symbol are not a burst)
    min_trades: float = 10.0

    def __post_init__(self) -> None:
        non_negative(self, "volume_z", "ret_bps", "min_trades")


class Bursts:
    """No state."""

    __slots__ = ("params", "tape")

    PARAMS: ClassVar[type[BurstsParams]] = BurstsParams
    NEEDS: ClassVar[frozenset[str]] = frozenset()

    #: the hits' evidence (:mod:`tapewatch.detectors.evidence`), one kind each; ``trades_long ≥ bursts.min_trades`` is
    #: not in it
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.VOLUME_BURST,
            "volume burst",
            None,
            {"volume_z_long": cited("volume_z_long", bound("≥", "bursts.volume_z")), **context("volume_long")},
        ),
        Rule(
            AlertKind.PRICE_BURST,
            "price burst",
            None,
            {"ret_bps_long": cited("ret_bps_long", bound("|x| ≥", "bursts.ret_bps")), **context("range_bps_long")},
        ),
    )

    def __init__(self, tape: TapeParams, params: BurstsParams) -> None:
        self.tape, self.params = tape, params

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p = self.params
        trades = get(v, "trades_long")  # None: 1-minute bars that do not count their trades, judged by size alone
        if trades is not None and trades < p.min_trades:
            return []
        hits = []
        window_start = ctx.ts - self.tape.long_ms
        volume_z = get(v, "volume_z_long")
        if volume_z is not None and volume_z >= p.volume_z:
            hits.append(
                ctx.hit(
                    AlertKind.VOLUME_BURST,
                    window_start,
                    strength(volume_z / p.volume_z),
                    {"volume_z_long": volume_z, "volume_long": get(v, "volume_long")},
                    f"volume {volume_z:.0f} σ above the last hour's",
                )
            )
        ret_long = get(v, "ret_bps_long")
        if ret_long is not None and abs(ret_long) >= p.ret_bps:
            hits.append(
                ctx.hit(
                    AlertKind.PRICE_BURST,
                    window_start,
                    strength(abs(ret_long) / p.ret_bps),
                    {"ret_bps_long": ret_long, "range_bps_long": get(v, "range_bps_long")},
                    f"price moved {ret_long:+.0f} bps in {self.tape.long_ms // 1000} s",
                )
            )
        return hits

    def to_state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: BurstsParams) -> Bursts:
        return cls(tape, params)  # stateless
