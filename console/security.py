"""Request-level security: who is asking (session cookie or API token), the CSRF check of every form and
script post, role checks, response headers and the request-size limit."""

from __future__ import annotations

import time
from typing import Annotated, Final

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console import audit
from console.auth import Principal, csrf_matches, load_api_token, load_session
from console.rules import may_supervise
from tapewatch.settings import Settings

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "LoginRequiredError",
    "RefusedError",
    "SecurityHeaders",
    "checked_form",
    "client_of",
    "engine_of",
    "service",
    "settings_of",
    "supervisor",
    "user",
]

SESSION_COOKIE: Final = "tw_session"
LOGIN_COOKIE: Final = "tw_login"  # the login form's CSRF token (double submit: there is no session yet)
CSP: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class LoginRequiredError(Exception):
    """No valid session: pages redirect to the login, the API answers 401."""


class RefusedError(Exception):
    """Refused with ``status`` (403 forbidden, 413 too large, …) and audited where it matters."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def client_of(request: Request) -> str:
    return request.client.host if request.client else "-"


def user(request: Request) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequiredError
    with engine_of(request).begin() as conn:
        principal = load_session(conn, settings_of(request), token)
    if principal is None:
        raise LoginRequiredError
    request.state.principal = principal  # for the refusal handlers' audit lines
    return principal


def service(request: Request) -> Principal:
    """A downstream service by its ``Authorization: Bearer <token>`` (or a signed-in user, read-only use)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        with engine_of(request).begin() as conn:
            principal = load_api_token(conn, header[7:].strip())
        if principal is None:
            raise LoginRequiredError
        request.state.principal = principal
        return principal
    return user(request)


async def checked_form(request: Request, principal: Annotated[Principal, Depends(user)]) -> dict[str, str]:
    """The posted form, once its CSRF token (field ``csrf_token`` or header ``X-CSRF-Token``) matches the
    session's; a mismatch is refused (403) and audited."""
    form = await request.form()
    given = form.get("csrf_token") or request.headers.get("x-csrf-token")
    if not csrf_matches(principal.csrf, given if isinstance(given, str) else None):
        with engine_of(request).begin() as conn:
            audit.record(
                conn, principal.username, "csrf.refused", "request", request.url.path, client=client_of(request)
            )
        raise RefusedError(403, "The form's security token is missing or wrong; reload the page and try again.")
    return {key: value for key, value in form.multi_items() if isinstance(value, str) and key != "csrf_token"} | {
        "alert_ids": ",".join(v for k, v in form.multi_items() if k == "alert_id" and isinstance(v, str))
    }


def supervisor(request: Request, principal: Annotated[Principal, Depends(user)]) -> Principal:
    if not may_supervise(principal.actor):
        with engine_of(request).begin() as conn:
            audit.record(conn, principal.username, "forbidden", "page", request.url.path, client=client_of(request))
        raise RefusedError(403, "This page is for supervisors.")
    return principal


class SecurityHeaders:
    """Adds the browser protections to every response and refuses a body over the size limit (413) before
    any route reads it."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _too_large(send)
            return
        received, started = 0, time.perf_counter()

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise RefusedError(413, "request body too large")
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # the server's own time to the first byte: what the console benchmark reads
                timing = f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode()
                message["headers"] = [*message.get("headers", []), *_HEADERS, (b"server-timing", timing)]
            await send(message)

        await self.app(scope, limited_receive, send_with_headers)


_HEADERS: Final = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


async def _too_large(send: Send) -> None:
    body = b"request body too large"
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()), *_HEADERS]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
