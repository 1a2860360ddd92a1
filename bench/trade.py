"""Benchmark of the paper trader: the executor alone, and the worker end to end through Kafka.

A session of the simulator's market (quotes and books of several symbols) with a DQN-like decision per symbol
and bar (a random position, 0 or 1, seeded) is what both read. ``tapewatch bench trade [symbols] [minutes]``
prints records/s of the executor (merge + apply) in process, then of a real worker over fresh topics (read,
merged, applied, outputs acknowledged, state checkpointed). A script, not a test.
"""

from __future__ import annotations

import random
import sys
import time
import uuid

from tapewatch.bench.timing import timed_line
from tapewatch.execution.accounts import AccountConfig
from tapewatch.execution.executor import InputRefusedError, PaperExecutor
from tapewatch.execution.grid import VenueRules
from tapewatch.execution.merge import EventMerge
from tapewatch.feeds import FeedProfiles
from tapewatch.generators.simulator import SimulationConfig, generate
from tapewatch.records import Action, Book, Quote, Record
from tapewatch.settings import Settings

MINUTE_MS = 60_000


def paper_session(symbols: int, minutes: float, seed: int) -> list[Record]:
    """The simulator's quotes and books plus one decision per symbol at every bar's end, in event-time order."""
    sim = generate(SimulationConfig(symbols=symbols, minutes=minutes, seed=seed))
    market = [r for r in sim.records() if isinstance(r, Quote | Book)]
    rng = random.Random(seed)
    first, last = min(r.ts for r in market), max(r.ts for r in market)
    venues = {r.symbol: r.venue for r in market}
    decisions: list[Record] = []
    for end in range((first // MINUTE_MS + 1) * MINUTE_MS, last, MINUTE_MS):
        for symbol, venue in sorted(venues.items()):
            position = rng.choice((0, 1, 1))
            decisions.append(Action(symbol=symbol, venue=venue, ts=end, action="HOLD", q_values={},
                                    position=position, model_version="bench"))  # fmt: skip
    return sorted([*market, *decisions], key=lambda r: r.ts)  # type: ignore[attr-defined]


def accounts() -> list[AccountConfig]:
    return [
        AccountConfig(name="bench-join", signal="dqn"),
        AccountConfig(name="bench-cross", signal="dqn", pricing="cross"),
    ]


def _in_process(records: list[Record]) -> None:
    executor = PaperExecutor(accounts(), VenueRules(), FeedProfiles())
    merge: EventMerge[Record] = EventMerge(60_000, {"b": 0, "q": 1, "a": 2})
    merge.assign([("b", 0), ("q", 0), ("a", 0)])
    topic = {Book: "b", Quote: "q", Action: "a"}
    out = refused = 0
    t0 = time.perf_counter()
    for offset, record in enumerate(records):
        merge.add(topic[type(record)], 0, offset, record.ts, record)  # type: ignore[attr-defined]
        if offset % 500 == 0:
            out, refused = _apply(executor, merge, False, out, refused)
    out, refused = _apply(executor, merge, True, out, refused)
    elapsed = time.perf_counter() - t0
    print(timed_line("executor in process (merge + apply)", elapsed, len(records), "records", width=44))
    print(f"{'':<44} {out:,} output records, {refused:,} refused")


def _apply(executor: PaperExecutor, merge: EventMerge[Record], flush: bool, out: int, refused: int) -> tuple[int, int]:
    for *_, record in merge.release(flush):
        try:
            out += len(executor.apply(record))  # type: ignore[arg-type]
        except InputRefusedError:
            refused += 1
    return out, refused


def _worker(records: list[Record]) -> None:
    from tapewatch.infra.kafka import ensure_topics
    from tapewatch.producers.publisher import Publisher
    from tapewatch.streams.trade import TradeWorker
    from tapewatch.topics import ACTIONS, BOOKS, DLQ_PRODUCERS, QUOTES

    settings = Settings().updated(kafka={"topic_prefix": f"bench-trade-{uuid.uuid4().hex[:6]}."})
    ensure_topics(settings)
    topics = {Book: BOOKS, Quote: QUOTES, Action: ACTIONS}
    with Publisher(settings, DLQ_PRODUCERS) as publisher:
        for record in records:
            publisher.publish(topics[type(record)], record)
    worker = TradeWorker(settings, "bench", accounts(), VenueRules())
    worker.prepare()
    counters = worker.run(until_idle_s=0.5, install_signals=False)
    busy = counters.run_s - counters.waited_s
    print(timed_line("worker through Kafka, busy", busy, counters.events_in, "records", width=44))
    print(f"{'':<44} (wall {counters.run_s:.1f} s, of which {counters.waited_s:.1f} s polls that brought nothing)")
    print(
        f"{'':<44} {dict(counters.out)}, {counters.dead_letters:,} dead letters; topics {settings.kafka.topic_prefix}*"
    )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    symbols = int(args[0]) if args else 10
    minutes = float(args[1]) if len(args) > 1 else 60.0
    records = paper_session(symbols, minutes, seed=5)
    print(f"{symbols} symbols × {minutes:g} min: {len(records):,} records (quotes, books, decisions)")
    _in_process(records)
    _worker(records)


if __name__ == "__main__":
    main()
