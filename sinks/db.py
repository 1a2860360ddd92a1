"""PostgreSQL: table definitions (SQLAlchemy Core), engine, migrations and idempotent writes.

The schema is owned by Alembic (sinks/migrations); these Table objects mirror it for queries and are
checked against the migrated database by the tests. Times are ``timestamptz``; keys are natural keys
(symbol, venue, time) so an at-least-once replay hits ``ON CONFLICT DO NOTHING`` instead of duplicating.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from pydantic import SecretStr
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    func,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tapewatch.deadletter import DeadLetter
from tapewatch.errors import TapewatchError
from tapewatch.records import Action, Alert, Bar, Features, Score
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

# Natural keys make every write idempotent: a replayed record hits ON CONFLICT DO NOTHING. Each key starts
# with (symbol, venue, time), so the primary-key index serves per-symbol range queries; a BRIN index on the
# time column serves cross-symbol time ranges at almost no write cost (rows arrive roughly in time order).
features = Table(
    "features",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("venue", Text, primary_key=True),
    Column("ts", DateTime(timezone=True), primary_key=True),
    Column("cadence", Text, primary_key=True),
    Column("version", Text, nullable=False),
    Column("values", JSONB, nullable=False),
    Index("features_ts_brin", "ts", postgresql_using="brin"),
)

scores = Table(
    "scores",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("venue", Text, primary_key=True),
    Column("ts", DateTime(timezone=True), primary_key=True),
    Column("model_version", Text, primary_key=True),
    Column("cluster", Integer, nullable=False),
    Column("distance", Double, nullable=False),
    Column("score", Double, nullable=False),
    Column("top_features", JSONB, nullable=False),
    Index("scores_ts_brin", "ts", postgresql_using="brin"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", Text, primary_key=True),
    Column("symbol", Text, nullable=False),
    Column("venue", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("score", Double, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("message", Text, nullable=False),
    Index("alerts_symbol_ts_idx", "symbol", "ts"),
    Index("alerts_ts_idx", "ts"),
)

actions = Table(
    "actions",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("venue", Text, primary_key=True),
    Column("ts", DateTime(timezone=True), primary_key=True),
    Column("model_version", Text, primary_key=True),
    Column("action", Text, nullable=False),
    Column("q_values", JSONB, nullable=False),
    Column("position", Integer, nullable=False),
    Index("actions_ts_brin", "ts", postgresql_using="brin"),
)

#: every model version seen on scores, alerts and actions, with the time range it covered
model_versions = Table(
    "model_versions",
    metadata,
    Column("family", Text, primary_key=True),
    Column("model_version", Text, primary_key=True),
    Column("first_ts", DateTime(timezone=True), nullable=False),
    Column("last_ts", DateTime(timezone=True), nullable=False),
)

#: one row per dead letter (its own topic/partition/offset is the key, so a replay counts it once); the
#: ``dead_letter_summary`` view (migration 0002) aggregates them by topic, stage, reason and hour
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("dlq_topic", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("stage", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("field", Text),
    Column("source_topic", Text),
    Column("size", Integer, nullable=False),
)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


def _json_text(value: object) -> str:
    return orjson.dumps(value).decode()


def make_engine(settings: Settings) -> Engine:
    return create_engine(
        settings.postgres_url_plain,
        pool_pre_ping=True,
        pool_size=4,
        connect_args={"connect_timeout": max(1, int(settings.service_timeout_s))},
        json_serializer=_json_text,
    )


def in_schema(settings: Settings, schema: str) -> Settings:
    """Settings whose connections use ``schema`` first (``search_path``): the tables, and Alembic's version
    table, live there. Tests and benchmarks get a private schema each, no CREATEDB grant needed."""
    url = make_url(settings.postgres_url_plain).update_query_dict({"options": f"-csearch_path={schema}"})
    plain = url.render_as_string(hide_password=False)
    return settings.model_copy(update={"postgres_url": SecretStr(plain)})


def create_schema(settings: Settings, schema: str) -> None:
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()


def drop_schema(settings: Settings, schema: str) -> None:
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


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


def features_row(record: Features) -> dict[str, object]:
    return {
        "symbol": record.symbol,
        "venue": record.venue,
        "ts": ms_to_datetime(record.ts),
        "cadence": record.cadence.value,
        "version": record.version,
        "values": record.values,
    }


def score_row(record: Score) -> dict[str, object]:
    return {
        "symbol": record.symbol,
        "venue": record.venue,
        "ts": ms_to_datetime(record.ts),
        "model_version": record.model_version,
        "cluster": record.cluster,
        "distance": record.distance,
        "score": record.score,
        "top_features": [list(pair) for pair in record.top_features],
    }


def alert_row(record: Alert) -> dict[str, object]:
    return {
        "alert_id": record.alert_id,
        "symbol": record.symbol,
        "venue": record.venue,
        "ts": ms_to_datetime(record.ts),
        "kind": record.kind.value,
        "severity": record.severity.value,
        "score": record.score,
        "window_start": ms_to_datetime(record.window_start),
        "window_end": ms_to_datetime(record.window_end),
        "evidence": record.evidence,
        "model_version": record.model_version,
        "message": record.message,
    }


def action_row(record: Action) -> dict[str, object]:
    return {
        "symbol": record.symbol,
        "venue": record.venue,
        "ts": ms_to_datetime(record.ts),
        "model_version": record.model_version,
        "action": record.action,
        "q_values": record.q_values,
        "position": record.position,
    }


def dead_letter_row(
    letter: DeadLetter, dlq_topic: str, partition: int, offset: int, received_ms: int, size: int
) -> dict[str, object]:
    return {
        "dlq_topic": dlq_topic,
        "partition": partition,
        "offset": offset,
        "received_at": ms_to_datetime(received_ms),
        "stage": letter.stage,
        "reason": letter.reason,
        "field": letter.field,
        "source_topic": letter.topic,
        "size": size,
    }


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, object]]) -> int:
    """Insert rows keyed by ``table``'s primary key; rows already stored are skipped. Returns how many were new.

    SQLAlchemy sends an executemany of this statement as multi-row VALUES pages ("insertmanyvalues").
    """
    if not rows:
        return 0
    result = conn.execute(insert(table).on_conflict_do_nothing(index_elements=list(table.primary_key)), rows)
    return result.rowcount


class _CopyNull(float):
    """COPY's NULL marker in our CSV. The csv module writes numbers unquoted (through repr) and, with
    QUOTE_NONNUMERIC, every string quoted, so this prints a bare \\N while a string "\\N" stays a string."""

    def __repr__(self) -> str:
        return "\\N"

    __str__ = __repr__


COPY_NULL = _CopyNull()


def _epoch_seconds(value: object) -> object:
    # A float is several times cheaper to format than an ISO string; to_timestamp() turns it back exactly at
    # microsecond resolution (staging_columns).
    return value.timestamp() if isinstance(value, datetime) else value


def _copy_converters(table: Table) -> list[tuple[str, Callable[[object], object]]]:
    converters: list[tuple[str, Callable[[object], object]]] = []
    for column in table.columns:
        if isinstance(column.type, DateTime):
            converters.append((column.name, _epoch_seconds))
        elif isinstance(column.type, JSONB):
            converters.append((column.name, _json_text))
        else:
            converters.append((column.name, _same))
    return converters


def _same(value: object) -> object:
    return value


def _staging(table: Table) -> tuple[str, str, str]:
    """(name, column DDL, SELECT list) of the COPY staging table: like ``table`` but times as epoch seconds."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    ddl, select_list = [], []
    for column in table.columns:
        if isinstance(column.type, DateTime):
            ddl.append(f'"{column.name}" double precision')
            select_list.append(f'to_timestamp("{column.name}")')
        else:
            ddl.append(f'"{column.name}" {column.type.compile(dialect=dialect)}')
            select_list.append(f'"{column.name}"')
    return f"tapewatch_copy_{table.name}", ", ".join(ddl), ", ".join(select_list)


