"""What the order-flow stage computes and emits: the feature catalogue (names, the print-level ones, the labels
alerts cite), the feature-set version, :class:`FlowConfig` and the emitted :class:`FlowChunk`. Every feature is
defined in the package docstring (:mod:`tapewatch.detectors.flow`), one table row each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tapewatch.records import Cadence, Features

if TYPE_CHECKING:
    from tapewatch.settings import Settings

#: the version of the feature set: a chunk carries it, and a consumer refuses chunks of another
FLOW_FEATURE_SET_VERSION: Final = "flow-v10"

CHUNK_FEATURE_NAMES: Final[tuple[str, ...]] = (
    "trades",
    "volume",
    "size_mean",
    "size_std",
    "rush_orders",
    "rush_trades",
    "rush_max",
    "buy_orders",
    "sell_orders",
    "mirror_trades",
    "mirror_volume",
    "buy_volume",
    "sell_volume",
    "aggr_imbalance",
    "alternation",
    "size_repeat",
    "ret_bps",
    "range_bps",
    "spread_bps",
    "book_imb_l1",
    "book_imb_l5",
    "book_updates",
    "depth_added",
    "depth_added_l1",
    "depth_added_l25",
    "depth_removed",
    "depth_removed_l1",
    "depth_removed_l25",
    "cancel",
    "cancel_l1",
    "cancel_l25",
    "level_typical",
    "level_max_rel",
    "trades_z",
    "volume_z",
    "rush_z",
    "cancel_l25_z",
    "ret_sigma_bps",
    "mid_ret_bps",
    "mid_sigma_bps",
    "layer_cancel_rel",
    "layer_side",
    "layer_move_bps",
    "layer_books",
    "layer_level",
)
LONG_FEATURE_NAMES: Final[tuple[str, ...]] = (
    "trades_long",
    "trades_std_long",
    "volume_long",
    "volume_std_long",
    "size_mean_long",
    "size_std_long",
    "rush_orders_long",
    "rush_trades_long",
    "aggr_imbalance_long",
    "alternation_long",
    "size_repeat_long",
    "size_repeat_vol_long",
    "size_mode_share_long",
    "ret_bps_long",
    "range_bps_long",
    "spread_bps_long",
    "book_imb_l1_long",
    "book_imb_l5_long",
    "depth_added_l25_long",
    "cancel_long",
    "cancel_l1_long",
    "cancel_l25_long",
    "level_max_rel_long",
    "trades_z_long",
    "volume_z_long",
    "volume_rel_p95_long",
    "rush_z_long",
    "rush_max_long",
    "rush_max_z_long",
    "order_imbalance_long",
    "order_imbalance_z_long",
    "buy_orders_z_long",
    "mirror_vol_share_long",
    "mirror_z_long",
    "mirror_trades_long",
    "mirror_excess_share_long",
    "size_mode_vol_share_long",
    "inferred_share_long",
    "level_max_z_long",
    "consumed_share_long",
    "mid_ret_bps_long",
)
FLOW_FEATURE_NAMES: Final[tuple[str, ...]] = CHUNK_FEATURE_NAMES + LONG_FEATURE_NAMES
_PRINT_LEVEL_PREFIXES: Final = (
    "rush_",
    "buy_orders",
    "sell_orders",
    "mirror_",
    "alternation",
    "size_repeat",
    "size_mode_",
    "order_imbalance",
)
#: what only a feed that prints every trade can show — same-millisecond rush orders, aggressive orders (a run
#: of fills), alternation and size repetition between consecutive prints. A snapshot feed
#: (:attr:`~tapewatch.detectors.flow.FlowState.prints`) aggregates the prints of each interval into one, so these are
#: ``None`` there, never a misleading zero; its one print per snapshot still carries the interval's volume, price
#: and (inferred) side, and ``trades`` counts the snapshots that printed. Every feature of these families is one:
#: rush orders, aggressive orders, mirror trades, alternation, size repetition and the modal size
PRINT_LEVEL_FEATURE_NAMES: Final[frozenset[str]] = frozenset(
    name for name in FLOW_FEATURE_NAMES if name.startswith(_PRINT_LEVEL_PREFIXES)
)
#: a readable label and the unit of each feature the pattern detectors cite in an alert's evidence (the package's
#: table, for an analyst: :mod:`tapewatch.detectors.evidence`); a detector cites one through
#: :func:`tapewatch.detectors.patterns.base.cited`
FEATURE_LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "trades_z": ("trade count vs the symbol's baseline, this chunk", "σ"),
    "trades_z_long": ("trade count vs the symbol's baseline, long window", "σ"),
    "volume_z": ("volume vs the symbol's baseline, this chunk", "σ"),
    "volume_z_long": ("volume vs the symbol's baseline, long window", "σ"),
    "volume_long": ("volume traded, long window", "shares"),
    "volume_rel_p95_long": ("volume / the symbol's 95th-percentile long window", "×"),
    "buy_orders_z_long": ("aggressive buy orders vs the symbol's rate, long window", "σ"),
    "order_imbalance_z_long": ("buy vs sell orders by count, a fair coin's z, long window", "σ"),
    "order_imbalance_long": ("order imbalance by count, (buy − sell) / all, long window", "−1…1"),
    "rush_max_long": ("most trades in one millisecond, long window", "trades"),
    "rush_max_z_long": ("largest rush vs the symbol's usual largest, long window", "σ"),
    "aggr_imbalance": ("aggressor volume imbalance, (buy − sell) / all, this chunk", "−1…1"),
    "aggr_imbalance_long": ("aggressor volume imbalance, (buy − sell) / all, long window", "−1…1"),
    "inferred_share_long": ("share of trades whose side was inferred, long window", "share"),
    "ret_bps": ("price return, this chunk", "bps"),
    "ret_bps_long": ("price return, long window", "bps"),
    "mid_ret_bps": ("mid-price return, this chunk", "bps"),
    "mid_ret_bps_long": ("mid-price return, long window", "bps"),
    "ret_sigma_bps": ("the symbol's usual chunk return (σ of its baseline)", "bps"),
    "range_bps": ("price range (high / low), this chunk", "bps"),
    "range_bps_long": ("price range (high / low), long window", "bps"),
    "spread_bps": ("mean bid-ask spread, this chunk", "bps"),
    "spread_bps_long": ("mean bid-ask spread, long window", "bps"),
    "consumed_share_long": ("level-1 size removed / size traded, long window", "share"),
    "mirror_trades": ("mirror trades (same size, other side), this chunk", "trades"),
    "mirror_trades_long": ("mirror trades (same size, other side), long window", "trades"),
    "mirror_z_long": ("mirror-trade volume vs the symbol's baseline, long window", "σ"),
    "mirror_vol_share_long": ("mirror trades' share of the volume, long window", "share"),
    "mirror_excess_share_long": ("mirror share above the symbol's own, long window", "share"),
    "alternation_long": ("share of consecutive sided trades that switch side, long window", "share"),
    "size_mode_vol_share_long": ("volume share of the size carrying the most volume, long window", "share"),
    "cancel_l25": ("size cancelled at levels 2–5, this chunk", "shares"),
    "cancel_l25_z": ("levels 2–5 cancellations vs the book's own churn, this chunk", "σ"),
    "level_max_rel_long": ("largest level / the typical level size, long window", "×"),
    "level_max_z_long": ("largest level vs the symbol's usual largest, long window", "σ"),
    "book_imb_l5_long": ("book size imbalance, levels 1–5, (bid − ask) / all, long window", "−1…1"),
    "layer_cancel_rel": ("vanished layer's size / the typical level size", "×"),
    "layer_side": ("the layer's side: +1 bid, −1 ask", ""),
    "layer_move_bps": ("the mid's move away from the layer's side over its life", "bps"),
    "layer_books": ("book snapshots the layer showed in", "snapshots"),
    "layer_level": ("the level (2–5) the layer last showed at", "level"),
}


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """Chunking, windows and thresholds. ``grace_ms``/``idle_ms`` may change across a restart; the others are
    baked into the state (:meth:`~tapewatch.detectors.flow.FlowState.from_state` refuses a state made with different
    ones).

    >>> from tapewatch.detectors.flow import FlowState
    >>> config = FlowConfig(chunk_ms=1_000, long_chunks=25)  # 1 s chunks, a 25 s long window
    >>> config.fingerprint()  # what a saved state must have been made with
    [1000, 25, 720, 60, 3, 5000]
    >>> FlowState.from_state(FlowState("2330", config).to_state(), FlowConfig())
    Traceback (most recent call last):
    ...
    ValueError: flow state was made with config [1000, 25, 720, 60, 3, 5000], not [5000, 5, 720, 60, 3, 5000]
    >>> FlowConfig(chunk_ms=500, rush_min_trades=1)
    Traceback (most recent call last):
    ...
    ValueError: FlowConfig.rush_min_trades must be ≥ 2
    """

    #: base chunk length
    chunk_ms: int = 5_000
    #: base chunks in a long chunk (5 × 5 s = 25 s)
    long_chunks: int = 5
    #: base chunks in the rolling baseline of the z-scores and the typical level size (720 × 5 s = 60 min)
    baseline_chunks: int = 720
    #: baseline chunks needed before z-scores are given (60 × 5 s = 5 min)
    baseline_min_chunks: int = 60
    #: how far behind the watermark a record may still arrive
    grace_ms: int = 2_000
    #: a book more than this after the previous one is not compared with it (depth changes start afresh)
    idle_ms: int = 60_000
    #: trades in one millisecond that make a rush order
    rush_min_trades: int = 3
    #: a trade mirrors the previous one (same size, opposite aggressor) only if at most this much later
    mirror_ms: int = 5_000

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"FlowConfig.{name} must be an integer, got {value!r}")
        if self.chunk_ms < 1:
            raise ValueError("FlowConfig.chunk_ms must be ≥ 1")
        if self.long_chunks < 1:
            raise ValueError("FlowConfig.long_chunks must be ≥ 1")
        if self.baseline_chunks < 2:
            raise ValueError("FlowConfig.baseline_chunks must be ≥ 2")
        if not 1 <= self.baseline_min_chunks <= self.baseline_chunks:
            raise ValueError("FlowConfig.baseline_min_chunks must be within 1..baseline_chunks")
        if self.grace_ms < 0:
            raise ValueError("FlowConfig.grace_ms must be ≥ 0")
        if self.idle_ms < 1:
            raise ValueError("FlowConfig.idle_ms must be ≥ 1")
        if self.rush_min_trades < 2:
            raise ValueError("FlowConfig.rush_min_trades must be ≥ 2")
        if self.mirror_ms < 0:
            raise ValueError("FlowConfig.mirror_ms must be ≥ 0")

    @classmethod
    def from_settings(cls, settings: Settings) -> FlowConfig:
        """The ``TAPEWATCH_FLOW_*`` chunking and windows, with the bars' grace (``TAPEWATCH_STREAM_GRACE_MS``): the
        stream worker and its offline twins build their config here, so both compute the same features."""
        flow = settings.flow
        return cls(
            chunk_ms=flow.chunk_ms,
            long_chunks=flow.long_chunks,
            baseline_chunks=flow.baseline_chunks,
            baseline_min_chunks=flow.baseline_min_chunks,
            grace_ms=settings.stream.grace_ms,
            idle_ms=flow.idle_ms,
            rush_min_trades=flow.rush_min_trades,
            mirror_ms=flow.mirror_ms,
        )

    def fingerprint(self) -> list[int]:
        """The settings the state depends on."""
        return [
            self.chunk_ms,
            self.long_chunks,
            self.baseline_chunks,
            self.baseline_min_chunks,
            self.rush_min_trades,
            self.mirror_ms,
        ]


@dataclass(frozen=True, slots=True)
class FlowChunk:
    """The features of one closed base chunk of one symbol; ``ts`` is the chunk end (exclusive)."""

    symbol: str
    start: int
    end: int
    values: dict[str, float | None]

    @property
    def ts(self) -> int:
        return self.end

    def to_features(self, venue: str) -> Features:
        """The wire record (``features`` topic, cadence ``fast``)."""
        return Features(
            symbol=self.symbol,
            venue=venue,
            ts=self.end,
            values=self.values,
            version=FLOW_FEATURE_SET_VERSION,
            cadence=Cadence.FAST,
        )
