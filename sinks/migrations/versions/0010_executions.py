"""executions: a firm's drop copy kept whole, each tenant's rows its own

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28

One row per execution report of ``orders.firm`` (:class:`tapewatch.records.ExecutionReport`), keyed by its tenant and
``exec_id``, so a replay stores nothing twice. A firm must keep its own order records: the sink never prunes them.
Row-level security shows the console's serving role its own tenant's rows only (the sinks, the schema's owner, are not
bound by it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ROW_LEVEL_SECURITY = """
ALTER TABLE executions ENABLE ROW LEVEL SECURITY;
CREATE POLICY executions_of_tenant ON executions
    USING (tenant = (SELECT current_setting('tapewatch.tenant', true)));
"""


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("tenant", sa.Text, primary_key=True),
        sa.Column("exec_id", sa.Text, primary_key=True),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("venue", sa.Text, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("client_order_id", sa.Text),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("trader", sa.Text),
        sa.Column("owner", sa.Text),
        sa.Column("exec_type", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("order_kind", sa.Text, nullable=False),
        sa.Column("displayed", sa.Boolean, nullable=False),
        sa.Column("price", sa.Double),
        sa.Column("quantity", sa.Double, nullable=False),
        sa.Column("last_qty", sa.Double, nullable=False),
        sa.Column("last_price", sa.Double),
        sa.Column("cum_qty", sa.Double, nullable=False),
        sa.Column("leaves_qty", sa.Double, nullable=False),
    )
    op.create_index("executions_symbol_ts_idx", "executions", ["tenant", "symbol", "ts"])
    op.create_index("executions_account_ts_idx", "executions", ["tenant", "account", "ts"])
    op.create_index("executions_order_idx", "executions", ["tenant", "order_id"])
    op.execute(ROW_LEVEL_SECURITY)


def downgrade() -> None:
    op.drop_table("executions")
