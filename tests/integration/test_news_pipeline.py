"""News on the real services: items on news.items → the stream worker's news stage (sentiment, the indicator on
signals.news and in features.1m) → the detect stage (news beside the alerts, a pump's score lowered) → PostgreSQL,
Elasticsearch and the console's case page. The news about an alert's onset is published after the session's quotes,
so the worker has raised the alert before it learns of the news: the stores must still end with the alert as the
offline twin (`tapewatch detect file --news`) writes it with every item in hand."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from elasticsearch import ApiError
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from tapewatch.console import users
from tapewatch.console.app import create_app
from tapewatch.detectors.news.context import DUMP_EVIDENCE
from tapewatch.producers.publisher import Publisher
from tapewatch.records import NewsItem
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.sinks.elastic import index_pattern
from tapewatch.sinks.search import es_client
from tapewatch.topics import DLQ_PRODUCERS, NEWS_ITEMS
from tests.console_support import BASE_URL, TENANT, add_user, console_schema, sign_in
from tests.pipeline_session import SESSION, sim_args, tapewatch
from tests.postgres_times import datetime_to_ms
from tests.search_support import shard_starting
from tests.stream_runs import wait_until
from tests.stream_worker import Worker, start_sink

pytestmark = pytest.mark.integration

TAPEWATCH = Path(sys.executable).with_name("tapewatch")
WAIT_S = 240.0


@pytest.fixture
def console_stores(stores: Settings) -> Iterator[Settings]:
    """``stores`` whose PostgreSQL schema is the console's (one tenant on venue ``sim``)."""
    with console_schema(stores) as settings:
        yield settings


def offline_alerts(tmp_path: Path, env: dict[str, str], news: Path | None) -> list[dict[str, Any]]:
    """The session's alerts from the offline twin (patterns only), with ``news`` beside them when given."""
    out = tmp_path / ("offline-news.jsonl" if news else "offline.jsonl")
    ticks = str(tmp_path / "session" / "ticks.parquet")
    args = ["detect", "file", ticks, "--no-kmeans", "--venue", SESSION.venue, "--out", str(out)]
    tapewatch(*args, *(["--news", str(news)] if news else []), env=env)
    return [orjson.loads(line) for line in out.read_text().splitlines()]


def news_item(n: int, symbol: str, ts: int, title: str) -> NewsItem:
    return NewsItem(
        symbol=symbol, venue=SESSION.venue, item_id=f"wire:{n}", source="wire", ts=ts, title=title,
        url=f"https://news.example/{n}", language="en", symbols=[symbol],
    )  # fmt: skip


