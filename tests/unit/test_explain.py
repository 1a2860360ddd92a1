"""Alert explanations: every key a detector writes is declared beside it, and the declared bars are the ones the
code compares — each gated value of a real hit passes its bar, and the hit is gone once the bar is just above it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Bound, EvidenceLine, Rule
from tapewatch.detectors.kmeans import KMeansModel, KMeansParams, finish_model
from tapewatch.detectors.patterns import FlowPatterns, PatternParams, SymbolDetector
from tapewatch.detectors.patterns.base import PATTERNS_VERSION
from tapewatch.detectors.patterns.explain import (
    DETECTORS,
    ORDER_RULES,
    RULES,
    SHARED_EVIDENCE,
    explain,
    explains,
    rule_of,
)
from tapewatch.records import Alert, AlertKind, Severity
from tests.unit.test_patterns import (
    CROWD,
    FOLLOW,
    ONSET,
    PINNED,
    QUIET,
    SNAPSHOT_QUIET,
    SPOOF_CYCLE,
    SURGE,
    T0,
    WASH,
    _walk_then,
    rules,
)

CLOSE_PUSH_START = T0 + (4 * 60 + 25) * 60_000  # 13:25 Taipei
CLOSE_TS = T0 + (4 * 60 + 30) * 60_000  # 13:30 Taipei, the TWSE close
PUSH = {**QUIET, "trades_z_long": 5.0, "aggr_imbalance_long": 0.6, "ret_bps_long": 15.0, "ret_bps": 45.0}
SWEEP = {**QUIET, "ret_bps": 40.0, "aggr_imbalance": 1.0, "trades_z": 6.0}
BACK = {**QUIET, "ret_bps": -12.0, "aggr_imbalance": -1.0}
SNAPSHOTS = rules({"tape.prints": "snapshots"})
NEVER_CLOSES = rules({"tape.close_time": None})


@dataclass(frozen=True)
class Scenario:
    """Chunks (5 s apart from ``t0``) that make ``rule`` hit on ``params``."""

    rule: str
    chunks: Sequence[Mapping[str, float | None]]
    t0: int = T0
    params: PatternParams = field(default_factory=rules)

    def hits(self, params: PatternParams | None = None) -> list[Hit]:
        detector = FlowPatterns(params or self.params)
        return [h for i, v in enumerate(self.chunks) for h in detector.on_chunk(self.t0 + (i + 1) * 5_000, v)]

    def alerts(self) -> list[Alert]:
        detector = SymbolDetector("S", "sim", params=self.params)
        return [a for i, v in enumerate(self.chunks) for a in detector.on_chunk(self.t0 + (i + 1) * 5_000, v)]


_RAMP = {**QUIET, "mid_sigma_bps": 3.0, "mid_ret_bps": 8.0, "volume_z_long": 4.0, "rush_orders_long": 0.0}
_UNPRESSED = {**SPOOF_CYCLE, "mid_ret_bps_long": 0.0}
_GAP = [QUIET] * 8
_DILUTED = {**WASH, "mirror_vol_share_long": 0.1, "mirror_excess_share_long": 0.08, "mirror_z_long": 15.0}
_DOWN = {**QUIET, "mid_ret_bps": -3.0, "mid_sigma_bps": 2.0}
_SNAPSHOT_SWEEP = {**SWEEP, "trades_z": 0.0, "volume_z": 6.0}
_BURST = {**QUIET, "volume_z_long": 40.0, "volume_long": 50_000.0, "trades_long": 50.0, "ret_bps_long": 200.0}
SCENARIOS = {
    "onset": Scenario("pump onset", [QUIET] * 10 + [ONSET] * 2),
    "crowd": Scenario("pump crowd", [QUIET] * 10 + [CROWD] * 20),
    "surge": Scenario("pump surge", [SNAPSHOT_QUIET] * 10 + [SURGE] * 30, params=SNAPSHOTS),
    "ramp": Scenario("pump ramp", [QUIET] * 10 + [_RAMP] * 30),
    "dump": Scenario("pump dump", _walk_then([-25.0] * 8, jump=False), params=NEVER_CLOSES),
    "spoofing": Scenario("spoofing", [QUIET, SPOOF_CYCLE, QUIET, SPOOF_CYCLE]),
    "spoofing, three layers": Scenario("spoofing", [SPOOF_CYCLE, *_GAP, _UNPRESSED, *_GAP, _UNPRESSED]),
    "wash": Scenario("wash trading: mirror trades", [QUIET, WASH]),
    "wash, diluted": Scenario("wash trading: mirror trades", [QUIET, _DILUTED]),
    "pinned": Scenario("wash trading: volume at a pinned quote", [QUIET, PINNED, QUIET, PINNED, PINNED, PINNED]),
    "push": Scenario("marking the close: push", [PUSH] * 12, CLOSE_PUSH_START),
    "push by volume": Scenario(
        "marking the close: push",
        [{**PUSH, "trades_z_long": 0.0, "volume_z_long": 5.0}] * 12,
        CLOSE_PUSH_START,
        SNAPSHOTS,
    ),
    "closing move": Scenario("marking the close: closing move", [QUIET] * 164 + [_DOWN] * 36, CLOSE_TS - 200 * 5_000),
    "ignition": Scenario("momentum ignition", [QUIET, SWEEP, *FOLLOW, BACK, BACK]),
    "ignition on snapshots": Scenario(
        "momentum ignition",
        [QUIET, _SNAPSHOT_SWEEP, *[{**c, "trades_z": 0.0} for c in FOLLOW], BACK, BACK],
        params=SNAPSHOTS,
    ),
    "bursts": Scenario("volume burst", [QUIET, _BURST]),
}


def _undeclared(rule: Rule | None, evidence: Mapping[str, Any]) -> set[str]:
    if rule is None:
        return set(evidence)
    return {key for key in evidence if key not in rule.keys and key not in SHARED_EVIDENCE and rule.others is None}


def _check(table: list[EvidenceLine]) -> None:
    """Every bar the hit needed holds; one it may fire without has a number to compare. (A null value passes where
    the rule reads it so — no sides, no books — and has nothing to compare.)"""
    for line in table:
        if line.threshold is None or line.value is None:
            continue
        if line.unless is None:
            assert line.passed is True, line
        else:
            assert line.passed is not None, line


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_key_a_hit_carries_is_declared_and_every_bar_it_needed_holds(name: str) -> None:
    scenario = SCENARIOS[name]
    hits = scenario.hits()
    rules = {rule.name for hit in hits if (rule := rule_of(hit.kind, hit.evidence)) is not None}
    assert scenario.rule in rules, rules
    for hit in hits:
        rule = rule_of(hit.kind, hit.evidence)
        assert rule is not None and not _undeclared(rule, hit.evidence), (hit.kind, hit.evidence)
        assert set(hit.evidence) - set(SHARED_EVIDENCE) == set(rule.keys), (
            f"{rule.name} declares a key its hits no longer carry"
        )
        _check(explain(hit.kind, hit.evidence, scenario.params))
        assert explains(hit.kind, hit.model_version)


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_alerts_as_the_console_reads_them_rounded_and_with_hits(name: str) -> None:
    scenario = SCENARIOS[name]
    alerts = scenario.alerts()
    assert alerts
    for alert in alerts:
        table = explain(alert.kind, alert.evidence, scenario.params, score=alert.score)
        assert [line.key for line in table][-1] == "hits"
        assert {line.key for line in table} == set(alert.evidence)
        assert all(line.label != line.key for line in table), table
        _check(table)


def test_the_scenarios_exercise_every_rule() -> None:
    # the order-level rules are exercised with their detectors (tests/unit/test_firm_messages.py)
    flow_rules = {r.name for r in RULES if r not in ORDER_RULES}
    assert {s.rule for s in SCENARIOS.values()} | {"price burst", "K-means outlier"} == flow_rules
    assert any(r.name == "price burst" for h in SCENARIOS["bursts"].hits() if (r := rule_of(h.kind, h.evidence)))


def _just_failing(comparison: str, value: float) -> float:
    """A threshold the value just fails."""
    step = max(1e-3, abs(value) * 1e-3)
    return {
        "≥": value + step,
        ">": value,
        "≤": value - step,
        "|x| ≥": abs(value) + step,
        "|x| ≤": abs(value) - step,
    }[comparison]


def _simple_bars(hit: Hit, params: PatternParams) -> list[tuple[str, str, float]]:
    """``(param, comparison, value)`` of every bar the hit needed that is a parameter compared as it is."""
    return [
        (line.param, line.comparison, float(line.value))
        for line in explain(hit.kind, hit.evidence, params)
        if line.param is not None
        and line.comparison is not None
        and line.formula == line.param
        and line.unless is None
        and isinstance(line.value, int | float)
        and not isinstance(line.value, bool)
    ]


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_bar_just_above_the_value_stops_the_hit(name: str) -> None:
    """The declared bar is the code's: the same chunks on parameters whose bar the value just fails do not hit."""
    scenario = SCENARIOS[name]
    first = next(h for h in scenario.hits() if (r := rule_of(h.kind, h.evidence)) and r.name == scenario.rule)
    rule = rule_of(first.kind, first.evidence)
    bars = _simple_bars(first, scenario.params)
    assert bars
    for param, comparison, value in bars:
        changes: dict[str, Any] = {param: _just_failing(comparison, value)}
        stricter = scenario.params.with_values(changes)
        again = [h for h in scenario.hits(stricter) if h.ts == first.ts and rule_of(h.kind, h.evidence) == rule]
        assert not again, (param, value)


