"""One line per timed step, the same shape in every micro-benchmark: total ms, rate and µs per item."""

from __future__ import annotations


def timed_line(label: str, seconds: float, count: int, unit: str = "records", width: int = 60) -> str:
    """>>> timed_line("parse", 0.5, 1000, width=8)
    'parse         500.0 ms          2,000 records/s     500.00 µs each'
    """
    rate, each = count / seconds, seconds / count * 1e6
    return f"{label:<{width}} {seconds * 1e3:10.1f} ms   {rate:12,.0f} {unit}/s   {each:9.2f} µs each"
