"""Alert policy: thresholds, episode merging, escalation with a stable id, cooldown, state round trip."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.alerting import AlertPolicy, Hit, PolicyParams, severity_of
from tapewatch.records import Alert, AlertKind, Severity, alert_id

K = AlertKind.SPOOFING


def _hit(start: int, score: float, kind: AlertKind = K, length: int = 5_000) -> Hit:
    return Hit(kind, start + length, start, start + length, score, {"x": 1.5}, "patterns-v1")


def test_first_hit_alerts_and_the_episode_merges() -> None:
    policy = AlertPolicy("SIM1", "sim", PolicyParams(cooldown_ms={K: 10_000}))
    first = policy.on_hit(_hit(0, 0.72))
    assert len(first) == 1
    alert = first[0]
    assert alert.alert_id == alert_id("SIM1", "spoofing", 0)
    assert alert.ts == 5_000
    assert alert.severity == Severity.MEDIUM
    assert policy.on_hit(_hit(5_000, 0.7)) == []  # same episode, no escalation
    escalated = policy.on_hit(_hit(10_000, 0.96))
    assert len(escalated) == 1
    assert escalated[0].alert_id == alert.alert_id
    assert escalated[0].severity == Severity.CRITICAL
    assert escalated[0].window_end == 15_000
    assert escalated[0].evidence["hits"] == 3
    # past the cooldown: a new episode with a new id
    later = policy.on_hit(_hit(15_000 + 10_001, 0.6))
    assert len(later) == 1
    assert later[0].alert_id == alert_id("SIM1", "spoofing", 25_001)


def test_below_threshold_and_nan_are_ignored() -> None:
    policy = AlertPolicy("S", "sim", PolicyParams(min_score={K: 0.8}))
    assert policy.on_hit(_hit(0, 0.79)) == []
    assert policy.on_hit(_hit(0, float("nan"))) == []
    assert policy.on_hit(_hit(0, 0.5, AlertKind.WASH_TRADING)) != []


def test_kinds_have_independent_cooldowns() -> None:
    policy = AlertPolicy("S", "sim")
    assert policy.on_hit(_hit(0, 0.9, AlertKind.SPOOFING))
    assert policy.on_hit(_hit(0, 0.9, AlertKind.WASH_TRADING))


def test_severity_bands() -> None:
    assert [severity_of(s) for s in (0.5, 0.7, 0.85, 0.95)] == [
        Severity.LOW,
        Severity.MEDIUM,
        Severity.HIGH,
        Severity.CRITICAL,
    ]


hits = st.lists(
    st.tuples(st.integers(0, 400), st.floats(0.0, 1.0), st.sampled_from([AlertKind.SPOOFING, AlertKind.PRICE_BURST])),
    max_size=40,
)


@given(hits, st.integers(0, 40))
@settings(max_examples=80, deadline=None)
def test_state_round_trip_anywhere_gives_the_same_alerts(raw: list[tuple[int, float, AlertKind]], cut: int) -> None:
    ordered = sorted(raw, key=lambda h: h[0])
    stream = [_hit(t * 1000, s, k) for t, s, k in ordered]
    whole = AlertPolicy("S", "sim")
    expected = [a for h in stream for a in whole.on_hit(h)]
    first = AlertPolicy("S", "sim")
    got = [a for h in stream[:cut] for a in first.on_hit(h)]
    resumed = AlertPolicy.from_state(orjson.loads(orjson.dumps(first.to_state())))
    got += [a for h in stream[cut:] for a in resumed.on_hit(h)]
    assert got == expected
    # every alert id is the id of its episode's first window start; each (id) appears with rising severity
    by_id: dict[str, list[Alert]] = {}
    for a in expected:
        by_id.setdefault(a.alert_id, []).append(a)
        assert a.alert_id == alert_id("S", str(a.kind), a.window_start)
    for versions in by_id.values():
        assert len({v.severity for v in versions}) == len(versions)


def test_a_tenants_policy_raises_that_tenants_alerts_under_ids_of_their_own() -> None:
    public, acme = AlertPolicy("S", "sim"), AlertPolicy("S", "sim", tenant="acme")
    [open_alert], [own] = public.on_hit(_hit(0, 0.9)), acme.on_hit(_hit(0, 0.9))
    assert open_alert.tenant is None and own.tenant == "acme"
    assert own.alert_id == alert_id("S", "spoofing", 0, "acme") != open_alert.alert_id
    restored = AlertPolicy.from_state(orjson.loads(orjson.dumps(acme.to_state())))
    assert restored.tenant == "acme" and restored.on_hit(_hit(1_000, 0.99))[0].alert_id == own.alert_id


def test_a_version_1_policy_state_is_read_as_a_public_policys() -> None:
    policy = AlertPolicy("S", "sim")
    policy.on_hit(_hit(0, 0.9))
    stored = {key: value for key, value in policy.to_state().items() if key != "tenant"} | {"v": 1}
    restored = AlertPolicy.from_state(stored)
    assert restored.tenant is None and restored.to_state() == policy.to_state()
