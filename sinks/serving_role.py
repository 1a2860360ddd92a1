"""What the console's serving role may do, granted by the schema's owner after every migration (idempotent: all
of the role's table privileges in the schema are revoked first, then these granted).

The role reads the market data a case page shows and the identities it signs in with; it changes a case's
workflow columns only; it appends notes, links and audit lines but never changes or removes them (no UPDATE,
DELETE or TRUNCATE grant, and triggers refuse those to every role but a superuser); it cannot alter a table or
disable a trigger, since only a table's owner may. Row-level security (migration 0007) limits every case, note,
link and audit read to the transaction's tenant.
"""

from __future__ import annotations

import logging
from typing import Final

from sqlalchemy import Connection, text

__all__ = ["GRANTS", "grant_serving_role"]

log = logging.getLogger(__name__)

GRANTS: Final = (
    "GRANT SELECT ON alembic_version TO {role}",  # the console checks the schema is the newest before serving
    "GRANT SELECT ON alerts, bars, book_snapshots, news_signals, severity_history, venue_indicators TO {role}",
    "GRANT SELECT ON executions TO {role}",  # a case's own firm's orders (row-level security: its tenant's only)
    "GRANT SELECT ON tenants, users, api_tokens TO {role}",
    "GRANT UPDATE (password_hash) ON users TO {role}",  # a hash made under older Argon2 parameters is renewed
    "GRANT SELECT, UPDATE (state, assignee, disposition, closed_at, closed_by, updated_at) ON cases TO {role}",
    "GRANT SELECT, INSERT ON case_notes, case_links, audit TO {role}",
    "GRANT USAGE ON SEQUENCE case_notes_note_id_seq TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON sessions, login_throttle TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON accounts TO {role}",  # a tenant admin's reference data (its own rows)
)


def grant_serving_role(conn: Connection, role: str) -> bool:
    """Grant ``role`` its privileges in the connection's schema; False (and a warning) when the role does not
    exist yet: the console cannot serve until it does and ``tapewatch db upgrade`` runs again."""
    if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
        log.warning(
            "postgres: role %s does not exist; create it to serve the console, then run `tapewatch db upgrade`", role
        )
        return False
    quoted = conn.dialect.identifier_preparer.quote(role)
    schema = conn.dialect.identifier_preparer.quote(conn.execute(text("SELECT current_schema()")).scalar_one())
    conn.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {quoted}"))
    conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {quoted}"))
    conn.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {quoted}"))
    for grant in GRANTS:
        conn.execute(text(grant.format(role=quoted)))
    return True
