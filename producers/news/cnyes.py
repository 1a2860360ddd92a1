"""cnyes' (鉅亨網) Taiwan-stock news list → news items.

The list answers ``{"items": {"data": [ … ]}}``; an item has ``newsId`` (its article is
``https://news.cnyes.com/news/id/<newsId>``), ``title``, ``summary`` (may hold HTML entities), ``publishAt`` (epoch
**seconds**), ``keyword`` (strings) and, not on every item, ``market`` (``{code, name, symbol}`` of the stocks it
concerns). Parsed tolerantly: the symbols come from ``market`` where it names the venue's stocks, else from the title,
summary and keywords. An item without an id, a title or a time, or published in the future, is refused with its
reason; the rest of the page is kept.

>>> from tapewatch.producers.news.text import SymbolMatcher
>>> page = {"items": {"data": [
...     {"newsId": 5, "title": "台積電法說會", "summary": "&lt;b&gt;展望&lt;/b&gt;", "publishAt": 1_764_200_000,
...      "market": [{"code": "2330", "name": "台積電"}]},
...     {"newsId": 6, "title": "鴻海營收創高", "publishAt": 1_764_200_060, "keyword": ["鴻海"]},
...     {"newsId": 7, "title": "no time"}]}}
>>> got = parse_newslist(orjson.dumps(page), SymbolMatcher({"2330": ["台積電"], "2317": ["鴻海"]}), "twse",
...                      now_ms=1_764_200_100_000)
>>> [(i.item_id, i.symbol, i.summary) for i in got.items], got.refused
([('cnyes:5', '2330', '展望'), ('cnyes:6', '2317', '')], [('cnyes:7', 'no publish time')])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from tapewatch.errors import TapewatchError
from tapewatch.producers.news.text import SymbolMatcher, clean_text
from tapewatch.records import NEWS_SUMMARY_MAX, NEWS_TITLE_MAX, NewsItem, RecordError

SOURCE: Final = "cnyes"
ARTICLE_URL: Final = "https://news.cnyes.com/news/id/{}"
#: a list page larger than this is refused whole (the real one is ~30 KB for 30 items)
MAX_PAGE_BYTES: Final = 2_000_000
#: an item published more than this ahead of the local clock is refused (a wrong time zone, a typo)
MAX_FUTURE_MS: Final = 5 * 60_000


class PageError(TapewatchError):
    """A list page that is not one: its reason goes to the dead-letter topic with the page."""


@dataclass
class Parsed:
    """What a page gave: a record per (item, symbol); refused items as (id or position, reason), with each one's
    raw bytes in ``refused_raw`` (same order); items about none of the venue's symbols; the id of every item the
    page lists, in its order; where the page stands in the list (``page`` of ``last_page``), when it says."""

    items: list[NewsItem] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    refused_raw: list[bytes] = field(default_factory=list)
    unrelated: int = 0
    listed: list[str] = field(default_factory=list)
    page: int | None = None
    last_page: int | None = None


def parse_newslist(payload: bytes, matcher: SymbolMatcher, venue: str, now_ms: int) -> Parsed:
    """The items of one list page (see the module's note); :class:`PageError` when the page is not one."""
    if len(payload) > MAX_PAGE_BYTES:
        raise PageError(f"cnyes: a page of {len(payload):,} bytes, over the {MAX_PAGE_BYTES:,} limit")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PageError(f"cnyes: not JSON ({exc})") from None
    listing = body.get("items") if isinstance(body, dict) else None
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(listing, dict) or not isinstance(data, list):
        raise PageError("cnyes: no items.data list in the page")
    parsed = Parsed(page=_count(listing.get("current_page")), last_page=_count(listing.get("last_page")))
    for position, raw in enumerate(data):
        named = isinstance(raw, dict) and raw.get("newsId") is not None
        name = f"{SOURCE}:{raw['newsId']}" if named else f"#{position}"
        if named:
            parsed.listed.append(name)
        try:
            records = _item(raw, matcher, venue, now_ms)
        except (ValueError, RecordError) as exc:
            parsed.refused.append((name, str(exc)))
            parsed.refused_raw.append(orjson.dumps(raw))
            continue
        parsed.items += records
        parsed.unrelated += not records
    return parsed


def _item(raw: Any, matcher: SymbolMatcher, venue: str, now_ms: int) -> list[NewsItem]:
    if not isinstance(raw, dict):
        raise ValueError(f"an item must be an object, got {type(raw).__name__}")
    news_id = raw.get("newsId")
    if not isinstance(news_id, int) or isinstance(news_id, bool) or news_id < 0:
        raise ValueError("no newsId")
    title = clean_text(str(raw.get("title") or ""), NEWS_TITLE_MAX)
    if not title:
        raise ValueError("no title")
    published = raw.get("publishAt")
    if not isinstance(published, int | float) or isinstance(published, bool) or published <= 0:
        raise ValueError("no publish time")
    ts = int(published * 1000)
    if ts > now_ms + MAX_FUTURE_MS:
        raise ValueError(f"published {(ts - now_ms) / 60_000:.0f} min in the future")
    summary = clean_text(str(raw.get("summary") or ""), NEWS_SUMMARY_MAX)
    symbols = matcher.known(_codes(raw.get("market"))) or matcher.find(title, summary, *_strings(raw.get("keyword")))
    common: Mapping[str, Any] = {
        "venue": venue, "item_id": f"{SOURCE}:{news_id}", "source": SOURCE, "ts": ts, "title": title,
        "summary": summary, "url": ARTICLE_URL.format(news_id), "language": "zh-TW", "symbols": symbols,
    }  # fmt: skip
    return [NewsItem.from_dict({**common, "symbol": symbol}) for symbol in symbols]


def _count(value: Any) -> int | None:
    """A page number the list states, or None when it states none."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _codes(market: Any) -> list[str]:
    if not isinstance(market, list):
        return []
    return [str(m["code"]) for m in market if isinstance(m, dict) and isinstance(m.get("code"), str | int)]


def _strings(values: Any) -> list[str]:
    return [v for v in values if isinstance(v, str)][:50] if isinstance(values, list) else []
