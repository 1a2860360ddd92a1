"""One line per timed step, the same shape in every micro-benchmark: total ms, rate and µs per item; the repeat
timer and the options of the batched-inference benchmarks."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from tapewatch.signals.forecast.contract import ForecastRequest
from tapewatch.signals.forecast.history import FeatureHistory


def timed_line(label: str, seconds: float, count: int, unit: str = "records", width: int = 60) -> str:
    """>>> timed_line("parse", 0.5, 1000, width=8)
    'parse         500.0 ms          2,000 records/s     500.00 µs each'
    """
    rate, each = count / seconds, seconds / count * 1e6
    return f"{label:<{width}} {seconds * 1e3:10.1f} ms   {rate:12,.0f} {unit}/s   {each:9.2f} µs each"


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    """Count, median, 99th percentile and maximum of latencies (ms), the shape every benchmark JSON uses.

    >>> latency_summary([1.0, 2.0, 3.0, 4.0])
    {'n': 4.0, 'p50': 2.5, 'p99': 3.9..., 'max': 4.0}
    >>> latency_summary([])
    {'n': 0.0, 'p50': nan, 'p99': nan, 'max': nan}
    """
    if not values:
        return {"n": 0.0, "p50": math.nan, "p99": math.nan, "max": math.nan}
    array = np.asarray(values, dtype=np.float64)
    return {
        "n": float(len(array)),
        "p50": float(np.percentile(array, 50)),
        "p99": float(np.percentile(array, 99)),
        "max": float(array.max()),
    }


def items_per_second(call: Callable[[], object], count: int, seconds: float) -> tuple[float, float]:
    """Items per second of ``call()`` handling ``count`` items, repeated for about ``seconds`` after one warm-up
    call; and milliseconds per call."""
    call()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call()
        calls += 1
    elapsed = time.perf_counter() - started
    return calls * count / elapsed, elapsed / calls * 1e3


def stream_requests(batch: int, names: Sequence[str], window: int, rng: np.random.Generator) -> list[ForecastRequest]:
    """``batch`` forecast requests as the stream worker makes them: each symbol's :class:`FeatureHistory` of
    ``window`` random rows, handed over as its window array."""
    requests = []
    for i in range(batch):
        history = FeatureHistory(names, window)
        for values in rng.normal(size=(window, len(names))).tolist():
            history.append(dict(zip(names, values, strict=True)))
        requests.append(ForecastRequest(f"S{i}", history.window(window), history.names))
    return requests


def batched_arguments(description: str | None, argv: list[str] | None) -> argparse.Namespace:
    """The options every batched-inference benchmark takes: ``--batch`` sizes, ``--seconds``, ``--threads``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--batch", type=int, nargs="*", default=[1, 100, 1000, 10_000])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)
