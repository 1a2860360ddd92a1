"""tenant alerts: an alert raised from a tenant's confidential data (a firm's drop copy) belongs to that tenant alone

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28

``alerts.tenant`` is the tenant whose data raised the alert (:attr:`tapewatch.records.Alert.tenant`), null for an
alert from public market data. Such an alert names the firm's accounts in its evidence, so:

- the ``alerts_to_cases`` trigger makes its case for its own tenant only, whatever that tenant's venues (a public
  alert still makes one case per tenant whose venues cover it);
- row-level security on ``alerts`` shows the console's serving role the public alerts and its own tenant's only (the
  schema's owner, the sinks, is not bound by it); the console reads alerts only through its cases, and the policy
  holds even for a query that forgot to.
"""

from __future__ import annotations

from importlib import import_module

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_0008 = import_module("tapewatch.sinks.migrations.versions.0008_news")
#: the trigger function that turns alerts into cases, as revision 0008 left it
_CASES_0008: str = _0008._CASES_0007.replace(_0008._HISTORY_KEPT, _0008._HISTORY_REWRITTEN)
_EVERY_COVERING_TENANT = (
    "FOR owner IN SELECT tenant FROM tenants WHERE NEW.venue = ANY (venues) OR '*' = ANY (venues) LOOP"
)
_OWN_TENANT_OR_COVERING = (
    "FOR owner IN SELECT tenant FROM tenants\n"
    "        WHERE CASE WHEN NEW.tenant IS NULL THEN NEW.venue = ANY (venues) OR '*' = ANY (venues)\n"
    "                   ELSE tenant = NEW.tenant END LOOP"
)
ROW_LEVEL_SECURITY = """
ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;
CREATE POLICY alerts_public_or_own ON alerts
    USING (tenant IS NULL OR tenant = (SELECT current_setting('tapewatch.tenant', true)));
"""


def upgrade() -> None:
    op.add_column("alerts", sa.Column("tenant", sa.Text))
    op.create_index("alerts_tenant_idx", "alerts", ["tenant", "ts"], postgresql_where=sa.text("tenant IS NOT NULL"))
    op.execute(ROW_LEVEL_SECURITY)
    assert _EVERY_COVERING_TENANT in _CASES_0008
    op.execute(_CASES_0008.replace(_EVERY_COVERING_TENANT, _OWN_TENANT_OR_COVERING))


def downgrade() -> None:
    held = op.get_bind().execute(sa.text("SELECT count(*) FROM alerts WHERE tenant IS NOT NULL")).scalar_one()
    if held:
        # without the column they would be public alerts, their accounts in every covering tenant's cases
        raise RuntimeError(f"{held} tenant alert(s) stored: a downgrade below 0009 would make them public")
    op.execute(_CASES_0008)
    op.execute("DROP POLICY alerts_public_or_own ON alerts; ALTER TABLE alerts DISABLE ROW LEVEL SECURITY;")
    op.drop_index("alerts_tenant_idx", "alerts")
    op.drop_column("alerts", "tenant")
