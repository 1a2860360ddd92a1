"""The bar arithmetic the peers share, in plain Python (no tapewatch, no framework): the same definitions as
``tapewatch.detectors.bars`` — a unit test holds them equal to its ``BarBuilder``.

* a record belongs to the minute ``ts - ts % 60000``; one with a ``price`` is a trade: ``open`` is the minute's
  earliest trade by ``ts`` (the first to arrive among equal ``ts``), ``close`` its latest (the last to arrive among
  equal ``ts``), ``volume`` the sum of ``size``, ``vwap`` ``sum(price * size) / volume`` (the mean price when every
  size is 0), clamped to ``[low, high]``; ``venue`` the open trade's;
* every record, trade or not, advances its key's clock; a minute closes once the clock reaches its end plus the
  grace; minutes without trades give no bar; a record of a closed minute is late and changes nothing;
* ``price_change_pct`` and ``volume_change_pct`` compare with the key's previous bar.

Also the run's result (what a peer hands back as JSON) and the options every peer script takes.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

MINUTE_MS: Final = 60_000
#: a minute's accumulator (JSON-serialisable: it lives in the frameworks' state stores)
Acc = dict[str, Any]
#: a bar as the peers produce it: the fields of tapewatch's ``Bar`` record
BarDict = dict[str, Any]


def initial(value: dict[str, Any]) -> Acc:
    """The accumulator of a minute whose first record is ``value`` (a trade or not)."""
    return add({"trades": 0}, value)


def add(acc: Acc, value: dict[str, Any]) -> Acc:
    """``acc`` with the record ``value`` added (a record without a price changes nothing)."""
    price = value.get("price")
    if price is None:
        return acc
    ts, size = int(value["ts"]), float(value.get("size") or 0.0)
    if acc["trades"] == 0:
        return {
            "venue": value["venue"],
            "open": price,
            "open_ts": ts,
            "high": price,
            "low": price,
            "close": price,
            "close_ts": ts,
            "volume": size,
            "notional": price * size,
            "price_sum": price,
            "trades": 1,
        }
    if ts < acc["open_ts"]:
        acc["open"], acc["open_ts"], acc["venue"] = price, ts, value["venue"]
    if ts >= acc["close_ts"]:
        acc["close"], acc["close_ts"] = price, ts
    acc["high"] = max(acc["high"], price)
    acc["low"] = min(acc["low"], price)
    acc["volume"] += size
    acc["notional"] += price * size
    acc["price_sum"] += price
    acc["trades"] += 1
    return acc


def _pct(value: float, previous: float | None) -> float | None:
    if previous is None or previous == 0:
        return None
    return (value - previous) / previous * 100.0


def to_bar(symbol: str, start: int, acc: Acc, previous: dict[str, Any]) -> BarDict:
    """The bar of a closed minute; ``previous`` (the key's previous bar's ``close`` and ``volume``) is updated."""
    volume = acc["volume"]
    raw_vwap = acc["notional"] / volume if volume > 0 else acc["price_sum"] / acc["trades"]
    bar = {
        "symbol": symbol,
        "venue": acc["venue"],
        "start": start,
        "end": start + MINUTE_MS,
        "open": acc["open"],
        "high": acc["high"],
        "low": acc["low"],
        "close": acc["close"],
        "volume": volume,
        "vwap": min(max(raw_vwap, acc["low"]), acc["high"]),
        "trades": acc["trades"],
        "price_change_pct": _pct(acc["close"], previous.get("close")),
        "volume_change_pct": _pct(volume, previous.get("volume")),
    }
    previous["close"], previous["volume"] = acc["close"], volume
    return bar


def new_key_state() -> dict[str, Any]:
    """One key's bar state for a framework without event-time windows of its own (a plain table's value)."""
    return {"clock": None, "open": [], "previous": {}}


def on_record(state: dict[str, Any], symbol: str, value: dict[str, Any], grace_ms: int) -> tuple[list[BarDict], bool]:
    """Apply ``value`` to the key's ``state`` (changed in place): the bars its clock closed, oldest first, and whether
    it was late (then nothing changed)."""
    ts = int(value["ts"])
    minute = ts - ts % MINUTE_MS
    clock = state["clock"]
    if clock is not None and minute + MINUTE_MS + grace_ms <= clock:
        return [], True
    opened: list[list[Any]] = state["open"]  # [[minute start, accumulator], …] by start
    if value.get("price") is not None:
        slot = next((pair for pair in opened if pair[0] == minute), None)
        if slot is None:
            opened.append([minute, initial(value)])
            opened.sort(key=lambda pair: int(pair[0]))
        else:
            add(slot[1], value)
    if clock is not None and ts <= clock:
        return [], False
    state["clock"] = ts
    closed: list[BarDict] = []
    while opened and opened[0][0] + MINUTE_MS + grace_ms <= ts:
        start, acc = opened.pop(0)
        closed.append(to_bar(symbol, start, acc, state["previous"]))
    return closed, False


@dataclass
class RunResult:
    """What a peer measured: counts, and wall-clock times (``time.time()``, comparable across the processes)."""

    framework: str
    records: int = 0
    bars: int = 0
    late: int = 0
    #: records that did not decode (tapewatch's contract refuses them; the peers would raise)
    invalid: int = 0
    #: the first input record reached the pipeline
    first_consumed: float = 0.0
    #: the last input record was processed, its bars handed to the producer
    last_processed: float = 0.0
    #: after that: the framework's last flush and commit done (or its run returned)
    drained: float = 0.0

    def on_record(self) -> int:
        """Count one input record (the first sets :attr:`first_consumed`); the count so far."""
        if self.records == 0:
            self.first_consumed = time.time()
        self.records += 1
        return self.records

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")


def arguments(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The options every peer script takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--input", required=True, help="the backlog topic (JSON quotes keyed by symbol)")
    parser.add_argument("--output", required=True, help="the topic for the closed bars")
    parser.add_argument("--group", required=True, help="consumer group / application id (fresh)")
    parser.add_argument("--records", type=int, required=True, help="records in the backlog: stop after them")
    parser.add_argument("--partitions", type=int, required=True, help="partitions of the topics")
    parser.add_argument("--grace-ms", type=int, default=2_000, help="event-time grace")
    parser.add_argument("--state-dir", type=Path, required=True, help="a directory for the framework's state")
    parser.add_argument("--result", type=Path, required=True, help="where to write the result (JSON)")
    return parser.parse_args(argv)
