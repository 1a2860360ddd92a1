"""PostgreSQL: table definitions (SQLAlchemy Core), engine, migrations and idempotent writes.

The schema is owned by Alembic (sinks/migrations); these Table objects mirror it for queries and are
checked against the migrated database by the tests. Times are ``timestamptz``; keys are natural keys
(symbol, venue, time) so an at-least-once replay hits ``ON CONFLICT DO NOTHING`` instead of duplicating.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Double,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError

from tapewatch.errors import TapewatchError
from tapewatch.records import Bar
from tapewatch.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

metadata = MetaData()

bars = Table(
    "bars",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("venue", Text, primary_key=True),
    Column("start", DateTime(timezone=True), primary_key=True),
    Column("end", DateTime(timezone=True), nullable=False),
    Column("open", Double, nullable=False),
    Column("high", Double, nullable=False),
    Column("low", Double, nullable=False),
    Column("close", Double, nullable=False),
    Column("volume", Double, nullable=False),
    Column("vwap", Double, nullable=False),
    Column("trades", Integer, nullable=False),
    Column("price_change_pct", Double),
    Column("volume_change_pct", Double),
    Column("ingested_offset", BigInteger),
)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


def make_engine(settings: Settings) -> Engine:
    return create_engine(
        settings.postgres_url_plain,
        pool_pre_ping=True,
        pool_size=4,
        connect_args={"connect_timeout": max(1, int(settings.service_timeout_s))},
    )


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # '%' is Alembic's interpolation character; a password may contain it.
    cfg.set_main_option("sqlalchemy.url", settings.postgres_url_plain.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run on every start."""
    try:
        command.upgrade(alembic_config(settings), revision)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise TapewatchError(f"postgres: cannot migrate the schema: {reason}") from None


def bar_row(bar: Bar, offset: int | None = None) -> dict[str, object]:
    return {
        "symbol": bar.symbol,
        "venue": bar.venue,
        "start": ms_to_datetime(bar.start),
        "end": ms_to_datetime(bar.end),
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
        "vwap": bar.vwap,
        "trades": bar.trades,
        "price_change_pct": bar.price_change_pct,
        "volume_change_pct": bar.volume_change_pct,
        "ingested_offset": offset,
    }


def insert_bars(conn: Connection, rows: Sequence[dict[str, object]]) -> int:
    """Insert bars; ones already stored are skipped. Returns how many were new."""
    if not rows:
        return 0
    result = conn.execute(insert(bars).on_conflict_do_nothing(index_elements=["symbol", "venue", "start"]), rows)
    return result.rowcount


def current_revision(conn: Connection) -> str | None:
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return str(row[0]) if row else None
