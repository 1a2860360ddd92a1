"""The console's tables (migrations ``sinks/migrations/versions/0004_console.py``, ``0007_tenancy.py`` and
``0011_accounts.py``) as SQLAlchemy Core tables for queries; checked against the migrated database by the integration
tests. Their own MetaData: the sinks' COPY staging tables are made for ``tapewatch.sinks.db.metadata`` only."""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    FetchedValue,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "DISPOSITIONS",
    "ROLES",
    "STATES",
    "accounts",
    "api_tokens",
    "audit",
    "case_links",
    "case_notes",
    "cases",
    "login_throttle",
    "metadata",
    "sessions",
    "severity_history",
    "tenants",
    "users",
]

ROLES: Final = ("analyst", "supervisor", "admin")
STATES: Final = ("new", "in_review", "escalated", "closed")
DISPOSITIONS: Final = ("true_positive", "false_positive", "needs_more_information", "referred")
TS = DateTime(timezone=True)

metadata = MetaData()

tenants = Table("tenants", metadata, Column("tenant", Text, primary_key=True), Column("venues", ARRAY(Text)))
users = Table(
    "users",
    metadata,
    Column("username", Text, primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("tenant", Text, ForeignKey("tenants.tenant"), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("password_changed_at", TS, nullable=False),
)
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("username", Text, nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("last_seen_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
)
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", TS, nullable=False),
    Column("locked_until", TS),
)
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", Text, primary_key=True),
    Column("service", Text, nullable=False),
    Column("token_hash", Text, nullable=False),
    Column("tenant", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS),
)
cases = Table(
    "cases",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("alert_id", Text, primary_key=True),
    Column("symbol", Text, nullable=False),
    Column("venue", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("severity_rank", SmallInteger, nullable=False),
    Column("score", Double, nullable=False),
    Column("opened_at", TS, nullable=False),
    Column("alert_ts", TS, nullable=False),
    Column("state", Text, nullable=False),
    Column("assignee", Text),
    Column("disposition", Text),
    Column("closed_at", TS),
    Column("closed_by", Text),
    Column("updated_at", TS, nullable=False),
)
case_notes = Table(
    "case_notes",
    metadata,
    Column("note_id", BigInteger, primary_key=True),
    Column("tenant", Text, nullable=False),
    Column("alert_id", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("at", TS, nullable=False),
    Column("body", Text, nullable=False),
    Column("supersedes", BigInteger),
)
case_links = Table(
    "case_links",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("alert_id", Text, primary_key=True),
    Column("linked_id", Text, primary_key=True),
    Column("linked_by", Text, nullable=False),
    Column("at", TS, nullable=False),
)
severity_history = Table(
    "severity_history",
    metadata,
    Column("alert_id", Text, primary_key=True),
    Column("ts", TS, primary_key=True),
    Column("severity", Text, nullable=False),
    Column("score", Double, nullable=False),
)
#: a tenant's account reference data (migration 0011), which its admins edit and the console publishes
accounts = Table(
    "accounts",
    metadata,
    Column("tenant", Text, ForeignKey("tenants.tenant"), primary_key=True),
    Column("account", Text, primary_key=True),
    Column("owner", Text),
    Column("account_group", Text),
    Column("updated_at", TS, nullable=False),
    Column("updated_by", Text, nullable=False),
)
audit = Table(
    "audit",
    metadata,
    # numbered by the database's chain trigger (under its lock), never by the inserting client
    Column("audit_id", BigInteger, primary_key=True, autoincrement=False, server_default=FetchedValue()),
    Column("at", TS, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("object_type", Text, nullable=False),
    Column("object_id", Text),
    Column("before", JSONB(none_as_null=True)),
    Column("after", JSONB(none_as_null=True)),
    Column("client", Text),
    Column("tenant", Text),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    # no RETURNING: the serving role may append a line it may not read back (one of no tenant's)
    implicit_returning=False,
)
