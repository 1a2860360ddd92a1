"""PostgreSQL: table definitions (SQLAlchemy Core), engine, migrations and idempotent writes.

The schema is owned by Alembic (sinks/migrations); these Table objects mirror it for queries and are
checked against the migrated database by the tests. Times are ``timestamptz``; keys are natural keys
(symbol, venue, time; alert_id; a paper order event's, fill's or snapshot's own id) so an at-least-once replay
hits ``ON CONFLICT`` instead of duplicating: facts are written once (``DO NOTHING``), alerts keep their newest
emission (:data:`NEWEST_BY`).
"""

from __future__ import annotations

import csv
import functools
import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import orjson
from alembic import command
from alembic.config import Config
from pydantic import SecretStr
from sqlalchemy import (
    BigInteger,
    Boolean,
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
    bindparam,
    create_engine,
    delete,
    event,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tapewatch.deadletter import DeadLetter
from tapewatch.errors import TapewatchError
from tapewatch.records import (
    Action,
    Alert,
    Bar,
    Book,
    ExecutionReport,
    Features,
    Fill,
    Forecast,
    NewsItem,
    NewsSignal,
    Order,
    Portfolio,
    Score,
    VenueIndicator,
)
from tapewatch.settings import Settings
from tapewatch.sinks.serving_role import grant_serving_role

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger(__name__)

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
    Column("news", JSONB, nullable=False),
    Column("emission", BigInteger, nullable=False),
    # the tenant whose confidential data raised it (row-level security: migration 0009); null: public market data
    Column("tenant", Text),
    Index("alerts_symbol_ts_idx", "symbol", "ts"),
    Index("alerts_ts_idx", "ts"),
    Index("alerts_tenant_idx", "tenant", "ts", postgresql_where=text("tenant IS NOT NULL")),
)

