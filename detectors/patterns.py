"""Manipulation pattern detectors on the fast order-flow features, and the per-symbol detector the stream runs.

Every detector reads one closed flow chunk at a time (:class:`detectors.flow.FlowChunk` values: the 5 s base
chunk and the 25 s long chunk ending with it) and keeps O(1) state: a short ring of per-chunk flags. A detector
*hits* when its rule holds; the hit's window starts at the first flagged chunk of the current run, so merged
hits of one episode share their first window start and the alert id (:mod:`detectors.alerting`) is stable.

Rules (parameters in :class:`PatternParams`; "×typ" = × ``level_typical``, the symbol's typical level size):

* **pump_and_dump** — a *pump chunk*: ``trades_z_long ≥ pump_trades_z``, ``aggr_imbalance_long ≥
  pump_imbalance`` (buy pressure), ``ret_bps_long > 0`` and ``rush_orders_long ≥ pump_rush`` (bursts of small
  buys in one millisecond, La Morgia et al. 2020). Hit when ``pump_min_chunks`` of the last ``pump_window``
  chunks are pump chunks (a sustained ramp, not a momentum burst), outside the closing window.
  Evidence: ``pump_chunks``, ``trades_z_long``, ``rush_orders_long``, ``aggr_imbalance_long``, ``ret_bps_long``.
* **spoofing** (layering) — a chunk where large size vanished from levels 2–5 without trading:
  ``cancel_l25 ≥ spoof_cancel_rel ×typ`` and a level of ``≥ spoof_level_rel ×typ`` was displayed in the last
  25 s (``level_max_rel_long``). Evidence: ``cancel_l25``, ``cancel_rel``, ``level_max_rel_long``,
  ``book_imb_l5_long``.
* **wash_trading** — a *proxy from anonymous data*: the feed does not say who traded, so the detector sees
  only the footprint of one trader crossing with himself — a *wash chunk* has ``≥ wash_min_trades`` trades,
  strictly alternating aggressor sides (``alternation ≥ wash_alternation``) and repeated identical sizes
  (``size_repeat ≥ wash_size_repeat``); hit when ``wash_min_chunks`` of the last ``wash_window`` chunks are
  wash chunks. Evidence: ``alternation``, ``size_repeat``, ``size_mode_share_long``, ``trades``, ``ret_bps``.
* **marking_the_close** — inside the last ``close_window_ms`` before the session close (``close_time`` local,
  ``utc_offset_min``; ``None`` disables it, e.g. for 24 h crypto): a *push chunk* with ``trades_z_long ≥
  close_trades_z``, ``aggr_imbalance_long ≥ close_imbalance`` and ``ret_bps_long > 0``; hit when
  ``close_min_chunks`` of the last ``close_window_chunks`` are push chunks. Evidence: ``ms_to_close``,
  ``trades_z_long``, ``aggr_imbalance_long``, ``ret_bps_long``.
* **momentum_ignition** — an *ignition chunk*: a one-sided sweep, ``|ret_bps| ≥ ignite_ret_bps``, aggressor
  imbalance of the same sign ``≥ ignite_imbalance`` and ``trades_z ≥ ignite_trades_z``, while no pump is
  under way (fewer than ``pump_min_chunks // 2`` pump chunks in the window). Evidence: ``ret_bps``,
  ``aggr_imbalance``, ``trades_z``, ``range_bps``.
* **volume_burst** / **price_burst** — generic outliers: ``volume_z_long ≥ burst_volume_z`` /
  ``|ret_bps_long| ≥ burst_ret_bps`` with ``trades_long ≥ burst_min_trades``. Evidence: the z-score / return.

Hit scores are in [0, 1] and grow with how far the evidence exceeds the rule's bar (see ``_strength``); the
alert policy maps them to severity.

:class:`SymbolDetector` bundles, per symbol, the flow patterns, the K-means scorer of the 1-minute bar
features and the alert policy. Each alert kind is driven by exactly one cadence (K-means outliers by bar
features, every pattern by flow features), so however the two feature streams interleave the alerts are the
same: the detector is a pure function of each stream's ordered records.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import time
from typing import Any, Final

from detectors.alerting import AlertPolicy, Hit, PolicyParams
from detectors.flow import FLOW_FEATURE_SET_VERSION
from detectors.kmeans import KMeansModel
from tapewatch.records import Alert, AlertKind, Score

PATTERNS_VERSION: Final = "patterns-v1"
STATE_VERSION: Final = 1
DAY_MS: Final = 86_400_000
Values = Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class PatternParams:
    chunk_ms: int = 5_000
    # pump and dump
    pump_trades_z: float = 3.0
    pump_imbalance: float = 0.4
    pump_rush: float = 2.0
    pump_window: int = 24
    pump_min_chunks: int = 8
    # spoofing / layering
    spoof_cancel_rel: float = 8.0
    spoof_level_rel: float = 5.0
    # wash trading (proxy)
    wash_min_trades: float = 6.0
    wash_alternation: float = 0.9
    wash_size_repeat: float = 0.9
    wash_window: int = 6
    wash_min_chunks: int = 1
    # marking the close
    close_time: time | None = time(13, 30)
    utc_offset_min: int = 480
    close_window_ms: int = 600_000
    close_trades_z: float = 3.0
    close_imbalance: float = 0.3
    close_window_chunks: int = 12
    close_min_chunks: int = 6
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


class FlowPatterns:
    """The flow-driven detectors of one symbol; :meth:`on_chunk` returns their hits for one closed chunk."""

    __slots__ = ("close", "params", "pump", "wash")

    def __init__(self, params: PatternParams | None = None) -> None:
        self.params = params or PatternParams()
        p = self.params
        self.pump = _Run(p.pump_window)
        self.wash = _Run(p.wash_window)
        self.close = _Run(p.close_window_chunks)

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
        in_close = to_close is not None and 0 <= to_close <= p.close_window_ms

        # pump and dump
        tz_long = _get(v, "trades_z_long")
        imb_long = _get(v, "aggr_imbalance_long")
        ret_long = _get(v, "ret_bps_long")
        pump_chunk = (
            _ge(v, "trades_z_long", p.pump_trades_z)
            and _ge(v, "aggr_imbalance_long", p.pump_imbalance)
            and ret_long is not None
            and ret_long > 0
            and _ge(v, "rush_orders_long", p.pump_rush)
        )
        pumps = self.pump.push(start, pump_chunk, p.chunk_ms)
        if pump_chunk and pumps >= p.pump_min_chunks and not in_close and self.pump.first_start is not None:
            hit(
                AlertKind.PUMP_AND_DUMP,
                self.pump.first_start,
                _strength((tz_long or 0.0) / p.pump_trades_z * pumps / p.pump_min_chunks),
                {
                    "pump_chunks": pumps,
                    "trades_z_long": tz_long,
                    "rush_orders_long": _get(v, "rush_orders_long"),
                    "aggr_imbalance_long": imb_long,
                    "ret_bps_long": ret_long,
                },
                f"sustained buy surge with rush orders over {pumps} of the last {p.pump_window} chunks",
            )

        # spoofing / layering
        typical = _get(v, "level_typical")
        cancel = _get(v, "cancel_l25")
        if typical and typical > 0 and cancel is not None:
            cancel_rel = cancel / typical
            if cancel_rel >= p.spoof_cancel_rel and _ge(v, "level_max_rel_long", p.spoof_level_rel):
                hit(
                    AlertKind.SPOOFING,
                    ts - p.chunk_ms * 5,
                    _strength(cancel_rel / p.spoof_cancel_rel),
                    {
                        "cancel_l25": cancel,
                        "cancel_rel": cancel_rel,
                        "level_max_rel_long": _get(v, "level_max_rel_long"),
                        "book_imb_l5_long": _get(v, "book_imb_l5_long"),
                    },
                    f"{cancel_rel:.1f}× the typical level size left levels 2–5 without trading",
                )

        # wash trading (proxy)
        wash_chunk = (
            _ge(v, "trades", p.wash_min_trades)
            and _ge(v, "alternation", p.wash_alternation)
            and _ge(v, "size_repeat", p.wash_size_repeat)
        )
        washes = self.wash.push(start, wash_chunk, p.chunk_ms)
        if wash_chunk and washes >= p.wash_min_chunks and self.wash.first_start is not None:
            hit(
                AlertKind.WASH_TRADING,
                self.wash.first_start,
                _strength(washes / p.wash_min_chunks * (_get(v, "trades") or 0.0) / p.wash_min_trades),
                {
                    "wash_chunks": washes,
                    "alternation": _get(v, "alternation"),
                    "size_repeat": _get(v, "size_repeat"),
                    "size_mode_share_long": _get(v, "size_mode_share_long"),
                    "trades": _get(v, "trades"),
                    "ret_bps": _get(v, "ret_bps"),
                },
                "alternating buy/sell prints of one repeated size (wash-trading proxy: the feed is anonymous)",
            )

        # marking the close
        push_chunk = (
            in_close
            and _ge(v, "trades_z_long", p.close_trades_z)
            and _ge(v, "aggr_imbalance_long", p.close_imbalance)
            and ret_long is not None
            and ret_long > 0
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
                },
                f"buy-side push into the close ({pushes} chunks), {(to_close or 0) // 1000} s before it",
            )

        # momentum ignition
        ret = _get(v, "ret_bps")
        imb = _get(v, "aggr_imbalance")
        if (
            ret is not None
            and imb is not None
            and abs(ret) >= p.ignite_ret_bps
            and imb * (1 if ret > 0 else -1) >= p.ignite_imbalance
            and _ge(v, "trades_z", p.ignite_trades_z)
            and pumps < p.pump_min_chunks // 2
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
                    ts - p.chunk_ms * 5,
                    _strength(vz / p.burst_volume_z),
                    {"volume_z_long": vz, "volume_long": _get(v, "volume_long")},
                    f"volume {vz:.0f} σ above the last hour's",
                )
            if ret_long is not None and abs(ret_long) >= p.burst_ret_bps:
                hit(
                    AlertKind.PRICE_BURST,
                    ts - p.chunk_ms * 5,
                    _strength(abs(ret_long) / p.burst_ret_bps),
                    {"ret_bps_long": ret_long, "range_bps_long": _get(v, "range_bps_long")},
                    f"price moved {ret_long:+.0f} bps in 25 s",
                )
        return hits

    def to_state(self) -> dict[str, Any]:
        return {"pump": self.pump.to_state(), "wash": self.wash.to_state(), "close": self.close.to_state()}

    def load(self, state: Mapping[str, Any]) -> None:
        self.pump.load(state["pump"])
        self.wash.load(state["wash"])
        self.close.load(state["close"])


class SymbolDetector:
    """Everything the stream keeps per symbol for detection: flow patterns, K-means scoring, alert policy.

    * :meth:`on_flow_features` — one fast ``Features`` record (``values`` of :mod:`detectors.flow`, ``ts`` =
      chunk end) → alerts.
    * :meth:`on_bar_features` — one ``1m`` ``Features`` record (``ts`` = bar end) → the K-means
      :class:`Score` (``None`` without a model) and alerts.
    * :meth:`to_state` / :meth:`from_state` — JSON-safe state for a faust table (the model is not in it: pass
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
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"detector state version {state.get('v')!r} is not {STATE_VERSION}")
        restored = AlertPolicy.from_state(state["policy"], policy)
        detector = cls(restored.symbol, restored.venue, model, params, policy)
        detector.policy = restored
        detector.patterns.load(state["patterns"])
        return detector
