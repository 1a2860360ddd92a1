"""News payloads → items: cnyes' list and RSS/Atom feeds parsed tolerantly; bad input (HTML junk, broken
encodings, oversized bodies, items without a time or from the future, duplicates and re-edits, a venue of 500
names) refused with a reason or bounded, never a crash."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapewatch.producers.news.cnyes import MAX_PAGE_BYTES, PageError, parse_newslist
from tapewatch.producers.news.dedup import Seen
from tapewatch.producers.news.rss import parse_feed
from tapewatch.producers.news.text import MAX_SYMBOLS, SymbolMatcher, clean_text
from tapewatch.records import NEWS_SUMMARY_MAX, NEWS_TITLE_MAX, NewsItem

NOW_MS = 1_795_741_300_000
MATCHER = SymbolMatcher({"2330": ["台積電", "TSMC"], "2317": ["鴻海"], "2454": ["聯發科"]})


def page(*items: object) -> bytes:
    return orjson.dumps({"items": {"total": len(items), "data": list(items)}})


def item(news_id: int, title: str, **extra: object) -> dict[str, object]:
    return {"newsId": news_id, "title": title, "publishAt": NOW_MS // 1000 - 60, **extra}


def test_an_item_about_two_stocks_is_one_record_per_stock_keyed_by_each() -> None:
    got = parse_newslist(page(item(1, "台積電與鴻海合作")), MATCHER, "twse", NOW_MS)
    assert [(r.symbol, r.key()) for r in got.items] == [("2330", b"2330"), ("2317", b"2317")]
    assert {tuple(r.symbols) for r in got.items} == {("2330", "2317")}
    assert all(NewsItem.from_json(r.to_json()) == r for r in got.items)


def test_the_market_field_wins_over_names_in_the_text_and_unknown_codes_are_dropped() -> None:
    tagged = item(2, "台積電供應鏈", market=[{"code": "2454"}, {"code": "9999"}, "junk"])
    assert [r.symbol for r in parse_newslist(page(tagged), MATCHER, "twse", NOW_MS).items] == ["2454"]


def test_general_news_is_counted_not_published() -> None:
    got = parse_newslist(page(item(3, "央行理監事會")), MATCHER, "twse", NOW_MS)
    assert got.items == [] and got.unrelated == 1 and got.refused == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"title": "台積電"}, "no newsId"),
        ({"newsId": True, "title": "台積電"}, "no newsId"),
        ({"newsId": 4, "title": "<br/>&nbsp;", "publishAt": 1}, "no title"),
        ({"newsId": 5, "title": "台積電"}, "no publish time"),
        ({"newsId": 6, "title": "台積電", "publishAt": "yesterday"}, "no publish time"),
        ({"newsId": 7, "title": "台積電", "publishAt": NOW_MS // 1000 + 3_600}, "60 min in the future"),
        ("a string", "an item must be an object"),
    ],
)
def test_a_bad_item_is_refused_with_its_reason_and_the_page_goes_on(raw: object, reason: str) -> None:
    got = parse_newslist(page(raw, item(8, "鴻海")), MATCHER, "twse", NOW_MS)
    assert [r.item_id for r in got.items] == ["cnyes:8"]
    [(_, why)] = got.refused
    assert reason in why


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b'{"items": []}', "no items.data"),
        (b"\xff\xfe{ broken utf-8", "not JSON"),
        (b"[" + b" " * (MAX_PAGE_BYTES + 1) + b"]", "over the"),
    ],
)
def test_a_page_that_is_not_one_is_refused_whole(payload: bytes, reason: str) -> None:
    with pytest.raises(PageError, match=reason):
        parse_newslist(payload, MATCHER, "twse", NOW_MS)


def test_html_junk_and_a_huge_summary_are_cleaned_and_bounded() -> None:
    junk = "<div onclick='x()'>" + "<script>steal()</script>" + "台積電 &lt;i&gt;漲停&lt;/i&gt;\x00\x07" * 20_000
    got = parse_newslist(page(item(9, "台積電<b>漲停</b>", summary=junk)), MATCHER, "twse", NOW_MS)
    [record] = got.items
    assert record.title == "台積電漲停"
    assert len(record.summary) == NEWS_SUMMARY_MAX and record.summary.endswith("…")
    assert "<" not in record.summary and "steal" not in record.summary and "\x00" not in record.summary


def test_a_ten_megabyte_feed_is_refused_and_a_broken_one_too() -> None:
    with pytest.raises(PageError, match="over the"):
        parse_feed(b"<rss>" + b"x" * 10_000_000, "desk", MATCHER, "twse", NOW_MS)
    with pytest.raises(PageError, match="not an RSS or Atom feed"):
        parse_feed(b"\x00\x01 binary junk", "desk", MATCHER, "twse", NOW_MS)


def test_an_atom_feed_in_another_encoding_is_read() -> None:
    atom = """<?xml version="1.0" encoding="big5"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh-tw"><title>公告</title>
