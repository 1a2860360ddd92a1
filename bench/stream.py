"""`tapewatch bench stream`: one stream worker's sustained throughput and its event-to-feature latency.

Everything runs on the real broker, on private topics (a fresh prefix, deleted afterwards):

1. **Backlog**: a simulated session (quotes and books) is produced up front. The raw reference is a
   confluent-kafka consumer reading that backlog in the same run (bytes only, no decoding); then one
   ``tapewatch stream worker`` processes it, and its sustained rate is read from its own Prometheus counter
   between 10 % and 90 % of the backlog (start-up and the tail excluded).
2. **Latency**: on fresh topics, the worker running, a paced producer sends live records (event time = now)
   at a fixed rate; a consumer of ``features.1m`` measures, for every record, the wall time of arrival minus
   the moment its window became final (window end + grace). That is what the pipeline adds (decode, state,
   features, Kafka both ways), excluding the grace it waits for by definition. Percentiles per cadence.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from tapewatch.bench.timing import latency_summary
from tapewatch.bench.topics import private_topics
from tapewatch.errors import TapewatchError
from tapewatch.generators.simulator import SimulationConfig, generate
from tapewatch.kafka import consumer_config
from tapewatch.records import Book, Quote
from tapewatch.settings import PROJECT_ROOT, Settings
from tapewatch.topics import BOOKS, FEATURES, QUOTES

RECORDS_IN = "tapewatch_stream_records_in_total"


@dataclass
class StreamBenchResult:
    records: int
    raw_consume_per_s: float
    worker_per_s: float
    latency_rate: float
    latency_seconds: float
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # cadence → p50/p99/max/n

    @property
    def ratio(self) -> float:
        return self.worker_per_s / self.raw_consume_per_s if self.raw_consume_per_s else 0.0

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"benchmark": "stream", **asdict(self), "ratio_to_raw": self.ratio}, option=orjson.OPT_INDENT_2
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    """One `tapewatch stream worker` on the private topics, with its metrics on a free port; ``cpus``: the cores it
    may run on (all by default)."""

    def __init__(
        self,
        settings: Settings,
        log: Path,
        *,
        cpus: set[int] | None = None,
        agent: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = _free_port()
        #: whose records ``records_in`` counts (``None``: every stage's)
        self.prefix = RECORDS_IN + "{" + (f'agent="{agent}"' if agent else "")
        self.log = log
        self._out = log.open("wb")
        env = {
            **os.environ,
            **(env or {}),
            "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
            "TAPEWATCH_LOG_LEVEL": "INFO",
        }
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("tapewatch")), "stream", "worker", "--metrics-port", str(self.port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            preexec_fn=None if cpus is None else (lambda: os.sched_setaffinity(0, cpus)),  # noqa: PLW1509
        )

    def records_in(self, agent: str | None = None) -> float | None:
        """The worker's consumed-records counter (of ``agent``'s stage, else of the one it was started to count), or
        None while its endpoint is not up."""
        prefix = self.prefix if agent is None else RECORDS_IN + "{" + f'agent="{agent}"'
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            if self.proc.poll() is not None:
                raise TapewatchError(f"stream worker exited {self.proc.returncode}; see {self.log}") from None
            return None
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))

    def follow(self, records: int, timeout_s: float = 1800.0) -> list[tuple[float, float]]:
        """(time, records in) every 0.2 s until the worker has read ``records``."""
        samples: list[tuple[float, float]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            count = self.records_in()
            if count is not None:
                samples.append((time.monotonic(), count))
                if count >= records:
                    return samples
            time.sleep(0.2)
        raise TapewatchError(f"the worker did not finish its backlog in {timeout_s:.0f} s; see {self.log}")

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.records_in() is not None and b"Ready" in self.log.read_bytes():
                return
            time.sleep(0.25)
        raise TapewatchError(f"stream worker not ready after {timeout_s:.0f} s; see {self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


def _produce_session(settings: Settings, config: SimulationConfig, truth: Path) -> int:
    """The session into md.quotes / md.books (as fast as possible); the number of records."""
    argv = [
        str(Path(sys.executable).with_name("tapewatch")),
        *("produce", "simulate", "--symbols", str(config.symbols), "--minutes", str(config.minutes)),
        *("--seed", str(config.seed), "--truth", str(truth), "--no-progress"),
    ]
    env = {**os.environ, "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix}
    done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise TapewatchError(f"producing the session failed: {done.stderr.strip().splitlines()[-1:]}")
    counts = generate(config).counts
    return counts["quotes"] + counts["books"]


def raw_consume(settings: Settings, topics: list[str], records: int) -> float:
    """Records/s of a bare confluent-kafka consumer over the backlog (the reference)."""
    consumer = Consumer(
        consumer_config(
            settings,
            **{
                "group.id": f"bench-raw-{uuid.uuid4()}",
                "enable.auto.commit": False,
            },
        )
    )
    consumer.assign(
        [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in range(settings.kafka.topic_partitions)]
    )
    seen = 0
    started = time.perf_counter()
    try:
        while seen < records and time.perf_counter() - started < 600:
            seen += sum(1 for m in consumer.consume(num_messages=10_000, timeout=1.0) if m.error() is None)
        return seen / (time.perf_counter() - started)
    finally:
        consumer.close()


def sustained_rate(samples: list[tuple[float, float]], total: int) -> float:
    """Records/s between 10 % and 90 % of ``total`` from (time, count) samples, interpolated."""
    times = np.array([t for t, _ in samples])
    counts = np.array([c for _, c in samples])
    lo, hi = 0.1 * total, 0.9 * total
    t_lo, t_hi = float(np.interp(lo, counts, times)), float(np.interp(hi, counts, times))
    return (hi - lo) / (t_hi - t_lo) if t_hi > t_lo else 0.0


def _bench_backlog(settings: Settings, config: SimulationConfig, workdir: Path) -> tuple[int, float, float]:
    with private_topics(settings, f"bench-{uuid.uuid4().hex[:6]}.") as isolated:
        records = _produce_session(isolated, config, workdir / "truth.csv")
        topics = [isolated.topic(QUOTES.name), isolated.topic(BOOKS.name)]
        raw = raw_consume(isolated, topics, records)
        worker = WorkerProcess(isolated, workdir / "worker-backlog.log")
        try:
            samples = worker.follow(records)
        finally:
            worker.stop()
        return records, raw, sustained_rate(samples, records)


class _LiveFeed:
    """Live records of 50 symbols stamped with the wall clock: a random walk of trades, every fourth record a
    five-level book around the price."""

    symbols = 50

    def __init__(self, settings: Settings) -> None:
        from tapewatch.producers.publisher import Publisher
        from tapewatch.topics import DLQ_PRODUCERS

        self.publisher = Publisher(settings, DLQ_PRODUCERS)
        self.rng = np.random.default_rng(5)
        self.prices = 100.0 + self.rng.random(self.symbols) * 50
        self.names = [f"LAT{i:03d}" for i in range(self.symbols)]
        self.sent = 0

    def send(self) -> None:
        s = self.sent % self.symbols
        ts = int(time.time() * 1000)
        if self.sent % 4 == 3:  # a quarter of the records are books
            mid = float(self.prices[s])
            book = Book(
                symbol=self.names[s],
                venue="bench",
                ts=ts,
                bids=[(round(mid - 0.01 * (k + 1), 2), 1000.0 * (k + 1)) for k in range(5)],
                asks=[(round(mid + 0.01 * (k + 1), 2), 1000.0 * (k + 1)) for k in range(5)],
            )
            self.publisher.publish(BOOKS, book)
        else:
            self.prices[s] *= 1 + self.rng.normal(0, 2e-4)
            side = "B" if self.rng.random() < 0.5 else "S"
            quote = Quote.model_validate(
                {
                    "symbol": self.names[s],
                    "venue": "bench",
                    "ts": ts,
                    "price": round(float(self.prices[s]), 2),
                    "size": 1000.0,
                    "side": side,
                }
            )
            self.publisher.publish(QUOTES, quote)
        self.sent += 1


def _bench_latency(settings: Settings, rate: float, seconds: float, workdir: Path) -> dict[str, dict[str, float]]:
    with private_topics(settings, f"bench-{uuid.uuid4().hex[:6]}.") as isolated:
        worker = WorkerProcess(isolated, workdir / "worker-latency.log")
        consumer = Consumer(
            consumer_config(isolated, **{"group.id": f"bench-lat-{uuid.uuid4()}", "enable.auto.commit": False})
        )
        features = isolated.topic(FEATURES.name)
        consumer.assign([TopicPartition(features, p, OFFSET_END) for p in range(isolated.kafka.topic_partitions)])
        try:
            worker.wait_ready()
            feed = _LiveFeed(isolated)
            interval = 1.0 / rate
            latencies: dict[str, list[float]] = {}
            grace = isolated.stream.grace_ms
            start = time.time()
            end = start + seconds
            while True:
                now = time.time()
                if now >= end:
                    break
                due = int((now - start) / interval) + 1
                while feed.sent < due:  # catch up with the schedule
                    feed.send()
                feed.publisher.poll()
                _collect(consumer, latencies, grace, timeout=0.001)
            feed.publisher.flush(60)
            drain_until = time.time() + 70  # the last minute's bars close once the next minute's data arrives
            while time.time() < drain_until:
                _collect(consumer, latencies, grace, timeout=0.2)
        finally:
            consumer.close()
            worker.stop()
    return {cadence: latency_summary(values) for cadence, values in latencies.items() if values}


def _collect(consumer: Consumer, latencies: dict[str, list[float]], grace_ms: int, timeout: float) -> None:
    for message in consumer.consume(num_messages=1000, timeout=timeout):
        if message.error() is not None or not message.value():
            continue
        arrived = time.time() * 1000.0
        record: dict[str, Any] = orjson.loads(message.value() or b"{}")
        latencies.setdefault(str(record.get("cadence")), []).append(arrived - float(record["ts"]) - grace_ms)


def run_stream_bench(
    settings: Settings, *, symbols: int, minutes: float, rate: float, seconds: float, workdir: Path
) -> StreamBenchResult:
    config = SimulationConfig(symbols=symbols, minutes=minutes, seed=3)
    records, raw, sustained = _bench_backlog(settings, config, workdir)
    latency = _bench_latency(settings, rate, seconds, workdir)
    return StreamBenchResult(
        records=records,
        raw_consume_per_s=raw,
        worker_per_s=sustained,
        latency_rate=rate,
        latency_seconds=seconds,
        latency_ms=latency,
    )
