"""Any RSS or Atom feed a desk names (an exchange's announcements, a regulator's notices, a newswire) → news items.

feedparser reads every RSS and Atom dialect and their broken variants; what it cannot read at all is refused whole.
An entry's id is the feed's own (``<guid>``, ``<id>``), else its link; its time the published time, else the updated
one; an entry with neither is refused, as is one published in the future. The feed's language (``<language>``,
``xml:lang``) or the desk's default says which language the item is in.

>>> from tapewatch.producers.news.text import SymbolMatcher
>>> rss = '''<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>TWSE</title>
... <language>zh-TW</language>
... <item><guid>a-1</guid><title>2330 &#21488;&#31309;&#38651; 重大訊息</title>
... <pubDate>Thu, 27 Nov 2026 01:00:00 GMT</pubDate><link>https://example.org/a-1</link></item>
... <item><title>undated</title></item></channel></rss>'''.encode()
>>> got = parse_feed(rss, "twse-notices", SymbolMatcher({"2330": ["台積電"]}), "twse", now_ms=1_795_741_300_000)
>>> [(i.item_id, i.symbol, i.title, i.language, i.ts) for i in got.items], got.refused
([('twse-notices:a-1', '2330', '2330 台積電 重大訊息', 'zh-TW', 1795741200000)], [('#1', 'no publish time')])
"""

from __future__ import annotations

import calendar
import hashlib
import io
from typing import Any, Final

import feedparser
import orjson

from tapewatch.producers.news.cnyes import MAX_FUTURE_MS, PageError, Parsed
from tapewatch.producers.news.text import SymbolMatcher, clean_text
from tapewatch.records import NEWS_SUMMARY_MAX, NEWS_TITLE_MAX, NEWS_URL_MAX, NewsItem, RecordError

#: a feed body larger than this is refused whole
MAX_FEED_BYTES: Final = 5_000_000


def parse_feed(
    body: bytes,
    source: str,
    matcher: SymbolMatcher,
    venue: str,
    now_ms: int,
    language: str = "en",
    content_type: str | None = None,
) -> Parsed:
    """The entries of one feed document; :class:`~tapewatch.producers.news.cnyes.PageError` when it is not a feed.
    ``content_type`` is the HTTP header the document came with: its charset wins over the document's own
    declaration, as RFC 7303 has it."""
    if len(body) > MAX_FEED_BYTES:
        raise PageError(f"{source}: a feed of {len(body):,} bytes, over the {MAX_FEED_BYTES:,} limit")
    headers = {"content-type": content_type} if content_type else None
    # A stream, never the bytes themselves: feedparser opens bytes that name a path as that file (/dev/zero…).
    feed = feedparser.parse(
        io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False, response_headers=headers
    )
    if not feed.entries and (feed.bozo or not feed.feed):
        reason = feed.get("bozo_exception") or "no feed and no entries"
        raise PageError(f"{source}: not an RSS or Atom feed ({str(reason).splitlines()[0][:200]})")
    lang = _language(feed.feed.get("language")) or language
    parsed = Parsed()
    for position, entry in enumerate(feed.entries):
        native = entry.get("id") or entry.get("link")
        if native:
            parsed.listed.append(f"{source}:{native}"[:200])
        try:
            records = _entry(entry, source, matcher, venue, now_ms, lang)
        except (ValueError, RecordError) as exc:
            parsed.refused.append((f"#{position}", str(exc)))
            parsed.refused_raw.append(orjson.dumps(entry, default=str))
            continue
        parsed.items += records
        parsed.unrelated += not records
    return parsed


def _entry(entry: Any, source: str, matcher: SymbolMatcher, venue: str, now_ms: int, lang: str) -> list[NewsItem]:
    title = clean_text(str(entry.get("title") or ""), NEWS_TITLE_MAX)
    if not title:
        raise ValueError("no title")
    when = entry.get("published_parsed") or entry.get("updated_parsed")
    if not when:
        raise ValueError("no publish time")
    ts = calendar.timegm(when) * 1000
    if ts > now_ms + MAX_FUTURE_MS:
        raise ValueError(f"published {(ts - now_ms) / 60_000:.0f} min in the future")
    updated = entry.get("updated_parsed")
    summary = clean_text(str(entry.get("summary") or ""), NEWS_SUMMARY_MAX)
    link = str(entry.get("link") or "")[:NEWS_URL_MAX]
    native = str(entry.get("id") or link or hashlib.blake2b(title.encode(), digest_size=8).hexdigest())
    symbols = matcher.find(title, summary)
    common = {
        "venue": venue, "item_id": f"{source}:{native}"[:200], "source": source, "ts": ts,
        "updated_ts": calendar.timegm(updated) * 1000 if updated else None, "title": title, "summary": summary,
        "url": link, "language": lang, "symbols": symbols,
    }  # fmt: skip
    return [NewsItem.from_dict({**common, "symbol": symbol}) for symbol in symbols]


def _language(tag: Any) -> str | None:
    """A feed's language tag as BCP 47 (``zh-tw`` → ``zh-TW``), or None when it is not one."""
    if not isinstance(tag, str) or not tag.strip():
        return None
    primary, _, region = tag.strip().replace("_", "-").partition("-")
    if not primary.isalpha() or len(primary) != 2:
        return None
    return f"{primary.lower()}-{region.upper()}" if region.isalpha() and 2 <= len(region) <= 4 else primary.lower()
