"""Alert policy: turns detector hits of one symbol into deduplicated, deterministic :class:`Alert` records.

A :class:`Hit` is one detector firing on one chunk or bar: its kind, the event time at which it could first be
raised (``ts``), the window it covers, a strength ``score`` in [0, 1], the evidence numbers and the model
version. :class:`AlertPolicy` (one per symbol, O(1) state per kind) decides what to emit:

* **Threshold** — a hit below ``min_score`` (per kind) is ignored.
* **Episode merging and cooldown** — per (symbol, kind) the policy remembers the latest episode. A hit whose
  window starts no later than ``cooldown_ms`` after that episode's ``window_end`` belongs to it: the episode is
  *extended* (``window_end``, best score, hit count), not re-raised. A later hit opens a new episode.
* **Emission** — an alert is emitted **once, at first detection** (the analyst wants it within seconds), with
  ``ts`` = the hit's event time. It is emitted again only when the episode's **severity escalates**; the update
  carries the **same alert_id** (``alert_id(symbol, kind, window_start)`` with the episode's first window start,
  which never moves), so sinks that write by id (Elasticsearch ``_id``, PostgreSQL ``ON CONFLICT``) keep one
  row per episode and show the latest severity, window and evidence.
* **Severity** — from the episode's best score: ≥ 0.95 critical, ≥ 0.85 high, ≥ 0.7 medium, else low.

Pure function of the ordered hits: no wall clock, no cross-symbol state; :meth:`AlertPolicy.to_state` /
:meth:`AlertPolicy.from_state` round-trip through JSON for the stream's changelog-backed table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tapewatch.detectors.evidence import EvidenceValue, Key
from tapewatch.records import Alert, AlertKind, Severity, alert_id
from tapewatch.state_versions import StateVersions


def _with_tenant(state: Mapping[str, Any]) -> dict[str, Any]:
    """Version 1 → 2: a policy names the tenant whose alerts it raises and the scope of its ids (version 1's were
    all public, in the symbol's scope)."""
    return {**state, "tenant": None, "scope": None}


#: the alert policy's state versions
POLICY_STATE: Final = StateVersions("alert policy state", steps=(_with_tenant,))
STATE_VERSION: Final = POLICY_STATE.current
SEVERITY_ORDER: Final = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)
#: lower bounds of the score for MEDIUM, HIGH, CRITICAL
SEVERITY_BOUNDS: Final = (0.7, 0.85, 0.95)


#: the highest score a hit may carry that must not be more than medium (a pump's run-up before its dump)
MEDIUM_AT_MOST: Final = SEVERITY_BOUNDS[1] - 1e-3


def severity_of(score: float) -> Severity:
    level = sum(score >= bound for bound in SEVERITY_BOUNDS)
    return SEVERITY_ORDER[level]


#: what the policy adds to every alert's evidence (:mod:`tapewatch.detectors.evidence`)
POLICY_EVIDENCE: Final[Mapping[str, Key]] = {"hits": Key("detector hits in this alert's episode so far", "hits")}
#: what the calibrated score adds to the alerts it scores (:mod:`tapewatch.detectors.hit_model`); their score is its
#: probability
SCORE_EVIDENCE: Final[Mapping[str, Key]] = {
    "rule_score": Key("the rule's own strength, before the calibrated score", "score"),
    "p_manipulation": Key("calibrated probability that this is manipulation", "probability"),
    "score_drivers": Key("the evidence that moved that probability most, in log-odds"),
    "score_model": Key("the calibrated score's model version"),
}


@dataclass(frozen=True, slots=True)
class Hit:
    kind: AlertKind
    ts: int
    window_start: int
    window_end: int
    score: float
    evidence: Mapping[str, EvidenceValue]
    model_version: str
    message: str = ""


def _default_cooldowns() -> dict[AlertKind, int]:
    return {
        AlertKind.PUMP_AND_DUMP: 180_000,
        AlertKind.SPOOFING: 60_000,
        AlertKind.WASH_TRADING: 60_000,
        AlertKind.MARKING_THE_CLOSE: 600_000,
        AlertKind.MOMENTUM_IGNITION: 120_000,
        AlertKind.VOLUME_BURST: 300_000,
        AlertKind.PRICE_BURST: 300_000,
        AlertKind.KMEANS_OUTLIER: 600_000,
        AlertKind.QUOTE_STUFFING: 60_000,
    }


@dataclass(frozen=True)
class PolicyParams:
    #: per-kind gap after an episode's window end within which new hits merge into it (ms)
    cooldown_ms: Mapping[AlertKind, int] = field(default_factory=_default_cooldowns)
    default_cooldown_ms: int = 120_000
    #: per-kind minimum hit score; kinds not listed use ``default_min_score``
    min_score: Mapping[AlertKind, float] = field(default_factory=dict)
    default_min_score: float = 0.5

    def cooldown(self, kind: AlertKind) -> int:
        return int(self.cooldown_ms.get(kind, self.default_cooldown_ms))

    def threshold(self, kind: AlertKind) -> float:
        return float(self.min_score.get(kind, self.default_min_score))


