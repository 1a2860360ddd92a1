"""The orders stage alone, without Kafka: events/s over the order-book market's market-by-order feed, and a digest of
every byte it sent (derived trades and books, alerts, dead letters, changelog entries) to compare two versions by.

``tapewatch bench orders [SYMBOLS] [MINUTES] [--profile]`` (or ``python -m tapewatch.bench.orders_stage``): the
session (venue ``sim-orders``, seed 3, as ``tapewatch bench stream --feed mbo``) is encoded up front, merged in time
order and cut into batches of ``--batch`` messages on two partitions; the stage writes its state every
``--checkpoint`` batches, as a worker does every checkpoint interval. Only :meth:`OrdersStage.process` and
:meth:`OrdersStage.write_state` are timed, with the garbage collector set as the stream worker sets it
(:func:`tapewatch.collector.tuned_for_batches`, once the input is built).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import heapq
import pstats
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tapewatch.bench.timing import timed_line
from tapewatch.collector import tuned_for_batches
from tapewatch.deadletter import DeadLetter
from tapewatch.generators.lob_market import LobConfig, generate
from tapewatch.records import OrderBookEvent
from tapewatch.streams.metrics import StreamMetrics
from tapewatch.streams.orders import OrdersStage
from tapewatch.streams.stage import StageIO
from tapewatch.streams.state import ChangelogTable

PARTITIONS = 2
CHANGELOG = "changelog.orders"


@dataclass(frozen=True, slots=True)
class Message:
    """What the stage reads of a confluent-kafka message."""

    _topic: str
    _partition: int
    _offset: int
    _key: bytes
    _value: bytes

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value


@dataclass
class DigestProducer:
    """Hashes every output and dead letter in the order queued (the bytes a broker would get), and the changelog
    writes apart (their format is versioned, the outputs' is not)."""

    digest: Any = field(default_factory=hashlib.sha256)
    changelog: Any = field(default_factory=hashlib.sha256)
    records: int = 0

    def produce(self, topic: str, key: bytes, value: bytes, partition: int) -> None:
        into = self.changelog if topic == CHANGELOG else self.digest
        self._add(into, topic.encode(), key, value, str(partition).encode())

    def dead_letter(self, raw: bytes, letter: DeadLetter, key: bytes | None, partition: int) -> None:
        self._add(self.digest, b"dlq", key or b"", raw, letter.reason.encode())

    def _add(self, digest: Any, *parts: bytes) -> None:
        for part in parts:
            digest.update(len(part).to_bytes(8, "little") + part)
        self.records += 1


def _in_time_order(config: LobConfig) -> Iterator[OrderBookEvent]:
    session = generate(config)
    yield from heapq.merge(*(session.order_events(symbol) for symbol in session.tapes), key=lambda e: e.ts)


def messages(config: LobConfig) -> list[Message]:
    """The session's events as md.orders messages, each symbol on one partition, offsets counted per partition."""
    offsets = [0] * PARTITIONS
    out = []
    for event in _in_time_order(config):
        partition = sum(event.symbol.encode()) % PARTITIONS
        out.append(Message("md.orders", partition, offsets[partition], event.key(), event.to_json()))
        offsets[partition] += 1
    return out


def stage(producer: DigestProducer) -> OrdersStage:
    io = StageIO("stream:orders", "orders", producer, StreamMetrics())  # type: ignore[arg-type]
    table = ChangelogTable("orders", CHANGELOG, producer)  # type: ignore[arg-type]
    return OrdersStage(
        orders_topic="md.orders",
        firm_topic="orders.firm",
        quotes_topic="md.quotes",
        books_topic="md.books",
        alerts_topic="alerts",
        io=io,
        table=table,
    )


def run(batches: Sequence[Sequence[Message]], checkpoint: int) -> tuple[float, float, DigestProducer]:
    """Seconds the stage took over ``batches`` (wall and this process's CPU: the cores are shared, and CPU time is
    what other work on them disturbs least), writing its state every ``checkpoint`` batches and at the end."""
    producer = DigestProducer()
    orders = stage(producer)
    started, cpu = time.perf_counter(), time.process_time()
    for i, batch in enumerate(batches, start=1):
        orders.process(batch)  # type: ignore[arg-type]
        if i % checkpoint == 0 or i == len(batches):
            orders.write_state()
    return time.perf_counter() - started, time.process_time() - cpu, producer


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--checkpoint", type=int, default=4, help="batches between two state writes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="one more run under cProfile: its top 30 by own time")
    args = parser.parse_args(argv)
    config = LobConfig(symbols=args.symbols, minutes=args.minutes, seed=3, orders=True, venue="sim-orders", news=False)
    feed = messages(config)
    batches = [feed[i : i + args.batch] for i in range(0, len(feed), args.batch)]
    # the collector as the stream worker runs under it (its input, built up front here, frozen with the rest): the
    # stage's speed is what it is in a worker, not with the collector re-scanning the benchmark's own input
    with tuned_for_batches():
        for _ in range(args.repeat):
            seconds, cpu, producer = run(batches, args.checkpoint)
            print(timed_line("orders stage", seconds, len(feed), unit="events", width=14), end="   ")
            digests = f"outputs {producer.digest.hexdigest()[:16]}, changelog {producer.changelog.hexdigest()[:16]}"
            print(f"CPU {len(feed) / cpu:,.0f} events/s   {producer.records:,} out  sha256 {digests}")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(run, batches, args.checkpoint)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
