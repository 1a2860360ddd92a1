"""Micro-benchmark of pattern detection: the flow features of a simulated session through each symbol's
:class:`~tapewatch.detectors.patterns.SymbolDetector` (the detectors, the materiality gate and its time-of-day
baselines, the alert policy), and the per-symbol state JSON the stream writes.

Run: ``tapewatch bench patterns [symbols] [minutes]`` (default 6 symbols, 210 minutes). The best of three passes.
A script, not a test.
"""

from __future__ import annotations

import math
import sys
import time

import orjson

from tapewatch.bench.timing import timed_line
from tapewatch.detectors.flow import FLOW_FEATURE_NAMES, compute_flow_frame
from tapewatch.detectors.patterns import SymbolDetector
from tapewatch.generators.simulator import SimulationConfig, generate

Chunk = tuple[str, int, dict[str, float | None]]


def _chunks(symbols: int, minutes: float) -> list[Chunk]:
    sim = generate(SimulationConfig(symbols=symbols, minutes=minutes, seed=11))
    frame = compute_flow_frame(sim.quotes_frame(), sim.books_frame())
    names = list(FLOW_FEATURE_NAMES)
    chunks: list[Chunk] = []
    for symbol, rows in frame.groupby("symbol", sort=True):
        for ts, row in zip(rows["ts"].tolist(), rows[names].to_numpy().tolist(), strict=True):
            values = {name: None if math.isnan(x) else x for name, x in zip(names, row, strict=True)}
            chunks.append((str(symbol), int(ts), values))
    return chunks


def _detect(chunks: list[Chunk]) -> tuple[float, dict[str, SymbolDetector]]:
    detectors: dict[str, SymbolDetector] = {}
    began = time.perf_counter()
    for symbol, ts, values in chunks:
        detector = detectors.get(symbol)
        if detector is None:
            detector = detectors[symbol] = SymbolDetector(symbol, "sim")
        detector.on_chunk(ts, values)
    return time.perf_counter() - began, detectors


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    symbols = int(args[0]) if args else 6
    minutes = float(args[1]) if len(args) > 1 else 210.0
    chunks = _chunks(symbols, minutes)
    print(f"{symbols} symbols × {minutes:g} min: {len(chunks):,} flow chunks\n")
    passes = [_detect(chunks) for _ in range(3)]
    best, detectors = min(passes, key=lambda p: p[0])
    print(timed_line("pattern detection per chunk (best of 3)", best, len(chunks), "chunks"))
    began = time.perf_counter()
    states = [orjson.dumps(detector.to_state()) for detector in detectors.values()]
    print(timed_line("detector state to JSON", time.perf_counter() - began, len(states), "states"))
    print(f"{'detector state per symbol':<60} {sum(map(len, states)) / len(states):10,.0f} bytes")


if __name__ == "__main__":
    main()