def _kmeans_detector(params: PatternParams) -> SymbolDetector:
    rng = np.random.default_rng(0)
    z = np.vstack([rng.normal(0.0, 1.0, (388, 2)), rng.normal(8.0, 0.5, (12, 2))])
    model: KMeansModel = finish_model(
        ("ret_1", "volume_z_30"),
        center=np.zeros(2),
        scale=np.array([0.001, 1.0]),
        centroids=np.array([[0.0, 0.0], [8.0, 8.0]]),
        masses=np.array([388, 12]) / 400,
        sample_z=z,
        silhouette=0.8,
        params=KMeansParams(),
    )
    return SymbolDetector("S", "sim", model, params)


FAR: Final = {"ret_1": 0.02, "volume_z_30": 20.0}
DAY: Final = 86_400_000


def _kmeans_alerts(params: PatternParams) -> list[Alert]:
    """A quiet minute on the first day, the far one on the next: a K-means alert needs a past session to call its
    distance rare."""
    detector = _kmeans_detector(params)
    assert detector.on_bar(60_000, {"ret_1": 0.0, "volume_z_30": 0.0})[1] == []
    score, alerts = detector.on_bar(DAY + 60_000, FAR)
    assert score is not None
    return alerts


def test_a_kmeans_alert_is_the_symbols_farthest_minute_of_its_last_sessions() -> None:
    """A distance alone is rare only against the symbol's own: never on its first session, and not when a farther
    minute came before it within its last sessions (the product's records: one past session at least)."""
    params = PatternParams()
    first_day = _kmeans_detector(params)
    assert first_day.on_bar(60_000, FAR)[1] == []  # no past session to compare with
    detector = _kmeans_detector(params)
    detector.on_bar(60_000, {"ret_1": 0.0, "volume_z_30": 0.0})
    [alert] = detector.on_bar(DAY + 60_000, {"ret_1": 0.03, "volume_z_30": 30.0})[1]
    assert alert.evidence["session_record"] is None and alert.evidence["record_sessions"] == 1
    assert detector.on_bar(2 * DAY + 60_000, FAR)[1] == []  # nearer than yesterday's
    restored = SymbolDetector.from_state(detector.to_state(), detector.model, params)
    assert restored.kmeans_records.to_state() == detector.kmeans_records.to_state()