def pump_run_up(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest emission of the session's first pump run-up (not confirmed by its dump: news lowers its score)."""
    pumps = [a for a in alerts if a["kind"] == "pump_and_dump" and DUMP_EVIDENCE not in a["evidence"]]
    assert pumps, "the session raises a pump run-up alert"
    first = min(pumps, key=lambda a: a["ts"])["alert_id"]
    return max((a for a in pumps if a["alert_id"] == first), key=lambda a: a["ts"])


@pytest.mark.timeout(900)
def test_news_reaches_the_features_the_alerts_the_stores_and_the_console(
    console_stores: Settings, stream_settings: Settings, tmp_path: Path
) -> None:
    settings = console_stores
    env = {
        "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "TAPEWATCH_POSTGRES_URL": settings.postgres.url_plain,
        "TAPEWATCH_ES_INDEX_PREFIX": settings.es.index_prefix,
        "TAPEWATCH_MODEL_DIR": str(tmp_path / "models"),
    }
    tapewatch("produce", "simulate", *sim_args(SESSION), "--out-dir", str(tmp_path / "session"), "--no-progress",
              env=env)  # fmt: skip
    pump = pump_run_up(offline_alerts(tmp_path, env, None))
    symbol, onset = pump["symbol"], pump["window_start"]
    symbols = pd.read_parquet(tmp_path / "session" / "ticks.parquet", columns=["symbol"])["symbol"].unique()
    other = next(str(s) for s in sorted(symbols) if s != symbol)
    items = [
        news_item(1, symbol, onset - 5 * 60_000, "Company beats profit forecast, raises outlook"),
        news_item(2, symbol, onset - 3 * 3_600_000, "Company names a new chief financial officer"),
        news_item(3, other, onset - 60_000, "Regulator fines company over late filings"),
    ]
    news_file = tmp_path / "news.jsonl"
    news_file.write_bytes(b"".join(item.to_json() + b"\n" for item in items))
    expected = {a["alert_id"]: a for a in offline_alerts(tmp_path, env, news_file)}
    assert expected[pump["alert_id"]]["news"][0]["item_id"] == "wire:1"

    worker = Worker(settings, tmp_path / "worker.log", "--metrics-port", "0", env=env)
    sinks = [start_sink(name, env, tmp_path / f"sink-{name}.log") for name in ("postgres", "elasticsearch")]
    engine = db.make_engine(settings)
    es = es_client(settings)
    try:
        tapewatch("produce", "simulate", *sim_args(SESSION), "--no-progress", env=env)
        # the alert is stored before any news is published: the worker learns of its news after raising it
        wait_until(lambda: _alert_row(engine, pump["alert_id"]) is not None, WAIT_S, worker.tail)
        assert stored_news(engine, pump["alert_id"]) == []
        publish_news(settings, items)
        wait_until(lambda: stored_news(engine, pump["alert_id"]) == ["wire:1"], WAIT_S, worker.tail)
        wait_until(lambda: len(es_news(es, settings)) == len(items), WAIT_S, worker.tail)
        wait_until(lambda: es_alert_news(es, settings, pump["alert_id"]) == ["wire:1"], WAIT_S, worker.tail)
        stored = pg_alert(engine, pump["alert_id"])
        signals = pg_news_signals(engine)
        news_features = pg_news_features(engine)
        wait_until(lambda: bool(dead_news(engine)), WAIT_S, worker.tail)
        with TestClient(create_app(settings), base_url=BASE_URL) as client:
            add_user(engine, "ana")
            assert sign_in(client, "ana") == 303
            page = client.get("/case", params={"id": pump["alert_id"]}).text
            report = client.get("/case/report", params={"id": pump["alert_id"]}).text
            with engine.begin() as conn:
                token = users.add_token(conn, "risk-feed", TENANT, "test")
            headers = {"Authorization": f"Bearer {token.secret}"}
            api = client.get(f"/api/v1/cases/{pump['alert_id']}", headers=headers)
    finally:
        worker.stop()
        for process in sinks:
            process.terminate()
            process.wait(30)
        engine.dispose()
        es.close()

    # the alert as the offline twin writes it with every item in hand, though the news came after it
    want = expected[pump["alert_id"]]
    assert stored["news"] == want["news"] and stored["evidence"] == want["evidence"], stored
    assert stored["score"] == pytest.approx(want["score"]) and stored["severity"] == want["severity"]
    assert stored["evidence"]["news_at_onset"] is True
    assert stored["score"] == pytest.approx(pump["score"] * (1 - settings.news.discount), abs=1e-6)
    # each item scored once, its indicator on signals.news and in features.1m (cadence news)
    assert sorted(s["item_id"] for s in signals) == ["wire:1", "wire:2", "wire:3"]
    assert all(-1.0 <= s["sentiment"] <= 1.0 and -100.0 <= s["indicator"] <= 100.0 for s in signals)
    assert {(f["symbol"], f["ts"]) for f in news_features} == {(i.symbol, i.ts) for i in items}
    # the console shows the headline beside the alert, with its sentiment, on the page, the report and the API
    sentiment = next(s["sentiment"] for s in signals if s["item_id"] == "wire:1")
    for html in (page, report):
        assert "Company beats profit forecast, raises outlook" in html and f"{sentiment:+.2f}" in html
        assert "score was lowered from" in html
    assert api.status_code == 200 and [n["item_id"] for n in api.json()["news"]] == ["wire:1"]


def publish_news(settings: Settings, items: list[NewsItem]) -> None:
    """The items, a repeat of the first and a malformed record."""
    publisher = Publisher(settings, DLQ_PRODUCERS)
    for item in [*items, items[0]]:
        publisher.publish(NEWS_ITEMS, item)
    publisher.send(NEWS_ITEMS, items[0].key(), b'{"not": "a news item"}')
    publisher.flush()


def dead_news(engine: Engine) -> list[str]:
    """The reasons of the dead letters of news.items records."""
    d = db.dead_letters.c
    with engine.connect() as conn:
        return list(conn.execute(select(d.reason).where(d.source_topic.endswith(NEWS_ITEMS.name))).scalars())


def stored_news(engine: Engine, alert_id: str) -> list[str]:
    row = _alert_row(engine, alert_id)
    return [] if row is None else [ref["item_id"] for ref in row.news]


def _alert_row(engine: Engine, alert_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(db.alerts).where(db.alerts.c.alert_id == alert_id)).first()


def pg_alert(engine: Engine, alert_id: str) -> dict[str, Any]:
    row = _alert_row(engine, alert_id)
    return {"news": row.news, "evidence": row.evidence, "score": row.score, "severity": row.severity}


def pg_news_signals(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(db.news_signals))]


def pg_news_features(engine: Engine) -> list[dict[str, Any]]:
    f = db.features.c
    with engine.connect() as conn:
        rows = conn.execute(select(f.symbol, f.ts, f["values"]).where(f.cadence == "news"))
        return [{"symbol": r[0], "ts": datetime_to_ms(r[1]), "values": r[2]} for r in rows]


def _search(es: Any, settings: Settings, family: str, **query: Any) -> list[dict[str, Any]]:
    pattern = index_pattern(settings, family)
    try:
        es.indices.refresh(index=pattern, ignore_unavailable=True, allow_no_indices=True)
        found = es.search(index=pattern, size=1000, ignore_unavailable=True, **query)
    except ApiError as error:
        if shard_starting(error):
            return []
        raise
    return [hit["_source"] for hit in found["hits"]["hits"]]


def es_news(es: Any, settings: Settings) -> list[dict[str, Any]]:
    return _search(es, settings, "news")


def es_alert_news(es: Any, settings: Settings, alert_id: str) -> list[str]:
    docs = _search(es, settings, "alerts", query={"ids": {"values": [alert_id]}})
    return [ref["item_id"] for ref in docs[0]["tapewatch"]["news"]] if docs else []
