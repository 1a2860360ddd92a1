"""PostgreSQL write/read through the migrated schema; writes are idempotent. Each test migrates a private schema:
migrating the shared database's ``public`` would move it to this branch's head, which a checkout without that
revision cannot migrate from."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import inspect, select, text

from tapewatch.records import Bar
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tests.postgres_times import datetime_to_ms

pytestmark = pytest.mark.integration


def test_migrations_match_table_definitions(pg: Settings) -> None:
    db.upgrade(pg)
    db.upgrade(pg)  # a second run is a no-op
    engine = db.make_engine(pg)
    inspector = inspect(engine)
    for table in db.metadata.sorted_tables:
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(columns) == {c.name for c in table.columns}, table.name
        assert inspector.get_pk_constraint(table.name)["constrained_columns"] == [c.name for c in table.primary_key]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() is not None
    engine.dispose()


def test_bars_write_read_idempotent(pg: Settings) -> None:
    db.upgrade(pg)
    symbol = f"T{uuid.uuid4().hex[:10]}"
    bars = [
        Bar(
            symbol=symbol,
            venue="test",
            start=60_000 * i,
            end=60_000 * (i + 1),
            open=10.0 + i,
            high=11.0 + i,
            low=9.0 + i,
            close=10.5 + i,
            volume=1000.0 * i,
            vwap=10.2 + i,
            trades=i,
            price_change_pct=None,
            volume_change_pct=None,
        )
        for i in range(1, 50)
    ]
    engine = db.make_engine(pg)
    docs = [db.bar_doc(b) for b in bars]
    with engine.begin() as conn:
        assert db.copy_rows(conn, db.bars, docs) == len(bars)
    with engine.begin() as conn:  # a replay of the same batch
        assert db.copy_rows(conn, db.bars, docs) == 0
    with engine.connect() as conn:
        stored = conn.execute(select(db.bars).where(db.bars.c.symbol == symbol).order_by(db.bars.c.start)).all()
    engine.dispose()
    assert len(stored) == len(bars)
    for row, bar in zip(stored, bars, strict=True):
        assert datetime_to_ms(row.start) == bar.start and datetime_to_ms(row.end) == bar.end
        assert (row.open, row.high, row.low, row.close, row.volume, row.vwap, row.trades) == (
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
            bar.vwap,
            bar.trades,
        )
