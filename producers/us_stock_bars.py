"""Real 1-minute bars of four US large caps → bar rows in the ``detect file`` layout.

The data: the ``pyqstrat`` 1.0.2 source distribution (PyPI, BSD-3-Clause) ships ``AAPL``, ``IBM``, ``MSFT`` and
``NVDA`` (``pyqstrat/notebooks/data/<SYMBOL>.csv.gz``: ``timestamp, o, h, l, c, v``): every regular-session minute
from 2023-01-03 to 2023-01-30, 19 sessions, each bar stamped with its end in New York time (09:31 is 09:30–09:31).
No vendor is named; the volume is about 80 % of the consolidated volume. ``make deps`` fetches the archive
(:mod:`tapewatch.infra.data_sdists`) and this module reads the members straight out of it: nothing is downloaded at
run time. The month holds IBM's and Microsoft's earnings (25 and 24 January, after the close) and Nvidia's rally: any
manipulation alert on these is counted as false.

Prices were stored as 32-bit floats (129.45999 for 129.46): they are rounded to four decimals (some prints are
sub-penny).
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd

from tapewatch.data_packages import PYQSTRAT
from tapewatch.errors import TapewatchError

__all__ = ["SYMBOLS", "VENUE", "UsStockBars", "read_bars"]

SYMBOLS: Final = ("AAPL", "IBM", "MSFT", "NVDA")
VENUE: Final = "us-equities"
MINUTE_MS: Final = 60_000


@dataclass(frozen=True)
class UsStockBars:
    bars: pd.DataFrame
    sessions: int  # New York trading days


def read_bars(archive: Path | None = None) -> UsStockBars:
    """The archive's bars: ``symbol``, ``venue``, ``start`` (epoch ms), ``open``, ``high``, ``low``, ``close``,
    ``volume``, per symbol in time order."""
    path = archive or PYQSTRAT.path()
    if not path.is_file():
        raise TapewatchError(
            f"the US stock bars ship in {PYQSTRAT.pin}'s source archive, not in {path}: `make deps` fetches it "
            f"(python -m tapewatch.infra.data_sdists {PYQSTRAT.pin})"
        )
    frames = []
    with tarfile.open(path, "r:gz") as archive_file:
        for symbol in SYMBOLS:
            member = archive_file.extractfile(
                f"{PYQSTRAT.name}-{PYQSTRAT.version}/pyqstrat/notebooks/data/{symbol}.csv.gz"
            )
            if member is None:
                raise TapewatchError(f"{path}: no bars of {symbol}")
            frames.append(_bars(symbol, pd.read_csv(member, compression="gzip")))
    bars = pd.concat(frames, ignore_index=True)
    days = pd.to_datetime(bars["start"], unit="ms", utc=True).dt.tz_convert("America/New_York").dt.date
    return UsStockBars(bars, int(days.nunique()))


def _bars(symbol: str, raw: pd.DataFrame) -> pd.DataFrame:
    ends = pd.to_datetime(raw["timestamp"]).dt.tz_localize("America/New_York")
    start = (ends.dt.tz_convert("UTC").astype("int64") // 1_000_000 - MINUTE_MS).astype("int64")
    prices = raw[["o", "h", "l", "c"]].round(4).to_numpy()
    return pd.DataFrame(
        {
            "symbol": symbol,
            "venue": VENUE,
            "start": start.to_numpy(),
            "open": prices[:, 0],
            "high": prices[:, 1],
            "low": prices[:, 2],
            "close": prices[:, 3],
            "volume": raw["v"].astype(float).to_numpy(),
        }
    ).sort_values("start", kind="stable", ignore_index=True)
