"""paper trading: paper_orders, paper_fills and paper_portfolio (the orders, fills and portfolio topics)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("paper_orders", "paper_fills", "paper_portfolio")


def _stamp() -> list[sa.Column[Any]]:
    """Where and when, as on every record: symbol, venue, ts."""
    return [
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("venue", sa.Text, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    ]


def _orders() -> None:
    # One row per event of an order: (account, client_order_id, revision) is the event's identity, so a replay
    # hits ON CONFLICT DO NOTHING (sinks/db.py).
    op.create_table(
        "paper_orders",
        sa.Column("account", sa.Text, primary_key=True),
        sa.Column("client_order_id", sa.Text, primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        *_stamp(),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("price", sa.Double, nullable=False),
        sa.Column("quantity", sa.Double, nullable=False),
        sa.Column("filled", sa.Double, nullable=False),
        sa.Column("average_price", sa.Double),
        sa.Column("queue_ahead", sa.Double, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("signal_model", sa.Text, nullable=False),
        sa.Column("signal_version", sa.Text, nullable=False),
        sa.Column("signal_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision_price", sa.Double),
    )


def _fills() -> None:
    op.create_table(
        "paper_fills",
        sa.Column("account", sa.Text, primary_key=True),
        sa.Column("fill_id", sa.Text, primary_key=True),
        sa.Column("client_order_id", sa.Text, nullable=False),
        *_stamp(),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("price", sa.Double, nullable=False),
        sa.Column("quantity", sa.Double, nullable=False),
        sa.Column("fee", sa.Double, nullable=False),
        sa.Column("tax", sa.Double, nullable=False),
        sa.Column("liquidity", sa.Text, nullable=False),
        sa.Column("tape_price", sa.Double, nullable=False),
        sa.Column("signal_model", sa.Text, nullable=False),
        sa.Column("signal_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision_price", sa.Double),
        sa.Column("realized_pnl", sa.Double, nullable=False),
    )


def _portfolio() -> None:
    # One row per snapshot of an account: seq counts them. Positions stay as the record's {symbol: quantity}.
    op.create_table(
        "paper_portfolio",
        sa.Column("account", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        *_stamp(),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("cash", sa.Double, nullable=False),
        sa.Column("equity", sa.Double, nullable=False),
        sa.Column("gross_exposure", sa.Double, nullable=False),
        sa.Column("realized_pnl", sa.Double, nullable=False),
        sa.Column("unrealized_pnl", sa.Double, nullable=False),
        sa.Column("day_pnl", sa.Double, nullable=False),
        sa.Column("fees", sa.Double, nullable=False),
        sa.Column("taxes", sa.Double, nullable=False),
        sa.Column("halted", sa.Boolean, nullable=False),
        sa.Column("positions", JSONB, nullable=False),
    )


def upgrade() -> None:
    _orders()
    _fills()
    _portfolio()
    # "An account's rows over time" (the trade report's loader) and "this instrument's rows over time". The tables
    # stay small (a paper account's events, not the tape), so B-trees: exact, and cheap to keep up at this rate.
    for table in TABLES:
        op.create_index(f"{table}_account_ts_idx", table, ["account", "ts"])
        op.create_index(f"{table}_symbol_ts_idx", table, ["symbol", "venue", "ts"])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
