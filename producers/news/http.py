"""One polite HTTP read of a news list or feed: conditional, bounded, its charset and ``Retry-After`` understood.

A source answers ``304 Not Modified`` to a request that carries the validators of its previous answer
(``ETag`` → ``If-None-Match``, ``Last-Modified`` → ``If-Modified-Since``), which costs it and us nothing. A body is
read in chunks and given up as soon as it passes the cap, so a 10 MB answer never sits in memory whole: only its
first :data:`KEPT_BYTES` are kept, for the dead letter.

>>> retry_after("120", now=0.0), retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=30.0), retry_after("soon", 0.0)
(120.0, 30.0, None)
>>> as_utf8("台積電".encode("big5"), "big5").decode(), as_utf8(b"\\xef\\xbb\\xbf{}", None), as_utf8(b"\\xff1", "utf-8")
('台積電', b'{}', b'\\xef\\xbf\\xbd1')
"""

from __future__ import annotations

import codecs
import email.utils
import time
from dataclasses import dataclass
from typing import Final

import aiohttp
from yarl import URL

#: what is kept of a body refused for its size, or of an unusable one, for the dead-letter topic
KEPT_BYTES: Final = 256 * 1024
#: a ``Retry-After`` longer than this is read as this (a server's typo must not park a poller for a week)
MAX_RETRY_AFTER_S: Final = 3_600.0
_CHUNK: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Validators:
    """What a source said about its last answer, to ask it whether anything changed since."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: its status, body (``None`` when over the cap: ``kept`` holds its start), validators, charset,
    ``Content-Type`` and ``Retry-After`` (seconds)."""

    status: int
    body: bytes | None
    kept: bytes
    validators: Validators
    charset: str | None
    content_type: str
    retry_after_s: float | None
    #: the reason a body was not read whole
    oversize: str | None = None


async def fetch(session: aiohttp.ClientSession, url: URL, validators: Validators, max_bytes: int) -> Answer:
    """GET ``url`` conditionally; a body over ``max_bytes`` is not read past the cap (see :class:`Answer`)."""
    async with session.get(url, headers=validators.headers(), allow_redirects=True) as response:
        body, kept, oversize = await _read_capped(response, max_bytes)
        return Answer(
            status=response.status,
            body=body,
            kept=kept,
            validators=Validators(response.headers.get("ETag"), response.headers.get("Last-Modified")),
            charset=response.charset,
            content_type=response.headers.get("Content-Type", ""),
            retry_after_s=retry_after(response.headers.get("Retry-After"), _server_now(response)),
            oversize=oversize,
        )


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> tuple[bytes | None, bytes, str | None]:
    """(the body, or None past the cap; its first bytes; why it was not read whole)."""
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        response.close()  # drops the connection: the rest is never read
        return None, b"", f"a body of {declared:,} bytes (Content-Length), over the {max_bytes:,}-byte limit"
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            response.close()
            kept = b"".join(chunks)[:KEPT_BYTES]
            return None, kept, f"a body of more than {max_bytes:,} bytes, over the limit (not read further)"
        chunks.append(chunk)
    body = b"".join(chunks)
    return body, body[:KEPT_BYTES], None


def _server_now(response: aiohttp.ClientResponse) -> float:
    """The server's clock (its ``Date``, else ours), against which an HTTP-date ``Retry-After`` counts."""
    date = response.headers.get("Date")
    try:
        return email.utils.parsedate_to_datetime(date).timestamp() if date else time.time()
    except (TypeError, ValueError):
        return time.time()


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` asks for (a number of seconds, or an HTTP date counted from ``now``, the
    server's clock), at most :data:`MAX_RETRY_AFTER_S`; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER_S)


def as_utf8(body: bytes, charset: str | None) -> bytes:
    """``body`` as UTF-8, read in the charset the response named (UTF-8 when none, or an unknown one); bytes that
    are not of that charset become U+FFFD, a leading byte-order mark goes."""
    try:
        codec = codecs.lookup(charset or "utf-8").name
    except LookupError:
        codec = "utf-8"
    if codec != "utf-8":
        return body.decode(codec, errors="replace").encode()
    try:
        body.decode()
    except UnicodeDecodeError:
        return body.decode("utf-8-sig", errors="replace").encode()
    return body.removeprefix(codecs.BOM_UTF8)
