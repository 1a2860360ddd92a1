"""accounts: each tenant's account reference data, edited by its admins in the console

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28

One row per account of a tenant: its beneficial owner and linked-account group, the truth the console publishes to
``ref.accounts`` (:class:`tapewatch.records.AccountRef`). Row-level security gives the console's serving role its own
tenant's rows only, for reading and for writing (``WITH CHECK``: no row can be written into another tenant).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ROW_LEVEL_SECURITY = """
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY accounts_of_tenant ON accounts
    USING (tenant = (SELECT current_setting('tapewatch.tenant', true)))
    WITH CHECK (tenant = (SELECT current_setting('tapewatch.tenant', true)));
"""


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("tenant", sa.Text, sa.ForeignKey("tenants.tenant"), primary_key=True),
        sa.Column("account", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text),
        sa.Column("account_group", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
    )
    op.execute(ROW_LEVEL_SECURITY)


def downgrade() -> None:
    op.drop_table("accounts")
