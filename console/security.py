"""Request-level security: who is asking (session cookie or API token) and from where (the peer, or what a
trusted proxy forwarded), the CSRF check of every form and script post, role checks, response headers and the
request-size limit."""

from __future__ import annotations

import ipaddress
import time
from functools import lru_cache
from typing import Annotated, Final

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tapewatch.console import audit
from tapewatch.console.auth import Principal, csrf_matches, load_api_token, load_session
from tapewatch.console.schema import ROLES
from tapewatch.console.tenancy import scoped
from tapewatch.console.workflow import may_supervise
from tapewatch.settings import Settings

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "LoginRequiredError",
    "RequestRefusedError",
    "SecurityHeaders",
    "audit_refusal",
    "checked_form",
    "client_of",
    "cookie_name",
    "engine_of",
    "forwarded_client",
    "passive_user",
    "service",
    "settings_of",
    "supervisor",
    "supervisor_or_session",
    "user",
]

SESSION_COOKIE: Final = "tw_session"
LOGIN_COOKIE: Final = "tw_login"  # the login form's CSRF token (double submit: there is no session yet)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
CSP: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class LoginRequiredError(Exception):
    """No valid session: pages redirect to the login, the API answers 401."""


class RequestRefusedError(Exception):
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


def cookie_name(settings: Settings, base: str) -> str:
    """A cookie's name: with the ``__Host-`` prefix when cookies are Secure, so the browser keeps it bound to
    this host and path ``/`` (no subdomain can set or shadow it)."""
    return f"__Host-{base}" if settings.console.cookie_secure else base


@lru_cache(maxsize=16)
def _networks(trusted: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in trusted.split(",") if part.strip())


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_client(peer: str, forwarded_for: str, trusted: str) -> str:
    """The client a request came from: its peer, unless the peer is a trusted proxy; then the nearest address
    in ``X-Forwarded-For`` (read right to left) that is not one of the trusted proxies.

    >>> forwarded_client("10.0.0.9", "6.6.6.6", "")
    '10.0.0.9'
    >>> forwarded_client("10.0.0.9", "6.6.6.6, 7.7.7.7", "10.0.0.0/8")
    '7.7.7.7'
    >>> forwarded_client("10.0.0.9", "1.2.3.4, 10.0.0.7", "10.0.0.0/8")
    '1.2.3.4'
    """
    networks = _networks(trusted)
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return peer


def client_of(request: Request) -> str:
    peer = request.client.host if request.client else "-"
    settings = settings_of(request)
    return forwarded_client(peer, request.headers.get("x-forwarded-for", ""), settings.console.trusted_proxies)


def _signed_in(request: Request, *, touch: bool) -> Principal:
    settings = settings_of(request)
    token = request.cookies.get(cookie_name(settings, SESSION_COOKIE))
    if not token:
        raise LoginRequiredError
    with engine_of(request).begin() as conn:
        principal = load_session(conn, settings, token, touch=touch)
    if principal is None:
        raise LoginRequiredError
    request.state.principal = principal  # for the refusal handlers' audit lines
    return principal


def user(request: Request) -> Principal:
    """The signed-in user; the request counts as activity (it keeps the session from going idle)."""
    return _signed_in(request, touch=True)


def passive_user(request: Request) -> Principal:
    """The signed-in user of a request the page makes by itself (live refresh): not activity."""
    return _signed_in(request, touch=False)


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
        audit_refusal(request, principal, "csrf.refused", "request")
        raise RequestRefusedError(403, "The form's security token is missing or wrong; reload the page and try again.")
    return {key: value for key, value in form.multi_items() if isinstance(value, str) and key != "csrf_token"} | {
        "alert_ids": ",".join(v for k, v in form.multi_items() if k == "alert_id" and isinstance(v, str))
    }


def supervisor(request: Request, principal: Annotated[Principal, Depends(user)]) -> Principal:
    return _require_supervisor(request, principal)


def supervisor_or_session(request: Request, principal: Annotated[Principal, Depends(service)]) -> Principal:
    """A supervisor's session on the API (a service token is refused: its role reads cases, not numbers)."""
    return _require_supervisor(request, principal)


def admin(request: Request, principal: Annotated[Principal, Depends(user)]) -> Principal:
    """A signed-in admin of the tenant (who edits its reference data)."""
    if principal.actor.role != ROLES[-1]:
        audit_refusal(request, principal, "forbidden", "page")
        raise RequestRefusedError(403, "This page is for the tenant's admins.")
    return principal


def _require_supervisor(request: Request, principal: Principal) -> Principal:
    if not may_supervise(principal.actor):
        audit_refusal(request, principal, "forbidden", "page")
        raise RequestRefusedError(403, "This page is for supervisors.")
    return principal


def audit_refusal(
    request: Request, principal: Principal, action: str, object_type: str, after: dict[str, str] | None = None
) -> None:
    """One audit line, in the principal's tenant, for a request refused (the path is its object)."""
    with scoped(engine_of(request), principal.tenant) as conn:
        audit.record(
            conn,
            principal.username,
            action,
            object_type,
            request.url.path,
            tenant=principal.tenant,
            after=after,
            client=client_of(request),
        )


class SecurityHeaders:
    """Adds the browser protections to every response and refuses a body over the size limit (413) before
    any route reads it."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, https: bool) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # HSTS only where the console is served over HTTPS (its cookies are Secure): a browser then never
        # tries it over plain HTTP again
        self.headers = [*_HEADERS, *([_HSTS] if https else [])]

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
                raise RequestRefusedError(413, "request body too large")
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # the server's own time to the first byte: what the console benchmark reads
                timing = f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode()
                message["headers"] = [*message.get("headers", []), *self.headers, (b"server-timing", timing)]
            await send(message)

        await self.app(scope, limited_receive, send_with_headers)


_HEADERS: Final = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
_HSTS: Final = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


async def _too_large(send: Send) -> None:
    body = b"request body too large"
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()), *_HEADERS]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