def test_a_kmeans_alert_is_its_score_against_the_bar_and_its_features_shares() -> None:
    params = rules()
    alerts = _kmeans_alerts(params)
    assert len(alerts) == 1
    alert = alerts[0]
    assert not _undeclared(rule_of(alert.kind, alert.evidence), alert.evidence)
    table = explain(alert.kind, alert.evidence, params, score=alert.score)
    keys = ["quantile", "distance", "cluster", "outlier_value", "session_record", "record_sessions"]
    assert [line.key for line in table] == [*keys[:3], "ret_1", "volume_z_30", *keys[3:], "hits"]
    assert (table[0].param, table[0].comparison, table[0].threshold, table[0].passed) == (
        "kmeans.alert_score",
        "≥",
        params.kmeans.alert_score,
        True,
    )
    assert table[3].label == "ret_1: its share of the squared distance" and table[3].unit == "share"
    assert explains(alert.kind, alert.model_version)
    # a distance alone is never more than medium, however far
    quantile = alert.evidence["quantile"]
    assert isinstance(quantile, float) and alert.severity is Severity.MEDIUM and alert.score < quantile
    # the bar is the code's: just above the quantile, no alert
    stricter = params.with_values({"kmeans.alert_score": _just_failing("≥", quantile)})
    assert _kmeans_alerts(stricter) == []


def test_every_flow_detector_declares_its_evidence_here() -> None:
    assert {type(d) for d in FlowPatterns(rules()).detectors} | {SymbolDetector} == set(DETECTORS)
    assert {rule.kind for rule in RULES} == set(AlertKind)