<entry><id>urn:1</id><title>聯發科 董事會決議</title><updated>2026-11-27T00:30:00Z</updated>
<summary type="html">&lt;p&gt;配息&lt;/p&gt;</summary></entry></feed>""".encode("big5")
    [record] = parse_feed(atom, "desk", MATCHER, "twse", NOW_MS).items
    got = (record.symbol, record.title, record.summary, record.language)
    assert got == ("2454", "聯發科 董事會決議", "配息", "zh-TW")
    assert record.ts == record.updated_ts


def test_duplicates_publish_once_and_re_edits_again() -> None:
    seen = Seen()
    first = parse_newslist(page(item(10, "台積電")), MATCHER, "twse", NOW_MS).items[0]
    assert seen.fresh(first.item_id, first.ts, first.title)
    assert not seen.fresh(first.item_id, first.ts, first.title)  # the same page, read again
    assert seen.fresh(first.item_id, first.ts, first.title + "（更新）")  # re-edited, undated
    assert seen.fresh(first.item_id, first.ts + 60_000, first.title)  # re-edited, dated
    assert not seen.fresh(first.item_id, first.ts, first.title)  # an older edit seen late


def test_memory_of_seen_items_is_bounded() -> None:
    seen = Seen(capacity=100)
    for n in range(1_000):
        seen.fresh(f"x:{n}", 0, "t")
    assert len(seen.items) == 100


def test_a_venue_of_500_names_matches_fast_and_bounded() -> None:
    names = {f"{1000 + n}": [f"公司{n:03d}甲", f"Company {n:03d}"] for n in range(500)}
    matcher = SymbolMatcher(names)
    text = "、".join(f"公司{n:03d}甲" for n in range(500)) * 4
    started = time.perf_counter()
    found = matcher.find(text)
    assert len(found) == MAX_SYMBOLS and found[0] == "1000"
    assert time.perf_counter() - started < 1.0  # one scan: linear in the text, not text × names


def test_a_longer_name_wins_over_a_shorter_one_inside_it() -> None:
    matcher = SymbolMatcher({"2330": ["台積"], "9999": ["台積電子"]})
    assert matcher.find("台積電子公告") == ["9999"]


@given(st.text(max_size=400), st.integers(min_value=2, max_value=120))
def test_clean_text_is_bounded_printable_and_stable(raw: str, limit: int) -> None:
    text = clean_text(raw, limit)
    assert len(text) <= limit
    assert all(ch.isprintable() or ch == " " for ch in text)
    assert text == text.strip() and "  " not in text
    if len(text) < limit - 1 and "<" not in text and "&" not in text:
        assert clean_text(text, limit) == text


def test_titles_are_bounded_by_the_record() -> None:
    got = parse_newslist(page(item(11, "台積電" * 1_000)), MATCHER, "twse", NOW_MS)
    assert len(got.items[0].title) == NEWS_TITLE_MAX
