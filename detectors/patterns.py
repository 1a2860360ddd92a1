"""Manipulation pattern detectors on the fast order-flow features, and the per-symbol detector the stream runs.

Every detector reads one closed flow chunk at a time (:class:`detectors.flow.FlowChunk` values: the 5 s base
chunk and the 25 s long chunk ending with it) and keeps O(1) state: a short ring of per-chunk flags. A detector
*hits* when its rule holds; the hit's window starts at the first flagged chunk of the current run, so merged
hits of one episode share their first window start and the alert id (:mod:`detectors.alerting`) is stable.

Rules (parameters in :class:`PatternParams`; "×typ" = × ``level_typical``, the symbol's typical level size):

* **pump_and_dump** — the *onset* of the ramp, from the flow-v2 features that compare the last 25 s with the
  symbol's own last hour (La Morgia et al. 2020: rush orders and z-scores against a rolling window): an *onset
  chunk* has aggressive **buy orders** far above the symbol's rate (``buy_orders_z_long ≥
  pump_buy_orders_z``; orders, not trades: one order's fills count once), one-sided **by count**
  (``order_imbalance_z_long ≥ pump_order_imbalance_z``, a fair coin's z of buy vs sell orders — a few large
  sells do not mask a crowd of small buys, which volume imbalance lets them do) and a **rush** far bigger than
  the symbol's usual largest one (``rush_max_z_long ≥ pump_rush_max_z``: many small buys in one millisecond).
  Hit when ``pump_onset_min_chunks`` of the last ``pump_onset_window`` chunks are onset chunks, outside the
  closing window, and the run did not start within ``pump_onset_sweep_ms`` of a *sweep* (a chunk moving the
  price ``≥ ignite_ret_bps`` and more than one spread, same-side imbalance ``≥ ignite_imbalance``, 25 s
  return agreeing): a surge that opens with a sweep is a momentum ignition's followers. The price is not
  used: the ramp is convex and barely moves in its first minute. The alert fires at first evidence and
  escalates (same alert_id) as the score grows. Evidence: ``onset_chunks``, ``buy_orders_z_long``,
  ``order_imbalance_z_long``, ``rush_max_long``, ``rush_max_z_long``, ``trades_z_long``,
  ``aggr_imbalance_long``, ``ret_bps_long``, ``drift_bps``. (Version 1 alerted on a *sustained surge* —
  ``pump_min_chunks`` of ``pump_window`` chunks with ``trades_z_long ≥ pump_trades_z``, ``aggr_imbalance_long
  ≥ pump_imbalance``, a drift ``≥ pump_drift_bps`` and ``rush_orders_long ≥ pump_rush`` — a minute or more
  late; that surge now only tells momentum ignition that a pump is under way.)
* **pump_and_dump**, second path (any feed, patterns-v3) — the *ramp*: a snapshot feed has no rush orders and
  no sides, so a *ramp chunk* has the mid (the last price where there are no books) drifting ``≥ pump_ramp_z``
  of the symbol's own volatility (``mid_sigma_bps``/``ret_sigma_bps``, the baseline std of a chunk's return,
  scaled by √chunks) over the last 2 minutes or over ``ramp_chunks`` (10 minutes: slow ramps), on volume
  ``volume_z_long ≥ pump_ramp_volume_z`` and with flow that is not net selling; hit when
  ``pump_ramp_min_chunks`` of the last ``pump_ramp_window`` chunks are ramp chunks, not next to a sweep.
  Evidence: ``ramp_chunks``, ``drift_z``, ``drift_bps``, ``ret_sigma_bps``, ``volume_z_long``,
  ``aggr_imbalance_long``, ``inferred_share_long``.
* **spoofing** (layering, patterns-v3) — a *layer* (a level 2–5 of ``≥ 4×`` the book's running mean level,
  shown over consecutive snapshots: :mod:`detectors.layers`) vanished without trading, ``layer_cancel_rel ≥
  spoof_layer_rel`` typical levels, *under pressure*: the mid (or the last price) moved away from the layer's
  side by ``≥ spoof_move_sigma`` of the symbol's own 25-second volatility, or — where the feed tells the
  sides — the flow traded on the other side (``aggr_imbalance_long`` towards the layer's side ``≥
  spoof_pressure_imbalance``: the spoofer's genuine orders being filled); hit when ``spoof_min_chunks`` of the
  last ``spoof_window`` chunks saw that (spoofing cycles repeat; a single vanished layer with a drift the
  right way happens by chance). Churn alone never qualifies: a size that jumps and falls with every snapshot
  is not shown twice at one price. (patterns-v2 compared the vanished size with the typical level and asked
  for no persistence and no pressure: on a book whose sizes move every snapshot it fired hundreds of times a
  day.) Evidence: ``layer_cancel_rel``, ``layer_side``, ``cycles``, ``cancel_l25``, ``cancel_rel``,
  ``cancel_l25_z``, ``level_max_rel_long``, ``level_max_z_long``, ``price_moved_away``,
  ``flow_on_other_side``.
* **wash_trading** — a *proxy from anonymous data*: the feed does not say who traded, so the detector sees
  only the footprint of one trader crossing with himself — *mirror trades* (flow-v2: a print of the same size
  as the previous one, on the other side, within ``FlowConfig.mirror_ms``), of at least the symbol's mean
  trade size. A *wash chunk*: the 25 s window's large mirror volume far above the symbol's own
  (``mirror_z_long ≥ wash_mirror_z`` with ``mirror_vol_share_long ≥ wash_mirror_share`` of the volume, or
  ``mirror_z_long ≥ wash_mirror_z_alone`` whatever the share: in a busy tape other prints dilute it) and
  balanced by order count (``|order_imbalance_long| ≤ wash_mirror_balance``: a surge of small one-sided
  orders, as in a pump, pairs up by chance). Hit when ``wash_min_chunks`` of the last ``wash_window`` chunks
  are wash chunks. Evidence: ``mirror_z_long``, ``mirror_vol_share_long``, ``mirror_trades``,
  ``order_imbalance_long``, ``alternation_long``, ``size_mode_vol_share_long``, ``volume_z_long``,
  ``ret_bps_long``. Only where the feed gives the sides (``inferred_share_long ≤ 0.5``): inferred sides
  alternate at every bid-ask bounce. (Version 1's alternation/repeated-size/two-price-tape rules fitted the
  tuning days and not the held-out ones: precision 0.62.)
* **marking_the_close** — inside the last ``close_window_ms`` before the session close (``close_time`` local,
  ``utc_offset_min``; ``None`` disables it, e.g. for 24 h crypto; the chunk starting at the close counts): a
  *push chunk* with ``trades_z_long ≥ close_trades_z``, ``aggr_imbalance_long ≥ close_imbalance`` and a drift
  over the last 2 min ``≥ close_drift_bps`` (the push walks the price up 1–3 % in 3–8 min); hit when
  ``close_min_chunks`` of the last ``close_window_chunks`` are push chunks. Evidence: ``ms_to_close``,
  ``trades_z_long``, ``aggr_imbalance_long``, ``ret_bps_long``, ``drift_bps``.
* **momentum_ignition** — an *ignition chunk*: a one-sided sweep, ``|ret_bps| ≥ ignite_ret_bps``, aggressor
  imbalance of the same sign ``≥ ignite_imbalance`` and ``trades_z ≥ ignite_trades_z``, while no pump is
  under way (no onset chunk and fewer than ``pump_min_chunks // 2`` surge chunks in the window). Evidence: ``ret_bps``,
  ``aggr_imbalance``, ``trades_z``, ``range_bps``.
* **volume_burst** / **price_burst** — generic outliers: ``volume_z_long ≥ burst_volume_z`` /
  ``|ret_bps_long| ≥ burst_ret_bps`` with ``trades_long ≥ burst_min_trades``. Evidence: the z-score / return.

Tuned on simulator seeds 1–5 (plus seeds 1–5 with a raised marking-the-close rate, for more closing pushes);
validated on seeds never tuned on.

Hit scores are in [0, 1] and grow with how far the evidence exceeds the rule's bar (see ``_strength``); the
alert policy maps them to severity.

:class:`SymbolDetector` bundles, per symbol, the flow patterns, the K-means scorer of the 1-minute bar
features and the alert policy. Each alert kind is driven by exactly one cadence (K-means outliers by bar
features, every pattern by flow features), so however the two feature streams interleave the alerts are the
same: the detector is a pure function of each stream's ordered records.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import time
from typing import Any, Final

from detectors.alerting import AlertPolicy, Hit, PolicyParams
from detectors.flow import FLOW_FEATURE_SET_VERSION, FlowConfig
from detectors.kmeans import KMeansModel
from tapewatch.feeds import FeedProfile
from tapewatch.records import Alert, AlertKind, Score

PATTERNS_VERSION: Final = "patterns-v3"
STATE_VERSION: Final = 4
#: states this version can load (version 1 lacks the drift and sweep rings, version 2 the onset ring: they
#: restart empty)
LOADABLE_STATE_VERSIONS: Final = (1, 2, 3, 4)
DAY_MS: Final = 86_400_000
Values = Mapping[str, float | None]
#: ``hit(kind, window_start, score, evidence, message)`` inside :meth:`FlowPatterns.on_chunk`
_HitFn = Callable[[AlertKind, int, float, dict[str, Any], str], None]


@dataclass(frozen=True, slots=True)
class PatternParams:
    #: the order-flow chunking (``FlowConfig.chunk_ms``/``long_chunks``): :meth:`for_feed` sets them, so the
    #: detectors' windows always follow the features they read
    chunk_ms: int = 5_000
    long_chunks: int = 5
    # pump and dump
    pump_trades_z: float = 3.5
    pump_imbalance: float = 0.4
    pump_rush: float = 2.0
    pump_window: int = 24
    pump_min_chunks: int = 7
    #: chunks of the price drift (sum of the chunks' ret_bps): 24 × 5 s = the last 2 minutes
    drift_chunks: int = 24
    #: a pump/push chunk needs the drift over the last ``drift_chunks`` at least this (bps; ≥ 0: not falling)
    pump_drift_bps: float = 0.0
    #: a surge whose first pump chunk comes within this of a one-sided sweep (a chunk with ``|ret_bps| ≥
    #: ignite_ret_bps`` and same-side ``aggr_imbalance ≥ ignite_imbalance``) is a momentum ignition's
    #: followers, not a pump: a pump's convex ramp starts slowly
    pump_onset_sweep_ms: int = 30_000
    #: the onset (flow-v2): a chunk whose 25 s window has buy orders this far above the symbol's own rate …
    pump_buy_orders_z: float = 4.0
    #: … one-sided by count (a fair coin's z of buy vs sell orders) …
    pump_order_imbalance_z: float = 2.0
    #: … and a rush bigger than the symbol's usual largest rush (many small buys in one millisecond)
    pump_rush_max_z: float = 5.5
    #: hit when this many of the last ``pump_onset_window`` chunks are onset chunks
    pump_onset_min_chunks: int = 2
    pump_onset_window: int = 4
    #: the ramp (any feed: snapshots have no rush orders and no sides): the price drifts far beyond the symbol's
    #: own volatility (``ret_sigma_bps``) over ``drift_chunks`` or ``ramp_chunks``, on unusual volume, and the
    #: flow is not selling; hit when ``pump_ramp_min_chunks`` of the last ``pump_ramp_window`` chunks are ramps
    ramp_chunks: int = 120
    pump_ramp_z: float = 4.0
    pump_ramp_volume_z: float = 3.0
    pump_ramp_min_chunks: int = 6
    pump_ramp_window: int = 24
    # spoofing / layering: large size appears and vanishes far beyond the book's own churn, with pressure
    #: pressure: the price moves away from the heavy side, or the flow trades on the other side of the layers
    spoof_pressure_imbalance: float = 0.3
    #: a layer displayed over consecutive snapshots that vanished untraded, this many times the typical level
    spoof_layer_rel: float = 6.0
    #: pressure by price: the mid (or last price) moved away from the layer's side by this many of the symbol's
    #: own 25-second volatility units
    spoof_move_sigma: float = 0.5
    #: hit when this many of the last ``spoof_window`` chunks saw a layer vanish under pressure
    spoof_min_chunks: int = 2
    spoof_window: int = 24
    # wash trading (proxy)
    wash_window: int = 6
    wash_min_chunks: int = 1
    #: mirror trades (flow-v2): equal prints on alternating sides far above the symbol's own mirror volume …
    wash_mirror_z: float = 7.0
    #: … carrying this share of the window's volume, or far above it whatever the share (busy symbols)
    wash_mirror_share: float = 0.4
    wash_mirror_z_alone: float = 12.0
    #: … and balanced by order count (a pump's many small buys also pair up by chance: one-sided)
    wash_mirror_balance: float = 0.35
    # marking the close
    close_time: time | None = time(13, 30)
    utc_offset_min: int = 480
    close_window_ms: int = 600_000
    close_trades_z: float = 2.5
    close_imbalance: float = 0.3
    close_window_chunks: int = 12
    close_min_chunks: int = 6
    #: the push walks the price up 1–3 % in 3–8 min: the drift over the last ``drift_chunks`` (2 min) is at least
    close_drift_bps: float = 40.0
    # momentum ignition
    ignite_ret_bps: float = 35.0
    ignite_imbalance: float = 0.8
    ignite_trades_z: float = 4.0
    # generic bursts
    burst_volume_z: float = 25.0
    burst_ret_bps: float = 150.0
    burst_min_trades: float = 10.0
    # K-means outlier alerts (bar features)
    kmeans_alert_score: float = 0.9999

    def for_feed(self, flow: FlowConfig, profile: FeedProfile) -> PatternParams:
        """These parameters on a feed: the flow features' chunking, and the venue's session calendar (no
        marking the close where the venue never closes)."""
        return replace(
            self,
            chunk_ms=flow.chunk_ms,
            long_chunks=flow.long_chunks,
            close_time=profile.close_time,
            utc_offset_min=profile.utc_offset_min,
        )

    def with_overrides(self, overrides: Mapping[str, Any]) -> PatternParams:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown pattern parameter(s): {', '.join(unknown)}")
        return replace(self, **overrides)


def _get(values: Values, name: str) -> float | None:
    value = values.get(name)
    return None if value is None else float(value)


def _ge(values: Values, name: str, bar: float) -> bool:
    value = _get(values, name)
    return value is not None and value >= bar


def _strength(ratio: float) -> float:
    """Hit score from how far the evidence exceeds the bar (ratio ≥ 1): 0.6 at the bar, → 1 far beyond."""
    return min(1.0, 0.6 + 0.4 * (1.0 - 1.0 / max(ratio, 1.0)))


class _Run:
    """Flags of the last ``window`` chunks (by chunk index, gaps count as unflagged) and the run's first start."""

    __slots__ = ("first_start", "flags", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.flags: deque[int] = deque()  # chunk starts of flagged chunks within the window
        self.first_start: int | None = None

    def push(self, start: int, flagged: bool, chunk_ms: int) -> int:
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

    def load(self, raw: list[Any]) -> None:
        self.flags = deque(int(x) for x in raw[0])
        self.first_start = None if raw[1] is None else int(raw[1])


class _Drift:
    """Price drift over the last ``window`` chunks: the sum of their ``ret_bps``.

    A chunk's return is measured from the last trade before it, so the returns of consecutive chunks
    telescope: their sum is ``1e4 ln(last price / last price before the window)``. Chunks without trades (or
    not emitted) add nothing, which is exact: the price did not print.
    """

    __slots__ = ("rets", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.rets: deque[tuple[int, float]] = deque()

    def push(self, start: int, ret_bps: float | None, chunk_ms: int) -> float:
        horizon = start - (self.window - 1) * chunk_ms
        while self.rets and self.rets[0][0] < horizon:
            self.rets.popleft()
        if ret_bps is not None and ret_bps != 0.0:
            self.rets.append((start, ret_bps))
        return math.fsum(r for _, r in self.rets)

    def to_state(self) -> list[list[float]]:
        return [[s, r] for s, r in self.rets]

    def load(self, raw: list[list[float]]) -> None:
        self.rets = deque((int(s), float(r)) for s, r in raw)


class FlowPatterns:
    """The flow-driven detectors of one symbol; :meth:`on_chunk` returns their hits for one closed chunk."""

    __slots__ = (
        "close",
        "drift",
        "mid_drift",
        "mid_ramp_drift",
        "onset",
        "params",
        "pump",
        "ramp",
        "ramp_drift",
        "spoof",
        "sweeps",
        "wash",
    )

    def __init__(self, params: PatternParams | None = None) -> None:
        self.params = params or PatternParams()
        p = self.params
        self.pump = _Run(p.pump_window)
        self.onset = _Run(p.pump_onset_window)
        self.wash = _Run(p.wash_window)
        self.close = _Run(p.close_window_chunks)
        self.drift = _Drift(p.drift_chunks)
        self.ramp = _Run(p.pump_ramp_window)
        self.spoof = _Run(p.spoof_window)
        self.ramp_drift = _Drift(p.ramp_chunks)
        self.mid_drift = _Drift(p.drift_chunks)
        self.mid_ramp_drift = _Drift(p.ramp_chunks)
        self.sweeps: deque[int] = deque()  # chunk starts of recent one-sided sweeps

    def ms_to_close(self, ts: int) -> int | None:
        p = self.params
        if p.close_time is None:
            return None
        local = (ts + p.utc_offset_min * 60_000) % DAY_MS
        close = ((p.close_time.hour * 60 + p.close_time.minute) * 60 + p.close_time.second) * 1000
        return close - local

    def on_chunk(self, ts: int, values: Values) -> list[Hit]:
        p = self.params
        start = ts - p.chunk_ms
        hits: list[Hit] = []
        v = values

        def hit(kind: AlertKind, window_start: int, score: float, evidence: dict[str, Any], message: str) -> None:
            hits.append(Hit(kind, ts, window_start, ts, score, evidence, PATTERNS_VERSION, message))

        to_close = self.ms_to_close(ts)
        # the chunk that straddles the close belongs to it (its end may be past the close)
        in_close = to_close is not None and -p.chunk_ms <= to_close <= p.close_window_ms
        ret = _get(v, "ret_bps")
        imb = _get(v, "aggr_imbalance")
        drift = self.drift.push(start, ret, p.chunk_ms)
        rising = drift >= p.pump_drift_bps
        spread = _get(v, "spread_bps")
        ret_long = _get(v, "ret_bps_long")
        # a sweep takes several levels at once and the price stays there: more than a bid-ask bounce (one
        # spread) in the chunk, and the 25 s return agrees
        sweep = (
            ret is not None
            and imb is not None
            and ret_long is not None
            and abs(ret) >= p.ignite_ret_bps
            and abs(ret) > (spread or 0.0)
            and ret_long * (1 if ret > 0 else -1) >= p.ignite_ret_bps
            and imb * (1 if ret > 0 else -1) >= p.ignite_imbalance
        )
        horizon = start - (p.pump_window * p.chunk_ms + p.pump_onset_sweep_ms)
        while self.sweeps and self.sweeps[0] < horizon:
            self.sweeps.popleft()
        if sweep:
            self.sweeps.append(start)

        # pump and dump
        tz_long = _get(v, "trades_z_long")
        imb_long = _get(v, "aggr_imbalance_long")
        pump_chunk = (
            _ge(v, "trades_z_long", p.pump_trades_z)
            and _ge(v, "aggr_imbalance_long", p.pump_imbalance)
            and rising
            and _ge(v, "rush_orders_long", p.pump_rush)
        )
        pumps = self.pump.push(start, pump_chunk, p.chunk_ms)
        buy_orders_z = _get(v, "buy_orders_z_long")
        onset_chunk = (
            buy_orders_z is not None
            and buy_orders_z >= p.pump_buy_orders_z
            and _ge(v, "order_imbalance_z_long", p.pump_order_imbalance_z)
            and _ge(v, "rush_max_z_long", p.pump_rush_max_z)
        )
        onsets = self.onset.push(start, onset_chunk, p.chunk_ms)
        first = self.onset.first_start
        # a surge that opens next to a one-sided sweep is a momentum ignition's followers
        ignited = first is not None and any(abs(x - first) <= p.pump_onset_sweep_ms for x in self.sweeps)
        if onset_chunk and onsets >= p.pump_onset_min_chunks and first is not None and not in_close and not ignited:
            hit(
                AlertKind.PUMP_AND_DUMP,
                first,
                _strength((buy_orders_z or 0.0) / p.pump_buy_orders_z * onsets / p.pump_onset_min_chunks),
                {
                    "onset_chunks": onsets,
                    "buy_orders_z_long": buy_orders_z,
                    "order_imbalance_z_long": _get(v, "order_imbalance_z_long"),
                    "rush_max_long": _get(v, "rush_max_long"),
                    "rush_max_z_long": _get(v, "rush_max_z_long"),
                    "trades_z_long": tz_long,
                    "aggr_imbalance_long": imb_long,
                    "ret_bps_long": ret_long,
                    "drift_bps": drift,
                },
                f"buy orders {buy_orders_z or 0.0:.0f} σ above the symbol's rate with outsized rush orders"
                f" ({onsets} of the last {p.pump_onset_window} chunks)",
            )

        # pump and dump on any feed: a ramp far beyond the symbol's own volatility, on unusual volume
        drift_z = self._drift_z(start, ret, drift, v)
        ramp_chunk = (
            drift_z is not None
            and drift_z >= p.pump_ramp_z
            and _ge(v, "volume_z_long", p.pump_ramp_volume_z)
            and (imb_long is None or imb_long >= 0.0)
            and not in_close
        )
        ramps = self.ramp.push(start, ramp_chunk, p.chunk_ms)
        ramp_first = self.ramp.first_start
        ramp_ignited = ramp_first is not None and any(abs(x - ramp_first) <= p.pump_onset_sweep_ms for x in self.sweeps)
        if ramp_chunk and ramps >= p.pump_ramp_min_chunks and ramp_first is not None and not ramp_ignited:
            hit(
                AlertKind.PUMP_AND_DUMP,
                ramp_first,
                _strength((drift_z or 0.0) / p.pump_ramp_z * ramps / p.pump_ramp_min_chunks),
                {
                    "ramp_chunks": ramps,
                    "drift_z": drift_z,
                    "drift_bps": drift,
                    "ret_sigma_bps": _get(v, "ret_sigma_bps"),
                    "volume_z_long": _get(v, "volume_z_long"),
                    "aggr_imbalance_long": imb_long,
                    "inferred_share_long": _get(v, "inferred_share_long"),
                },
                f"price drifting {drift_z or 0.0:.1f} σ of the symbol's own volatility on unusual volume"
                f" ({ramps} of the last {p.pump_ramp_window} chunks)",
            )

        # spoofing / layering
        self._spoofing(ts, v, hit)

        # wash trading (proxy): equal prints on alternating sides, far above the symbol's own mirror volume
        mirror_z = _get(v, "mirror_z_long")
        order_imb_long = _get(v, "order_imbalance_long")
        wash_chunk = (
            (_get(v, "inferred_share_long") or 0.0) <= 0.5  # mirror trades need the feed's own sides
            and mirror_z is not None
            and order_imb_long is not None
            and abs(order_imb_long) <= p.wash_mirror_balance
            and (
                mirror_z >= p.wash_mirror_z_alone
                or (mirror_z >= p.wash_mirror_z and _ge(v, "mirror_vol_share_long", p.wash_mirror_share))
            )
        )
        washes = self.wash.push(start, wash_chunk, p.chunk_ms)
        if wash_chunk and washes >= p.wash_min_chunks and self.wash.first_start is not None:
            hit(
                AlertKind.WASH_TRADING,
                self.wash.first_start,
                _strength((mirror_z or 0.0) / p.wash_mirror_z * washes / p.wash_min_chunks),
                {
                    "wash_chunks": washes,
                    "mirror_z_long": mirror_z,
                    "mirror_vol_share_long": _get(v, "mirror_vol_share_long"),
                    "mirror_trades": _get(v, "mirror_trades"),
                    "order_imbalance_long": order_imb_long,
                    "alternation_long": _get(v, "alternation_long"),
                    "size_mode_vol_share_long": _get(v, "size_mode_vol_share_long"),
                    "volume_z_long": _get(v, "volume_z_long"),
                    "ret_bps_long": ret_long,
                },
                "alternating buy/sell prints of one repeated size (wash-trading proxy: the feed is anonymous)",
            )

        # marking the close
        push_chunk = (
            in_close
            and _ge(v, "trades_z_long", p.close_trades_z)
            and _ge(v, "aggr_imbalance_long", p.close_imbalance)
            and drift >= p.close_drift_bps
        )
        pushes = self.close.push(start, push_chunk, p.chunk_ms)
        if push_chunk and pushes >= p.close_min_chunks and self.close.first_start is not None:
            hit(
                AlertKind.MARKING_THE_CLOSE,
                self.close.first_start,
                _strength((tz_long or 0.0) / p.close_trades_z * pushes / p.close_min_chunks),
                {
                    "ms_to_close": to_close,
                    "push_chunks": pushes,
                    "trades_z_long": tz_long,
                    "aggr_imbalance_long": imb_long,
                    "ret_bps_long": ret_long,
                    "drift_bps": drift,
                },
                f"buy-side push into the close ({pushes} chunks), {(to_close or 0) // 1000} s before it",
            )

        # momentum ignition
        if (
            ret is not None
            and imb is not None
            and abs(ret) >= p.ignite_ret_bps
            and imb * (1 if ret > 0 else -1) >= p.ignite_imbalance
            and _ge(v, "trades_z", p.ignite_trades_z)
            and pumps < p.pump_min_chunks // 2
            and onsets == 0
            and not push_chunk
        ):
            hit(
                AlertKind.MOMENTUM_IGNITION,
                start,
                _strength(abs(ret) / p.ignite_ret_bps),
                {
                    "ret_bps": ret,
                    "aggr_imbalance": imb,
                    "trades_z": _get(v, "trades_z"),
                    "range_bps": _get(v, "range_bps"),
                },
                f"one-sided sweep moved the price {ret:+.0f} bps in {p.chunk_ms // 1000} s",
            )

        # generic bursts
        if _ge(v, "trades_long", p.burst_min_trades):
            vz = _get(v, "volume_z_long")
            if vz is not None and vz >= p.burst_volume_z:
                hit(
                    AlertKind.VOLUME_BURST,
                    ts - p.chunk_ms * p.long_chunks,
                    _strength(vz / p.burst_volume_z),
                    {"volume_z_long": vz, "volume_long": _get(v, "volume_long")},
                    f"volume {vz:.0f} σ above the last hour's",
                )
            if ret_long is not None and abs(ret_long) >= p.burst_ret_bps:
                hit(
                    AlertKind.PRICE_BURST,
                    ts - p.chunk_ms * p.long_chunks,
                    _strength(abs(ret_long) / p.burst_ret_bps),
                    {"ret_bps_long": ret_long, "range_bps_long": _get(v, "range_bps_long")},
                    f"price moved {ret_long:+.0f} bps in 25 s",
                )
        return hits

    def _drift_z(self, start: int, ret: float | None, drift: float, v: Values) -> float | None:
        """The larger of the 2-minute and the ramp-window drift in units of the symbol's own volatility: of the
        mid when the feed has books (it does not bounce between bid and ask, which a snapshot feed's last price
        does), else of the trades."""
        p = self.params
        long_drift = self.ramp_drift.push(start, ret, p.chunk_ms)
        mid_drift = self.mid_drift.push(start, _get(v, "mid_ret_bps"), p.chunk_ms)
        mid_long = self.mid_ramp_drift.push(start, _get(v, "mid_ret_bps"), p.chunk_ms)
        sigma = _get(v, "mid_sigma_bps")
        if sigma:
            drift, long_drift = mid_drift, mid_long
        else:
            sigma = _get(v, "ret_sigma_bps")
        if not sigma:
            return None
        return max(drift / (sigma * math.sqrt(p.drift_chunks)), long_drift / (sigma * math.sqrt(p.ramp_chunks)))

    def _spoofing(self, ts: int, v: Values, hit: _HitFn) -> None:
        """Large size at levels 2–5 vanished without trading — unusual for this book's own churn — after a layer
        unusual for it, and with pressure: the price moving away from the heavy side, or the flow trading on
        the other side (the spoofer's genuine orders being filled)."""
        p = self.params
        typical = _get(v, "level_typical")
        cancel = _get(v, "cancel_l25")
        if not typical or typical <= 0 or cancel is None:
            return
        cancel_rel = cancel / typical
        layer = _get(v, "layer_cancel_rel") or 0.0
        side = _get(v, "layer_side") or 0.0
        sigma = (_get(v, "mid_sigma_bps") or _get(v, "ret_sigma_bps") or 0.0) * math.sqrt(p.long_chunks)
        moves = (_get(v, "mid_ret_bps_long") or 0.0, _get(v, "ret_bps_long") or 0.0)
        moved = any(x * side > p.spoof_move_sigma * sigma for x in moves)
        # by flow only where the feed tells the sides: inferred ones over a few snapshots are mostly noise
        sided = (_get(v, "inferred_share_long") or 0.0) <= 0.5
        traded = sided and (_get(v, "aggr_imbalance_long") or 0.0) * side >= p.spoof_pressure_imbalance
        layered = layer >= p.spoof_layer_rel and (moved or traded)
        # spoofing repeats (layer, push, cancel, again): one vanished layer with the price drifting the right
        # way happens by chance in a busy book, several within a couple of minutes do not
        cycles = self.spoof.push(ts - p.chunk_ms, layered, p.chunk_ms)
        if not layered or cycles < p.spoof_min_chunks or self.spoof.first_start is None:
            return
        hit(
            AlertKind.SPOOFING,
            min(self.spoof.first_start, ts - p.chunk_ms * p.long_chunks),
            _strength(layer / p.spoof_layer_rel),
            {
                "cancel_l25": cancel,
                "cancel_rel": cancel_rel,
                "layer_side": side,
                "cancel_l25_z": _get(v, "cancel_l25_z"),
                "level_max_rel_long": _get(v, "level_max_rel_long"),
                "level_max_z_long": _get(v, "level_max_z_long"),
                "layer_cancel_rel": layer,
                "cycles": cycles,
                "book_imb_l5_long": _get(v, "book_imb_l5_long"),
                "price_moved_away": moved,
                "flow_on_other_side": traded,
            },
            f"a {'bid' if side > 0 else 'ask'} layer of {layer:.1f}× the typical level size, shown over several "
            f"snapshots, left level 2–5 without trading while the "
            + ("price moved away from it" if moved else "flow traded on the other side"),
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "ramp": self.ramp.to_state(),
            "spoof": self.spoof.to_state(),
            "ramp_drift": self.ramp_drift.to_state(),
            "mid_drift": self.mid_drift.to_state(),
            "mid_ramp_drift": self.mid_ramp_drift.to_state(),
            "pump": self.pump.to_state(),
            "onset": self.onset.to_state(),
            "wash": self.wash.to_state(),
            "close": self.close.to_state(),
            "drift": self.drift.to_state(),
            "sweeps": list(self.sweeps),
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self.pump.load(state["pump"])
        if "ramp" in state:  # absent before version 4
            self.ramp.load(state["ramp"])
            self.spoof.load(state["spoof"])
            self.ramp_drift.load(state["ramp_drift"])
            self.mid_drift.load(state["mid_drift"])
            self.mid_ramp_drift.load(state["mid_ramp_drift"])
        if "onset" in state:  # absent before version 3
            self.onset.load(state["onset"])
        self.wash.load(state["wash"])
        self.close.load(state["close"])
        # absent in version-1 states: drift and sweeps restart empty
        self.drift.load(state.get("drift", []))
        self.sweeps = deque(int(x) for x in state.get("sweeps", []))


class SymbolDetector:
    """Everything the stream keeps per symbol for detection: flow patterns, K-means scoring, alert policy.

    * :meth:`on_flow_features` — one fast ``Features`` record (``values`` of :mod:`detectors.flow`, ``ts`` =
      chunk end) → alerts.
    * :meth:`on_bar_features` — one ``1m`` ``Features`` record (``ts`` = bar end) → the K-means
      :class:`Score` (``None`` without a model) and alerts.
    * :meth:`to_state` / :meth:`from_state` — JSON-safe state for the stream's state table (the model is not in it: pass
      the current one to :meth:`from_state`; :meth:`set_model` swaps it on hot reload).
    """

    __slots__ = ("model", "patterns", "policy", "symbol", "venue")

    def __init__(
        self,
        symbol: str,
        venue: str,
        model: KMeansModel | None = None,
        params: PatternParams | None = None,
        policy: PolicyParams | None = None,
    ) -> None:
        self.symbol = symbol
        self.venue = venue
        self.model = model
        self.patterns = FlowPatterns(params)
        self.policy = AlertPolicy(symbol, venue, policy)

    @property
    def params(self) -> PatternParams:
        return self.patterns.params

    def set_model(self, model: KMeansModel | None) -> None:
        self.model = model

    def on_flow_features(self, ts: int, values: Values) -> list[Alert]:
        alerts: list[Alert] = []
        for hit in self.patterns.on_chunk(ts, values):
            alerts.extend(self.policy.on_hit(hit))
        return alerts

    def on_bar_features(self, ts: int, values: Values) -> tuple[Score | None, list[Alert]]:
        """Raises :class:`detectors.kmeans.FeatureError` on an infinite value (dead-letter the record)."""
        if self.model is None:
            return None, []
        scored = self.model.score_values(values)
        score = Score(
            symbol=self.symbol,
            venue=self.venue,
            ts=ts,
            model_version=self.model.version,
            cluster=scored.cluster,
            distance=scored.distance,
            score=scored.score,
            top_features=scored.top_features,
        )
        alerts: list[Alert] = []
        if scored.score >= self.params.kmeans_alert_score:
            hit = Hit(
                AlertKind.KMEANS_OUTLIER,
                ts,
                ts - 60_000,
                ts,
                scored.score,
                {"distance": scored.distance, "cluster": scored.cluster, **dict(scored.top_features)},
                self.model.version,
                "bar features far from every normal K-means cluster",
            )
            alerts = self.policy.on_hit(hit)
        return score, alerts

    def to_state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "flow_version": FLOW_FEATURE_SET_VERSION,
            "patterns": self.patterns.to_state(),
            "policy": self.policy.to_state(),
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        model: KMeansModel | None = None,
        params: PatternParams | None = None,
        policy: PolicyParams | None = None,
    ) -> SymbolDetector:
        if state.get("v") not in LOADABLE_STATE_VERSIONS:
            raise ValueError(f"detector state version {state.get('v')!r} is not {STATE_VERSION}")
        restored = AlertPolicy.from_state(state["policy"], policy)
        detector = cls(restored.symbol, restored.venue, model, params, policy)
        detector.policy = restored
        detector.patterns.load(state["patterns"])
        return detector
