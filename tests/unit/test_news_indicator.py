"""The news indicator and the news context of an alert: bounds, order independence, state round trips."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import orjson
import pytest
from hypothesis import given

from tapewatch.detectors.news.context import DUMP_EVIDENCE, NewsContext, NewsContextParams
from tapewatch.detectors.news.indicator import HISTORY_MAX, NewsIndicator, NewsIndicatorParams
from tapewatch.detectors.patterns.pump_dump import PumpDump
from tapewatch.records import ALERT_NEWS_MAX, Alert, NewsRef

#: within the history the indicator keeps (8 half-lives of an hour): late items see every earlier one
items = st.lists(st.tuples(st.integers(0, 8 * 3_600_000), st.floats(-1.0, 1.0)), max_size=40)


def reference(history: list[tuple[int, float]], at: int, params: NewsIndicatorParams) -> tuple[float, int]:
    """The definition, summed directly over the items published up to ``at``."""
    seen = [(ts, s) for ts, s in history if ts <= at]
    weights = [math.pow(2.0, -(at - ts) / params.half_life_ms) for ts, _ in seen]
    total = sum(w * s for w, (_, s) in zip(weights, seen, strict=True))
    count = sum(1 for ts, _ in seen if ts > at - params.count_window_ms)
    return 100.0 * total / max(sum(weights), 1.0), count


@given(items, st.integers(0, 12 * 3_600_000))
def test_the_indicator_is_its_definition_whatever_the_arrival_order(history: list[tuple[int, float]], at: int) -> None:
    params = NewsIndicatorParams(half_life_ms=3_600_000)
    indicator = NewsIndicator(params)
    for n, (ts, sentiment) in enumerate(history):
        value, count = indicator.observe(ts, sentiment)
        assert -100.0 <= value <= 100.0
        expected, expected_count = reference(history[: n + 1], ts, params)
        assert value == pytest.approx(expected, abs=2e-3) and count == expected_count
    if history:
        value, count = indicator.at(at)
        expected, expected_count = reference(history, at, params)
        assert value == pytest.approx(expected, abs=2e-3) and count == expected_count
    restored = NewsIndicator.from_state(orjson.loads(orjson.dumps(indicator.to_state())), params)
    assert restored.at(at) == indicator.at(at)


def test_an_item_later_than_the_kept_history_sees_what_is_kept() -> None:
    indicator = NewsIndicator(NewsIndicatorParams(half_life_ms=3_600_000))
    indicator.observe(0, -1.0)
    indicator.observe(20 * 3_600_000, 1.0)  # forgets the first (20 half-lives ago)
    assert indicator.observe(1_000, 1.0) == (100.0, 1)  # a day late: the first is no longer there to count
    assert indicator.at(20 * 3_600_000)[0] == pytest.approx(100.0, abs=1e-3)


def test_history_is_bounded() -> None:
    indicator = NewsIndicator()
    for n in range(3 * HISTORY_MAX):
        indicator.observe(n, 1.0)
    assert len(indicator.to_state()["history"]) == HISTORY_MAX


@pytest.mark.parametrize("bad", [{"half_life_ms": 0}, {"count_window_ms": -1}, {"half_life_ms": math.nan}])
def test_indicator_parameters_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="news"):
        NewsIndicatorParams(**bad)  # type: ignore[arg-type]


def ref(n: int, ts: int, title: str = "t") -> NewsRef:
    return NewsRef(item_id=f"sim:{n}", ts=ts, source="sim", title=title, url="", sentiment=None)


def pump(score: float = 0.9, onset: int = 3_600_000) -> Alert:
    return Alert(
        alert_id="a", symbol="A", venue="sim", ts=onset + 300_000, kind="pump_and_dump", severity="high",
        score=score, window_start=onset, window_end=onset + 300_000, model_version="patterns",
    )  # fmt: skip


def test_context_bounds_the_news_an_alert_carries_and_counts_them_all() -> None:
    context = NewsContext(NewsContextParams())
    for n in range(ALERT_NEWS_MAX + 3):
        context.observe(ref(n, 3_600_000 - 60_000 * n))
    alert = context.annotate(pump())
    assert [r["item_id"] for r in alert.news] == [f"sim:{n}" for n in range(ALERT_NEWS_MAX)]  # newest first
    assert alert.evidence["news_count"] == ALERT_NEWS_MAX + 3
    assert Alert.from_json(alert.to_json()) == alert


def test_context_window_edges_and_re_edits() -> None:
    params = NewsContextParams(before_ms=600_000, after_ms=60_000)
    context = NewsContext(params)
    onset = 3_600_000
    for n, ts in enumerate((onset - 600_001, onset - 600_000, onset + 60_000, onset + 60_001)):
        context.observe(ref(n, ts))
    assert [r["item_id"] for r in context.around(onset)] == ["sim:2", "sim:1"]
    assert context.observe(ref(1, onset - 600_000, "edited")) and not context.observe(ref(1, onset - 600_000, "edited"))
    assert [r["title"] for r in context.around(onset)] == ["t", "edited"]
    assert context.annotate(pump()).evidence["news_count"] == 2


def test_discount_applies_to_the_discounted_kinds_only_and_can_be_turned_off() -> None:
    context = NewsContext(NewsContextParams(discount=0.25))
    context.observe(ref(1, 3_500_000))
    lowered = context.annotate(pump(0.96))
    assert lowered.score == 0.72 and str(lowered.severity) == "medium" and lowered.evidence["score_before_news"] == 0.96
    spoof = context.annotate(pump(0.96).model_copy(update={"kind": "spoofing"}))
    assert spoof.score == 0.96 and spoof.news and spoof.evidence["news_at_onset"] is True
    off = NewsContext(NewsContextParams(discount=0.0))
    off.observe(ref(1, 3_500_000))
    assert off.annotate(pump(0.96)).score == 0.96


def test_a_pump_confirmed_by_its_dump_keeps_its_score() -> None:
    context = NewsContext(NewsContextParams())
    context.observe(ref(1, 3_500_000))
    dumped = pump(0.9).model_copy(update={"evidence": {DUMP_EVIDENCE: 0.7, "rise_bps": 500.0}})
    seen = context.annotate(dumped)
    assert seen.score == 0.9 and seen.news and "score_before_news" not in seen.evidence
    # the evidence key is the one the dump rule writes
    assert DUMP_EVIDENCE in PumpDump.EVIDENCE[0].keys


@pytest.mark.parametrize(
    "bad", [{"discount": 1.5}, {"discount": -0.1}, {"before_ms": -1}, {"discounted": ("not-a-kind",)}]
)
def test_context_parameters_are_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        NewsContextParams(**bad)  # type: ignore[arg-type]


def test_context_state_round_trips() -> None:
    context = NewsContext(NewsContextParams())
    for n in range(3):
        context.observe(ref(n, 3_500_000 + n))
    restored = NewsContext.from_state(orjson.loads(orjson.dumps(context.to_state())))
    assert restored.annotate(pump()) == context.annotate(pump())