@dataclass(slots=True)
class _Episode:
    window_start: int
    window_end: int
    score: float
    severity: Severity
    hits: int

    def to_state(self) -> list[Any]:
        return [self.window_start, self.window_end, self.score, str(self.severity), self.hits]

    @classmethod
    def from_state(cls, raw: list[Any]) -> _Episode:
        return cls(int(raw[0]), int(raw[1]), float(raw[2]), Severity(raw[3]), int(raw[4]))


class AlertPolicy:
    """Per-symbol alert policy: :meth:`on_hit` returns the alerts (0 or 1) a hit causes.

    >>> from tapewatch.records import AlertKind
    >>> policy = AlertPolicy("2330", "twse")
    >>> def spoof(ts: int, score: float) -> Hit:
    ...     return Hit(AlertKind.SPOOFING, ts, ts - 5_000, ts, score, {"layers": 3}, "patterns-v19")
    >>> [first] = policy.on_hit(spoof(10_000, 0.75))  # raised at first detection
    >>> str(first.severity), first.window_start, first.evidence
    ('medium', 5000, {'layers': 3, 'hits': 1})
    >>> policy.on_hit(spoof(15_000, 0.8))  # the same episode, still medium: nothing new to say
    []
    >>> [update] = policy.on_hit(spoof(20_000, 0.9))  # it escalates: re-emitted under the same id
    >>> update.alert_id == first.alert_id, str(update.severity), update.window_end, update.evidence["hits"]
    (True, 'high', 20000, 3)
    >>> policy.on_hit(spoof(25_000, 0.3))  # below the kind's minimum score
    []
    >>> [later] = policy.on_hit(spoof(200_000, 0.75))  # past the 60 s cooldown: a new episode, a new id
    >>> later.alert_id != first.alert_id, later.window_start
    (True, 195000)

    The state round-trips through JSON: a restored policy still knows the open episode.

    >>> import json
    >>> AlertPolicy.from_state(json.loads(json.dumps(policy.to_state()))).on_hit(spoof(205_000, 0.8))
    []
    """

    __slots__ = ("episodes", "params", "scope", "symbol", "tenant", "venue")

    def __init__(
        self,
        symbol: str,
        venue: str,
        params: PolicyParams | None = None,
        *,
        tenant: str | None = None,
        scope: str | None = None,
    ) -> None:
        """``tenant``: whose confidential data the hits come from (its alerts are that tenant's alone, their ids in
        its scope); ``scope``: otherwise, the ids' scope of a detector path that raises alerts beside the others
        (:func:`tapewatch.records.alert_id`)."""
        self.symbol = symbol
        self.venue = venue
        self.tenant = tenant
        self.scope = tenant if tenant is not None else scope
        self.params = params or PolicyParams()
        self.episodes: dict[AlertKind, _Episode] = {}

    def on_hit(self, hit: Hit) -> list[Alert]:
        if not hit.score >= self.params.threshold(hit.kind):  # also drops NaN
            return []
        score = min(max(hit.score, 0.0), 1.0)
        episode = self.episodes.get(hit.kind)
        if episode is not None and hit.window_start <= episode.window_end + self.params.cooldown(hit.kind):
            episode.window_end = max(episode.window_end, hit.window_end)
            episode.hits += 1
            if score <= episode.score:
                return []
            episode.score = score
            severity = severity_of(score)
            if SEVERITY_ORDER.index(severity) <= SEVERITY_ORDER.index(episode.severity):
                return []
            episode.severity = severity
        else:
            episode = _Episode(hit.window_start, hit.window_end, score, severity_of(score), 1)
            self.episodes[hit.kind] = episode
        return [self._alert(hit, episode)]

    def _alert(self, hit: Hit, episode: _Episode) -> Alert:
        evidence = {**hit.evidence, "hits": episode.hits}
        return Alert(
            alert_id=alert_id(self.symbol, str(hit.kind), episode.window_start, self.scope),
            symbol=self.symbol,
            venue=self.venue,
            ts=hit.ts,
            kind=hit.kind,
            severity=episode.severity,
            score=round(episode.score, 6),
            window_start=episode.window_start,
            window_end=max(episode.window_end, episode.window_start),
            evidence={k: _clean(v) for k, v in evidence.items()},
            model_version=hit.model_version,
            message=hit.message,
            tenant=self.tenant,
        )

    # -- state -------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "symbol": self.symbol,
            "venue": self.venue,
            "tenant": self.tenant,
            "scope": self.scope,
            "episodes": {str(kind): ep.to_state() for kind, ep in self.episodes.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], params: PolicyParams | None = None) -> AlertPolicy:
        state = POLICY_STATE.upgrade(state)
        tenant, scope = state["tenant"], state["scope"]
        policy = cls(
            str(state["symbol"]),
            str(state["venue"]),
            params,
            tenant=None if tenant is None else str(tenant),
            scope=None if scope is None else str(scope),
        )
        policy.episodes = {AlertKind(k): _Episode.from_state(v) for k, v in state["episodes"].items()}
        return policy


def _clean(value: EvidenceValue) -> EvidenceValue:
    """Evidence goes on the wire: floats rounded (stable JSON), non-finite → None."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value
