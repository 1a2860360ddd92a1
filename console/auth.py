"""Logins, sessions and CSRF tokens, all in PostgreSQL: a cookie carries a random token whose SHA-256 is the
session's key; the session holds the CSRF token every form and script sends back. Sign-in attempts are
throttled per user name and per client address (:mod:`tapewatch.console.throttle`). This module alone reads the identity
tables (users, sessions, API tokens) to turn a credential into a :class:`Principal` with its tenant."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from tapewatch.console import audit, throttle
from tapewatch.console.passwords import hash_password, needs_rehash, new_token, token_hash, verify_password
from tapewatch.console.schema import api_tokens, sessions, tenants, users
from tapewatch.console.tenancy import set_tenant
from tapewatch.console.workflow import Actor
from tapewatch.settings import Settings

__all__ = [
    "FAILED",
    "LoginOutcome",
    "Principal",
    "csrf_matches",
    "load_api_token",
    "load_session",
    "login",
    "logout",
]

#: a session's last-seen time is written at most this often (a write per page view would be waste)
TOUCH_EVERY: Final = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a signed-in user, or a service by its API token (role ``service``: read-only)."""

    username: str
    role: str
    tenant: str
    venues: tuple[str, ...]
    csrf: str = ""

    @property
    def actor(self) -> Actor:
        return Actor(self.username, self.role)


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    status: int  # 200 signed in; 401 anything else, with one message whatever the reason
    token: str | None = None
    message: str = ""


#: one answer for every failed sign-in: a wrong password, an unknown or disabled name, a locked name or address
FAILED: Final = LoginOutcome(
    401,
    message="Sign-in failed. Check your user name and password; after repeated "
    "failures signing in is paused for a while.",
)


def login(engine: Engine, settings: Settings, username: str, password: str, client: str) -> LoginOutcome:
    """Check a login and open a session. The attempt is counted first (:mod:`tapewatch.console.throttle`), the password
    checked with no database connection held (Argon2 takes tens of milliseconds: a burst must not hold the
    pool), then the outcome written; every checked password is audited, the password never."""
    window = timedelta(seconds=settings.console.lockout_s)
    with engine.begin() as conn:
        user = conn.execute(
            select(users.c.password_hash, users.c.tenant, users.c.disabled).where(users.c.username == username)
        ).first()
        tenant = user.tenant if user is not None else None
        for key, limit in (
            (f"client:{client}", settings.console.client_max_failures),
            (f"user:{username}", settings.console.login_max_failures),
        ):
            held = throttle.reserve(conn, key, limit, window)
            if held.refused:
                if held.lock_event:
                    _audit_lock(conn, held, username, tenant if key.startswith("user:") else None, client)
                return FAILED
    signed_in = verify_password(user.password_hash if user else None, password) and user is not None
    with engine.begin() as conn:
        if tenant is not None:
            set_tenant(conn, tenant)
        if not signed_in or user is None or user.disabled:
            audit.record(conn, username or "-", "login.failed", "user", username or None, tenant=tenant, client=client)
            return FAILED
        throttle.release(conn, f"client:{client}", forget=False)
        throttle.release(conn, f"user:{username}", forget=True)
        throttle.purge(conn, window)
        token = _open_session(conn, settings, username, password, user.password_hash)
        audit.record(conn, username, "login", "user", username, tenant=tenant, client=client)
    return LoginOutcome(200, token=token)


def _audit_lock(conn: Connection, held: throttle.Reservation, username: str, tenant: str | None, client: str) -> None:
    """The one audit line of a lock (the attempts refused after it are counted, not written)."""
    if tenant is not None:
        set_tenant(conn, tenant)
    audit.record(
        conn,
        username or "-",
        "login.locked",
        "user" if held.key.startswith("user:") else "client",
        username if held.key.startswith("user:") else client,
        tenant=tenant,
        after={"failures": held.failures, "limit": held.limit},
        client=client,
    )


def _open_session(conn: Connection, settings: Settings, username: str, password: str, stored_hash: str) -> str:
    if needs_rehash(stored_hash):  # Argon2 parameters raised since the hash was made
        conn.execute(update(users).where(users.c.username == username).values(password_hash=hash_password(password)))
    token = new_token()
    conn.execute(
        insert(sessions).values(
            token_hash=token_hash(token),
            username=username,
            csrf_token=new_token(),
            expires_at=func.now() + timedelta(hours=settings.console.session_max_hours),
        )
    )
    return token


def logout(conn: Connection, principal: Principal, token: str, client: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash(token)))
    audit.record(conn, principal.username, "logout", "user", principal.username, tenant=principal.tenant, client=client)


def load_session(conn: Connection, settings: Settings, token: str, *, touch: bool = True) -> Principal | None:
    """The signed-in user of a session cookie, or None when it is unknown, expired, idle too long or the
    user is disabled. ``touch`` False: a request the page makes by itself (the live queue's refresh, the event
    stream), which must not keep an unattended session alive past its idle limit."""
    idle = timedelta(minutes=settings.console.session_idle_minutes)
    key = token_hash(token)
    row = conn.execute(
        select(
            users.c.username,
            users.c.role,
            users.c.tenant,
            tenants.c.venues,
            sessions.c.csrf_token,
            (sessions.c.last_seen_at < func.now() - TOUCH_EVERY).label("stale"),
        )
        .join(users, users.c.username == sessions.c.username)
        .join(tenants, tenants.c.tenant == users.c.tenant)
        .where(
            sessions.c.token_hash == key,
            sessions.c.expires_at > func.now(),
            sessions.c.last_seen_at > func.now() - idle,
            users.c.disabled.is_(False),
        )
    ).first()
    if row is None:
        return None
    if row.stale and touch:
        conn.execute(update(sessions).where(sessions.c.token_hash == key).values(last_seen_at=func.now()))
    return Principal(row.username, row.role, row.tenant, tuple(row.venues), row.csrf_token)


def load_api_token(conn: Connection, token: str) -> Principal | None:
    row = conn.execute(
        select(api_tokens.c.service, api_tokens.c.token_id, api_tokens.c.tenant, tenants.c.venues)
        .join(tenants, tenants.c.tenant == api_tokens.c.tenant)
        .where(and_(api_tokens.c.token_hash == token_hash(token), api_tokens.c.revoked_at.is_(None)))
    ).first()
    if row is None:
        return None
    return Principal(f"service:{row.service}:{row.token_id}", "service", row.tenant, tuple(row.venues))


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison; an empty expected token (an API principal) never matches.

    >>> csrf_matches("abc", "abc"), csrf_matches("abc", "abd"), csrf_matches("abc", None), csrf_matches("", "")
    (True, False, False, False)
    """
    return bool(expected) and given is not None and hmac.compare_digest(expected.encode(), given.encode())
