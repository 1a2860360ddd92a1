"""news: news items and their signals, the news beside each alert, and the order of an alert's emissions

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27

``alerts.news`` holds the news an alert cites (:attr:`tapewatch.records.Alert.news`); ``alerts.emission`` orders an
alert's emissions (:attr:`tapewatch.records.Alert.emission`: its time, then how much news about its onset it knew),
so the row keeps the newest whatever the arrival order. Rows stored before have no news: their emission is their
time alone. ``news_items`` and ``news_signals`` keep each item's (and its signal's) latest edit, ``edition``.

An alert sent again at the same time with the news about its onset (its score lowered) now also rewrites that time's
line of ``severity_history``, so a case's history shows the severity the case has.
"""

from __future__ import annotations

from importlib import import_module

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: the trigger function that turns alerts into cases, as revision 0007 made it
_CASES_0007: str = import_module("tapewatch.sinks.migrations.versions.0007_tenancy").ALERTS_TO_CASES
_HISTORY_KEPT = "VALUES (NEW.alert_id, NEW.ts, NEW.severity, NEW.score) ON CONFLICT DO NOTHING;"
_HISTORY_REWRITTEN = (
    "VALUES (NEW.alert_id, NEW.ts, NEW.severity, NEW.score)\n"
    "    ON CONFLICT (alert_id, ts) DO UPDATE SET severity = EXCLUDED.severity, score = EXCLUDED.score;"
)


def upgrade() -> None:
    op.add_column("alerts", sa.Column("news", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")))
    op.add_column("alerts", sa.Column("emission", sa.BigInteger, nullable=False, server_default="0"))
    op.execute("UPDATE alerts SET emission = (extract(epoch FROM ts) * 1000)::bigint * 1000")
    op.alter_column("alerts", "news", server_default=None)
    op.alter_column("alerts", "emission", server_default=None)
    op.create_table(
        "news_items",
        sa.Column("item_id", sa.Text, primary_key=True),
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("venue", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_ts", sa.DateTime(timezone=True)),
        sa.Column("edition", sa.BigInteger, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("symbols", JSONB, nullable=False),
    )
    op.create_index("news_items_symbol_ts_idx", "news_items", ["symbol", "ts"])
    op.create_table(
        "news_signals",
        sa.Column("item_id", sa.Text, primary_key=True),
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("model_version", sa.Text, primary_key=True),
        sa.Column("venue", sa.Text, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_ts", sa.DateTime(timezone=True)),
        sa.Column("edition", sa.BigInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("sentiment", sa.Double, nullable=False),
        sa.Column("indicator", sa.Double, nullable=False),
        sa.Column("count_1h", sa.Integer, nullable=False),
    )
    op.create_index("news_signals_symbol_ts_idx", "news_signals", ["symbol", "ts"])
    assert _HISTORY_KEPT in _CASES_0007
    op.execute(_CASES_0007.replace(_HISTORY_KEPT, _HISTORY_REWRITTEN))


def downgrade() -> None:
    op.execute(_CASES_0007)
    op.drop_table("news_signals")
    op.drop_table("news_items")
    op.drop_column("alerts", "emission")
    op.drop_column("alerts", "news")
