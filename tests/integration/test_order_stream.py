"""The stream worker on a market-by-order feed, killed (``kill -9``) in the middle and restarted: the order-book
market's md.orders (venue ``sim-orders``, whose level-2 comes from its orders) become the trades and books its books
imply, then bars and features, each equal to the offline twin's (the same stages run on the same events without
Kafka: ``tests/stage_harness.py``); nothing is dead-lettered."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tapewatch.generators.lob_market import LobConfig, generate
from tapewatch.kafka_producer import KafkaProducer
from tapewatch.settings import Settings
from tapewatch.topics import BARS, BOOKS, DLQ_PRODUCERS, DLQ_STREAMS, FEATURES, MARKET_BY_ORDER, QUOTES
from tests.kafka_reader import read_topic
from tests.stage_harness import as_messages, derived, market_stage_run, orders_stage_run
from tests.stream_runs import Positions, drop_worker_state, outputs, private_topics, wait_consumed, wait_until
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration
WAIT_S = 300.0
#: checkpoints 5 s apart: a killed worker has sent up to 5 s of trades and books its changelog does not know of
SLOW_CHECKPOINTS = {"TAPEWATCH_STREAM_CHECKPOINT_INTERVAL_MS": "5000"}


def test_orders_become_the_offline_twins_bars_and_features_through_a_kill(services: Settings, tmp_path: Path) -> None:
    session = generate(LobConfig(symbols=2, seed=5, minutes=20, orders=True, venue="sim-orders", news=False))
    events = [event for symbol in session.tapes for event in session.order_events(symbol)]
    twin_orders = orders_stage_run()
    twin_orders.run(as_messages("md.orders", events))
    twin_market = market_stage_run()
    twin_market.run(derived(twin_orders))
    expected = {
        QUOTES.name: set(twin_orders.sent("md.quotes")),
        BOOKS.name: set(twin_orders.sent("md.books")),
        BARS.name: set(twin_market.sent("md.bars.1m")),
        FEATURES.name: set(twin_market.sent("features.1m")),
    }
    assert all(expected.values()), {name: len(values) for name, values in expected.items()}

    with private_topics(services) as settings:
        try:
            with KafkaProducer(settings, DLQ_PRODUCERS) as producer:
                for event in events:
                    producer.produce(settings.topic(MARKET_BY_ORDER.name), event.key(), event.to_json())
            worker = Worker(settings, tmp_path / "first.log", env=SLOW_CHECKPOINTS)
            positions = Positions(settings)
            try:
                wait_until(lambda: positions.records(QUOTES.name) > 2_000, WAIT_S, worker.tail)
            finally:
                positions.close()
            worker.stop(sig=signal.SIGKILL)
            second = Worker(settings, tmp_path / "second.log", env=SLOW_CHECKPOINTS)
            try:
                wait_consumed(settings, WAIT_S, second.tail)
                got = outputs(settings)
            finally:
                second.stop()
            derived_sent = {name: distinct(settings, name) for name in (QUOTES.name, BOOKS.name)}
        finally:
            drop_worker_state(settings)
    assert not got[DLQ_STREAMS.name]
    # every derived trade and book (a kill may have sent some twice: the market stage skipped those)
    assert derived_sent == {name: expected[name] for name in (QUOTES.name, BOOKS.name)}
    assert {value for _, value in got[BARS.name]} == expected[BARS.name]
    assert {value for _, value in got[FEATURES.name]} == expected[FEATURES.name]


def distinct(settings: Settings, name: str) -> set[bytes]:
    """The distinct values on a topic, read to its end."""
    positions = Positions(settings)
    try:
        count = positions.records(name)
    finally:
        positions.close()
    got = read_topic(settings, settings.topic(name), count, timeout_s=120, linger_s=0)
    assert len(got) == count, f"{name}: read {len(got)} of {count}"
    return {message.value for message in got}
