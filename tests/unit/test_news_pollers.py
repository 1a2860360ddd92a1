"""The news pollers against local servers that answer the way cnyes' list and an RSS/Atom feed do (no network):
pace measured at the server, back-off on 429 (its Retry-After) and 5xx, conditional requests, bounded bodies,
charsets, bad items dead-lettered with their reason, repeats dropped and re-edits published, a venue of 500
names, a prompt stop; and the replay of recorded items."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from tapewatch.cli import news_sources
from tapewatch.cli.produce import produce_app
from tapewatch.errors import TapewatchError
from tapewatch.producers.framework import Emitter
from tapewatch.producers.news.cnyes import Parsed, parse_newslist
from tapewatch.producers.news.http import KEPT_BYTES
from tapewatch.producers.news.lists import CNYES_LIMIT, CnyesList, FeedList, ListReader
from tapewatch.producers.news.poller import MIN_INTERVAL_S, NewsPoller, poll_interval
from tapewatch.producers.news.replay import MAX_LINE_BYTES, NewsReplay
from tapewatch.producers.news.symbols import load_matcher
from tapewatch.producers.news.text import MAX_SYMBOLS, SymbolMatcher
from tapewatch.producers.publisher import Publisher
from tapewatch.records import NewsItem
from tapewatch.settings import Settings, SourceSettings
from tapewatch.topics import NEWS_ITEMS
from tests.news_site import Reply, Site, Streamed, answer, cnyes_item, cnyes_page, http_date, huge, now_s, rss, slow
from tests.recording_publisher import RecordingPublisher

INTERVAL_S = 0.05
MATCHER = SymbolMatcher({"2330": ["台積電", "TSMC"], "2317": ["鴻海"], "2454": ["聯發科"]})

assert news_sources  # its import adds the news commands to `tapewatch produce`


# --- running a poller against a site --------------------------------------------------------------------------
class NewsPublisher(RecordingPublisher):
    """The recorded publications, read as news items."""

    @property
    def items(self) -> list[NewsItem]:
        assert {topic for topic, _ in self.published} <= {NEWS_ITEMS}
        return [cast(NewsItem, record) for _, record in self.published]


@dataclass
class Run:
    poller: NewsPoller
    publisher: NewsPublisher
    emitter: Emitter
    site: Site
    #: how long the poller ran (the site's shutdown not counted)
    elapsed_s: float


def cnyes_reader(url: str, matcher: SymbolMatcher = MATCHER, **kwargs: Any) -> CnyesList:
    return CnyesList(f"{url}/media/api/v1/newslist/category/tw_stock", matcher, "twse", **kwargs)


def feed_reader(url: str) -> FeedList:
    return FeedList(f"{url}/announcements.xml", "twse-notices", MATCHER, "twse", "en")


def poll(
    replies: list[Reply],
    polls: int,
    reader: Callable[[str], ListReader] = cnyes_reader,
    *,
    interval_s: float = INTERVAL_S,
    timeout_s: float = 5.0,
    stop_after_s: float | None = None,
) -> Run:
    site = Site(replies)
    publisher = NewsPublisher()
    emitter = Emitter(cast(Publisher, publisher), "producer:news-test")

    async def scenario() -> tuple[NewsPoller, float]:
        url = await site.start()
        try:
            poller = NewsPoller(
                Settings(), reader(url), max_polls=polls, test_interval_s=interval_s, timeout_s=timeout_s
            )
            stop = asyncio.Event()
            if stop_after_s is not None:
                asyncio.get_running_loop().call_later(stop_after_s, stop.set)
            started = time.monotonic()
            await asyncio.wait_for(poller.run(emitter, stop), 30)
            return poller, time.monotonic() - started
        finally:
            await site.stop()

    poller, elapsed = asyncio.run(scenario())
    return Run(poller, publisher, emitter, site, elapsed)


def reasons(run: Run) -> list[str]:
    return [letter.reason for _, letter, _ in run.publisher.letters]


# --- cnyes' list ----------------------------------------------------------------------------------------------
def test_items_go_to_news_items_one_record_per_symbol_and_a_304_costs_nothing() -> None:
    page = cnyes_page(
        cnyes_item(1, "台積電法說會", market=[{"code": "2330", "name": "台積電", "symbol": "TWS:2330:STOCK"}]),
        cnyes_item(2, "鴻海與聯發科合作"),
        cnyes_item(3, "央行理監事會"),
    )
    run = poll([answer(page, etag='"v1"')], polls=3)
    items = run.publisher.items
    assert [(r.item_id, r.symbol, r.key()) for r in items] == [
        ("cnyes:1", "2330", b"2330"),
        ("cnyes:2", "2317", b"2317"),
        ("cnyes:2", "2454", b"2454"),
    ]
    assert items[0].summary == "台積電法說會" and items[0].url == "https://news.cnyes.com/news/id/1"
    assert all(NewsItem.from_json(r.to_json()) == r for r in items)
    # the next two polls carry the page's ETag and are answered 304: nothing read, nothing published again
    assert [h.get("If-None-Match") for h in run.site.headers] == [None, '"v1"', '"v1"']
    assert run.poller.stats.not_modified == 2 and run.poller.stats.unrelated == 1
    assert run.emitter.counters.errors == 0 and run.publisher.letters == []
    query = run.site.queries[0]
    assert (query["page"], query["limit"]) == ("1", str(CNYES_LIMIT))
    assert int(query["endAt"]) - int(query["startAt"]) == 86_400
    assert abs(int(query["endAt"]) - now_s()) < 60


def test_a_repeated_item_goes_once_and_a_re_edit_again() -> None:
    first = cnyes_page(cnyes_item(1, "台積電漲停"), cnyes_item(2, "鴻海營收"))
    again = cnyes_page(cnyes_item(1, "台積電漲停"), cnyes_item(2, "鴻海營收"))  # served whole again, no validators
    edited = cnyes_page(cnyes_item(1, "台積電漲停，外資加碼"), cnyes_item(2, "鴻海營收"))
    run = poll([answer(first), answer(again), answer(edited)], polls=3)
    assert [(r.item_id, r.title) for r in run.publisher.items] == [
        ("cnyes:1", "台積電漲停"),
        ("cnyes:2", "鴻海營收"),
        ("cnyes:1", "台積電漲停，外資加碼"),
    ]
    assert run.poller.stats.repeats == 3 and run.emitter.counters.skipped == 3
    # the edit is dated when it was noticed (cnyes gives no edit time): the news stage signals a later edit only
    first_version, edit = run.publisher.items[0], run.publisher.items[2]
    assert first_version.updated_ts is None and edit.ts == first_version.ts
    assert edit.updated_ts is not None and abs(edit.updated_ts - time.time() * 1000) < 10_000


def test_items_without_a_time_or_from_the_future_are_dead_lettered_with_their_reason_and_bytes() -> None:
    undated = {"newsId": 7, "title": "台積電"}
    future = cnyes_item(8, "鴻海", publishAt=now_s() + 3_600)
    run = poll([answer(cnyes_page(undated, future, cnyes_item(9, "聯發科")))], polls=3)  # served 3 times
    assert [r.item_id for r in run.publisher.items] == ["cnyes:9"]
    letters = run.publisher.letters
    assert [letter.reason for _, letter, _ in letters] == [
        "no publish time: cnyes:7",
        "published 60 min in the future: cnyes:8",
    ]
    assert orjson.loads(letters[0][0]) == undated and orjson.loads(letters[1][0])["newsId"] == 8
    assert all(letter.stage == "producer:news-test" and "tw_stock" in str(letter.source) for _, letter, _ in letters)
    assert run.emitter.counters.errors == 0  # bad items, not a bad page: no back-off
    assert run.emitter.counters.skipped == 2 * 2 + 2  # the bad items once each, the good one published once


def test_a_refused_item_is_dead_lettered_once_though_its_reason_changes_with_the_clock() -> None:
    poller = NewsPoller(Settings(), cnyes_reader("http://127.0.0.1:9"), test_interval_s=INTERVAL_S)
    publisher = NewsPublisher()
    emitter = Emitter(cast(Publisher, publisher), "producer:news-test")
    raw = orjson.dumps(cnyes_item(8, "鴻海", publishAt=now_s() + 3_600))
    for minutes in (60, 59, 58):
        poller.deliver(
            Parsed(refused=[("cnyes:8", f"published {minutes} min in the future")], refused_raw=[raw]), emitter, "x"
        )
    assert [letter.reason for _, letter, _ in publisher.letters] == ["published 60 min in the future: cnyes:8"]
    assert emitter.counters.skipped == 2


def test_html_junk_is_dead_lettered_backed_off_and_polling_goes_on() -> None:
    junk = "<html><body><h1>系統維護中</h1><script>x()</script></body></html>".encode()
    run = poll([answer(junk, content_type="text/html"), answer(cnyes_page(cnyes_item(1, "台積電")))], polls=2)
    [(raw, letter, _)] = run.publisher.letters
    assert raw == junk and letter.reason.startswith("unusable page: cnyes: not JSON")
    assert run.emitter.counters.errors == 1 and run.emitter.counters.backoffs == 1
    assert [r.item_id for r in run.publisher.items] == ["cnyes:1"]


def test_a_big5_page_is_read_in_its_charset_and_broken_bytes_do_not_stop_it() -> None:
    big5 = cnyes_page(cnyes_item(1, "台積電法說會"), charset="big5")
    broken = cnyes_page(cnyes_item(2, "鴻海XX營收")).replace(b"XX", b"\xff\xfe\xc3")
    run = poll([answer(big5, charset="big5"), answer(broken), answer(b"{}", charset="no-such-charset")], polls=3)
    titles = [r.title for r in run.publisher.items]
    assert titles == ["台積電法說會", "鴻海\ufffd\ufffd\ufffd營收"]
    assert reasons(run) == ["unusable page: cnyes: no items.data list in the page"]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_ten_megabyte_body_is_refused_with_a_reason_without_reading_it_all(declared: bool) -> None:
    streamed = Streamed()
    run = poll([huge(10_000_000, declared, streamed), answer(cnyes_page(cnyes_item(1, "台積電")))], polls=2)
    [(raw, letter, _)] = run.publisher.letters
    assert letter.reason.startswith("body over the limit: a body of ")
    assert "over the 2,000,000-byte limit" in letter.reason or "more than 2,000,000 bytes" in letter.reason
    assert len(raw) <= KEPT_BYTES and (declared or raw.startswith(b"["))
    assert not streamed.completed  # the client hung up: the other megabytes were never read
    assert run.emitter.counters.backoffs == 1 and [r.item_id for r in run.publisher.items] == ["cnyes:1"]


def test_a_compressed_body_is_capped_by_what_it_inflates_to() -> None:
    bomb = gzip.compress(b"[" + b" " * 50_000_000)  # 49 KB on the wire, 50 MB inflated
    reply = answer(bomb, headers={"Content-Encoding": "gzip"})
    run = poll([reply], polls=1)
    [(raw, letter, _)] = run.publisher.letters
    assert "more than 2,000,000 bytes" in letter.reason and len(raw) == KEPT_BYTES and raw.startswith(b"[  ")


def test_429_waits_its_retry_after_and_5xx_backs_off_exponentially() -> None:
    too_many = answer(b'{"message":"Too Many Requests"}', status=429, headers={"Retry-After": "1"})
    unavailable = answer(b"<html>503</html>", status=503, content_type="text/html")
    page = answer(cnyes_page(cnyes_item(1, "台積電")))
    run = poll([too_many, unavailable, unavailable, page], polls=4)
    gaps = [b - a for a, b in itertools.pairwise(run.site.arrivals)]
    assert gaps[0] >= 1.0  # Retry-After: 1, however short the back-off would have been
    assert all(gap < 1.0 for gap in gaps[1:])  # a 5xx without one waits the back-off (a few intervals)
    assert gaps[2] >= INTERVAL_S
    counters = run.emitter.counters
    assert counters.errors == 3 and counters.backoffs == 3 and counters.backoff_seconds >= 1.0
    assert counters.reasons == {"cnyes: HTTP 429": 1, "cnyes: HTTP 503": 2}
    assert [r.item_id for r in run.publisher.items] == ["cnyes:1"]


def test_a_timeout_is_an_error_with_a_back_off() -> None:
    page = answer(cnyes_page(cnyes_item(1, "台積電")))
    run = poll([slow(2.0, page), page], polls=2, timeout_s=0.3)
    assert run.emitter.counters.reasons == {"cnyes: timeout": 1}
    assert [r.item_id for r in run.publisher.items] == ["cnyes:1"] and run.elapsed_s < 2.0


def test_pages_are_read_while_behind_and_never_closer_than_the_pace_at_the_server() -> None:
    interval = 0.2
    page1 = [cnyes_item(n, f"台積電 {n}") for n in range(60, 30, -1)]
    page2 = [cnyes_item(n, f"鴻海 {n}") for n in range(30, 0, -1)]
    replies = [
        answer(cnyes_page(*page1, page=1, last_page=3)),
        answer(cnyes_page(*page2, page=2, last_page=3)),
        answer(cnyes_page(*page2[-1:], page=3, last_page=3)),  # the list moved on: its last item was listed
        answer(cnyes_page(*page1, page=1, last_page=3)),  # nothing new: no further page
    ]
    run = poll(replies, polls=2, interval_s=interval)
    assert [q["page"] for q in run.site.queries] == ["1", "2", "3", "1"]
    assert min(b - a for a, b in itertools.pairwise(run.site.arrivals)) >= interval
    assert len({r.item_id for r in run.publisher.items}) == 60 and run.poller.stats.repeats == 31


def test_a_venue_of_500_names_is_matched_and_an_item_naming_them_all_is_bounded(tmp_path: Path) -> None:
    rows = ["code,name,alias"] + [f"{1000 + n},公司{n:03d}甲,Company{n:03d}" for n in range(500)]
    (tmp_path / "symbols.csv").write_text("\n".join(rows), encoding="utf-8")
    matcher = load_matcher(Settings(), tmp_path / "symbols.csv")
    everything = "、".join(f"公司{n:03d}甲" for n in range(500))
    page = cnyes_page(cnyes_item(1, "Company499 公告"), cnyes_item(2, "大盤", summary=everything))
    run = poll([answer(page)], polls=1, reader=lambda url: cnyes_reader(url, matcher))
    by_item: dict[str, list[str]] = {}
    for record in run.publisher.items:
        by_item.setdefault(record.item_id, []).append(record.symbol)
    assert by_item["cnyes:1"] == ["1499"]
    assert len(by_item["cnyes:2"]) == MAX_SYMBOLS and by_item["cnyes:2"][0] == "1000"


def test_stop_is_prompt_even_while_a_request_hangs() -> None:
    run = poll([slow(30.0, answer(b"{}"))], polls=5, timeout_s=60.0, stop_after_s=0.3)
    assert run.elapsed_s < 2.0 and len(run.site.arrivals) == 1 and run.emitter.counters.errors == 0


def test_the_pace_never_drops_below_60_s_but_against_a_local_server() -> None:
    assert MIN_INTERVAL_S == 60.0
    assert poll_interval("https://api.cnyes.com/x", 5.0, None) == 60.0
    assert poll_interval("https://api.cnyes.com/x", 90.0, None) == 90.0
    assert poll_interval("http://127.0.0.1:8080/x", 60.0, 0.1) == 0.1
    with pytest.raises(ValueError, match="only for local test servers"):
        poll_interval("https://api.cnyes.com/x", 60.0, 0.1)
    poller = NewsPoller(Settings().updated(sources={"news_poll_interval_s": 1.0}), cnyes_reader("https://x.y"))
    assert poller.interval_s == 60.0  # model_copy skips the setting's own floor; the poller keeps it


# --- an RSS/Atom feed -----------------------------------------------------------------------------------------
def test_a_feed_is_read_conditionally_by_last_modified_and_its_bad_entries_dead_lettered() -> None:
    body = rss(
        ("a-1", "台積電 董事會決議", http_date(600)), ("a-2", "鴻海 公告", None), ("a-3", "聯發科", http_date(-7200))
    )
    run = poll([answer(body, content_type="application/rss+xml", last_modified=http_date(60))], 3, feed_reader)
    [record] = run.publisher.items
    assert (record.item_id, record.symbol, record.language, record.source) == (
        "twse-notices:a-1",
        "2330",
        "zh-TW",
        "twse-notices",
    )
    assert [h.get("If-Modified-Since") is not None for h in run.site.headers] == [False, True, True]
    assert run.poller.stats.not_modified == 2
    assert reasons(run) == ["no publish time: #1", "published 120 min in the future: #2"]
    assert all(b"a-2" in raw or b"a-3" in raw for raw, _, _ in run.publisher.letters)


def test_a_feed_in_big5_is_read_in_the_charset_its_response_names() -> None:
    body = rss(("b-1", "聯發科 重大訊息", http_date(60)), charset="big5", declared=False)
    run = poll([answer(body, content_type="application/rss+xml", charset="big5")], 1, feed_reader)
    assert [(r.symbol, r.title) for r in run.publisher.items] == [("2454", "聯發科 重大訊息")]


def test_a_body_that_names_a_local_file_is_not_read_as_that_file(tmp_path: Path) -> None:
    local = tmp_path / "feed.xml"
    local.write_bytes(rss(("secret", "台積電 內部", http_date(60))))
    run = poll([answer(str(local).encode(), content_type="application/rss+xml")], 1, feed_reader)
    assert run.publisher.items == [] and reasons(run)[0].startswith("unusable page: twse-notices: not an RSS")


# --- the symbols file -----------------------------------------------------------------------------------------
def test_the_symbols_file_and_its_fallback(tmp_path: Path) -> None:
    path = tmp_path / "desk.csv"
    path.write_text("\ufeffcode,name\n2330,台積電,TSMC\n# OTC\n6547,高端疫苗\n\n", encoding="utf-8")
    assert load_matcher(Settings(), path).find("TSMC 與 高端疫苗") == ["2330", "6547"]
    fallback = load_matcher(Settings(sources=SourceSettings(twse_symbols="tse_2330.tw,otc_6547.tw")), None)
    assert fallback.symbols == {"2330", "6547"} and fallback.find("台積電 2330") == ["2330"]
    path.write_text("2330,台積電\n台 積,x\n", encoding="utf-8")
    with pytest.raises(TapewatchError, match=r"desk.csv:2: '台 積' is not a symbol code"):
        load_matcher(Settings(), path)
    with pytest.raises(TapewatchError, match="No such file"):
        load_matcher(Settings(), tmp_path / "missing.csv")


# --- the replay ------------------------------------------------------------------------------------------------
def news_line(item_id: str, symbol: str, ts: int, title: str = "台積電") -> bytes:
    record = NewsItem(
        symbol=symbol, venue="twse", item_id=item_id, source="cnyes", ts=ts, title=title, language="zh-TW",
        symbols=[symbol],
    )  # fmt: skip
    return record.to_json()


def replay(replayer: NewsReplay) -> tuple[NewsPublisher, Emitter, float]:
    publisher = NewsPublisher()
    emitter = Emitter(cast(Publisher, publisher), "producer:news-replay")
    started = time.monotonic()
    asyncio.run(replayer.run(emitter, asyncio.Event()))
    return publisher, emitter, time.monotonic() - started


def test_the_replay_sends_records_in_publish_order_once_and_dead_letters_bad_lines(tmp_path: Path) -> None:
    t0 = 1_795_741_200_000
    lines = [
        news_line("cnyes:2", "2317", t0 + 2_000),
        b"",
        news_line("cnyes:1", "2330", t0),
        orjson.dumps({k: v for k, v in orjson.loads(news_line("cnyes:4", "2330", t0)).items() if k != "ts"}),
        news_line("cnyes:2", "2317", t0 + 2_000),  # read twice (an at-least-once recording)
        news_line("cnyes:2", "2317", t0 + 2_000, title="台積電（更新）"),  # a re-edit
        b"\xff\xfe not json",
        b"x" * (MAX_LINE_BYTES + 10),
        news_line("cnyes:3", "2454", t0 + 1_000),  # the last line: no newline after it
    ]
    path = tmp_path / "news.jsonl"
    path.write_bytes(b"\n".join(lines))
    publisher, emitter, _ = replay(NewsReplay([path]))
    assert [(r.item_id, r.title) for r in publisher.items] == [
        ("cnyes:1", "台積電"),
        ("cnyes:3", "台積電"),
        ("cnyes:2", "台積電"),
        ("cnyes:2", "台積電（更新）"),
    ]
    letters = [(letter.reason.split(":", 1)[0], letter.source, len(raw)) for raw, letter, _ in publisher.letters]
    assert [(line, source) for line, source, _ in letters] == [
        ("line 4", str(path)),
        ("line 7", str(path)),
        ("line 8", str(path)),
    ]
    assert "ts" in publisher.letters[0][1].reason and "longer than" in publisher.letters[2][1].reason
    assert letters[2][2] == MAX_LINE_BYTES
    assert emitter.counters.skipped == 1


def test_the_replay_keeps_the_recorded_pace_times_speed(tmp_path: Path) -> None:
    t0 = 1_795_741_200_000
    path = tmp_path / "news.jsonl"
    path.write_bytes(b"\n".join(news_line(f"cnyes:{n}", "2330", t0 + n * 500) for n in range(5)))
    _, _, paced = replay(NewsReplay([path], speed=4.0))  # 2 s recorded → 0.5 s
    _, _, fast = replay(NewsReplay([path]))
    assert 0.5 <= paced < 1.5 and fast < 0.2


def test_news_commands_fail_with_one_line_on_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    cases = [
        (["news-feed", "ftp://x.org/feed", "--source", "desk"], "is not an http(s) address"),
        (["news-feed", "https://x.org/feed", "--source", "a desk"], "--source 'a desk'"),
        (["news-feed", "https://x.org/feed", "--source", "desk", "--language", "chinese"], "--language 'chinese'"),
        (["news-replay", str(tmp_path / "missing.jsonl")], "cannot read"),
        (["news-replay", "--speed", "-1", str(tmp_path)], "--speed must be ≥ 0"),
    ]
    for args, message in cases:
        result = runner.invoke(produce_app, args)
        assert result.exit_code != 0, args
        assert isinstance(result.exception, TapewatchError) and message in str(result.exception), args


def test_a_poll_cut_short_is_resumed_from_the_page_it_left() -> None:
    page1 = [cnyes_item(n, f"台積電 {n}") for n in range(90, 60, -1)]
    page2 = [cnyes_item(n, f"鴻海 {n}") for n in range(60, 30, -1)]
    page3 = [cnyes_item(n, f"聯發科 {n}") for n in range(30, 0, -1)]
    unavailable = answer(b"", status=503)
    first = answer(cnyes_page(*page1, page=1, last_page=3), etag='"p1"')  # 304 once its ETag is known
    replies = [
        first,
        unavailable,  # poll 1: page 2 fails, the poll ends there
        first,  # poll 2: nothing new on page 1 …
        answer(cnyes_page(*page2, page=2, last_page=3)),  # … so on with page 2: max_pages (2) read, still behind
        first,  # poll 3: page 1 …
        answer(cnyes_page(*page3, page=3, last_page=3)),  # … and on with page 3, the last
        first,  # poll 4: caught up, page 1 alone
    ]
    run = poll(replies, polls=4, reader=lambda url: cnyes_reader(url, max_pages=2))
    assert [q["page"] for q in run.site.queries] == ["1", "2", "1", "2", "1", "3", "1"]
    assert run.poller.stats.not_modified == 3 and run.emitter.counters.backoffs == 1
    assert len({r.item_id for r in run.publisher.items}) == 90 and run.poller.stats.repeats == 0


# --- the matcher at a venue's size ------------------------------------------------------------------------------
def regex_find(names: dict[str, list[str]], text: str) -> list[str]:
    """What one alternation of every name (longest first) and every code (as a whole token) finds: the reference."""
    by_text = {name: code for code, aliases in names.items() for name in aliases}
    alternatives = [re.escape(n) for n in sorted(by_text, key=lambda n: (-len(n), n))]
    alternatives += [rf"(?<![0-9A-Za-z]){re.escape(c)}(?![0-9A-Za-z])" for c in sorted(names, key=lambda c: -len(c))]
    found = [by_text.get(m.group(0), m.group(0)) for m in re.finditer("|".join(alternatives), text)]
    return list(dict.fromkeys(found))[:MAX_SYMBOLS]


VENUE = {"2330": ["台積電", "TSMC"], "2303": ["聯電"], "9999": ["台積電子"], "00631L": ["元大台灣50正2"], "BRK.B": []}
PIECES = [*(n for names in VENUE.values() for n in names), *VENUE, "台積", "電", "x", "1", " ", "，", "BRK", "."]


@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_the_matcher_finds_what_a_regex_of_every_name_finds(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert SymbolMatcher(VENUE).find(text) == regex_find(VENUE, text)


def test_matching_costs_the_same_for_5_names_as_for_5000() -> None:
    text = "公司今日震盪走低，Company 外資賣超 1234 公司99乙，電子股普遍走弱" * 60

    def seconds(symbols: int) -> float:
        matcher = SymbolMatcher({f"{1000 + n}": [f"公司{n:04d}甲", f"Company {n:04d}"] for n in range(symbols)})
        started = time.perf_counter()
        for _ in range(20):
            matcher.find(text)
        return time.perf_counter() - started

    few, many = min(seconds(5) for _ in range(3)), min(seconds(5_000) for _ in range(3))
    assert many < 3 * few + 0.01  # one alternation of 5,000 names took about 100 times as long


MARKUP = ["<", ">", "!", "[", "]", "-", "&", "#", ";", "?", "/", "x", "台", " ", '"', "'", "=", "CDATA", "DOCTYPE"]


@given(st.lists(st.sampled_from(MARKUP), max_size=30))
def test_broken_markup_in_an_item_is_text_never_a_crash(pieces: list[str]) -> None:
    title = "台積電 " + "".join(pieces)
    got = parse_newslist(cnyes_page(cnyes_item(1, title, summary="".join(pieces))), MATCHER, "twse", now_s() * 1000)
    assert [r.symbol for r in got.items] == ["2330"] or got.refused


def test_an_item_the_html_parser_gives_up_on_is_kept() -> None:
    run = poll([answer(cnyes_page(cnyes_item(1, "台積電 <![ x 公告")))], polls=1)
    assert [r.title for r in run.publisher.items] == ["台積電 <![ x 公告"]
