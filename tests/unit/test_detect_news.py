"""News beside alerts in the detect stage: whatever the order in which an alert and the news about its onset arrive,
and however the worker crashes, the alert the stores keep (the highest emission per alert id, the first of equals:
``tapewatch.sinks.db.NEWEST_BY``, Elasticsearch's external version) is the one a run that had all the news first
keeps."""

from __future__ import annotations

from pathlib import Path

import hypothesis.strategies as st
from hypothesis import given, settings

from tapewatch.detectors.news.context import NewsContextParams
from tapewatch.records import Alert, AlertKind, Features, NewsSignal
from tests.detect_harness import DetectRun, messages
from tests.unit.test_detect_idempotent import CHUNKS, fast, run_through

#: wash trading is what the harness' chunks raise; the discount is the pump's in the product, the mechanism the same
PARAMS = NewsContextParams(before_ms=20_000, after_ms=5_000, discount=0.5, discounted=(AlertKind.WASH_TRADING,))
#: quiet, then wash-trading mirrors: alerts at 20, 25 and 30 s with their onset at 15 s (escalating)
WASH = [fast("AAA", k, CHUNKS[0]) for k in range(3)] + [fast("AAA", k + 3, CHUNKS[1]) for k in range(4)]


def news(symbol: str, n: int, ts: int) -> NewsSignal:
    return NewsSignal(
        symbol=symbol, venue="sim", ts=ts, item_id=f"sim:{n}", source="sim", title=f"headline {n}", language="en",
        sentiment=0.5, indicator=50.0, count_1h=1, model_version="lexicon-test",
    )  # fmt: skip


def stored(run: DetectRun) -> dict[str, Alert]:
    """What the stores keep of every alert id: its highest emission, the first of equals."""
    kept: dict[str, Alert] = {}
    for topic, _, value in run.producer.sent:
        if topic == "alerts":
            alert = Alert.from_json(value)
            held = kept.get(alert.alert_id)
            if held is None or held.emission < alert.emission:
                kept[alert.alert_id] = alert
    return kept


def run(tmp: Path, records: list[Features | NewsSignal], data: st.DataObject | None = None) -> DetectRun:
    return run_through(tmp, messages(records), data, PARAMS)


def test_news_after_the_alert_annotates_it_again(tmp_path: Path) -> None:
    items = [news("AAA", 1, 10_000), news("AAA", 2, 21_000), news("BBB", 3, 14_000)]
    late = run(tmp_path, [*WASH, *items])
    first = run(tmp_path, [*items, *WASH])
    (alert,) = stored(late).values()
    assert stored(first) == stored(late)
    assert [ref["item_id"] for ref in alert.news] == ["sim:1"]  # 21 s is past the onset's window; BBB's is not AAA's
    assert alert.evidence["news_at_onset"] is True and alert.evidence["news_count"] == 1
    assert alert.evidence["score_before_news"] == 0.896296 and alert.score == 0.448148
    assert str(alert.severity) == "low"
    assert late.stage.counters.alerts_annotated == 1  # the newest emission, sent again once
    assert first.stage.counters.alerts_annotated == 0


def test_without_news_the_alert_is_as_the_rules_raised_it(tmp_path: Path) -> None:
    (alert,) = stored(run(tmp_path, [*WASH, news("AAA", 1, 40_000)])).values()
    assert alert.news == [] and alert.evidence["news_at_onset"] is False
    assert alert.score == 0.896296 and "score_before_news" not in alert.evidence


@st.composite
def news_items(draw: st.DrawFn) -> list[NewsSignal]:
    times = draw(st.lists(st.integers(0, 50_000), max_size=6))
    symbols = draw(st.lists(st.sampled_from(("AAA", "BBB")), min_size=len(times), max_size=len(times)))
    return [news(symbol, n, ts) for n, (symbol, ts) in enumerate(zip(symbols, times, strict=True))]


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_the_stored_alerts_do_not_depend_on_when_the_news_arrived(
    tmp_path_factory: object, data: st.DataObject
) -> None:
    tmp = Path(str(tmp_path_factory.mktemp("news")))  # type: ignore[attr-defined]
    items = data.draw(news_items())
    other = [fast("BBB", k, CHUNKS[c]) for k, c in enumerate(data.draw(st.lists(st.sampled_from((0, 1)), max_size=8)))]
    reference = stored(run(tmp, [*items, *WASH, *other]))

    features = [*WASH, *other]
    order = data.draw(st.permutations([True] * len(items) + [False] * len(features)))  # True: the next news item
    queues: dict[bool, list[Features | NewsSignal]] = {True: list(items), False: list(features)}
    delivered = [queues[is_news].pop(0) for is_news in order]
    assert stored(run(tmp, delivered, data)) == reference
    assert reference  # the wash alerts are there in every example
