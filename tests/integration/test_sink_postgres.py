"""PostgreSQL sink on the real Kafka and PostgreSQL: every table filled idempotently, bad records to dlq.sinks
with their reason while the sink keeps running, dead letters summarised. Each test has its own schema."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select, text

from tapewatch import deadletter
from tapewatch.bench.sink import synthetic_alert
from tapewatch.producers.publisher import Publisher
from tapewatch.records import Action, Bar, Book, ExecutionReport, Features, Forecast, Score
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.sinks.consumer import SinkRunner, resolve_topics
from tapewatch.sinks.defaults import POSTGRES_TOPICS
from tapewatch.sinks.postgres import PostgresWriter
from tapewatch.topics import ACTIONS, ALERTS, BARS, BOOKS, DLQ_SINKS, FEATURES, FIRM_ORDERS, FORECASTS, SCORES
from tests.kafka_reader import read_topic
from tests.postgres_times import datetime_to_ms

pytestmark = pytest.mark.integration


def run_sink(settings: Settings, group: str | None = None, idle_s: float = 4.0) -> SinkRunner:
    runner = SinkRunner(
        settings, PostgresWriter(settings), resolve_topics(POSTGRES_TOPICS), group=group, batch_size=1000
    )
    runner.run(exit_when_idle_s=idle_s)
    return runner


def counts(settings: Settings) -> dict[str, int]:
    engine = db.make_engine(settings)
    try:
        with engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in db.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def test_every_table_filled_once_bad_records_dead_lettered(pg: Settings) -> None:
    alerts = [synthetic_alert(i, 1_700_000_000_000 + i * 1000) for i in range(3000)]
    bars = [
        Bar(symbol=f"S{i % 7}", venue="sim", start=60_000 * i, end=60_000 * (i + 1), open=10, high=11, low=9,
            close=10.5, volume=100.0 + i, vwap=10.2, trades=i % 50)
        for i in range(500)
    ]  # fmt: skip
    features = [
        Features(symbol=f"S{i % 7}", venue="sim", ts=60_000 * i, values={"ret": i / 100, "rsi": None}, version="v1")
        for i in range(200)
    ]
    scores = [
        Score(symbol=f"S{i % 7}", venue="sim", ts=60_000 * i, model_version=f"k{i % 2}", cluster=i % 4,
              distance=i / 10, score=(i % 100) / 100, top_features=[("ret", 0.5), ("rsi", 0.1)])
        for i in range(400)
    ]  # fmt: skip
    actions = [
        Action(symbol=f"S{i % 7}", venue="sim", ts=60_000 * i, action="HOLD", q_values={"HOLD": 0.1, "BUY": 0.0,
               "SELL": -0.2}, position=0, model_version="d1")
        for i in range(200)
    ]  # fmt: skip
    forecasts = [
        Forecast(symbol=f"S{i % 7}", venue="sim", ts=60_000 * (i // 2), model=("lstm", "cnn")[i % 2],
                 model_version=f"{('lstm', 'cnn')[i % 2]}-v1", horizon=1 + 13 * (i % 2),
                 target=("return", "class")[i % 2], prediction=i / 1000, confidence=0.5,
                 probabilities={} if i % 2 == 0 else {"down": 0.25, "flat": 0.25, "up": 0.5})
        for i in range(300)
    ]  # fmt: skip
    books = [
        Book(symbol=f"S{i % 7}", venue="sim", ts=1000 * i, bids=[(10.0 - j / 10, 1.0 + j) for j in range(5)],
             asks=[(10.1 + j / 10, 2.0 + j) for j in range(i % 6)])
        for i in range(600)
    ]  # fmt: skip
    # two firms' drop copies: the same exec ids in each (exec_id is unique within a firm's drop copy only)
    executions = [
        ExecutionReport(symbol=f"S{i % 7}", venue="sim", ts=1_700_000_000_000 + i, exec_id=f"E{i % 150}",
                        order_id=f"O{i}", tenant=("acme", "bravo")[i // 150], account=f"A{i % 9}", exec_type="new",
                        side=("BUY", "SELL")[i % 2], price=10.0, quantity=100.0, leaves_qty=100.0)
        for i in range(300)
    ]  # fmt: skip
    bad = {
        ALERTS: [b"not json", b'{"symbol": "X", "venue": "sim"}'],
        BARS: [Bar.model_construct(symbol="S1", venue="sim", start=5, end=1, open=1.0, high=1.0, low=1.0, close=1.0,
               volume=1.0, vwap=1.0, trades=1).to_json()],
    }  # fmt: skip
    with Publisher(pg, DLQ_SINKS) as publisher:
        for topic, records in ((ALERTS, alerts), (BARS, bars), (FEATURES, features), (SCORES, scores),
                               (ACTIONS, actions), (FORECASTS, forecasts), (BOOKS, books),
                               (FIRM_ORDERS, executions)):  # fmt: skip
            for record in records:
                publisher.publish(topic, record)
        for topic, payloads in bad.items():
            for payload in payloads:
                publisher.send(topic, b"X", payload)

    runner = run_sink(pg)
    assert runner.counters.dead_lettered == 3
    stored = counts(pg)
    assert stored["alerts"] == 3000 and stored["bars"] == 500 and stored["features"] == 200
    assert stored["scores"] == 400 and stored["actions"] == 200 and stored["book_snapshots"] == 600
    assert stored["forecasts"] == 300 and stored["executions"] == 300
    engine = db.make_engine(pg)
    with engine.connect() as conn:
        ids = [row[0] for row in conn.execute(select(db.alerts.c.alert_id))]
        versions = {(r.family, r.model_version): r for r in conn.execute(select(db.model_versions))}
        first = conn.execute(select(db.alerts).where(db.alerts.c.alert_id == alerts[0].alert_id)).one()
    assert sorted(ids) == sorted(a.alert_id for a in alerts)
    assert set(versions) == {
        ("alert", "bench-v1"),
        ("score", "k0"),
        ("score", "k1"),
        ("action", "d1"),
        ("forecast", "lstm-v1"),
        ("forecast", "cnn-v1"),
    }
    assert datetime_to_ms(versions[("alert", "bench-v1")].first_ts) == alerts[0].ts
    assert datetime_to_ms(versions[("alert", "bench-v1")].last_ts) == alerts[-1].ts
    assert first.evidence == alerts[0].evidence and first.message == alerts[0].message

    letters = read_topic(pg, pg.topic(DLQ_SINKS.name), expected=3)
    assert len(letters) == 3
    originals = {p for payloads in bad.values() for p in payloads}
    assert {letter.value for letter in letters} == originals
    for letter in letters:
        header = deadletter.DeadLetter.from_headers(letter.headers)
        assert header.stage == "sink:postgres" and header.reason
        assert header.topic in (pg.topic(ALERTS.name), pg.topic(BARS.name)) and header.offset is not None

    # The sink also reads dlq.*: its own dead letters arrive in the summary (on this run or the replay below).
    # A replay under another group stores nothing twice.
    again = run_sink(pg, group=f"replay-{uuid.uuid4().hex[:6]}")
    assert again.counters.consumed >= 3000 + 500 + 200 + 400 + 200 + 300 + 600 + 300
    assert counts(pg) | {"dead_letters": 0} == stored | {"dead_letters": 0}
    with engine.connect() as conn:
        summary = conn.execute(text("SELECT dlq_topic, stage, sum(letters) FROM dead_letter_summary "
                                    "GROUP BY dlq_topic, stage")).all()  # fmt: skip
        replayed_versions = {(r.family, r.model_version): r for r in conn.execute(select(db.model_versions))}
    engine.dispose()
    assert [(t, s, int(n)) for t, s, n in summary] == [("dlq.sinks", "sink:postgres", 3 + again.counters.dead_lettered)]
    assert replayed_versions == versions


def test_copy_keeps_empty_strings_nulls_and_json(pg: Settings) -> None:
    db.upgrade(pg)
    alert = synthetic_alert(1, 1_700_000_000_000).model_copy(
        update={"message": "", "evidence": {"quote": 'a "b", c\nd', "none": None, "flag": True}}
    )
    engine = db.make_engine(pg)
    with engine.begin() as conn:
        assert db.copy_rows(conn, db.alerts, [db.alert_doc(alert)]) == 1
        assert db.copy_rows(conn, db.alerts, [db.alert_doc(alert)]) == 0
    with engine.connect() as conn:
        row = conn.execute(select(db.alerts)).one()
    engine.dispose()
    assert row.message == "" and row.evidence == alert.evidence
