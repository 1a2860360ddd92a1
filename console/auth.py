"""Logins, sessions and CSRF tokens, all in PostgreSQL: a cookie carries a random token whose SHA-256 is the
session's key; the session holds the CSRF token every form and script sends back. Login throttling counts
wrong passwords per user (a lockout) and per client address (guesses spread over many names)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from console import audit
from console.passwords import hash_password, needs_rehash, new_token, token_hash, verify_password
from console.rules import Actor
from console.schema import api_tokens, login_failures, sessions, tenants, users
from tapewatch.settings import Settings

__all__ = [
    "ALL_VENUES",
    "LoginOutcome",
    "Principal",
    "csrf_matches",
    "load_api_token",
    "load_session",
    "login",
    "logout",
]

ALL_VENUES: Final = "*"
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

    @property
    def all_venues(self) -> bool:
        return ALL_VENUES in self.venues


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    status: int  # 200 signed in; 401 wrong name or password; 429 locked out or throttled
    token: str | None = None
    message: str = ""


def login(conn: Connection, settings: Settings, username: str, password: str, client: str) -> LoginOutcome:
    """Check a login and open a session; every outcome is audited, the password never."""
    window = timedelta(seconds=settings.console_lockout_s)
    recent = conn.execute(
        select(func.count())
        .select_from(login_failures)
        .where(login_failures.c.client == client, login_failures.c.at > func.now() - window)
    ).scalar_one()
    if recent >= settings.console_client_max_failures:
        audit.record(conn, username or "-", "login.throttled", "user", username or None, client=client)
        return LoginOutcome(429, message="Too many failed logins from this address; try again later.")
    user = conn.execute(
        select(users, func.now().label("now")).where(users.c.username == username).with_for_update()
    ).first()
    if user is not None and user.locked_until is not None and user.locked_until > user.now:
        audit.record(conn, username, "login.locked", "user", username, client=client)
        return LoginOutcome(429, message="This account is locked after wrong passwords; try again later.")
    if not verify_password(user.password_hash if user else None, password) or user is None or user.disabled:
        _count_failure(conn, settings, username, client, known=user is not None and not user.disabled)
        return LoginOutcome(401, message="Wrong user name or password.")
    return LoginOutcome(200, token=_open_session(conn, settings, username, password, user.password_hash, client))


def _count_failure(conn: Connection, settings: Settings, username: str, client: str, *, known: bool) -> None:
    conn.execute(insert(login_failures).values(client=client))
    after = None
    if known:
        failures = conn.execute(
            update(users)
            .where(users.c.username == username)
            .values(failed_logins=users.c.failed_logins + 1)
            .returning(users.c.failed_logins)
        ).scalar_one()
        if failures >= settings.console_login_max_failures:
            locked = func.now() + timedelta(seconds=settings.console_lockout_s)
            conn.execute(update(users).where(users.c.username == username).values(locked_until=locked))
            after = {"failed_logins": failures, "locked_for_s": settings.console_lockout_s}
    audit.record(conn, username or "-", "login.failed", "user", username or None, after=after, client=client)


def _open_session(
    conn: Connection, settings: Settings, username: str, password: str, stored_hash: str, client: str
) -> str:
    values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
    if needs_rehash(stored_hash):  # Argon2 parameters raised since the hash was made
        values["password_hash"] = hash_password(password)
    conn.execute(update(users).where(users.c.username == username).values(**values))
    token = new_token()
    conn.execute(
        insert(sessions).values(
            token_hash=token_hash(token),
            username=username,
            csrf_token=new_token(),
            expires_at=func.now() + timedelta(hours=settings.console_session_max_hours),
        )
    )
    audit.record(conn, username, "login", "user", username, client=client)
    return token


def logout(conn: Connection, principal: Principal, token: str, client: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash(token)))
    audit.record(conn, principal.username, "logout", "user", principal.username, client=client)


def load_session(conn: Connection, settings: Settings, token: str) -> Principal | None:
    """The signed-in user of a session cookie, or None when it is unknown, expired, idle too long or the
    user is disabled."""
    idle = timedelta(minutes=settings.console_session_idle_minutes)
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
    if row.stale:
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
