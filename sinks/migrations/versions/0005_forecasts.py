"""forecasts: each forecasting model's forecast per symbol and bar (signals.forecasts)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The natural key (a model version forecasts a symbol's bar once) makes a replay hit ON CONFLICT DO NOTHING;
    # its index serves "this symbol's forecasts over time"; BRIN serves time ranges across symbols.
    op.create_table(
        "forecasts",
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("venue", sa.Text, primary_key=True),
        sa.Column("ts", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("model_version", sa.Text, primary_key=True),
        sa.Column("horizon", sa.Integer, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("prediction", sa.Double, nullable=False),
        sa.Column("confidence", sa.Double, nullable=False),
        sa.Column("probabilities", JSONB, nullable=False),
    )
    op.create_index("forecasts_ts_brin", "forecasts", ["ts"], postgresql_using="brin")


def downgrade() -> None:
    op.drop_table("forecasts")
