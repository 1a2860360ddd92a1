"""Users, tenants and API tokens: what ``tapewatch console user|tenant|token`` does, each change audited (actor:
the operating-system user running the command, or the caller's name)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, update

from console import audit
from console.passwords import hash_password, new_token, token_hash
from console.schema import ROLES, api_tokens, sessions, tenants, users
from tapewatch.errors import TapewatchError

__all__ = [
    "ApiToken",
    "add_tenant",
    "add_token",
    "add_user",
    "list_users",
    "revoke_token",
    "set_disabled",
    "set_password",
]


@dataclass(frozen=True, slots=True)
class ApiToken:
    token_id: str
    service: str
    secret: str  # shown once to whoever created it; only its hash is stored


def add_tenant(conn: Connection, tenant: str, venues: list[str], actor: str) -> None:
    if conn.execute(select(tenants.c.tenant).where(tenants.c.tenant == tenant)).first():
        raise TapewatchError(f"console: tenant {tenant!r} exists")
    conn.execute(insert(tenants).values(tenant=tenant, venues=venues))
    audit.record(conn, actor, "tenant.add", "tenant", tenant, after={"venues": venues})


def add_user(conn: Connection, username: str, password: str, role: str, tenant: str, actor: str) -> None:
    if role not in ROLES:
        raise TapewatchError(f"console: role must be one of {', '.join(ROLES)}")
    if not conn.execute(select(tenants.c.tenant).where(tenants.c.tenant == tenant)).first():
        raise TapewatchError(f"console: no tenant {tenant!r}")
    if conn.execute(select(users.c.username).where(users.c.username == username)).first():
        raise TapewatchError(f"console: user {username!r} exists")
    conn.execute(
        insert(users).values(username=username, password_hash=hash_password(password), role=role, tenant=tenant)
    )
    audit.record(conn, actor, "user.add", "user", username, after={"role": role, "tenant": tenant})


def set_password(conn: Connection, username: str, password: str, actor: str) -> None:
    """A new password ends the user's sessions and lifts a lockout."""
    changed = conn.execute(
        update(users)
        .where(users.c.username == username)
        .values(
            password_hash=hash_password(password), password_changed_at=func.now(), failed_logins=0, locked_until=None
        )
    ).rowcount
    if not changed:
        raise TapewatchError(f"console: no user {username!r}")
    conn.execute(sessions.delete().where(sessions.c.username == username))
    audit.record(conn, actor, "user.passwd", "user", username)


def set_disabled(conn: Connection, username: str, disabled: bool, actor: str) -> None:
    """Disabling ends the user's sessions at once."""
    if not conn.execute(update(users).where(users.c.username == username).values(disabled=disabled)).rowcount:
        raise TapewatchError(f"console: no user {username!r}")
    if disabled:
        conn.execute(sessions.delete().where(sessions.c.username == username))
    audit.record(conn, actor, "user.disable" if disabled else "user.enable", "user", username)


def list_users(conn: Connection) -> list[tuple[str, str, str, bool]]:
    rows = conn.execute(
        select(users.c.username, users.c.role, users.c.tenant, users.c.disabled).order_by(users.c.username)
    )
    return [(r.username, r.role, r.tenant, r.disabled) for r in rows]


def add_token(conn: Connection, service: str, tenant: str, actor: str) -> ApiToken:
    if not conn.execute(select(tenants.c.tenant).where(tenants.c.tenant == tenant)).first():
        raise TapewatchError(f"console: no tenant {tenant!r}")
    token = ApiToken(token_id=secrets.token_hex(6), service=service, secret=new_token())
    conn.execute(
        insert(api_tokens).values(
            token_id=token.token_id,
            service=service,
            token_hash=token_hash(token.secret),
            tenant=tenant,
            created_by=actor,
        )
    )
    audit.record(conn, actor, "token.add", "api_token", token.token_id, after={"service": service, "tenant": tenant})
    return token


def revoke_token(conn: Connection, token_id: str, actor: str) -> None:
    revoked = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    ).rowcount
    if not revoked:
        raise TapewatchError(f"console: no live token {token_id!r}")
    audit.record(conn, actor, "token.revoke", "api_token", token_id)
