"""The one place a console transaction learns its tenant: :func:`scoped` sets ``tapewatch.tenant`` for the
transaction, and PostgreSQL's row-level security (migration 0007) lets the serving role see and change only
that tenant's cases, notes, links and audit lines. A connection that never set it sees none of them.

Why row-level security rather than a filter in every query: the filter then lives in the database, beside the
rows, so a query written tomorrow without it still cannot read another tenant's row; and the queue's indexes
lead with the tenant, so the policy costs an index prefix, not a scan."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from sqlalchemy import Connection, Engine, func, select

__all__ = ["TENANT_SETTING", "scoped", "set_tenant"]

TENANT_SETTING: Final = "tapewatch.tenant"


def set_tenant(conn: Connection, tenant: str) -> None:
    """Scope the rest of ``conn``'s transaction to ``tenant`` (``set_config(…, is_local => true)``)."""
    conn.execute(select(func.set_config(TENANT_SETTING, tenant, True)))


@contextmanager
def scoped(engine: Engine, tenant: str) -> Iterator[Connection]:
    """A transaction that sees ``tenant``'s rows only; committed when the block ends without an error."""
    with engine.begin() as conn:
        set_tenant(conn, tenant)
        yield conn
