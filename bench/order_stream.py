"""`tapewatch bench stream --feed mbo`: one stream worker on a market-by-order backlog, on one core.

On private topics of the real broker: the order-book market's market-by-order feed (venue ``sim-orders``, whose
trades and books the worker derives) is produced up front; a bare confluent-kafka consumer reads it as the reference;
then one ``tapewatch stream worker``, pinned to one core, processes it with every stage on. Two rates:

* **orders stage**: md.orders events/s between 10 % and 90 % of the backlog, from the worker's own counter;
* **whole worker**: md.orders events over the time until every stage is done with them (the derived trades and books
  through the market stage, their features through the detect stage): what one worker keeps up with.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from confluent_kafka import Consumer, TopicPartition

from tapewatch.bench.stream import WorkerProcess, raw_consume, sustained_rate
from tapewatch.bench.topics import private_topics
from tapewatch.errors import TapewatchError
from tapewatch.generators.lob_market import LobConfig, generate
from tapewatch.kafka import consumer_config
from tapewatch.kafka_producer import KafkaProducer
from tapewatch.settings import Settings
from tapewatch.streams.state import watermarks
from tapewatch.topics import BOOKS, DLQ_PRODUCERS, FEATURES, MARKET_BY_ORDER, QUOTES


@dataclass(frozen=True, slots=True)
class OrderStreamBenchResult:
    events: int
    derived: int
    raw_consume_per_s: float
    orders_stage_per_s: float
    whole_worker_per_s: float

    def to_json(self) -> bytes:
        return orjson.dumps({"benchmark": "stream-mbo", **asdict(self)}, option=orjson.OPT_INDENT_2)


def _produce(settings: Settings, config: LobConfig) -> int:
    """The session's market-by-order feed onto md.orders, symbol after symbol; the number of events."""
    session = generate(config)
    topic, events = settings.topic(MARKET_BY_ORDER.name), 0
    with KafkaProducer(settings, DLQ_PRODUCERS) as producer:
        for symbol in session.tapes:
            for event in session.order_events(symbol):
                producer.produce(topic, event.key(), event.to_json())
                events += 1
    return events


def _records(settings: Settings, names: tuple[str, ...]) -> int:
    consumer = Consumer(consumer_config(settings, **{"group.id": f"bench-count-{uuid.uuid4()}"}))
    try:
        total = 0
        for name in names:
            for p in range(settings.kafka.topic_partitions):
                low, high = watermarks(consumer, TopicPartition(settings.topic(name), p))
                total += high - low
        return total
    finally:
        consumer.close()


def _wait_read(settings: Settings, worker: WorkerProcess, agent: str, names: tuple[str, ...]) -> int:
    """Wait until ``agent``'s stage has read every record on the topics ``names`` (written by an earlier stage,
    which is done); their number."""
    deadline = time.monotonic() + 1800.0
    while time.monotonic() < deadline:
        written = _records(settings, names)
        if (worker.records_in(agent) or 0) >= written > 0:
            return written
        time.sleep(0.2)
    raise TapewatchError(f"the {agent} stage did not read {', '.join(names)} to the end; see {worker.log}")


def run_order_stream_bench(
    settings: Settings, *, symbols: int, minutes: float, workdir: Path, core: int = 0
) -> OrderStreamBenchResult:
    config = LobConfig(symbols=symbols, minutes=minutes, seed=3, orders=True, venue="sim-orders", news=False)
    with private_topics(settings, f"bench-{uuid.uuid4().hex[:6]}.") as isolated:
        events = _produce(isolated, config)
        raw = raw_consume(isolated, [isolated.topic(MARKET_BY_ORDER.name)], events)
        worker = WorkerProcess(isolated, workdir / "worker-mbo.log", cpus={core}, agent="orders")
        try:
            samples = worker.follow(events)
            derived = _wait_read(isolated, worker, "market", (QUOTES.name, BOOKS.name))
            _wait_read(isolated, worker, "detect", (FEATURES.name,))
            done = time.monotonic()
        finally:
            worker.stop()
        first = next(t for t, count in samples if count > 0)
        whole = events / (done - first)
        return OrderStreamBenchResult(events, derived, raw, sustained_rate(samples, events), whole)
