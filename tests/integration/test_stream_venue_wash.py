"""The wash tests in the stream worker on the real broker: md.quotes → `tapewatch stream worker` → venue.indicators,
one record per symbol and closed day, equal to what ``detect file`` computes from the same trades."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
from confluent_kafka import Producer

from tapewatch.detectors.venue_wash import DAY_MS
from tapewatch.evaluation.venue_wash import indicators
from tapewatch.kafka import client_config
from tapewatch.records import Quote, Side, VenueIndicator
from tapewatch.settings import Settings
from tapewatch.topics import QUOTES, VENUE_INDICATORS
from tests.kafka_reader import read_distinct
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration

START = 1_763_683_200_000  # a UTC midnight: binance's days are UTC days
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def _trades() -> list[Quote]:
    """Two days of 250 trades per symbol, then one trade of the third day, which closes the second."""
    rng = random.Random(55)
    out = []
    for day, count in ((0, 250), (1, 250), (2, 1)):
        for i in range(count):
            ts = START + day * DAY_MS + i * 300_000
            for symbol in SYMBOLS:
                size = round(10 ** rng.uniform(-4, 1), 8)
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                out.append(Quote(symbol=symbol, venue="binance", ts=ts, price=100.0 + i % 5, size=size, side=side))
    return out


@pytest.mark.timeout(90)
def test_the_worker_sends_each_closed_day_s_indicator(stream_settings: Settings, tmp_path: Path) -> None:
    settings = stream_settings
    trades = _trades()
    worker = Worker(settings, tmp_path / "worker.log")
    try:
        producer = Producer(client_config(settings, **{"enable.idempotence": True, "linger.ms": 5}))
        for quote in trades:
            producer.produce(settings.topic(QUOTES.name), key=quote.key(), value=quote.to_json())
            producer.poll(0)
        assert producer.flush(30) == 0
        got = read_distinct(settings, settings.topic(VENUE_INDICATORS.name), 4, wait_s=60.0, linger_s=1.0)
        details = worker.tail()
    finally:
        worker.stop()
    sent = sorted({VenueIndicator.from_json(m.value) for m in got}, key=lambda i: (i.symbol, i.ts))
    frame = pd.DataFrame([q.model_dump(mode="json") for q in trades])
    expected = sorted((i for i in indicators(frame) if i.complete), key=lambda i: (i.symbol, i.ts))
    assert sent == expected, details
    assert [(i.symbol, i.trades) for i in sent] == [(s, 250) for s in SYMBOLS for _ in range(2)]
    assert all(m.key == VenueIndicator.from_json(m.value).symbol.encode() for m in got)


def test_an_indicator_is_stored_once(pg: Settings) -> None:
    from sqlalchemy import func, select

    from tapewatch.sinks import db

    db.upgrade(pg)
    frame = pd.DataFrame([q.model_dump(mode="json") for q in _trades()])
    docs = [db.record_doc(i) for i in indicators(frame)]
    engine = db.make_engine(pg)
    with engine.begin() as conn:
        assert db.copy_rows(conn, db.venue_indicators, docs) == len(docs) == 6
    with engine.begin() as conn:  # a replay
        assert db.copy_rows(conn, db.venue_indicators, docs) == 0
        assert conn.execute(select(func.count()).select_from(db.venue_indicators)).scalar() == 6
    engine.dispose()


def test_an_indicator_is_searchable_once_in_elasticsearch(settings: Settings) -> None:
    import uuid

    from tapewatch.producers.publisher import Publisher
    from tapewatch.sinks.consumer import SinkRunner, resolve_topics
    from tapewatch.sinks.defaults import ELASTICSEARCH_TOPICS
    from tapewatch.sinks.elastic import ElasticsearchWriter, delete_everything, index_pattern
    from tapewatch.sinks.search import es_client
    from tapewatch.topics import DLQ_SINKS

    isolated = settings.updated(es={"index_prefix": f"twtest{uuid.uuid4().hex[:8]}"})
    es = es_client(isolated)
    try:
        frame = pd.DataFrame([q.model_dump(mode="json") for q in _trades()])
        records = indicators(frame)
        with Publisher(isolated, DLQ_SINKS) as publisher:
            for record in [*records, *records]:  # a replay
                publisher.publish(VENUE_INDICATORS, record)
        runner = SinkRunner(isolated, ElasticsearchWriter(isolated), resolve_topics(ELASTICSEARCH_TOPICS))
        runner.run(exit_when_idle_s=4.0)
        assert runner.counters.dead_lettered == 0
        es.indices.refresh(index=f"{isolated.es.index_prefix}-*")
        hits = es.search(index=index_pattern(isolated, "venue-indicators"), size=20)["hits"]["hits"]
        assert sorted((h["_source"]["tapewatch"]["symbol"], h["_source"]["@timestamp"]) for h in hits) == sorted(
            (r.symbol, r.ts) for r in records
        )
    finally:
        delete_everything(es, isolated)
        es.close()
