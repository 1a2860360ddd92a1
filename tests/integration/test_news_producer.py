"""The news producers into the real Kafka: cnyes' list and an exchange's RSS feed polled from local sites that
answer in their real formats, and a replay of recorded items. Records land on ``news.items`` keyed by the symbol
they concern (one record per item and symbol), refused items and bad lines on ``dlq.producers`` with their reason,
and a repeat is never published twice. Each test gets its own topic prefix, so a topic holds that test's alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tapewatch.deadletter import DeadLetter
from tapewatch.producers.framework import SourceCounters, run_source
from tapewatch.producers.news.lists import CnyesList, FeedList, ListReader
from tapewatch.producers.news.poller import NewsPoller
from tapewatch.producers.news.replay import NewsReplay
from tapewatch.producers.news.text import SymbolMatcher
from tapewatch.records import NewsItem
from tapewatch.settings import Settings
from tapewatch.topics import DLQ_PRODUCERS, NEWS_ITEMS
from tests.kafka_reader import Received, read_topic
from tests.news_site import Site, answer, cnyes_item, cnyes_page, http_date, now_s, rss

pytestmark = pytest.mark.integration

INTERVAL_S = 0.2  # the real ≥ 60 s, scaled down through the poller's test-only argument
MATCHER = SymbolMatcher({"2330": ["台積電"], "2317": ["鴻海"], "2454": ["聯發科"]})


def run_poller(settings: Settings, site: Site, reader_of: Callable[[str], ListReader], polls: int) -> SourceCounters:
    async def scenario() -> SourceCounters:
        url = await site.start()
        try:
            reader = reader_of(url)
            poller = NewsPoller(settings, reader, max_polls=polls, test_interval_s=INTERVAL_S)
            return await run_source(settings, "producer:news-test", poller.run, duration_s=30)
        finally:
            await site.stop()

    return asyncio.run(scenario())


def news(settings: Settings, expected: int) -> list[tuple[bytes | None, NewsItem]]:
    received = read_topic(settings, settings.topic(NEWS_ITEMS.name), expected)
    return [(message.key, NewsItem.from_json(message.value)) for message in received]


def letters(settings: Settings, expected: int) -> list[Received]:
    return read_topic(settings, settings.topic(DLQ_PRODUCERS.name), expected)


def test_cnyes_items_land_keyed_by_symbol_once_and_refused_ones_are_dead_lettered(settings: Settings) -> None:
    page = cnyes_page(
        cnyes_item(1, "台積電法說會", market=[{"code": "2330", "name": "台積電", "symbol": "TWS:2330:STOCK"}]),
        cnyes_item(2, "鴻海與聯發科合作"),
        cnyes_item(3, "央行理監事會"),  # about none of the venue's symbols
        {"newsId": 4, "title": "台積電"},  # no publish time
        cnyes_item(5, "鴻海", publishAt=now_s() + 3_600),  # an hour ahead
    )
    site = Site([answer(page), answer(page)])  # served whole twice: the second time every item is a repeat

    def reader(url: str) -> CnyesList:
        return CnyesList(f"{url}/media/api/v1/newslist/category/tw_stock", MATCHER, "twse")

    counters = run_poller(settings, site, reader, polls=2)
    assert counters.records == 3 and counters.dead_lettered == 2 and counters.skipped == 4

    records = news(settings, 3)
    assert sorted((key, r.item_id, r.symbol) for key, r in records) == [
        (b"2317", "cnyes:2", "2317"),
        (b"2330", "cnyes:1", "2330"),
        (b"2454", "cnyes:2", "2454"),
    ]
    assert all(r.venue == "twse" and r.source == "cnyes" and r.language == "zh-TW" for _, r in records)
    assert {tuple(r.symbols) for _, r in records if r.item_id == "cnyes:2"} == {("2317", "2454")}

    dead = letters(settings, 2)  # once each, though served twice
    reasons = sorted(DeadLetter.from_headers(m.headers).reason for m in dead)
    assert reasons == ["no publish time: cnyes:4", "published 60 min in the future: cnyes:5"]
    assert {orjson.loads(m.value)["newsId"] for m in dead} == {4, 5}
    assert all(DeadLetter.from_headers(m.headers).stage == "producer:news-test" for m in dead)


def test_an_exchange_feed_in_big5_lands_and_an_unusable_answer_is_dead_lettered(settings: Settings) -> None:
    feed = rss(("a-1", "聯發科 董事會決議", http_date(600)), ("a-2", "台積電 公告", None), charset="big5")
    junk = "<html><body>系統維護中</body></html>".encode()
    site = Site(
        [answer(junk, content_type="text/html"), answer(feed, content_type="application/rss+xml", charset="big5")]
    )

    def reader(url: str) -> FeedList:
        return FeedList(f"{url}/announcements.xml", "twse-notices", MATCHER, "twse", "en")

    counters = run_poller(settings, site, reader, polls=2)
    assert counters.records == 1 and counters.dead_lettered == 2 and counters.backoffs == 1

    [(key, record)] = news(settings, 1)
    assert (key, record.item_id, record.title, record.language) == (
        b"2454",
        "twse-notices:a-1",
        "聯發科 董事會決議",
        "zh-TW",
    )
    reasons = sorted(DeadLetter.from_headers(m.headers).reason for m in letters(settings, 2))
    assert reasons[0] == "no publish time: #1" and reasons[1].startswith("unusable page: twse-notices: not an RSS")


def test_a_replay_lands_every_good_line_and_dead_letters_bad_ones_with_their_line(
    settings: Settings, tmp_path: Path
) -> None:
    t0 = 1_795_741_200_000
    good = [
        NewsItem(
            symbol=symbol, venue="twse", item_id=f"cnyes:{n}", source="cnyes", ts=t0 + n * 1_000, title="台積電",
            language="zh-TW", symbols=[symbol],
        ).to_json()
        for n, symbol in enumerate(["2330", "2317", "2454"])
    ]  # fmt: skip
    path = tmp_path / "news.jsonl"
    path.write_bytes(b"\n".join([good[2], b"{not json", good[0], good[0], good[1]]))

    counters = asyncio.run(run_source(settings, "producer:news-replay", NewsReplay([path]).run))
    assert counters.records == 3 and counters.dead_lettered == 1 and counters.skipped == 1

    records = news(settings, 3)
    assert sorted((key, r.item_id) for key, r in records) == [
        (b"2317", "cnyes:1"),
        (b"2330", "cnyes:0"),
        (b"2454", "cnyes:2"),
    ]
    [letter] = letters(settings, 1)
    assert letter.value == b"{not json"
    found = DeadLetter.from_headers(letter.headers)
    assert found.reason.startswith("line 2: ") and found.source == str(path)
