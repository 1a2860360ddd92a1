"""The paper-trading records in the sinks, without services: which sink reads them, how the loader selects and
types them."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.dialects import postgresql

from tapewatch.records import Fill, Order, Portfolio, Record
from tapewatch.sinks import db, postgres
from tapewatch.sinks.defaults import ELASTICSEARCH_TOPICS, POSTGRES_TOPICS
from tapewatch.sinks.trade_history import SOURCES, history_query, with_record_dtypes
from tapewatch.topics import FILLS, ORDERS, PORTFOLIO


def test_postgres_reads_the_paper_trading_topics_and_elasticsearch_does_not() -> None:
    for topic, table in ((ORDERS, db.paper_orders), (FILLS, db.paper_fills), (PORTFOLIO, db.paper_portfolio)):
        assert topic.name in POSTGRES_TOPICS and topic.name not in ELASTICSEARCH_TOPICS
        assert topic.record is not None and issubclass(topic.record, Record)
        assert postgres.TABLES[topic.record][0] is table
        assert table not in postgres.FAMILIES  # no model_version column: model_versions would fail on it
        assert "model_version" not in table.c
    postgres.check_topics([ORDERS, FILLS, PORTFOLIO])


def test_natural_keys() -> None:
    keys = {t.name: [c.name for c in t.primary_key] for t in (db.paper_orders, db.paper_fills, db.paper_portfolio)}
    assert keys == {
        "paper_orders": ["account", "client_order_id", "revision"],
        "paper_fills": ["account", "fill_id"],
        "paper_portfolio": ["account", "seq"],
    }


def test_history_query_selects_the_record_fields_of_the_accounts_and_the_range() -> None:
    table, record, tie = SOURCES["fills"]
    since, until = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    query = history_query(table, record, tie, ["a", "b"], since, until)
    assert [c.name for c in query.selected_columns] == list(Fill.model_fields)
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))  # type: ignore[no-untyped-call]
    assert "paper_fills.account IN ('a', 'b')" in sql
    assert "paper_fills.ts >= '2026-11-01 00:00:00+00:00'" in sql and "paper_fills.ts < '2026-11-02" in sql
    assert "ORDER BY paper_fills.account, paper_fills.ts, paper_fills.fill_id" in sql
    everything = str(history_query(table, record, tie).compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    assert "WHERE" not in everything


def test_an_empty_history_has_the_record_columns_and_dtypes() -> None:
    for name, (table, record, _) in SOURCES.items():
        fields = list(record.model_fields)
        typed = with_record_dtypes(pd.DataFrame([], columns=fields), table)
        assert typed.columns.tolist() == fields, name
        assert typed["ts"].dtype == "int64" and typed["symbol"].dtype == "object"
    orders = with_record_dtypes(pd.DataFrame([], columns=list(Order.model_fields)), db.paper_orders)
    assert orders["price"].dtype == "float64" and orders["revision"].dtype == "int64"
    portfolio = with_record_dtypes(pd.DataFrame([], columns=list(Portfolio.model_fields)), db.paper_portfolio)
    assert portfolio["halted"].dtype == "bool" and portfolio["seq"].dtype == "int64"