def test_declarations_name_real_parameters_and_markers_that_tell_a_kinds_rules_apart() -> None:
    names = set(rules().names())
    for rule in RULES:
        siblings = [r for r in RULES if r.kind is rule.kind and r is not rule]
        if siblings:
            assert rule.marker is not None and rule.marker in rule.keys, rule.name
            assert all(rule.marker not in other.keys for other in siblings), rule.name
        keys = [*rule.keys.values(), *(k for k in (rule.others, rule.score) if k is not None)]
        for params in (rules(), SNAPSHOTS, rules({"tape.prints": None})):
            for key in keys:
                found = key.bound_for(params)
                if found is not None:
                    assert isinstance(found, Bound)
                    assert found.param is None or found.param in names, (rule.name, found)
                    assert found.param is None or found.param in found.formula, (rule.name, found)
                    threshold = found.threshold(params, {})
                    assert threshold is None or math.isfinite(threshold)


def test_thresholds_follow_the_feed() -> None:
    from tapewatch.detectors.flow import FlowConfig
    from tapewatch.feeds import FeedProfiles

    fast = rules().for_feed(FlowConfig(chunk_ms=1_000, long_chunks=10), FeedProfiles()("binance"))
    evidence = {"crowd_chunks": 60, "buy_orders_z_long": 5.0}
    assert [line.threshold for line in explain("pump_and_dump", evidence, fast)] == [60.0, 4.0]
    assert [line.threshold for line in explain("pump_and_dump", evidence, rules())] == [12.0, 4.0]
    # a push read from volume only where the feed aggregates prints
    push = {"push_chunks": 12, "trades_z_long": 0.5, "volume_z_long": 5.0}
    trades = {line.key: line for line in explain(AlertKind.MARKING_THE_CLOSE, push, rules())}
    snapshots = {line.key: line for line in explain(AlertKind.MARKING_THE_CLOSE, push, SNAPSHOTS)}
    assert (trades["trades_z_long"].passed, trades["trades_z_long"].unless, trades["volume_z_long"].threshold) == (
        False,
        None,
        None,
    )
    assert snapshots["trades_z_long"].unless == "volume_z_long ≥ closing.surge_z"
    assert (snapshots["volume_z_long"].threshold, snapshots["volume_z_long"].passed) == (2.5, True)


def test_what_the_code_does_not_know_is_shown_without_bars() -> None:
    params = rules()
    unknown_kind = explain("layering_v9", {"layers": 4, "hits": 2}, params)
    assert [(line.key, line.threshold, line.passed) for line in unknown_kind] == [
        ("layers", None, None),
        ("hits", None, None),
    ]
    newer = explain(AlertKind.SPOOFING, {"layers": 4, "layer_age_s": 90.0}, params)
    assert [(line.key, line.label, line.threshold) for line in newer][1] == ("layer_age_s", "layer_age_s", None)
    # a pump alert of a rule this code does not have: labels, no bars (which rule's bars is not known)
    other = explain(AlertKind.PUMP_AND_DUMP, {"buy_orders_z_long": 7.0, "pivot_chunks": 3}, params)
    assert [(line.label, line.threshold) for line in other] == [
        ("aggressive buy orders vs the symbol's rate, long window", None),
        ("pivot_chunks", None),
    ]
    assert rule_of(AlertKind.PUMP_AND_DUMP, {"buy_orders_z_long": 7.0}) is None
    assert not explains(AlertKind.SPOOFING, "patterns-v18") and explains(AlertKind.SPOOFING, PATTERNS_VERSION)
    assert not explains("layering_v9", PATTERNS_VERSION)


evidence_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=5)
)
evidence_keys = st.one_of(
    st.sampled_from(sorted({key for rule in RULES for key in rule.keys} | {"hits"})), st.text(max_size=8)
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.sampled_from(list(AlertKind)), st.text(max_size=12)),
    st.dictionaries(evidence_keys, evidence_values, max_size=12),
    st.sampled_from([rules(), SNAPSHOTS, rules({"tape.prints": None})]),
    st.one_of(st.none(), st.floats(0.0, 1.0)),
)
def test_explain_never_raises_and_keeps_every_key(
    kind: AlertKind | str, evidence: dict[str, Any], params: PatternParams, score: float | None
) -> None:
    table = explain(kind, evidence, params)
    assert sorted(line.key for line in table) == sorted(evidence)
    assert len(explain(kind, evidence, params, score=score)) - len(table) in (0, 1)
    for line in table:
        if line.passed is not None:
            assert line.threshold is not None and isinstance(line.value, int | float)
