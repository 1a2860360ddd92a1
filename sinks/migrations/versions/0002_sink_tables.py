"""sink tables: features, scores, alerts, actions, model versions, dead letters (+ summary view)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Keys are natural keys (what makes a record the same record on replay), see sinks/db.py.
    op.create_table(
        "features",
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("venue", sa.Text, primary_key=True),
        sa.Column("ts", TS, primary_key=True),
        sa.Column("cadence", sa.Text, primary_key=True),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("values", JSONB, nullable=False),
    )
    op.create_table(
        "scores",
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("venue", sa.Text, primary_key=True),
        sa.Column("ts", TS, primary_key=True),
        sa.Column("model_version", sa.Text, primary_key=True),
        sa.Column("cluster", sa.Integer, nullable=False),
        sa.Column("distance", sa.Double, nullable=False),
        sa.Column("score", sa.Double, nullable=False),
        sa.Column("top_features", JSONB, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.Text, primary_key=True),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("venue", sa.Text, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("score", sa.Double, nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("window_end", TS, nullable=False),
        sa.Column("evidence", JSONB, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_table(
        "actions",
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("venue", sa.Text, primary_key=True),
        sa.Column("ts", TS, primary_key=True),
        sa.Column("model_version", sa.Text, primary_key=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("q_values", JSONB, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("family", sa.Text, primary_key=True),
        sa.Column("model_version", sa.Text, primary_key=True),
        sa.Column("first_ts", TS, nullable=False),
        sa.Column("last_ts", TS, nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("dlq_topic", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("offset", sa.BigInteger, primary_key=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("field", sa.Text),
        sa.Column("source_topic", sa.Text),
        sa.Column("size", sa.Integer, nullable=False),
    )
    # Cross-symbol time ranges: BRIN is tiny and nearly free to maintain on append-mostly, time-ordered tables.
    for table in ("features", "scores", "actions"):
        op.create_index(f"{table}_ts_brin", table, ["ts"], postgresql_using="brin")
    op.create_index("alerts_symbol_ts_idx", "alerts", ["symbol", "ts"])
    op.create_index("alerts_ts_idx", "alerts", ["ts"])
    op.execute(
        """
        CREATE VIEW dead_letter_summary AS
        SELECT dlq_topic, stage, reason, date_trunc('hour', received_at) AS hour,
               count(*) AS letters, sum(size) AS bytes, max(received_at) AS last_seen
        FROM dead_letters
        GROUP BY dlq_topic, stage, reason, date_trunc('hour', received_at)
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS dead_letter_summary")
    for table in ("dead_letters", "model_versions", "actions", "alerts", "scores", "features"):
        op.drop_table(table)
