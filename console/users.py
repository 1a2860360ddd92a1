"""Users, tenants and API tokens: what ``tapewatch console user|tenant|token`` does as the schema's owner, each
change audited in the tenant it concerns (actor: the operating-system user running the command)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, text, update

from tapewatch.console import audit
from tapewatch.console.passwords import hash_password, new_token, token_hash
from tapewatch.console.schema import ROLES, api_tokens, login_throttle, sessions, tenants, users
from tapewatch.errors import TapewatchError
from tapewatch.records import tenant_problem

__all__ = [
    "ApiToken",
    "add_tenant",
    "add_token",
    "add_user",
    "list_users",
    "revoke_token",
    "set_disabled",
    "set_password",
    "tenant_names",
]


@dataclass(frozen=True, slots=True)
class ApiToken:
    token_id: str
    service: str
    secret: str  # shown once to whoever created it; only its hash is stored


#: the tenant's own case of every stored public alert of its venues and of every stored alert of its own (later alerts
#: get theirs from the trigger)
_BACKFILL = text(
    """
    INSERT INTO cases (tenant, alert_id, symbol, venue, kind, model_version, severity, severity_rank, score,
                       opened_at, alert_ts)
    SELECT :tenant, alert_id, symbol, venue, kind, model_version, severity, severity_rank(severity), score,
           window_start, ts
    FROM alerts WHERE CASE WHEN tenant IS NULL THEN venue = ANY (:venues) OR '*' = ANY (:venues)
                           ELSE tenant = :tenant END
    ON CONFLICT DO NOTHING
    """
)


def add_tenant(conn: Connection, tenant: str, venues: list[str], actor: str) -> int:
    """Add a tenant whose cases are made from the alerts of ``venues`` (``*``: every venue); it gets a case of
    each such alert already stored. Returns how many."""
    if not venues:
        raise TapewatchError("console: a tenant needs at least one venue (or *)")
    problem = tenant_problem(tenant)
    if problem is not None:
        # it names the tenant's own Elasticsearch indices; a '-' would let one tenant's index pattern match another's
        raise TapewatchError(f"console: {problem}")
    if conn.execute(select(tenants.c.tenant).where(tenants.c.tenant == tenant)).first():
        raise TapewatchError(f"console: tenant {tenant!r} exists")
    conn.execute(insert(tenants).values(tenant=tenant, venues=venues))
    made = conn.execute(_BACKFILL, {"tenant": tenant, "venues": venues}).rowcount
    audit.record(conn, actor, "tenant.add", "tenant", tenant, tenant=tenant, after={"venues": venues, "cases": made})
    return int(made)


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
    audit.record(conn, actor, "user.add", "user", username, tenant=tenant, after={"role": role, "tenant": tenant})


def _tenant_of(conn: Connection, username: str) -> str:
    tenant = conn.execute(select(users.c.tenant).where(users.c.username == username)).scalar_one_or_none()
    if tenant is None:
        raise TapewatchError(f"console: no user {username!r}")
    return str(tenant)


def set_password(conn: Connection, username: str, password: str, actor: str) -> None:
    """A new password ends the user's sessions and lifts the name's lock."""
    tenant = _tenant_of(conn, username)
    conn.execute(
        update(users)
        .where(users.c.username == username)
        .values(password_hash=hash_password(password), password_changed_at=func.now())
    )
    conn.execute(sessions.delete().where(sessions.c.username == username))
    conn.execute(login_throttle.delete().where(login_throttle.c.key == f"user:{username}"))
    audit.record(conn, actor, "user.passwd", "user", username, tenant=tenant)


def set_disabled(conn: Connection, username: str, disabled: bool, actor: str) -> None:
    """Disabling ends the user's sessions at once."""
    tenant = _tenant_of(conn, username)
    conn.execute(update(users).where(users.c.username == username).values(disabled=disabled))
    if disabled:
        conn.execute(sessions.delete().where(sessions.c.username == username))
    audit.record(conn, actor, "user.disable" if disabled else "user.enable", "user", username, tenant=tenant)


def tenant_names(conn: Connection) -> set[str]:
    return set(conn.execute(select(tenants.c.tenant)).scalars())


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
    audit.record(
        conn,
        actor,
        "token.add",
        "api_token",
        token.token_id,
        tenant=tenant,
        after={"service": service, "tenant": tenant},
    )
    return token


def revoke_token(conn: Connection, token_id: str, actor: str) -> None:
    tenant = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(api_tokens.c.tenant)
    ).scalar_one_or_none()
    if tenant is None:
        raise TapewatchError(f"console: no live token {token_id!r}")
    audit.record(conn, actor, "token.revoke", "api_token", token_id, tenant=tenant)
