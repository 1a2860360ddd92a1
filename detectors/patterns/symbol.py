"""Everything the stream keeps per symbol for detection: the flow patterns, K-means scoring, the alert policy.

Each alert kind is driven by exactly one cadence (K-means outliers by bar features, every pattern by flow
features), so however the two feature streams interleave the alerts are the same: the detector is a pure
function of each stream's ordered records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from tapewatch.detectors.alerting import AlertPolicy, Hit, PolicyParams
from tapewatch.detectors.evidence import Key, Rule, bound
from tapewatch.detectors.flow import FLOW_FEATURE_SET_VERSION
from tapewatch.detectors.kmeans import KMeansModel
from tapewatch.detectors.patterns.base import Values
from tapewatch.detectors.patterns.flow_patterns import FlowPatterns
from tapewatch.detectors.patterns.materiality import rare
from tapewatch.detectors.patterns.params import PatternParams
from tapewatch.detectors.patterns.versions import DETECTOR_STATE
from tapewatch.detectors.session_records import SessionRecords
from tapewatch.records import Alert, AlertKind, Score

if TYPE_CHECKING:  # the hit model reads the rules' evidence declarations, which include this module's
    from tapewatch.detectors.hit_model import HitModel

#: the state's version (an older one is brought up to it first: :mod:`~tapewatch.detectors.patterns.versions`)
STATE_VERSION: Final = DETECTOR_STATE.current
#: the series of the K-means records: the distance of the bars that reached the alert bar
KMEANS_RECORDS: Final = ("kmeans_distance",)


class SymbolDetector:
    """Everything the stream keeps per symbol for detection: flow patterns, K-means scoring, alert policy.

    * :meth:`on_chunk` — a closed flow chunk: one fast ``Features`` record (``values`` of
      :mod:`tapewatch.detectors.flow`, ``ts`` = chunk end) → alerts.
    * :meth:`on_bar` — a closed bar: one ``1m`` ``Features`` record (``ts`` = bar end) → the K-means
      :class:`Score` (``None`` without a model) and alerts.
    * :meth:`to_state` / :meth:`from_state` — JSON-safe state for the stream's state table (the model is not in it: pass
      the current one to :meth:`from_state`; :meth:`set_model` swaps it on hot reload).

    A wash-trading burst over three chunks is one episode: one alert id, re-emitted as its severity rises.

    >>> params = PatternParams().with_values({"tape.close_time": None})
    >>> detector = SymbolDetector("2330", "sim", params=params)
    >>> mirrors = {"mirror_z_long": 9.0, "mirror_vol_share_long": 0.6, "order_imbalance_long": 0.0,
    ...            "mirror_trades_long": 6.0, "mirror_excess_share_long": 0.5}
    >>> alerts = [alert for ts in (5_000, 10_000, 15_000) for alert in detector.on_chunk(ts, mirrors)]
    >>> [(alert.kind.value, alert.severity.value) for alert in alerts], len({alert.alert_id for alert in alerts})
    ([('wash_trading', 'low'), ('wash_trading', 'medium'), ('wash_trading', 'high')], 1)
    >>> detector.on_bar(60_000, {"ret_1": 0.01})  # no K-means model: no score, no alert
    (None, [])
    >>> import json
    >>> restored = SymbolDetector.from_state(json.loads(json.dumps(detector.to_state())), params=params)
    >>> restored.on_chunk(20_000, mirrors)  # the same episode, still high: nothing new
    []
    """

    __slots__ = ("hit_model", "kmeans_records", "model", "patterns", "policy", "symbol", "venue")

    #: the K-means alert's evidence (:mod:`tapewatch.detectors.evidence`): its quantile against the bar, the model's
    #: top features by name, each with its share of the squared distance
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.KMEANS_OUTLIER,
            "K-means outlier",
            None,
            {
                "quantile": Key(
                    "calibrated score: the share of training minutes nearer a normal cluster",
                    "quantile",
                    bound("≥", "kmeans.alert_score"),
                ),
                "distance": Key("distance to the nearest normal cluster (robust-scaled features)"),
                "cluster": Key("the nearest cluster"),
            },
            others=Key("{key}: its share of the squared distance", "share"),
        ),
    )

    def __init__(
        self,
        symbol: str,
        venue: str,
        model: KMeansModel | None = None,
        params: PatternParams | None = None,
        policy: PolicyParams | None = None,
        hit_model: HitModel | None = None,
    ) -> None:
        self.symbol = symbol
        self.venue = venue
        self.model = model
        #: the calibrated score of the kinds it was kept for (:mod:`tapewatch.detectors.hit_model`); ``None``: the
        #: rules' score
        self.hit_model = hit_model
        self.patterns = FlowPatterns(params)
        self.policy = AlertPolicy(symbol, venue, policy)
        #: the largest K-means distance that reached the alert bar, per session (its own: bars are another cadence
        #: than the chunks whose records the materiality gate keeps)
        self.kmeans_records = self._kmeans_records()

    def _kmeans_records(self, state: Mapping[str, Any] | None = None) -> SessionRecords:
        p = self.params
        if state is None:
            return SessionRecords(KMEANS_RECORDS, p.materiality.records, p.tape.utc_offset_min)
        return SessionRecords.from_state(state, KMEANS_RECORDS, p.materiality.records, p.tape.utc_offset_min)

    @property
    def params(self) -> PatternParams:
        return self.patterns.params

    def set_model(self, model: KMeansModel | None) -> None:
        self.model = model

    def on_chunk(self, ts: int, values: Values) -> list[Alert]:
        alerts: list[Alert] = []
        for hit in self.patterns.on_chunk(ts, values):
            judged = hit if self.hit_model is None else self.hit_model.score(hit, self.params)
            alerts.extend(self.policy.on_hit(judged))
        return alerts

    def on_bar(self, ts: int, values: Values) -> tuple[Score | None, list[Alert]]:
        """Raises :class:`tapewatch.detectors.kmeans.FeatureError` on an infinite value (dead-letter the record)."""
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
        self.kmeans_records.observe(ts, (None,))  # a session the symbol traded (its first bar starts it)
        if scored.score < self.params.kmeans.alert_score:
            return score, alerts
        evidence = {"quantile": scored.score, "distance": scored.distance, "cluster": scored.cluster}
        hit = Hit(
            AlertKind.KMEANS_OUTLIER,
            ts,
            ts - 60_000,
            ts,
            scored.score,
            {**evidence, **dict(scored.top_features)},
            self.model.version,
            "bar features far from every normal K-means cluster",
        )
        # a distance is all that speaks for it, and an earnings move or a fast market is as far from the clusters
        # as a manipulation: the symbol's farthest minute of its last sessions at least, medium at most
        record = self.kmeans_records.counted(ts, 0, scored.distance)
        rare_hit = rare(hit, scored.distance, record, self.params.materiality.records.min_sessions)
        if rare_hit is not None:
            alerts = self.policy.on_hit(rare_hit)
        return score, alerts

    def to_state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "flow_version": FLOW_FEATURE_SET_VERSION,
            "patterns": self.patterns.to_state(),
            "policy": self.policy.to_state(),
            "kmeans_records": self.kmeans_records.to_state(),
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        model: KMeansModel | None = None,
        params: PatternParams | None = None,
        policy: PolicyParams | None = None,
        hit_model: HitModel | None = None,
    ) -> SymbolDetector:
        state = DETECTOR_STATE.upgrade(state)
        restored = AlertPolicy.from_state(state["policy"], policy)
        detector = cls(restored.symbol, restored.venue, model, params, policy, hit_model)
        detector.policy = restored
        detector.patterns = FlowPatterns.from_state(state["patterns"], params)
        detector.kmeans_records = detector._kmeans_records(state["kmeans_records"])
        return detector
