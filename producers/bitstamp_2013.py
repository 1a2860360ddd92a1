"""A week of real Bitstamp BTC/USD trades from November 2013 → tick rows in the replay / ``detect file`` layout.

The data: the ``org.ta4j:ta4j-examples:0.15`` jar (Maven Central, MIT) ships ``bitstamp_trades_from_20131125_usd.csv``
(``timestamp, price, amount``): every Bitstamp BTC/USD trade from 2013-11-25 00:00 to 2013-12-01 17:55 UTC, about
100,000 of them, timestamped to the second, with neither aggressor side nor book. The Makefile resolves the jar into
``~/.m2`` with Maven (as the Kafka and Elasticsearch servers are), and this module reads the member straight out of
the jar: nothing is downloaded at run time. Trades of one second keep their file order and are spread over that
second's milliseconds in that order, since the tape's clock cannot tell them apart and the detectors read event time.

A 24-hour venue: each UTC day is counted as a session. It was the most liquid bitcoin market of its day, in the
month bitcoin first crossed 1,000 USD: a violent tape, and any manipulation alert on it is counted as false.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from tapewatch.errors import TapewatchError
from tapewatch.ticks import prints_only

__all__ = ["ARTIFACT", "SYMBOL", "VENUE", "Bitstamp2013", "jar_path", "read_tape"]

ARTIFACT: Final = "org.ta4j:ta4j-examples:0.15"
MEMBER: Final = "bitstamp_trades_from_20131125_usd.csv"
SYMBOL: Final = "BTCUSD"
#: no feed profile names it: prints-only, no close, prints learnt from the data (as a desk would first run it)
VENUE: Final = "bitstamp-2013"
DAY_MS: Final = 86_400_000


@dataclass(frozen=True)
class Bitstamp2013:
    ticks: pd.DataFrame
    sessions: int  # UTC days the trades fall on


def jar_path(m2: Path | None = None) -> Path:
    """Where Maven keeps the jar (``make deps`` resolves it)."""
    group, name, version = ARTIFACT.split(":")
    root = m2 if m2 is not None else Path.home() / ".m2" / "repository"
    return root.joinpath(*group.split("."), name, version, f"{name}-{version}.jar")


def read_tape(jar: Path | None = None) -> Bitstamp2013:
    """The jar's trades as tick rows, in file order."""
    path = jar or jar_path()
    if not path.is_file():
        raise TapewatchError(
            f"the 2013 Bitstamp tape ships in {ARTIFACT}, not in {path}: `make deps` resolves it "
            f"(mvn dependency:get -Dartifact={ARTIFACT} -Dtransitive=false)"
        )
    with zipfile.ZipFile(path) as jar_file, jar_file.open(MEMBER) as member:
        frame = pd.read_csv(member).sort_values("timestamp", kind="stable")
    seconds = frame["timestamp"].to_numpy(dtype=np.int64)
    order = np.arange(len(seconds)) - np.searchsorted(seconds, seconds, side="left")  # rank within its second
    ts = seconds * 1000 + np.minimum(order, 999)
    ticks = prints_only(SYMBOL, VENUE, ts, frame["price"].to_numpy(dtype=float), frame["amount"].to_numpy(dtype=float))
    return Bitstamp2013(ticks, int(np.unique(ts // DAY_MS).size))
