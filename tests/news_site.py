"""A news site on this machine for tests of the news pollers (no network): an aiohttp server that answers each
request with the next of a list of replies, the way cnyes' news list and an exchange's RSS feed answer, and notes
when each request arrived and what it asked."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from tapewatch.producers.news.lists import CNYES_LIMIT
from tests.http_server import start_local

Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Site:
    """Answers the n-th request with ``replies[n]`` (the last one repeats); notes when each arrived and what it
    asked."""

    replies: list[Reply]
    arrivals: list[float] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append(time.monotonic())
        self.queries.append(dict(request.query))
        self.headers.append(dict(request.headers))
        return await self.replies[min(len(self.arrivals), len(self.replies)) - 1](request)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{path:.*}", self.handle)
        # a handler still asleep at the end (a hanging site) is cancelled soon, not awaited
        self.runner, url = await start_local(app, shutdown_timeout=0.5)
        return url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def answer(
    body: bytes,
    *,
    status: int = 200,
    content_type: str = "application/json",
    charset: str | None = "utf-8",
    etag: str | None = None,
    last_modified: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """An answer that honours conditional requests the way a web server does."""

    async def reply(request: web.Request) -> web.StreamResponse:
        validators = {"ETag": etag} if etag else {}
        if last_modified:
            validators["Last-Modified"] = last_modified
        unchanged = (etag and request.headers.get("If-None-Match") == etag) or (
            last_modified and request.headers.get("If-Modified-Since") == last_modified
        )
        if unchanged:
            return web.Response(status=304, headers=validators)
        return web.Response(
            status=status,
            body=body,
            content_type=content_type,
            charset=charset,
            headers={**validators, **(headers or {})},
        )

    return reply


@dataclass
class Streamed:
    written: int = 0
    completed: bool = False


def huge(size: int, declared: bool, streamed: Streamed) -> Reply:
    """A body of ``size`` bytes, written in chunks; ``streamed`` tells how much the client let through."""

    async def reply(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declared:
            response.content_length = size
        await response.prepare(request)
        chunk = b"[" + b" " * (65_536 - 1)
        try:
            while streamed.written < size:
                await response.write(chunk)
                streamed.written += len(chunk)
            await response.write_eof()
            streamed.completed = True
        except (ConnectionError, RuntimeError):
            pass
        return response

    return reply


def slow(seconds: float, then: Reply) -> Reply:
    async def reply(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await then(request)

    return reply


# --- what the sites answer ------------------------------------------------------------------------------------
def now_s() -> int:
    return int(time.time())


def cnyes_item(news_id: int, title: str, **extra: object) -> dict[str, object]:
    return {
        "newsId": news_id,
        "title": title,
        "summary": f"&lt;p&gt;{title}&lt;/p&gt;",
        "publishAt": now_s() - 600 + news_id,
        "categoryName": "台股新聞",
        "keyword": [],
        **extra,
    }


def cnyes_page(*items: object, page: int = 1, last_page: int = 1, charset: str = "utf-8") -> bytes:
    """One page of cnyes' list in its real envelope."""
    envelope = {
        "items": {
            "total": CNYES_LIMIT * last_page,
            "per_page": CNYES_LIMIT,
            "current_page": page,
            "last_page": last_page,
            "next_page_url": f"/?page={page + 1}" if page < last_page else None,
            "prev_page_url": None,
            "from": (page - 1) * CNYES_LIMIT + 1,
            "to": page * CNYES_LIMIT,
            "data": list(items),
        },
        "message": "",
        "statusCode": 200,
    }
    return json.dumps(envelope, ensure_ascii=False).encode(charset)


def rss(*entries: tuple[str, str, str | None], charset: str | None = "utf-8", declared: bool = True) -> bytes:
    """An exchange's announcements as RSS 2.0: (guid, title, pubDate or None) per item."""
    items = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>https://example.org/{guid}</link>"
        + (f"<pubDate>{when}</pubDate>" if when else "")
        + "</item>"
        for guid, title, when in entries
    )
    head = f'<?xml version="1.0" encoding="{charset}"?>' if declared else ""
    text = f'{head}<rss version="2.0"><channel><title>重大訊息</title><language>zh-TW</language>{items}</channel></rss>'
    return text.encode(charset or "utf-8")


def http_date(seconds_ago: int) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - seconds_ago))