# A news item is one row per symbol it concerns; a re-edit replaces it (NEWEST_BY: its ``edition``, the edit time).
news_items = Table(
    "news_items",
    metadata,
    Column("item_id", Text, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("venue", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("updated_ts", DateTime(timezone=True)),
    Column("edition", BigInteger, nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("language", Text, nullable=False),
    Column("symbols", JSONB, nullable=False),
    Index("news_items_symbol_ts_idx", "symbol", "ts"),
)

# A scored item per symbol and sentiment model; a re-edit's signal replaces it (NEWEST_BY: ``edition``).
news_signals = Table(
    "news_signals",
    metadata,
    Column("item_id", Text, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("model_version", Text, primary_key=True),
    Column("venue", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("updated_ts", DateTime(timezone=True)),
    Column("edition", BigInteger, nullable=False),
    Column("source", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("language", Text, nullable=False),
    Column("sentiment", Double, nullable=False),
    Column("indicator", Double, nullable=False),
    Column("count_1h", Integer, nullable=False),
    Index("news_signals_symbol_ts_idx", "symbol", "ts"),
)

# The wash tests over one closed window of a symbol's trade sizes (migration 0012): a fact, written once.
venue_indicators = Table(
    "venue_indicators",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("venue", Text, primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("version", Text, primary_key=True),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("trades", Integer, nullable=False),
    Column("lot", Double),
    Column("benford", Text, nullable=False),
    Column("benford_n", Integer, nullable=False),
    Column("benford_chi2", Double),
    Column("benford_p", Double),
    Column("benford_mad", Double),
    Column("benford_band", Text),
    Column("decades", Integer, nullable=False),
    Column("rounding", Text, nullable=False),
    Column("round_at", Integer, nullable=False),
    Column("round_near", Integer, nullable=False),
    Column("round_ratio", Double),
    Column("round_share", Double),
    Column("round_p", Double),
    Column("tail_alpha", Double),
    Column("tail_n", Integer, nullable=False),
    Index("venue_indicators_venue_start_idx", "venue", "window_start"),
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

forecasts = Table(
    "forecasts",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("venue", Text, primary_key=True),
    Column("ts", DateTime(timezone=True), primary_key=True),
    Column("model", Text, primary_key=True),
    Column("model_version", Text, primary_key=True),
    Column("horizon", Integer, nullable=False),
    Column("target", Text, nullable=False),
    Column("prediction", Double, nullable=False),
    Column("confidence", Double, nullable=False),
    Column("probabilities", JSONB, nullable=False),
    Index("forecasts_ts_brin", "ts", postgresql_using="brin"),
)

#: md.books as stored for the console's order-book chart and replay: levels as the record's lists, [[price, size], …]
#: best first. The sink keeps a bounded window of them (:func:`prune_book_snapshots`).
book_snapshots = Table(
    "book_snapshots",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("venue", Text, primary_key=True),
    Column("ts", DateTime(timezone=True), primary_key=True),
    Column("bids", JSONB, nullable=False),
    Column("asks", JSONB, nullable=False),
    Index("book_snapshots_ts_brin", "ts", postgresql_using="brin"),
)

# A firm's drop copy (migration 0010): every execution report kept whole, as a firm must keep its own order records;
# one row per report (exec_id is unique per report within a firm's drop copy). Row-level security gives each tenant
# its own rows only. (tenant, symbol, ts) serves a case's replay, (tenant, account, ts) an account's history,
# (tenant, order_id) an order's lifecycle.
executions = Table(
    "executions",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("exec_id", Text, primary_key=True),
    Column("symbol", Text, nullable=False),
    Column("venue", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("order_id", Text, nullable=False),
    Column("client_order_id", Text),
    Column("account", Text, nullable=False),
    Column("trader", Text),
    Column("owner", Text),
    Column("exec_type", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("order_kind", Text, nullable=False),
    Column("displayed", Boolean, nullable=False),
    Column("price", Double),
    Column("quantity", Double, nullable=False),
    Column("last_qty", Double, nullable=False),
    Column("last_price", Double),
    Column("cum_qty", Double, nullable=False),
    Column("leaves_qty", Double, nullable=False),
    Index("executions_symbol_ts_idx", "tenant", "symbol", "ts"),
    Index("executions_account_ts_idx", "tenant", "account", "ts"),
    Index("executions_order_idx", "tenant", "order_id"),
)

# Paper trading (migration 0006): one row per record of ``orders``, ``fills`` and ``portfolio``, its columns the
# record's fields. The keys are the records' own identities (an order's events count up by ``revision``, a
# snapshot's by the account's ``seq``), so a replay hits ON CONFLICT DO NOTHING. (account, ts) serves "an
# account's rows over time" (the report's loader), (symbol, venue, ts) "this instrument's"; the tables are small,
# so B-trees rather than BRIN. They carry the signal's model but no model_version: not in ``model_versions``.
paper_orders = Table(
    "paper_orders",
    metadata,
    Column("account", Text, primary_key=True),
    Column("client_order_id", Text, primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("symbol", Text, nullable=False),
    Column("venue", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("event", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("price", Double, nullable=False),
    Column("quantity", Double, nullable=False),
    Column("filled", Double, nullable=False),
    Column("average_price", Double),
    Column("queue_ahead", Double, nullable=False),
    Column("reason", Text, nullable=False),
    Column("signal_model", Text, nullable=False),
    Column("signal_version", Text, nullable=False),
    Column("signal_ts", DateTime(timezone=True), nullable=False),
    Column("decision_price", Double),
    Index("paper_orders_account_ts_idx", "account", "ts"),
    Index("paper_orders_symbol_ts_idx", "symbol", "venue", "ts"),
)

paper_fills = Table(
    "paper_fills",
    metadata,
    Column("account", Text, primary_key=True),
    Column("fill_id", Text, primary_key=True),
    Column("client_order_id", Text, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("venue", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("side", Text, nullable=False),
    Column("price", Double, nullable=False),
    Column("quantity", Double, nullable=False),
    Column("fee", Double, nullable=False),
    Column("tax", Double, nullable=False),
    Column("liquidity", Text, nullable=False),
    Column("tape_price", Double, nullable=False),
    Column("signal_model", Text, nullable=False),
    Column("signal_ts", DateTime(timezone=True), nullable=False),
    Column("decision_price", Double),
    Column("realized_pnl", Double, nullable=False),
    Index("paper_fills_account_ts_idx", "account", "ts"),
    Index("paper_fills_symbol_ts_idx", "symbol", "venue", "ts"),
)

paper_portfolio = Table(
    "paper_portfolio",
    metadata,
    Column("account", Text, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("symbol", Text, nullable=False),
    Column("venue", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("cash", Double, nullable=False),
    Column("equity", Double, nullable=False),
    Column("gross_exposure", Double, nullable=False),
    Column("realized_pnl", Double, nullable=False),
    Column("unrealized_pnl", Double, nullable=False),
    Column("day_pnl", Double, nullable=False),
    Column("fees", Double, nullable=False),
    Column("taxes", Double, nullable=False),
    Column("halted", Boolean, nullable=False),
    Column("positions", JSONB, nullable=False),
    Index("paper_portfolio_account_ts_idx", "account", "ts"),
    Index("paper_portfolio_symbol_ts_idx", "symbol", "venue", "ts"),
)

#: every model version seen on scores, alerts, actions and forecasts, with the time range it covered
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


def _json_text(value: object) -> str:
    return orjson.dumps(value).decode()


def make_engine(settings: Settings, *, serving: bool = False, timeouts: bool = False, pre_ping: bool = True) -> Engine:
    """An engine as the schema's owner (the sinks, migrations and admin commands: with the COPY staging tables),
    or, ``serving``, as the console's serving role (:mod:`tapewatch.sinks.serving_role`). ``timeouts``: the server
    cancels a statement after ``TAPEWATCH_POSTGRES_STATEMENT_TIMEOUT_S`` and a lock wait after ``…_LOCK_TIMEOUT_S``
    (what a long-running service wants; a bulk load or a migration does not). ``pre_ping`` False: a pooled connection is
    handed out untested (a caller that guards its own round trips: a ping to a paused server waits for ever)."""
    engine = create_engine(
        settings.console_postgres_url_plain if serving else settings.postgres.url_plain,
        pool_pre_ping=pre_ping,
        pool_size=4,
        connect_args={"connect_timeout": max(1, int(settings.local.service_timeout_s))},
        json_serializer=_json_text,
    )
    if timeouts:
        statement_ms = int(settings.postgres.statement_timeout_s * 1000)
        lock_ms = int(settings.postgres.lock_timeout_s * 1000)
        event.listen(engine, "connect", functools.partial(_set_timeouts, statement_ms=statement_ms, lock_ms=lock_ms))
    if not serving:
        event.listen(engine, "connect", _create_staging_tables)
    return engine


def _set_timeouts(dbapi_connection: Any, connection_record: Any, *, statement_ms: int, lock_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"SET statement_timeout = {statement_ms}; SET lock_timeout = {lock_ms}")
        dbapi_connection.commit()  # session settings: the pool's reset-on-return rollback must not undo them
    finally:
        cursor.close()


def _create_staging_tables(dbapi_connection: Any, connection_record: Any) -> None:
    """Give a new connection its COPY staging tables (:func:`copy_rows`), once: temporary tables live as long as
    the connection and are emptied at every commit. Created in each batch's transaction instead, they cost a
    catalog round trip per table and batch (~4% of the PostgreSQL sink's time)."""
    cursor = dbapi_connection.cursor()
    try:
        for table in metadata.sorted_tables:
            cursor.execute(_copy_plan(table).staging_ddl)
        dbapi_connection.commit()  # the pool's reset-on-return rollback must not undo them
    finally:
        cursor.close()


def in_schema(settings: Settings, schema: str) -> Settings:
    """Settings whose connections use ``schema`` first (``search_path``): the tables, and Alembic's version
    table, live there. Tests and benchmarks get a private schema each, no CREATEDB grant needed."""
    url = make_url(settings.postgres.url_plain).update_query_dict({"options": f"-csearch_path={schema}"})
    plain = url.render_as_string(hide_password=False)
    return settings.updated(postgres={"url": SecretStr(plain)})


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


def alembic_config(settings: Settings | None = None) -> Config:
    """The migrations, and the database they run on (none: for reading the scripts only)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if settings is not None:  # '%' is Alembic's interpolation character; a password may contain it.
        cfg.set_main_option("sqlalchemy.url", settings.postgres.url_plain.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to ``revision`` and grant the console's serving role its privileges; safe to run on
    every start."""
    try:
        command.upgrade(alembic_config(settings), revision)
        if revision == "head":
            engine = make_engine(settings)
            try:
                with engine.begin() as conn:
                    grant_serving_role(conn, settings.console.db_user)
            finally:
                engine.dispose()
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise TapewatchError(f"postgres: cannot migrate the schema: {reason}") from None


def schema_is_current(engine: Engine) -> bool:
    """Whether the database's schema is at the newest migration (what a server that may not migrate checks)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads()) == heads


# --- rows ----------------------------------------------------------------------------------------
# A row is first a *doc*: column name → value, times as epoch milliseconds, JSON columns as plain Python values.
# The tables' columns are named after the records' fields, so a record's doc is its own field dict (bars add the
# Kafka offset): nothing is copied per record. COPY takes the docs' values in column order (:func:`copy_rows`).

#: a row by column name, times as epoch milliseconds
Doc = dict[str, Any]


def record_doc(
    record: Features | Score | Action | Forecast | Book | Order | Fill | Portfolio | ExecutionReport | VenueIndicator,
) -> Doc:
    """The row of a record whose fields are exactly its table's columns (checked by the unit tests)."""
    return record.__dict__


def alert_doc(alert: Alert) -> Doc:
    return {**alert.__dict__, "emission": alert.emission}


def news_doc(record: NewsItem | NewsSignal) -> Doc:
    """A news item's or signal's row: its edition (the edit time, else the publication time) orders re-edits."""
    return {**record.__dict__, "edition": record.updated_ts if record.updated_ts is not None else record.ts}


def bar_doc(bar: Bar, offset: int | None = None) -> Doc:
    return {**bar.__dict__, "ingested_offset": offset}


def dead_letter_doc(
    letter: DeadLetter, dlq_topic: str, partition: int, offset: int, received_ms: int, size: int
) -> Doc:
    return {
        "dlq_topic": dlq_topic,
        "partition": partition,
        "offset": offset,
        "received_at": received_ms,
        "stage": letter.stage,
        "reason": letter.reason,
        "field": letter.field,
        "source_topic": letter.topic,
        "size": size,
    }


# --- idempotent writes ---------------------------------------------------------------------------
#: Tables whose rows are re-emitted under the same key with newer content, and the column that orders the
#: emissions. An alert escalates under the same alert_id (later ``ts``, higher severity and score, a wider
#: window), and is sent again at the same ``ts`` when news about its onset arrives after it: the store keeps the
#: highest :attr:`~tapewatch.records.Alert.emission` whatever the arrival order, as Elasticsearch does with
#: external versioning (tapewatch.sinks.elastic), so a replay of an older emission never overwrites a newer one. A news
#: item or signal keeps its latest edit. Equal orders keep what was stored first. Every other table's rows are immutable
#: facts: ``DO NOTHING``.
NEWEST_BY: dict[str, str] = {"alerts": "emission", "news_items": "edition", "news_signals": "edition"}

Row = TypeVar("Row", bound=Mapping[str, Any])


def newest_per_key(table: Table, rows: Sequence[Row]) -> Sequence[Row]:
    """One row per primary key on a :data:`NEWEST_BY` table: the newest, the first of equals (``rows`` as they
    are otherwise). One ``INSERT … ON CONFLICT DO UPDATE`` may not touch a row twice, and a batch may hold two
    emissions of one alert."""
    newest_column = NEWEST_BY.get(table.name)
    if newest_column is None:
        return rows
    key = itemgetter(*(column.name for column in table.primary_key))
    version = itemgetter(newest_column)
    newest: dict[object, Row] = {}
    for row in rows:
        held = newest.setdefault(key(row), row)
        if version(held) < version(row):
            newest[key(row)] = row
    return rows if len(newest) == len(rows) else list(newest.values())


def _conflict_clause(table: Table) -> str:
    key = ", ".join(f'"{column.name}"' for column in table.primary_key)
    newest = NEWEST_BY.get(table.name)
    if newest is None:
        return f"ON CONFLICT ({key}) DO NOTHING"
    updates = ", ".join(f'"{c.name}" = EXCLUDED."{c.name}"' for c in table.columns if not c.primary_key)
    return f'ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE "{table.name}"."{newest}" < EXCLUDED."{newest}"'


class _CopyNull(float):
    """COPY's NULL marker in our CSV. The csv module writes numbers unquoted (through repr) and, with
    QUOTE_NONNUMERIC, every string quoted, so this prints a bare \\N while a string "\\N" stays a string."""

    def __repr__(self) -> str:
        return "\\N"

    __str__ = __repr__


COPY_NULL = _CopyNull()


@dataclass(frozen=True, slots=True)
class _CopyPlan:
    """How a table's docs are copied, worked out once per table."""

    staging: str  # the temporary table (times as epoch ms) each connection gets (make_engine), emptied at commit
    values: Callable[[Doc], tuple[Any, ...]]  # the doc's values in column order
    json_at: tuple[int, ...]  # positions of the JSONB columns (serialised with orjson)
    nullable_at: tuple[int, ...]  # positions of the nullable columns (None becomes COPY_NULL)
    staging_ddl: str
    copy_sql: str
    insert_sql: str


def _from_epoch_ms(expression: str) -> str:
    # Epoch milliseconds: an int is the cheapest thing to format; exact to the microsecond back.
    return f"to_timestamp(({expression})::double precision / 1000)"


@functools.cache
def _copy_plan(table: Table) -> _CopyPlan:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    staging = f"tapewatch_copy_{table.name}"
    columns = list(table.columns)
    ddl, select_list = [], []
    for column in columns:
        name = f'"{column.name}"'
        if isinstance(column.type, DateTime):
            ddl.append(f"{name} bigint")
            select_list.append(_from_epoch_ms(name))
        else:
            ddl.append(f"{name} {column.type.compile(dialect=dialect)}")
            select_list.append(name)
    quoted = ", ".join(f'"{column.name}"' for column in columns)
    return _CopyPlan(
        staging=staging,
        values=itemgetter(*(column.name for column in columns)),
        json_at=tuple(i for i, column in enumerate(columns) if isinstance(column.type, JSONB)),
        nullable_at=tuple(i for i, column in enumerate(columns) if column.nullable),
        staging_ddl=f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" ({", ".join(ddl)}) ON COMMIT DELETE ROWS',
        copy_sql=f"COPY \"{staging}\" ({quoted}) FROM STDIN WITH (FORMAT csv, NULL '\\N')",
        insert_sql=f'INSERT INTO "{table.name}" ({quoted}) SELECT {", ".join(select_list)} FROM "{staging}" '
        + _conflict_clause(table),
    )


def _csv_rows(plan: _CopyPlan, docs: Sequence[Doc]) -> list[list[Any]]:
    rows = []
    dumps, values, json_at = orjson.dumps, plan.values, plan.json_at
    for doc in docs:
        row = list(values(doc))
        for i in json_at:
            row[i] = dumps(row[i]).decode()
        rows.append(row)
    if plan.nullable_at:
        null = COPY_NULL
        for row in rows:
            for i in plan.nullable_at:
                if row[i] is None:
                    row[i] = null
    return rows


def copy_rows(conn: Connection, table: Table, docs: Sequence[Doc]) -> int:
    """Write ``docs`` keyed by ``table``'s primary key; rows already stored are skipped, or on a :data:`NEWEST_BY`
    table replaced when newer. Returns how many rows were inserted or replaced. On a connection of
    :func:`make_engine`, which has the staging tables: COPY into a temporary table, then ``INSERT … SELECT … ON
    CONFLICT`` — about ten times faster than a multi-row ``INSERT`` (measured: ~31,000 against ~3,500 alert
    rows/s here), which the sinks used before.

    CSV with every string quoted and NULL as a bare ``\\N``, so an empty string stays an empty string. (Sending
    the docs as JSON lines for PostgreSQL's json_to_record costs the sink less but PostgreSQL half as much again
    as parsing CSV: measured, a loss on a machine whose cores are all busy.) Raises ``orjson.JSONEncodeError``
    for a value JSON cannot carry (an integer over 64 bits).
    """
    if not docs:
        return 0
    plan = _copy_plan(table)
    newest = newest_per_key(table, docs)
    buffer = _csv_buffer(plan, newest)
    if _unstorable(buffer.getvalue()):
        # PostgreSQL text and JSONB cannot hold NUL (nor a lone surrogate): clean those rows' text, so an alert
        # still reaches the analysts, with the character replaced by U+FFFD and a warning in the log
        log.warning("postgres: %s: text PostgreSQL cannot store (NUL or a lone surrogate) replaced by U+FFFD", table)
        buffer = _csv_buffer(plan, [_storable(doc) for doc in newest])
    buffer.seek(0)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(plan.copy_sql, buffer, size=COPY_CHUNK)
        cursor.execute(plan.insert_sql)
        stored: int = cursor.rowcount
    finally:
        cursor.close()
    return stored


def _csv_buffer(plan: _CopyPlan, docs: Sequence[Doc]) -> io.StringIO:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    try:
        writer.writerows(_csv_rows(plan, docs))
    except orjson.JSONEncodeError:
        # a lone surrogate orjson will not encode: clean and try once more (a value beyond 64 bits still raises)
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        writer.writerows(_csv_rows(plan, [_storable(doc) for doc in docs]))
    return buffer


def _unstorable(text: str) -> bool:
    """Whether the CSV holds a NUL (as itself, or escaped inside JSON) or a lone surrogate."""
    if "\x00" in text or "\\u0000" in text:
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _storable(value: Any) -> Any:
    """``value`` with every string (keys included, at any depth) free of NUL and lone surrogates."""
    if isinstance(value, str):
        return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


#: characters handed to libpq per COPY call (psycopg2's default, 8 KiB, means hundreds of calls per batch)
COPY_CHUNK = 1 << 20


def record_model_versions(conn: Connection, table: Table, family: str) -> None:
    """Widen each model version's [first_ts, last_ts] to cover the rows :func:`copy_rows` staged for ``table``
    (scores, alerts or actions) in this transaction; PostgreSQL works out the spans from the staging table.

    LEAST/GREATEST make it idempotent: replaying the same records leaves the row as it was. Versions go in
    their sort order, so two sinks widening the same versions lock them in the same order (no deadlock).
    """
    staging = _copy_plan(table).staging
    conn.exec_driver_sql(
        "INSERT INTO model_versions (family, model_version, first_ts, last_ts) "
        f"SELECT %(family)s, model_version, {_from_epoch_ms('min(ts)')}, {_from_epoch_ms('max(ts)')} "
        f'FROM "{staging}" GROUP BY model_version ORDER BY model_version '
        "ON CONFLICT (family, model_version) DO UPDATE SET "
        "first_ts = LEAST(model_versions.first_ts, EXCLUDED.first_ts), "
        "last_ts = GREATEST(model_versions.last_ts, EXCLUDED.last_ts)",
        {"family": family},
    )


#: every (symbol, venue) of book_snapshots, walking its primary key one pair at a time (a loose index scan): as
#: many index descents as pairs, where DISTINCT would read the whole table
_BOOK_PAIRS = """
WITH RECURSIVE pairs AS (
    (SELECT symbol, venue FROM book_snapshots ORDER BY symbol, venue LIMIT 1)
    UNION ALL
    SELECT next.symbol, next.venue FROM pairs, LATERAL (
        SELECT symbol, venue FROM book_snapshots WHERE (symbol, venue) > (pairs.symbol, pairs.venue)
        ORDER BY symbol, venue LIMIT 1
    ) AS next
)
SELECT symbol, venue FROM pairs
"""


def prune_book_snapshots(conn: Connection, newest_hint_ms: int, keep_ms: int) -> int:
    """Delete the book snapshots more than ``keep_ms`` older than the newest one stored; returns how many.

    Counted back from the data, not the clock, so a replay of an old day keeps its books. The newest stored is at
    least ``newest_hint_ms`` (a snapshot the caller stored), so finding it reads only the BRIN ranges from there
    on (``max(ts)`` over the whole table would read all of it).

    The DELETE goes one (symbol, venue) at a time through the primary key, reading only the rows it deletes. One
    ``DELETE … WHERE ts < cutoff`` through the BRIN index is cheap only until deleted space is reused: a page
    range refilled with new books keeps its old minimum, so after a retention cycle most ranges match. Measured
    (a million books kept, 60,000 deleted per prune, four cycles): the single DELETE's bitmap covered 68–90 % of
    the table and its median time rose 184 → 366 ms, growing with the table; per pair it stayed at 181–191 ms.
    """
    cutoff = conn.execute(
        text(
            "SELECT max(ts) - make_interval(secs => :keep_s) FROM book_snapshots "
            f"WHERE ts >= {_from_epoch_ms(':since')}"
        ),
        {"keep_s": keep_ms / 1000, "since": newest_hint_ms},
    ).scalar()
    if cutoff is None:  # another sink pruned past the hint: nothing to do until this one stores newer books
        return 0
    pairs = conn.execute(text(_BOOK_PAIRS)).all()
    c = book_snapshots.c
    older = delete(book_snapshots).where(c.symbol == bindparam("s"), c.venue == bindparam("v"), c.ts < cutoff)
    return sum(conn.execute(older, {"s": symbol, "v": venue}).rowcount for symbol, venue in pairs)
