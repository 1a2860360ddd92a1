"""Micro-benchmark of the bar features: incremental updates vs recomputing with pandas on every bar.

Run: ``tapewatch bench features [n_bars]`` (default 20,000). A script, not a test.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd

from tapewatch.bench.timing import timed_line
from tapewatch.detectors.features import FeatureState, compute_frame, compute_frame_vectorised

MINUTE_MS = 60_000


def synthetic_bars(n: int, seed: int = 1) -> pd.DataFrame:
    """A random-walk symbol on a 0.01 tick grid with gamma volumes."""
    rng = np.random.default_rng(seed)
    close = np.maximum(0.01, np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 2))
    spread = np.round(np.abs(rng.normal(0, 0.05, n)), 2)
    return pd.DataFrame(
        {
            "start": np.arange(n, dtype="int64") * MINUTE_MS,
            "high": close + spread,
            "low": np.maximum(0.01, close - spread),
            "close": close,
            "volume": rng.gamma(0.8, 500, n).round(0),
            "vwap": close,
            "price_change_pct": np.nan,
            "volume_change_pct": np.nan,
        }
    )


def _timed(label: str, seconds: float, count: int, unit: str = "updates") -> None:
    print(timed_line(label, seconds, count, unit, width=58))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 20_000
    bars = synthetic_bars(n)
    cols = [bars[c].to_numpy().tolist() for c in ("high", "low", "close", "volume", "vwap")]
    rows = list(zip(*cols, strict=True))
    print(f"{n:,} one-minute bars of one symbol\n")

    fs = FeatureState()
    t0 = time.perf_counter()
    for high, low, close, volume, vwap in rows:
        fs.on_bar_values(high, low, close, volume, vwap)
    _timed("incremental FeatureState.on_bar_values", time.perf_counter() - t0, n)

    fs = FeatureState()
    t0 = time.perf_counter()
    for high, low, close, volume, vwap in rows:
        fs.on_bar_values(high, low, close, volume, vwap)
        fs = FeatureState.from_state(json.loads(json.dumps(fs.to_state())))
    _timed("incremental + JSON state round trip per bar (state table)", time.perf_counter() - t0, n)

    t0 = time.perf_counter()
    compute_frame(bars)
    _timed("batch compute_frame (fold of the definition)", time.perf_counter() - t0, n, "bars")

    t0 = time.perf_counter()
    compute_frame_vectorised(bars)
    _timed("batch compute_frame_vectorised", time.perf_counter() - t0, n, "bars")

    # The naive streaming alternative: on every new bar recompute with pandas over the history so far.
    samples = np.linspace(100, n, 50, dtype=int)
    t0 = time.perf_counter()
    for end in samples:
        compute_frame_vectorised(bars.iloc[:end]).iloc[-1]
    _timed("pandas recompute over the full history, per update", time.perf_counter() - t0, len(samples))

    window = 200  # enough for every warm-up (EMAs/MACD then only approximate their full-history values)
    t0 = time.perf_counter()
    for end in samples:
        compute_frame_vectorised(bars.iloc[max(0, end - window) : end]).iloc[-1]
    _timed(f"pandas recompute over the last {window} bars, per update", time.perf_counter() - t0, len(samples))


if __name__ == "__main__":
    main()
