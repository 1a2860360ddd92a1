"""What the news poller reads: cnyes' news list (paged) and any RSS or Atom feed (one document).

A reader knows where a source's pages are and what one holds; the poller (:mod:`tapewatch.producers.news.poller`) does
the asking. cnyes' list is asked the way its public clients ask it (``page``, ``limit``, a time window ``startAt`` –
``endAt`` in epoch seconds, newest first). One poll reads page 1 and goes on to the next page only while the last item
of a page is one it has not listed before (so news arrived faster than a page between two polls is not missed), up to
``max_pages``; where a poll had to stop while still behind (an error, or ``max_pages`` read), the next one goes on from
that page after reading page 1. The first polls of a run thereby read back through the window. Items only ever move to
later pages as news arrives, so going on later misses none; the repeats are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from yarl import URL

from tapewatch.producers.news.cnyes import MAX_PAGE_BYTES, SOURCE, Parsed, parse_newslist
from tapewatch.producers.news.dedup import Seen
from tapewatch.producers.news.http import as_utf8
from tapewatch.producers.news.rss import MAX_FEED_BYTES, parse_feed
from tapewatch.producers.news.text import SymbolMatcher

#: items per page of cnyes' list (its clients ask for 30; so does its site)
CNYES_LIMIT: Final = 30
#: how far back the list is read on the first poll (the window of every request)
CNYES_WINDOW_S: Final = 86_400
#: pages one poll reads at most (the first poll of a run: 5 × 30 items back through the window)
CNYES_MAX_PAGES: Final = 5
JSON_ACCEPT: Final = "application/json"
FEED_ACCEPT: Final = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"


@dataclass(frozen=True, slots=True)
class Page:
    """A page read: its items, and whether the next page of the list is worth reading in this poll."""

    parsed: Parsed
    more: bool = False


class ListReader(Protocol):
    """A source's list: its name, its pages' address, the cap on a page and what one holds."""

    source: str
    max_bytes: int
    max_pages: int
    accept: str

    def url(self, page: int, now_s: float) -> URL: ...

    def read(self, body: bytes, charset: str | None, content_type: str, now_ms: int) -> Page:
        """The page's items; :class:`~tapewatch.producers.news.cnyes.PageError` when it is not a page of this list."""
        ...


class CnyesList:
    """cnyes' news list (``TAPEWATCH_NEWS_CNYES_URL``), paged as the module's note says."""

    source = SOURCE
    max_bytes = MAX_PAGE_BYTES
    accept = JSON_ACCEPT

    def __init__(
        self,
        url: str,
        matcher: SymbolMatcher,
        venue: str,
        *,
        limit: int = CNYES_LIMIT,
        window_s: int = CNYES_WINDOW_S,
        max_pages: int = CNYES_MAX_PAGES,
    ) -> None:
        if not 1 <= limit <= 100 or window_s < 60 or max_pages < 1:
            raise ValueError(f"cnyes: limit 1..100, window ≥ 60 s, pages ≥ 1 (got {limit}, {window_s}, {max_pages})")
        self.base = URL(url)
        self.matcher = matcher
        self.venue = venue
        self.limit = limit
        self.window_s = window_s
        self.max_pages = max_pages
        #: every item id listed lately, published or not (bounded)
        self.listed = Seen()

    def url(self, page: int, now_s: float) -> URL:
        end = int(now_s)
        return self.base.with_query(page=page, limit=self.limit, startAt=end - self.window_s, endAt=end)

    def read(self, body: bytes, charset: str | None, content_type: str, now_ms: int) -> Page:
        parsed = parse_newslist(as_utf8(body, charset), self.matcher, self.venue, now_ms)
        behind = bool(parsed.listed) and parsed.listed[-1] not in self.listed
        for item_id in parsed.listed:
            self.listed.fresh(item_id, 0, "")
        paged = parsed.page is not None and parsed.last_page is not None and parsed.page < parsed.last_page
        return Page(parsed, more=behind and paged)


class FeedList:
    """One RSS or Atom document a desk names: a single page, read whole every poll (conditionally)."""

    max_bytes = MAX_FEED_BYTES
    max_pages = 1
    accept = FEED_ACCEPT

    def __init__(self, url: str, source: str, matcher: SymbolMatcher, venue: str, language: str) -> None:
        self.address = URL(url)
        self.source = source
        self.matcher = matcher
        self.venue = venue
        self.language = language

    def url(self, page: int, now_s: float) -> URL:
        return self.address

    def read(self, body: bytes, charset: str | None, content_type: str, now_ms: int) -> Page:
        parsed = parse_feed(
            body, self.source, self.matcher, self.venue, now_ms, self.language, content_type=content_type or None
        )
        return Page(parsed)
