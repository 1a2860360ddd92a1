"""A news list or feed → ``news.items``, polled politely: one async poller for any :class:`ListReader`.

* **Pace**: one request per ``TAPEWATCH_NEWS_POLL_INTERVAL_S`` (never below 60 s: these are public sites, not
  licensed feeds), every page of a list counting, spaced from the end of the previous answer (the site sees them
  that far apart however the network delays one), with jitter that only ever lengthens the gap.
* **Back-off**: timeouts, transport errors, HTTP errors (429 and 5xx above all) and unusable pages wait an
  exponential back-off with jitter, or the server's ``Retry-After`` when longer; the poller keeps going.
* **Conditional requests**: each page's ``ETag`` and ``Last-Modified`` ride on the next request for it; a
  ``304 Not Modified`` is a cheap no-op.
* **Bounded**: a body is read in chunks up to the list's cap and refused past it; its charset is the response's,
  broken bytes read as U+FFFD.
* **Once per item and edit** (:class:`~tapewatch.producers.news.dedup.Seen`): every record of an item (one per symbol)
  goes to ``news.items`` the first time the item is seen and again when it is re-edited, never on a repeat. An edit the
  source does not date (cnyes gives no edit time) gets ``updated_ts`` = when the poller noticed it, so that downstream
  tells it from a repeat.
* **Dead letters** on ``dlq.producers`` with their reason: every refused item (its raw bytes; once, however
  many polls serve it again) and every unusable page or oversized body (its first bytes).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import aiohttp
from yarl import URL

from tapewatch.backoff import Backoff
from tapewatch.producers.framework import Emitter, Pacer, back_off, unless_stopped
from tapewatch.producers.news.cnyes import PageError, Parsed
from tapewatch.producers.news.dedup import Seen
from tapewatch.producers.news.http import KEPT_BYTES, Answer, Validators, fetch
from tapewatch.producers.news.lists import ListReader
from tapewatch.producers.twse import polite_session
from tapewatch.records import NewsItem
from tapewatch.settings import Settings, host_port, is_loopback
from tapewatch.topics import NEWS_ITEMS

log = logging.getLogger(__name__)

#: the least time between two requests to a news site
MIN_INTERVAL_S: Final = 60.0
USER_AGENT: Final = "Mozilla/5.0 (X11; Linux x86_64) tapewatch/0.1"


@dataclass(slots=True)
class NewsStats:
    """What the poller did, for the command's summary."""

    polls: int = 0
    requests: int = 0
    not_modified: int = 0
    pages: int = 0
    items: int = 0
    repeats: int = 0
    unrelated: int = 0
    refused: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's end: the error that calls for a back-off (with the server's ``Retry-After``), whether the
    next page is worth reading, whether the poller was stopped meanwhile."""

    error: str | None = None
    retry_after_s: float | None = None
    more: bool = False
    stopped: bool = False


def poll_interval(url: str, configured_s: float, test_interval_s: float | None) -> float:
    """Seconds between requests: never below :data:`MIN_INTERVAL_S`, except against a local test server."""
    if test_interval_s is None:
        return max(MIN_INTERVAL_S, configured_s)
    host, _ = host_port(url, 443)
    if not is_loopback(host):
        raise ValueError("test_interval_s is only for local test servers; news sites are polled every ≥ 60 s")
    if test_interval_s <= 0:
        raise ValueError("test_interval_s must be positive")
    return test_interval_s


class NewsPoller:
    """Polls ``reader``'s list and emits its items. Use ``NewsPoller(settings, reader).run``.

    ``test_interval_s`` lowers the pace below the 60 s floor for tests and replay servers on this machine only: it
    is refused unless the list's address is a loopback one.
    """

    def __init__(
        self,
        settings: Settings,
        reader: ListReader,
        *,
        max_polls: int | None = None,
        timeout_s: float = 20.0,
        max_backoff_s: float = 900.0,
        rng: random.Random | None = None,
        test_interval_s: float | None = None,
    ) -> None:
        self.reader = reader
        self.interval_s = interval = poll_interval(
            str(reader.url(1, 0)), settings.sources.news_poll_interval_s, test_interval_s
        )
        self.max_polls = max_polls
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, 5.0))
        self.rng = rng or random.Random()
        self.pacer = Pacer(interval, jitter_s=0.1 * interval, rng=self.rng)
        self.backoff = Backoff(base_s=interval, cap_s=max(max_backoff_s, interval), rng=self.rng)
        self.validators: dict[int, Validators] = {}
        #: the page the next poll goes on to after page 1, when this one left the list unread that far
        self.resume: int | None = None
        self.seen = Seen()
        #: the refused items dead-lettered lately (a digest of their bytes)
        self.refused = Seen()
        self.stats = NewsStats()

    async def run(self, emitter: Emitter, stop: asyncio.Event) -> None:
        log.info("news: polling", extra={"fields": {"source": self.reader.source, "interval_s": self.interval_s}})
        headers = {"User-Agent": USER_AGENT, "Accept": self.reader.accept}
        async with polite_session(headers, self.timeout) as session:
            while not stop.is_set():
                if self.max_polls is not None and self.stats.polls >= self.max_polls:
                    return
                self.stats.polls += 1
                if await self._poll(session, emitter, stop):
                    return

    async def _poll(self, session: aiohttp.ClientSession, emitter: Emitter, stop: asyncio.Event) -> bool:
        """One poll: page 1, then on while behind, and on from where the previous poll had to leave off (an error,
        or ``max_pages`` read while still behind). True when asked to stop."""
        page, resume = 1, self.resume
        self.resume = None
        for _ in range(self.reader.max_pages):
            if await self.pacer.wait(stop):
                return True
            outcome = await self._request(session, page, emitter, stop)
            if outcome.stopped:
                return True
            if outcome.error is not None:
                self.resume = page if page > 1 else resume
                reason = f"{self.reader.source}: {outcome.error}"
                return await back_off(emitter, self.backoff, stop, reason, outcome.retry_after_s or 0.0)
            self.backoff.reset()
            if outcome.more:
                page += 1
            elif resume is not None and resume > page:
                page, resume = resume, None
            else:
                return False
        self.resume = page
        return False

    async def _request(
        self, session: aiohttp.ClientSession, page: int, emitter: Emitter, stop: asyncio.Event
    ) -> Outcome:
        url = self.reader.url(page, time.time())
        self.stats.requests += 1
        try:
            stopped, answer = await unless_stopped(stop, self._fetch(session, url, page))
        except TimeoutError:
            return Outcome(error="timeout")
        except (aiohttp.ClientError, OSError) as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:200])
        if stopped or answer is None:
            return Outcome(stopped=True)
        return self._answered(answer, page, url, emitter)

    async def _fetch(self, session: aiohttp.ClientSession, url: URL, page: int) -> Answer:
        try:
            return await fetch(session, url, self.validators.get(page, Validators()), self.reader.max_bytes)
        finally:
            self.pacer.done()  # the site saw this request before now: space the next one from here

    def _answered(self, answer: Answer, page: int, url: URL, emitter: Emitter) -> Outcome:
        if answer.status == 304:
            self.stats.not_modified += 1
            return Outcome()
        if answer.status != 200:
            return Outcome(error=f"HTTP {answer.status}", retry_after_s=answer.retry_after_s)
        source = str(url)
        if answer.body is None:
            emitter.dead_letter(answer.kept, f"body over the limit: {answer.oversize}", source=source)
            return Outcome(error="body over the limit")
        try:
            read = self.reader.read(answer.body, answer.charset, answer.content_type, int(time.time() * 1000))
        except PageError as exc:
            emitter.dead_letter(answer.body[:KEPT_BYTES], f"unusable page: {exc}", source=source)
            return Outcome(error="unusable page")
        except Exception as exc:  # a page the parser trips on is that page's failure, not the poller's
            log.exception("news: %s: the parser failed on a page", self.reader.source)
            reason = f"unusable page: the parser failed: {type(exc).__name__}: {exc}"
            emitter.dead_letter(answer.body[:KEPT_BYTES], reason, source=source)
            return Outcome(error="unusable page")
        self.validators[page] = answer.validators
        self.stats.pages += 1
        self.deliver(read.parsed, emitter, source)
        return Outcome(more=read.more)

    def deliver(self, parsed: Parsed, emitter: Emitter, source: str) -> None:
        """A page's refused items to the dead-letter topic, its new items and edits to ``news.items``."""
        for (name, reason), raw in zip(parsed.refused, parsed.refused_raw, strict=True):
            # once per item (its bytes): a list serves a bad item on every poll for as long as it lists it, and a
            # reason may change meanwhile ("published 59 min in the future")
            if self.refused.fresh(hashlib.blake2b(raw, digest_size=16).hexdigest(), 0, ""):
                self.stats.refused += 1
                emitter.dead_letter(raw, f"{reason}: {name}", source=source)
            else:
                emitter.skip()
        self.stats.unrelated += parsed.unrelated
        for records in _by_item(parsed.items):
            edition = self._edition(records)
            if edition is None:
                self.stats.repeats += 1
                emitter.skip()
                continue
            self.stats.items += 1
            for record in edition:
                emitter.emit(NEWS_ITEMS, record)

    def _edition(self, records: list[NewsItem]) -> list[NewsItem] | None:
        """The records of an item to publish: None for a repeat, dated for an edit its source did not date."""
        first = records[0]
        edit = first.updated_ts if first.updated_ts is not None else first.ts
        published = self.seen.items.get(first.item_id)
        text = "\n".join((first.title, first.summary, first.url, ",".join(first.symbols)))
        if not self.seen.fresh(first.item_id, edit, text):
            return None
        if published is not None and edit <= published[0]:
            return _dated(records, max(int(time.time() * 1000), published[0] + 1))
        return records


def _dated(records: list[NewsItem], noticed_ms: int) -> list[NewsItem]:
    """An edit the source did not date (new text, the same time), dated when it was noticed: downstream tells an
    edit from a repeat by ``updated_ts`` (the news stage signals an item again only for a later one)."""
    return [record.model_copy(update={"updated_ts": max(noticed_ms, record.ts)}) for record in records]


def _by_item(records: Iterable[NewsItem]) -> list[list[NewsItem]]:
    """The records of each item together (one per symbol it concerns), items in the page's order."""
    items: dict[str, list[NewsItem]] = {}
    for record in records:
        items.setdefault(record.item_id, []).append(record)
    return list(items.values())
