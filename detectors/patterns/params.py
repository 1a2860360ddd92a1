"""Every pattern detector's parameters in one frozen record, windows in event time.

Windows and minimum durations are milliseconds, turned into whole chunks of the flow features in force
(:meth:`PatternParams.chunks`): a detector that looks back 2 minutes looks back 2 minutes whatever chunk length
the flow features use, and :meth:`PatternParams.for_feed` is the one place the flow chunking and the venue's
session calendar reach the detectors.

>>> p = PatternParams()
>>> p.chunks(p.drift_ms), p.chunks(p.pump_onset_min_ms)
(24, 2)
>>> from detectors.flow import FlowConfig
>>> from tapewatch.feeds import FeedProfiles
>>> fast = p.for_feed(FlowConfig(chunk_ms=1_000, long_chunks=10), FeedProfiles()("binance"))
>>> fast.chunks(fast.drift_ms), fast.long_ms, fast.close_time is None
(120, 10000, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import time

from detectors.flow import FlowConfig
from detectors.patterns.materiality import MaterialityParams
from tapewatch.feeds import FeedProfile, Prints


@dataclass(frozen=True, slots=True)
class PatternParams:
    #: the order-flow chunking (``FlowConfig.chunk_ms``/``long_chunks``): :meth:`for_feed` sets them, so the
    #: detectors' windows always follow the features they read
    chunk_ms: int = 5_000
    long_chunks: int = 5
    #: the venue's prints (:attr:`FeedProfile.prints`, set by :meth:`for_feed`): what a surge is read from
    #: (:func:`detectors.patterns.base.surge_z`)
    prints: Prints | None = "trades"
    # pump and dump: the surge (tells momentum ignition a pump is under way)
    #: the surge's activity against the symbol's baseline (:func:`~detectors.patterns.base.surge_z`), in σ
    pump_surge_z: float = 3.5
    pump_imbalance: float = 0.4
    pump_rush: float = 2.0
    pump_window_ms: int = 120_000
    pump_min_ms: int = 35_000
    #: the price drift (sum of the chunks' ret_bps) over this much time
    drift_ms: int = 120_000
    #: a pump/push chunk needs the drift at least this (bps; ≥ 0: not falling)
    pump_drift_bps: float = 0.0
    #: a surge whose first pump chunk comes within this of a one-sided sweep (a chunk with ``|ret_bps| ≥
    #: ignite_ret_bps`` and same-side ``aggr_imbalance ≥ ignite_imbalance``) is a momentum ignition's
    #: followers, not a pump: a pump's convex ramp starts slowly
    pump_onset_sweep_ms: int = 30_000
    #: the onset: a chunk whose long window has buy orders this far above the symbol's own rate …
    pump_buy_orders_z: float = 4.0
    #: … one-sided by count (a fair coin's z of buy vs sell orders) …
    pump_order_imbalance_z: float = 2.0
    #: … and a rush bigger than the symbol's usual largest rush (many small buys in one millisecond)
    pump_rush_max_z: float = 5.5
    #: hit when onset chunks covering this much time fall within the last ``pump_onset_window_ms``
    pump_onset_min_ms: int = 10_000
    pump_onset_window_ms: int = 20_000
    #: the crowd (:mod:`~detectors.patterns.pump_crowd`): the onset's buy orders and one-sidedness
    #: without a rush, held this long within this window (a momentum ignition's followers buy for 20–60 s)
    pump_crowd_min_ms: int = 60_000
    pump_crowd_window_ms: int = 90_000
    #: … and net buying by volume too (a crowd of small buys against a few large sells is a market absorbing a
    #: seller, not a pump)
    pump_crowd_imbalance: float = 0.2
    #: … and the price follows: the drift over ``drift_ms`` at least this many of the symbol's σ over as long (a
    #: pump buys to lift the price; buying the price does not follow is a seller being absorbed or a patient parent
    #: order). Low, because a convex ramp is flat at first: a higher bar delays those pumps by minutes
    pump_crowd_drift_z: float = 0.5
    #: the surge (:mod:`~detectors.patterns.pump_surge`; feeds without order-level prints): the long window's
    #: activity (on snapshots the volume's z) this far above the symbol's own, net buying by the inferred sides,
    #: the price up this many of the symbol's own units over ``drift_ms``, held as long as the crowd. All four
    #: together: any one of them loosened alone adds few false pumps, all loosened together many
    pump_surge_volume_z: float = 3.5
    pump_surge_imbalance: float = 0.3
    pump_surge_drift_z: float = 1.0
    pump_surge_min_ms: int = 60_000
    pump_surge_window_ms: int = 90_000
    #: the ramp (any feed: snapshots have no rush orders and no sides): the price drifts far beyond the symbol's
    #: own volatility over ``drift_ms`` or ``ramp_ms``, on unusual volume, and the flow is not selling
    ramp_ms: int = 600_000
    pump_ramp_z: float = 3.5
    pump_ramp_volume_z: float = 1.5
    pump_ramp_min_ms: int = 15_000
    pump_ramp_window_ms: int = 120_000
    #: … or over this long: a ramp of +6 % in 30 minutes is under 3.5 σ over any 10 of them
    slow_ramp_ms: int = 1_800_000
    #: … walked, not jumped (:meth:`~detectors.patterns.base.Rise.jumped`): a rise of which one chunk carried this
    #: share or more, and that took less than ``pump_walk_ms`` from half its height to the top, is a sweep and its
    #: followers (momentum ignition), not a pump
    pump_jump_share: float = 0.2
    pump_walk_ms: int = 60_000
    #: the dump (:mod:`~detectors.patterns.pump_dump`): the price falls this far (σ of the symbol's
    #: volatility over ``drift_ms``) on flow that is not buying …
    pump_dump_fall_z: float = 4.0
    #: … within this long of the top of a rise of this many σ of the symbol's volatility over as long …
    pump_dump_rise_z: float = 2.5
    pump_dump_peak_ms: int = 300_000
    #: … that took at least this long from half its height to the top (a sweep jumps, a pump walks) …
    pump_dump_min_rise_ms: int = 90_000
    #: … and the price has given back at least this share of the rise
    pump_dump_share: float = 0.5
    # spoofing / layering: large size appears and vanishes far beyond the book's own churn, with pressure
    #: pressure: the price moves away from the heavy side, or the flow trades on the other side of the layers
    spoof_pressure_imbalance: float = 0.3
    #: a layer displayed over consecutive snapshots that vanished untraded, this many times the typical level
    spoof_layer_rel: float = 6.0
    #: … and the chunk's size cancelled at levels 2–5 stands out against the symbol's own book churn
    #: (``cancel_l25_z``): a market maker's large quotes are cancelled all day long, a spoofer's layers are not
    spoof_cancel_z: float = 3.0
    #: pressure by price: the mid (or last price) moved away from the layer's side by this many of the symbol's
    #: own long-window volatility units
    spoof_move_sigma: float = 0.5
    #: hit when this many chunks of the last ``spoof_window_ms`` saw a layer vanish under pressure (a count of
    #: spoofing cycles, not a duration: one cycle shows in one chunk whatever its length). The window holds two
    #: cycles of a layer resting a minute and a half
    spoof_min_cycles: int = 2
    spoof_window_ms: int = 240_000
    #: … or this many chunks of the window saw such a layer vanish beyond the book's churn, at least one of them
    #: under pressure: pressure is seen one cycle at a time and a 5 s snapshot often misses a
    #: one-tick move; a third cycle says as much as a second push
    spoof_min_layers: int = 3
    # wash trading (proxy)
    wash_window_ms: int = 30_000
    #: hit when this many chunks of the last ``wash_window_ms`` are wash chunks (a count: one burst suffices)
    wash_min_chunks: int = 1
    #: mirror trades: equal prints on alternating sides far above the symbol's own mirror volume …
    wash_mirror_z: float = 7.0
    #: … carrying this share of the window's volume, or far above it whatever the share (busy symbols)
    wash_mirror_share: float = 0.4
    wash_mirror_z_alone: float = 12.0
    #: … and balanced by order count (a pump's many small buys also pair up by chance: one-sided)
    wash_mirror_balance: float = 0.35
    #: … repeated: at least this many mirror trades in the long window (``mirror_trades_long``). Where the
    #: baseline holds almost no mirror volume (a slow symbol trading round lots), one chance pair of equal prints
    #: on opposite sides scores a huge ``mirror_z_long``; a washer prints pair after pair
    wash_mirror_min_trades: float = 3.0
    #: … and the window's mirror share at least this many times the symbol's own (``mirror_vol_share_long``
    #: against ``mirror_vol_share_long - mirror_excess_share_long``): equal prints meet by chance in
    #: proportion to the tape, so a surge of two-sided volume (a closing push, ignition followers) surges its
    #: chance mirrors too, at about the symbol's own share
    wash_mirror_lift: float = 1.5
    #: the pinned-quote path (where the feed's sides are inferred, mirror trades cannot show): a chunk whose long
    #: window traded this many times the 95th percentile of the symbol's own long windows
    #: (``volume_rel_p95_long``: a percentile, not a z-score, because a z of 4 is everyday trading for a symbol
    #: with bursty volume and a rare event for a steady one) …
    wash_pinned_volume_p95: float = 1.5
    #: … spread over at least this many prints' worth (``volume² / Σ size²``: one block print is 1) …
    wash_pinned_prints: float = 3.0
    #: … while level 1 lost at most this share of the traded size (the pair crosses with itself: no depth
    #: consumed), the quote did not move and every print sat within it, and the price is not drifting
    #: (``|drift z|`` below this: a pump or a push moves the price, a wash does not)
    wash_pinned_consumed: float = 0.3
    wash_pinned_drift_z: float = 2.0
    #: … and both sides traded about equally (``|aggr_imbalance_long|`` at most this: one account is the buyer
    #: and the seller; a one-sided flow at a pinned quote is a large order being absorbed)
    wash_pinned_balance: float = 0.3
    #: hit when this many such chunks fall within the last ``wash_pinned_window_ms`` (colluding accounts trade
    #: in repeated bursts; one busy stretch at a pinned quote is ordinary)
    wash_pinned_min_chunks: int = 4
    wash_pinned_window_ms: int = 120_000
    #: … and such chunks are unusual for this symbol: at most this many in the ``wash_pinned_history_ms``
    #: before the window (a deep, busy book trades surges at a pinned quote every day)
    wash_pinned_prior_max: int = 2
    wash_pinned_history_ms: int = 3_600_000
    # marking the close
    close_time: time | None = time(13, 30)
    utc_offset_min: int = 480
    close_window_ms: int = 600_000
    #: the push's activity (:func:`~detectors.patterns.base.surge_z`) in σ (on snapshots also the volume: the
    #: count of snapshots that printed saturates on a busy symbol at 5 s)
    close_surge_z: float = 2.5
    close_imbalance: float = 0.3
    #: push chunks covering ``close_min_ms`` within the last ``close_push_window_ms``: where volume is
    #: heavy-tailed, half-minute surges with some one-sided buying happen every day; a minute's push does not, and
    #: the closing move still finds the shorter pushes at the close
    close_push_window_ms: int = 90_000
    close_min_ms: int = 60_000
    #: the push walks the price up 1–3 % in 3–8 min: the drift over the last ``drift_ms`` is at least
    close_drift_bps: float = 40.0
    #: the closing move (any feed, either direction, no surge needed): tested at the close, the
    #: price's move over each of these horizons ending there (capped by the closing window) …
    close_horizons_ms: tuple[int, ...] = (180_000, 300_000, 480_000, 600_000)
    #: … in units of the symbol's own volatility over as long: a hit at this many
    close_move_z: float = 2.5
    #: no closing alert this long after a pump-and-dump was reported on the symbol: a move into the close then is
    #: the pump's ramp or its dump (a slow ramp runs 30 min), one episode already in an analyst's queue
    close_after_pump_ms: int = 1_800_000
    # momentum ignition
    ignite_ret_bps: float = 35.0
    ignite_imbalance: float = 0.8
    #: a one-sided jump is as often a block order, a liquidity shock or the market's own cascade: the ignition is
    #: confirmed when the price then gives back at least this share of the move (the igniter sells into the
    #: followers) within ``ignite_reversal_ms``
    ignite_reversal_share: float = 0.5
    ignite_reversal_ms: int = 300_000
    #: … and the candidate's activity need only be this far above the symbol's usual (σ): a sweep's volume
    #: is one order among an interval's prints, while the mid moving several spreads shows the levels taken
    ignite_activity_z: float = 1.0
    #: an ignition *ignites*: over the ``ignite_follow_ms`` after the sweep others trade its way, the chunks' mean
    #: activity ``≥ ignite_activity_z`` and mean same-side aggressor imbalance ``≥ ignite_follow_imbalance``
    #: (a large order that walked the book and was given back with nobody following is not one)
    ignite_follow_ms: int = 20_000
    ignite_follow_imbalance: float = 0.3
    #: a sweep or an ignition moves the price more than this many of the chunk's spreads: it takes levels. One
    #: tick is never enough: on a stock whose spread is one tick, 1e4 ln(a / b) of a one-tick step exceeds the
    #: relative spread 2e4 (a - b) / (a + b) for every price, so "more than one spread" passed every step
    sweep_min_spreads: float = 1.5
    # generic bursts
    burst_volume_z: float = 25.0
    burst_ret_bps: float = 150.0
    burst_min_trades: float = 10.0
    # K-means outlier alerts (bar features)
    kmeans_alert_score: float = 0.9999
    #: no price-based alert on an immaterial move, no volume burst on what the time of day always trades
    #: (:mod:`~detectors.patterns.materiality`; :meth:`for_feed` sets the venue's floor)
    materiality: MaterialityParams = field(default_factory=MaterialityParams)

    @property
    def long_ms(self) -> int:
        """The flow features' long window."""
        return self.chunk_ms * self.long_chunks

    def chunks(self, ms: int) -> int:
        """Whole chunks covering ``ms`` (at least one)."""
        return max(1, -(-ms // self.chunk_ms))

    def for_feed(self, flow: FlowConfig, profile: FeedProfile) -> PatternParams:
        """These parameters on a feed: the flow features' chunking, the venue's session calendar (no marking the
        close where the venue never closes) and its materiality floor."""
        return replace(
            self,
            chunk_ms=flow.chunk_ms,
            long_chunks=flow.long_chunks,
            close_time=profile.close_time,
            utc_offset_min=profile.utc_offset_min,
            prints=profile.prints,
            materiality=self.materiality.with_floor(profile.material_bps),
        )
