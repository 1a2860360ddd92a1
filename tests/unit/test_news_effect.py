"""The news context read over a hand-made session: an alert on a news repricing leaves the queue, a pump touted after
its onset window stays in it, a pump with news just before its onset is demoted and counted."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tapewatch.detectors.alerting import severity_of
from tapewatch.evaluation import judge as ev
from tapewatch.evaluation.news_effect import NewsEffect, news_alerts_frame, news_effect, with_news
from tapewatch.generators.news import news_frame
from tapewatch.records import Alert, NewsItem

MINUTE = 60_000


def alert(symbol: str, onset: int, score: float) -> Alert:
    return Alert(
        alert_id=f"{symbol}-{onset}",
        symbol=symbol,
        venue="sim",
        ts=onset + 3 * MINUTE,
        kind="pump_and_dump",
        severity=severity_of(score),
        score=score,
        window_start=onset,
        window_end=onset + 3 * MINUTE,
        model_version="patterns",
    )


def item(number: int, symbol: str, ts: int) -> NewsItem:
    return NewsItem(
        symbol=symbol,
        venue="sim",
        item_id=f"sim:test-{number}",
        source="sim",
        ts=ts,
        title=f"{symbol} news",
        language="en",
        symbols=[symbol],
    )


@pytest.fixture(scope="module")
def effect() -> NewsEffect:
    # A: a news repricing (no episode) alerted high, its item 30 s after the move: out of the queue
    # B: a pump touted 5 minutes after the alert's onset (past the context's 2 minutes): untouched
    # C: a pump with background news 10 minutes before its onset, alerted medium: demoted to low
    # D: a pump with nothing around it: untouched
    truth = pd.DataFrame(
        {
            "symbol": ["B", "C", "D"],
            "kind": ["pump_and_dump"] * 3,
            "start": [20 * MINUTE, 40 * MINUTE, 60 * MINUTE],
            "end": [30 * MINUTE, 50 * MINUTE, 70 * MINUTE],
        }
    )
    lookalikes = pd.DataFrame({"symbol": ["A"], "kind": ["news"], "start": [10 * MINUTE], "end": [15 * MINUTE]})
    raised = [
        alert("A", 10 * MINUTE, 0.9),
        alert("B", 21 * MINUTE, 0.9),
        alert("C", 41 * MINUTE, 0.8),
        alert("D", 61 * MINUTE, 0.96),
    ]
    items = [item(1, "A", 10 * MINUTE + 30_000), item(2, "B", 26 * MINUTE), item(3, "C", 31 * MINUTE)]
    news = news_frame(items, ["repricing", "touting", "background"])
    annotated = with_news(raised, items)
    assert [a.evidence["news_at_onset"] for a in annotated] == [True, False, True, False]
    return news_effect(truth, lookalikes, ev.alerts_frame(raised), news_alerts_frame(annotated), news)


def test_an_alert_on_a_repricing_with_news_leaves_the_queue(effect: NewsEffect) -> None:
    assert effect.lookalike_alerts == 1
    assert (effect.lookalike_medium, effect.lookalike_medium_news) == (1, 0)
    assert (effect.lookalike_high, effect.lookalike_high_news) == (1, 0)
    assert effect.lookalike_removed == 1


def test_news_before_a_pump_demotes_it_and_touting_after_its_onset_does_not(effect: NewsEffect) -> None:
    assert effect.pump_episodes == 3
    assert effect.pumps_demoted == 1 and effect.pumps_demoted_below_medium == 1
    assert effect.pumps_demoted_by == {"background": 1}
    assert effect.news_items == {"background": 1, "repricing": 1, "touting": 1}
    # B, C and D reached the queue 1 minute after their start + 3 minutes; C no longer does
    assert effect.queue_delays == [(240.0, 240.0), (240.0, None), (240.0, 240.0)]


def test_pump_precision_and_recall_at_medium_without_and_with_news(effect: NewsEffect) -> None:
    plain, annotated = effect.pumps_medium, effect.pumps_medium_news
    assert (plain.alerts, plain.true_alerts, plain.detected) == (4, 3, 3)
    assert math.isclose(plain.precision, 3 / 4) and plain.recall == 1.0
    assert (annotated.alerts, annotated.true_alerts, annotated.detected) == (2, 2, 2)
    assert annotated.precision == 1.0 and math.isclose(annotated.recall, 2 / 3)


def test_a_session_without_alerts_or_news() -> None:
    truth = pd.DataFrame({"symbol": ["B"], "kind": ["pump_and_dump"], "start": [0], "end": [MINUTE]})
    none = ev.alerts_frame([])
    empty = news_alerts_frame([])
    lookalikes = pd.DataFrame(columns=["symbol", "kind", "start", "end"])
    got = news_effect(truth, lookalikes, none, empty, news_frame([], []))
    assert (got.lookalike_alerts, got.pumps_demoted, got.pump_episodes) == (0, 0, 1)
    assert got.pumps_medium.recall == 0.0 and got.pumps_medium_news.recall == 0.0


def test_a_pump_whose_run_up_is_lowered_reaches_the_queue_with_its_dump() -> None:
    """The run-up's alert (medium) is lowered by news before the onset; its dump confirms it (``fall_share``) and keeps
    its score: the pump stays in the queue, five minutes later."""
    truth = pd.DataFrame({"symbol": ["E"], "kind": ["pump_and_dump"], "start": [40 * MINUTE], "end": [50 * MINUTE]})
    run_up = alert("E", 41 * MINUTE, 0.8)
    dump = run_up.model_copy(
        update={"ts": 49 * MINUTE, "score": 0.9, "severity": severity_of(0.9), "evidence": {"fall_share": 0.6}}
    )
    items = [item(1, "E", 35 * MINUTE)]
    annotated = with_news([run_up, dump], items)
    lookalikes = pd.DataFrame(columns=["symbol", "kind", "start", "end"])
    got = news_effect(
        truth, lookalikes, ev.alerts_frame([run_up, dump]), news_alerts_frame(annotated), news_frame(items, ["touting"])
    )
    assert (got.pumps_demoted, got.pumps_demoted_below_medium) == (1, 0)
    assert got.queue_delays == [(240.0, 540.0)]
    assert got.pumps_medium_news.recall == 1.0 and got.pumps_demoted_by == {"touting": 1}
