"""book snapshots: the 5-level order books of md.books, keyed by (symbol, venue, ts)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The natural key makes a replayed book hit ON CONFLICT DO NOTHING (sinks/db.py); its index also serves the
    # console's per-symbol time ranges. Levels stay as the record's lists, [[price, size], …] best first.
    op.create_table(
        "book_snapshots",
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("venue", sa.Text, primary_key=True),
        sa.Column("ts", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("bids", JSONB, nullable=False),
        sa.Column("asks", JSONB, nullable=False),
    )
    # Cross-symbol time ranges and the retention's search for the newest book: BRIN is tiny and almost free to keep up
    # on a table appended in time order, where a B-tree on ts would cost every one of many book inserts.
    op.create_index("book_snapshots_ts_brin", "book_snapshots", ["ts"], postgresql_using="brin")


def downgrade() -> None:
    op.drop_table("book_snapshots")
