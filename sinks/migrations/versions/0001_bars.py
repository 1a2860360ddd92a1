"""bars: one-minute bars keyed by (symbol, venue, start)

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bars",
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("venue", sa.Text, primary_key=True),
        sa.Column("start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Double, nullable=False),
        sa.Column("high", sa.Double, nullable=False),
        sa.Column("low", sa.Double, nullable=False),
        sa.Column("close", sa.Double, nullable=False),
        sa.Column("volume", sa.Double, nullable=False),
        sa.Column("vwap", sa.Double, nullable=False),
        sa.Column("trades", sa.Integer, nullable=False),
        sa.Column("price_change_pct", sa.Double),
        sa.Column("volume_change_pct", sa.Double),
        sa.Column("ingested_offset", sa.BigInteger),
    )
    # Range scans by time across symbols (dashboards, training extracts); the primary key serves per-symbol ranges.
    op.create_index("bars_start_idx", "bars", ["start"])


def downgrade() -> None:
    op.drop_table("bars")
