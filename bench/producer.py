"""`tapewatch bench produce`: records/s into the real broker, per source, beside raw confluent-kafka.

The raw reference produces pre-encoded Quote JSON with the same producer settings (idempotent, acks=all,
lz4), so the ratio shows what our Python per-record work costs on top of librdkafka.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from tapewatch.producers.framework import SourceRun, run_source
from tapewatch.producers.publisher import Publisher
from tapewatch.records import Quote
from tapewatch.settings import Settings
from tapewatch.topics import DLQ_PRODUCERS, QUOTES


@dataclass(frozen=True, slots=True)
class BenchResult:
    name: str
    records: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def bench_raw(settings: Settings, records: int) -> BenchResult:
    """librdkafka alone: the same bytes a Quote becomes, produced in a tight loop, then flushed."""
    payloads = [
        Quote(
            symbol=f"B{i % 50:03d}", venue="bench", ts=1_700_000_000_000 + i, price=100.0 + i % 17, size=1000.0, seq=i
        ).to_json()
        for i in range(min(records, 50_000))
    ]
    keys = [orjson.loads(p)["symbol"].encode() for p in payloads]
    publisher = Publisher(settings, DLQ_PRODUCERS)
    send = publisher.send
    started = time.perf_counter()
    n = len(payloads)
    for i in range(records):
        send(QUOTES, keys[i % n], payloads[i % n])
    publisher.flush(300)
    return BenchResult("raw confluent-kafka produce", records, time.perf_counter() - started)


def replay_file(path: Path, records: int) -> Path:
    rng = np.random.default_rng(7)
    price = 100 + np.cumsum(rng.normal(0, 0.05, records)).round(2)
    frame = pd.DataFrame(
        {
            "symbol": [f"B{i % 50:03d}" for i in range(records)],
            "ts": 1_700_000_000_000 + np.arange(records, dtype=np.int64) * 5,
            "price": np.abs(price) + 1,
            "size": rng.integers(1, 20, records) * 1000.0,
            "side": np.where(rng.random(records) < 0.5, "B", "S"),
        }
    )
    frame.to_parquet(path)
    return path


def bench_source(settings: Settings, name: str, make: Callable[[], SourceRun]) -> BenchResult:
    source = make()
    started = time.perf_counter()
    counters = asyncio.run(run_source(settings, f"bench:{name}", source))
    return BenchResult(name, counters.records, time.perf_counter() - started)


def run_produce_bench(
    settings: Settings, records: int, workdir: Path, extra: dict[str, Callable[[], SourceRun]] | None = None
) -> list[BenchResult]:
    """Run every producer benchmark on private topics (created here, deleted afterwards)."""
    from tapewatch.infra.kafka import ensure_topics
    from tapewatch.kafka import admin_client
    from tapewatch.producers.replay import Replay

    isolated = settings.updated(kafka={"topic_prefix": f"bench-{uuid.uuid4().hex[:6]}."})
    created = ensure_topics(isolated)
    try:
        results = [bench_raw(isolated, records)]
        path = replay_file(workdir / "bench-ticks.parquet", records)
        results.append(bench_source(isolated, "replay (Parquet ticks)", lambda: Replay([path]).run))
        for name, make in (extra or {}).items():
            results.append(bench_source(isolated, name, make))
        return results
    finally:
        admin = admin_client(isolated)
        for future in admin.delete_topics(created, operation_timeout=60).values():
            future.result()


def as_json(results: list[BenchResult]) -> bytes:
    reference = results[0].rate
    rows = [
        {**asdict(r), "records_per_s": round(r.rate), "ratio_to_raw": round(r.rate / reference, 3)} for r in results
    ]
    return orjson.dumps({"benchmark": "produce", "results": rows}, option=orjson.OPT_INDENT_2)


def extra_sources(records: int) -> dict[str, Callable[[], SourceRun]]:
    """Sources beyond replay that can be benchmarked offline (no network)."""
    from tapewatch.producers.simulate import bench_session

    return {"simulator (session generated beforehand)": lambda: bench_session(records)}
