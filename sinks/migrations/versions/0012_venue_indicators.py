"""venue_indicators: the statistical wash tests over each closed window of a symbol's trade sizes

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28

One row per record of ``venue.indicators`` (:class:`tapewatch.records.VenueIndicator`), keyed by symbol, venue, the
window's start and the tests' version, so a replay stores nothing twice (``ON CONFLICT DO NOTHING``). Public market
data: no row-level security.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "venue_indicators",
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("venue", sa.Text, primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("version", sa.Text, primary_key=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("trades", sa.Integer, nullable=False),
        sa.Column("lot", sa.Double),
        sa.Column("benford", sa.Text, nullable=False),
        sa.Column("benford_n", sa.Integer, nullable=False),
        sa.Column("benford_chi2", sa.Double),
        sa.Column("benford_p", sa.Double),
        sa.Column("benford_mad", sa.Double),
        sa.Column("benford_band", sa.Text),
        sa.Column("decades", sa.Integer, nullable=False),
        sa.Column("rounding", sa.Text, nullable=False),
        sa.Column("round_at", sa.Integer, nullable=False),
        sa.Column("round_near", sa.Integer, nullable=False),
        sa.Column("round_ratio", sa.Double),
        sa.Column("round_share", sa.Double),
        sa.Column("round_p", sa.Double),
        sa.Column("tail_alpha", sa.Double),
        sa.Column("tail_n", sa.Integer, nullable=False),
    )
    op.create_index("venue_indicators_venue_start_idx", "venue_indicators", ["venue", "window_start"])


def downgrade() -> None:
    op.drop_table("venue_indicators")
