"""The news stage over fake messages: each item scored once per edit, the indicator after it, a crash replayed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tapewatch.records import Cadence, Features, NewsItem, NewsSignal
from tapewatch.streams.metrics import StreamMetrics
from tapewatch.streams.news import NEWS_FEATURE_SET_VERSION, NewsStage
from tapewatch.streams.stage import StageIO
from tapewatch.streams.state import ChangelogTable
from tests.detect_harness import FakeMessage, FakeProducer

CHANGELOG = "news-changelog"


@dataclass
class WordScorer:
    """Scores "up" +0.8 and "down" −0.8; raises on "boom" (a model that fails on one item)."""

    version: str = "words-1"

    def score(self, title: str, summary: str, language: str) -> float:
        if "boom" in title:
            raise RuntimeError("the model choked")
        return 0.8 * (title.count("up") - title.count("down"))


@dataclass
class FixedSlot:
    scorer: WordScorer

    def refresh(self) -> bool:
        return False


def item(n: int, ts: int, title: str, symbol: str = "2330", updated: int | None = None) -> NewsItem:
    return NewsItem(
        symbol=symbol, venue="twse", item_id=f"cnyes:{n}", source="cnyes", ts=ts, updated_ts=updated, title=title,
        language="zh-TW", symbols=[symbol],
    )  # fmt: skip


class NewsRun:
    def __init__(self) -> None:
        self.producer = FakeProducer()
        self.changelog: dict[int, dict[bytes, dict[str, Any]]] = {}
        self.stage = self._stage()

    def _stage(self) -> NewsStage:
        table = ChangelogTable("news", CHANGELOG, self.producer)  # type: ignore[arg-type]
        table._entries = {p: dict(e) for p, e in self.changelog.items()}
        return NewsStage(
            news_topic="news.items",
            signals_topic="signals.news",
            features_topic="features.1m",
            sentiment=FixedSlot(WordScorer()),
            io=StageIO("stream:news", "news", self.producer, StreamMetrics()),  # type: ignore[arg-type]
            table=table,
        )

    def feed(self, records: Sequence[NewsItem | bytes], first_offset: int = 0) -> None:
        batch = [
            FakeMessage("news.items", 0, first_offset + n, b"2330" if isinstance(r, bytes) else r.key(),
                        r if isinstance(r, bytes) else r.to_json())
            for n, r in enumerate(records)
        ]  # fmt: skip
        self.stage.process(batch)  # type: ignore[arg-type]

    def checkpoint(self) -> None:
        self.stage.write_state()
        self.changelog = {p: {k: orjson.loads(orjson.dumps(v)) for k, v in e.items()} for p, e in
                          self.stage.table._entries.items()}  # fmt: skip

    def signals(self) -> list[NewsSignal]:
        return [NewsSignal.from_json(v) for t, _, v in self.producer.sent if t == "signals.news"]

    def features(self) -> list[Features]:
        return [Features.from_json(v) for t, _, v in self.producer.sent if t == "features.1m"]


def test_each_item_is_scored_and_the_indicator_follows() -> None:
    run = NewsRun()
    run.feed([item(1, 0, "up up"), item(2, 1_800_000, "down")])
    first, second = run.signals()
    assert (first.sentiment, first.indicator, first.count_1h) == (1.0, 100.0, 1)
    assert second.sentiment == -0.8 and second.count_1h == 2 and 0 < second.indicator < 100
    assert second.model_version == "words-1" and second.title == "down"
    (_, f2) = run.features()
    assert f2.cadence is Cadence.NEWS and f2.version == NEWS_FEATURE_SET_VERSION
    assert f2.values == {"news_sentiment": second.indicator, "news_count_1h": 2.0} and f2.ts == 1_800_000


def test_repeats_are_dropped_and_re_edits_signalled_again_counted_once() -> None:
    run = NewsRun()
    run.feed([item(1, 0, "up"), item(1, 0, "up"), item(1, 0, "down", updated=60_000), item(1, 0, "up", updated=30_000)])
    signals = run.signals()
    assert [(s.title, s.updated_ts) for s in signals] == [("up", None), ("down", 60_000)]
    assert signals[1].count_1h == 1 and signals[1].indicator == signals[0].indicator  # counted at its first version
    assert run.stage.counters.repeats == 2


def test_bad_items_and_a_failing_model_are_dead_lettered_and_the_stage_goes_on() -> None:
    run = NewsRun()
    run.feed([b"{not json", item(1, 0, "boom"), item(2, 1_000, "up")])
    letters = [v for t, _, v in run.producer.sent if t == "dlq"]
    assert letters == [b"{not json", item(1, 0, "boom").to_json()]
    assert [s.item_id for s in run.signals()] == ["cnyes:2"]


def test_a_crash_replays_without_counting_an_item_twice() -> None:
    run = NewsRun()
    run.feed([item(1, 0, "up")])
    run.checkpoint()
    run.feed([item(2, 60_000, "down")], first_offset=1)
    before = run.signals()[-1]
    run.stage = run._stage()  # kill -9 after the checkpoint: offset 1 is read again
    run.feed([item(1, 0, "up"), item(2, 60_000, "down")], first_offset=0)
    again = run.signals()[-1]
    assert again == before and run.stage.counters.replayed == 1
