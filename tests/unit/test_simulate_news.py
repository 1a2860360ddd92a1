"""``produce simulate`` publishes the session's news to news.items in event time, and writes it beside the truth."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pandas as pd
import pytest

from tapewatch.generators.news import NEWS_COLUMNS, NewsParams
from tapewatch.generators.simulator import Simulation, SimulationConfig, generate
from tapewatch.producers.framework import Emitter
from tapewatch.producers.publisher import Publisher
from tapewatch.producers.simulate import NEWS_JSONL, NEWS_LABELS_CSV, STAGE, SimulateSource, write_files
from tapewatch.records import NewsItem, Record
from tapewatch.topics import NEWS_ITEMS, Topic
from tests.recording_publisher import RecordingPublisher

#: a short session with news every few minutes on each symbol
CONFIG = SimulationConfig(
    symbols=3, seed=5, minutes=30.0, lookalikes=True, news_params=NewsParams(background_rate=(40.0, 40.0))
)


class SessionPublisher(RecordingPublisher):
    """The recording publisher, with the simulator's pre-encoded market records too, all in the order handed over."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[int | None] = []  # the news item's ts, or None for a market record

    def send(self, topic: Topic, key: bytes | None, value: bytes) -> None:
        self.sent.append(None)

    def publish(self, topic: Topic, record: Record) -> None:
        assert topic is NEWS_ITEMS and isinstance(record, NewsItem)
        super().publish(topic, record)
        self.sent.append(record.ts)

    @property
    def items(self) -> list[Record]:
        return [record for _, record in self.published]


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return generate(CONFIG)


def publish(sim: Simulation, **options: float | int) -> tuple[SessionPublisher, Emitter]:
    publisher = SessionPublisher()
    emitter = Emitter(cast(Publisher, publisher), STAGE)
    source = SimulateSource(sim.config, simulation=sim, **options)  # type: ignore[arg-type]
    asyncio.run(source.run(emitter, asyncio.Event()))
    return publisher, emitter


def market_times_before_each_item(sim: Simulation, publisher: SessionPublisher) -> list[tuple[int, list[int]]]:
    """Each news item's ts beside the event times of the market records handed over before it."""
    times = sim.event_ts.tolist()
    out, position = [], 0
    for item_ts in publisher.sent:
        if item_ts is None:
            position += 1
        else:
            out.append((item_ts, times[:position]))
    return out


@pytest.mark.parametrize("speed", [0.0, 1e7])
def test_every_item_goes_once_after_the_market_records_before_it(sim: Simulation, speed: float) -> None:
    assert len(sim.news) >= 10
    publisher, emitter = publish(sim, speed=speed)
    assert publisher.items == list(sim.news)
    assert emitter.counters.records == len(sim) + len(sim.news)
    times = sim.event_ts.tolist()
    for item_ts, before in market_times_before_each_item(sim, publisher):
        # every market record of an earlier time has gone before the item
        assert sum(t < item_ts for t in times) <= len(before)
        if speed > 0:  # paced: none of a later time
            assert all(t <= item_ts for t in before)


def test_a_limited_run_sends_only_the_news_of_what_it_published(sim: Simulation) -> None:
    publisher, _ = publish(sim, limit=len(sim) // 2)
    last = int(sim.event_ts[len(sim) // 2 - 1])
    assert publisher.items == [item for item in sim.news if item.ts <= last]


def test_file_mode_writes_the_items_and_their_labels(sim: Simulation, tmp_path: Path) -> None:
    write_files(sim, tmp_path, "csv")
    lines = (tmp_path / NEWS_JSONL).read_bytes().splitlines()
    assert [NewsItem.from_json(line) for line in lines] == list(sim.news)
    labels = pd.read_csv(tmp_path / NEWS_LABELS_CSV)
    assert tuple(labels.columns) == NEWS_COLUMNS
    assert labels["item_id"].tolist() == [item.item_id for item in sim.news]
    assert labels["label"].tolist() == list(sim.news_labels)