def copy_rows(conn: Connection, table: Table, rows: Sequence[dict[str, object]]) -> int:
    """The same contract as :func:`insert_rows`, about ten times faster for large batches (measured: ~31,000 vs
    ~3,500 alert rows/s here): COPY into a temporary table, then ``INSERT … SELECT … ON CONFLICT DO NOTHING``.

    CSV with every string quoted and NULL as a bare ``\\N``, so an empty string stays an empty string.
    """
    if not rows:
        return 0
    converters = _copy_converters(table)
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    null = COPY_NULL
    writer.writerows(
        [null if (value := row.get(name)) is None else convert(value) for name, convert in converters] for row in rows
    )
    buffer.seek(0)
    staging, ddl, select_list = _staging(table)
    quoted = ", ".join(f'"{name}"' for name, _ in converters)
    key = ", ".join(f'"{column.name}"' for column in table.primary_key)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" ({ddl}) ON COMMIT DELETE ROWS')
        cursor.copy_expert(f"COPY \"{staging}\" ({quoted}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)
        cursor.execute(
            f'INSERT INTO "{table.name}" ({quoted}) SELECT {select_list} FROM "{staging}" '
            f"ON CONFLICT ({key}) DO NOTHING"
        )
        inserted: int = cursor.rowcount
    finally:
        cursor.close()
    return inserted


def insert_bars(conn: Connection, rows: Sequence[dict[str, object]]) -> int:
    """Insert bars; ones already stored are skipped. Returns how many were new."""
    return insert_rows(conn, bars, rows)


def record_model_versions(conn: Connection, family: str, spans: dict[str, tuple[int, int]]) -> None:
    """Widen each model version's [first_ts, last_ts] to cover ``spans`` (version → (min ms, max ms)).

    LEAST/GREATEST make it idempotent: replaying the same records leaves the row as it was.
    """
    if not spans:
        return
    stmt = insert(model_versions)
    stmt = stmt.on_conflict_do_update(
        index_elements=["family", "model_version"],
        set_={
            "first_ts": func.least(model_versions.c.first_ts, stmt.excluded.first_ts),
            "last_ts": func.greatest(model_versions.c.last_ts, stmt.excluded.last_ts),
        },
    )
    conn.execute(
        stmt,
        [
            {"family": family, "model_version": v, "first_ts": ms_to_datetime(lo), "last_ts": ms_to_datetime(hi)}
            for v, (lo, hi) in sorted(spans.items())
        ],
    )


def current_revision(conn: Connection) -> str | None:
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return str(row[0]) if row else None
