"""Micro-benchmark of the order-flow features: incremental updates over a simulated session vs the batch frame,
and the per-symbol state JSON round trip the stream pays per batch.

Run: ``tapewatch bench flow [symbols] [minutes]`` (default 5 symbols, 120 minutes). A script, not a test.
"""

from __future__ import annotations

import json
import sys
import time

import orjson

from tapewatch.bench.timing import timed_line
from tapewatch.detectors.flow import FlowConfig, FlowState, compute_flow_frame
from tapewatch.generators.simulator import SimulationConfig, generate
from tapewatch.records import Book, Quote


def _timed(label: str, seconds: float, count: int, unit: str = "records") -> None:
    print(timed_line(label, seconds, count, unit, width=60))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    symbols = int(args[0]) if args else 5
    minutes = float(args[1]) if len(args) > 1 else 120.0
    config = FlowConfig()
    sim = generate(SimulationConfig(symbols=symbols, minutes=minutes, seed=11))
    quotes, books = sim.quotes_frame(), sim.books_frame()
    records = [r for r in sim.records() if isinstance(r, Quote | Book)]
    n = len(records)
    print(f"{symbols} symbols × {minutes:g} min: {len(quotes):,} quotes, {len(books):,} books; {config}\n")

    states: dict[str, FlowState] = {}
    chunks = 0
    t0 = time.perf_counter()
    for record in records:
        fs = states.get(record.symbol)
        if fs is None:
            fs = states[record.symbol] = FlowState(record.symbol, config)
        chunks += len(fs.on_quote(record) if isinstance(record, Quote) else fs.on_book(record))
    elapsed = time.perf_counter() - t0
    _timed("incremental FlowState.on_quote / on_book (records)", elapsed, n)
    _timed("  … per emitted chunk", elapsed, chunks, "chunks")

    t0 = time.perf_counter()
    frame = compute_flow_frame(quotes, books, config)
    _timed("batch compute_flow_frame (fold over the frames)", time.perf_counter() - t0, len(quotes) + len(books))
    print(f"{'':<60} {len(frame):,} chunks, {frame.shape[1] - 2} features")

    # State round trip: the stream writes each touched symbol's state once per batch, reads it on recovery.
    sample = list(states.values())
    payloads = [orjson.dumps(fs.to_state()) for fs in sample]
    size = sum(map(len, payloads)) / len(payloads)
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        for fs in sample:
            orjson.dumps(fs.to_state())
    _timed(
        "to_state + orjson.dumps (after 60 min: full baseline)", time.perf_counter() - t0, reps * len(sample), "states"
    )
    t0 = time.perf_counter()
    for _ in range(reps):
        for fs in sample:
            json.dumps(fs.to_state())
    _timed("to_state + json.dumps", time.perf_counter() - t0, reps * len(sample), "states")
    t0 = time.perf_counter()
    for _ in range(reps):
        for payload in payloads:
            FlowState.from_state(orjson.loads(payload), config)
    _timed("orjson.loads + from_state", time.perf_counter() - t0, reps * len(sample), "states")
    print(f"{'':<60} state size {size / 1024:,.1f} KiB per symbol (JSON)")


if __name__ == "__main__":
    main()
