"""The stream worker on a market-by-order feed and a firm's drop copy, killed (``kill -9``) in the middle and
restarted: the order-book market's md.orders (venue ``sim-orders``, whose level-2 comes from its orders) become the
trades and books its books imply, then bars and features, and its orders.firm the alerts of spoofing and wash trades by
account, each equal to the offline twin's (the same stages over the same records without Kafka:
``tests/stage_harness.py``); nothing is dead-lettered."""

from __future__ import annotations

import signal
from pathlib import Path

import orjson
import pytest

from tapewatch.detectors.orders.firm_spoofing import MODEL_VERSION
from tapewatch.generators.lob_market import generate
from tapewatch.kafka_producer import KafkaProducer
from tapewatch.settings import Settings
from tapewatch.topics import (
    ALERTS,
    BARS,
    BOOKS,
    DLQ_PRODUCERS,
    DLQ_STREAMS,
    FEATURES,
    FIRM_ORDERS,
    MARKET_BY_ORDER,
    QUOTES,
)
from tests.detect_harness import FakeMessage
from tests.kafka_reader import read_topic
from tests.order_samples import firm_market
from tests.stage_harness import FIRM, ORDERS, as_messages, derived, market_stage_run, orders_stage_run
from tests.stream_runs import Positions, drop_worker_state, outputs, private_topics, wait_consumed, wait_until
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration
WAIT_S = 300.0
#: checkpoints 5 s apart: a killed worker has sent up to 5 s of trades and books its changelog does not know of
SLOW_CHECKPOINTS = {"TAPEWATCH_STREAM_CHECKPOINT_INTERVAL_MS": "5000"}


def test_orders_become_the_offline_twins_bars_and_features_through_a_kill(services: Settings, tmp_path: Path) -> None:
    session = generate(firm_market(10, symbols=2, minutes=30, venue="sim-orders", clean_fraction=0.25))
    events = [event for symbol in session.tapes for event in session.order_events(symbol)]
    reports = [report for symbol in session.tapes for report in session.execution_reports(symbol)]
    twin_orders = orders_stage_run()
    twin_orders.run(sorted([*as_messages(ORDERS, events), *as_messages(FIRM, reports)], key=_event_time))
    twin_market = market_stage_run()
    twin_market.run(derived(twin_orders))
    expected = {
        QUOTES.name: set(twin_orders.sent(QUOTES.name)),
        BOOKS.name: set(twin_orders.sent("md.books")),
        BARS.name: set(twin_market.sent("md.bars.1m")),
        FEATURES.name: set(twin_market.sent("features.1m")),
        ALERTS.name: set(twin_orders.sent("alerts")),
    }
    assert all(expected.values()), {name: len(values) for name, values in expected.items()}

    with private_topics(services) as settings:
        try:
            with KafkaProducer(settings, DLQ_PRODUCERS) as producer:
                for event in events:
                    producer.produce(settings.topic(MARKET_BY_ORDER.name), event.key(), event.to_json())
                for report in reports:
                    producer.produce(settings.topic(FIRM_ORDERS.name), report.key(), report.to_json())
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
    firms = {value for _, value in got[ALERTS.name] if orjson.loads(value)["model_version"] == MODEL_VERSION}
    assert firms == expected[ALERTS.name]


def _event_time(message: FakeMessage) -> tuple[int, bool]:
    """The twin reads both feeds in time order, a report after the public events of its millisecond."""
    return orjson.loads(message.value())["ts"], message.topic() == FIRM


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
