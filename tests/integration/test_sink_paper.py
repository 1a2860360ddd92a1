"""Paper-trading records through the PostgreSQL sink on the real Kafka and PostgreSQL: each order event, fill and
portfolio snapshot stored once with its values, a replay of the same batch stores nothing, and the report's loader
reads them back as the records' own fields. Each test has its own topics and schema."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import func, inspect, select

from tapewatch.producers.publisher import Publisher
from tapewatch.records import Fill, Order, Portfolio, Record
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.sinks.consumer import SinkRunner, resolve_topics
from tapewatch.sinks.defaults import POSTGRES_TOPICS
from tapewatch.sinks.postgres import PostgresWriter
from tapewatch.sinks.trade_history import TradeHistory, load_trade_history
from tapewatch.topics import DLQ_SINKS, FILLS, ORDERS, PORTFOLIO, Topic
from tests.postgres_times import datetime_to_ms

pytestmark = pytest.mark.integration

T0 = 1_764_000_000_000  # 2025-11-24 16:00 UTC
EVENTS = ("placed", "partially_filled", "filled")


def paper_records(accounts: int = 2, orders: int = 30) -> tuple[list[Order], list[Fill], list[Portfolio]]:
    """Per account: ``orders`` orders of three events each (the last one rejected instead), a fill per fill event
    and a snapshot after each fill."""
    out: tuple[list[Order], list[Fill], list[Portfolio]] = ([], [], [])
    for a in range(accounts):
        account, seq = f"paper-{a}", 0
        for n in range(orders):
            symbol, ts = f"S{n % 3}", T0 + 60_000 * n
            oid = f"{account}-{symbol}-{ts}-{n}"
            side, decision = ("BUY", "SELL")[n % 2], None if n % 5 == 0 else 100.0 + n / 10
            events = ("rejected",) if n == orders - 1 else EVENTS
            for revision, event in enumerate(events):
                filled = (0.0, 4.0, 10.0)[revision] if event != "rejected" else 0.0
                out[0].append(Order(symbol=symbol, venue="sim", ts=ts + revision * 1000, account=account,
                                    client_order_id=oid, revision=revision, event=event, side=side, price=100.0 + n,
                                    quantity=10.0, filled=filled, average_price=100.0 + n if filled else None,
                                    reason="risk: limit \"max position\", then some" if event == "rejected" else "",
                                    signal_model=("dqn", "lstm")[a % 2], signal_version="v1", signal_ts=ts,
                                    decision_price=decision))  # fmt: skip
                if event in ("partially_filled", "filled"):
                    out[1].append(Fill(symbol=symbol, venue="sim", ts=ts + revision * 1000, account=account,
                                       fill_id=f"{oid}:{revision}", client_order_id=oid, side=side, price=100.0 + n,
                                       quantity=filled - (0.0, 4.0)[revision - 1], fee=0.25, tax=0.1 * (n % 2),
                                       liquidity="maker", tape_price=100.0 + n, signal_model=("dqn", "lstm")[a % 2],
                                       signal_ts=ts, decision_price=decision,
                                       realized_pnl=0.0 if side == "BUY" else n - 15.5))  # fmt: skip
                    out[2].append(Portfolio(symbol=symbol, venue="sim", ts=ts + revision * 1000, account=account,
                                            seq=seq, reason="fill", cash=1e5 - n, equity=1e5 + n * 0.5,
                                            gross_exposure=1000.0 + n, realized_pnl=n - 15.5, unrealized_pnl=0.5,
                                            day_pnl=n * 0.5, fees=0.25 * seq, taxes=0.0, halted=n == orders - 2,
                                            positions={symbol: float(n), "S9": -1.5} if n % 4 else {}))  # fmt: skip
                    seq += 1
    return out


def run_sink(settings: Settings, group: str | None = None) -> SinkRunner:
    topics = resolve_topics(POSTGRES_TOPICS)
    runner = SinkRunner(settings, PostgresWriter(settings), topics, group=group, batch_size=500)
    runner.run(exit_when_idle_s=4.0)
    return runner


def stored(settings: Settings) -> dict[str, int]:
    engine = db.make_engine(settings)
    try:
        with engine.connect() as conn:
            tables = (db.paper_orders, db.paper_fills, db.paper_portfolio, db.model_versions)
            return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in tables}
    finally:
        engine.dispose()


def as_frame(records: Sequence[Record], key: str) -> pd.DataFrame:
    """The records as the loader returns them: their fields, enums as strings, sorted by account, ts, key."""
    frame = pd.DataFrame([{k: str(v) if hasattr(v, "value") else v for k, v in r.__dict__.items()} for r in records])
    return frame.sort_values(["account", "ts", key], ignore_index=True)


def test_paper_trading_stored_once_and_read_back(pg: Settings) -> None:
    orders, fills, portfolio = paper_records()
    sent: list[tuple[Topic, Sequence[Record]]] = [(ORDERS, orders), (FILLS, fills), (PORTFOLIO, portfolio)]
    with Publisher(pg, DLQ_SINKS) as publisher:
        for topic, records in sent:
            for record in records:
                publisher.publish(topic, record)

    first = run_sink(pg)
    assert first.counters.dead_lettered == 0
    expected = {"paper_orders": len(orders), "paper_fills": len(fills), "paper_portfolio": len(portfolio)}
    assert stored(pg) == expected | {"model_versions": 0}  # the signal's version is no model version of ours
    again = run_sink(pg, group=f"replay-{uuid.uuid4().hex[:6]}")  # the same batch once more
    assert again.counters.consumed >= len(orders) + len(fills) + len(portfolio)
    assert stored(pg) == expected | {"model_versions": 0}

    engine = db.make_engine(pg)
    try:
        with engine.connect() as conn:
            rejected = conn.execute(select(db.paper_orders).where(db.paper_orders.c.event == "rejected")).all()
            snapshot = conn.execute(select(db.paper_portfolio).where(db.paper_portfolio.c.seq == 2)).all()
        history = load_trade_history(engine)
        one = load_trade_history(
            engine, ["paper-1"], datetime.fromtimestamp((T0 + 600_000) / 1000, UTC), datetime(2030, 1, 1, tzinfo=UTC)
        )
    finally:
        engine.dispose()
    assert len(rejected) == 2 and rejected[0].reason == orders[-1].reason and rejected[0].average_price is None
    assert datetime_to_ms(rejected[0].signal_ts) == orders[-1].signal_ts
    assert {row.account for row in snapshot} == {"paper-0", "paper-1"}
    assert all(row.positions == portfolio[2].positions and row.halted is False for row in snapshot)
    _assert_frames_hold_the_records(history, orders, fills, portfolio)
    assert set(one.orders["account"]) == set(one.fills["account"]) == set(one.portfolio["account"]) == {"paper-1"}
    assert one.fills["ts"].min() >= T0 + 600_000
    assert len(one.fills) == sum(f.account == "paper-1" and f.ts >= T0 + 600_000 for f in fills)


def _assert_frames_hold_the_records(
    history: TradeHistory, orders: list[Order], fills: list[Fill], portfolio: list[Portfolio]
) -> None:
    expected: list[tuple[pd.DataFrame, Sequence[Record], str]] = [
        (history.orders, orders, "revision"),
        (history.fills, fills, "fill_id"),
        (history.portfolio, portfolio, "seq"),
    ]
    for got, records, key in expected:
        want = as_frame(records, key)
        assert got.columns.tolist() == want.columns.tolist(), key
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=key)
    assert history.portfolio["ts"].dtype == "int64" and history.fills["decision_price"].dtype == "float64"


def test_an_empty_history_is_three_empty_frames(pg: Settings) -> None:
    db.upgrade(pg)
    engine = db.make_engine(pg)
    try:
        history = load_trade_history(engine, ["nobody"])
    finally:
        engine.dispose()
    for frame, record in ((history.orders, Order), (history.fills, Fill), (history.portfolio, Portfolio)):
        assert frame.empty and frame.columns.tolist() == list(record.model_fields)


def test_the_migration_builds_the_tables_indexes(pg: Settings) -> None:
    db.upgrade(pg)
    engine = db.make_engine(pg)
    try:
        inspector = inspect(engine)
        for table in (db.paper_orders, db.paper_fills, db.paper_portfolio):
            got = {(i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table.name)}
            assert got == {(i.name, tuple(c.name for c in i.columns)) for i in table.indexes}
            assert {"account", "ts"} <= {c for _, columns in got for c in columns}
    finally:
        engine.dispose()
