"""Real tapes of liquid instruments that ship inside packages, by name: each a loader of (tick rows or 1-minute bars,
sessions) for ``tapewatch eval real-tapes`` (:mod:`tapewatch.evaluation.real_tapes` counts the alerts on them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import pandas as pd

from tapewatch.producers import bitstamp_2013, bitstamp_capture, es_tape, us_stock_bars

__all__ = ["TAPES", "load_tape"]


def _es() -> tuple[pd.DataFrame, int]:
    tape = es_tape.read_tape(es_tape.sample_path())
    return tape.ticks, tape.sessions


def _bitstamp() -> tuple[pd.DataFrame, int]:
    orders, trades = bitstamp_capture.sample_paths()
    return bitstamp_capture.convert(orders, trades).ticks, 1  # thirty minutes: one session


def _bitstamp_2013() -> tuple[pd.DataFrame, int]:
    tape = bitstamp_2013.read_tape()
    return tape.ticks, tape.sessions


def _us_stocks_1m() -> tuple[pd.DataFrame, int]:
    tape = us_stock_bars.read_bars()
    return tape.bars, tape.sessions


#: name → a loader of (tick rows, or 1-minute bar rows; sessions)
TAPES: Final[dict[str, Callable[[], tuple[pd.DataFrame, int]]]] = {
    "es-futures": _es,
    "bitstamp-btcusd": _bitstamp,
    "bitstamp-btcusd-2013": _bitstamp_2013,
    "us-stocks-1m": _us_stocks_1m,
}


def load_tape(name: str) -> tuple[pd.DataFrame, int]:
    if name not in TAPES:
        raise ValueError(f"no real tape {name!r}; choose {', '.join(TAPES)}")
    return TAPES[name]()
