"""Offline look-back of market-by-order feeds and a firm's drop copy: the stream's orders stage without Kafka.

:func:`run_orders` takes each symbol's market-by-order events in the feed's order and the drop copy's reports
through :func:`~tapewatch.detectors.orders.symbol_orders.apply_record`, the stage's own step: the book and the trades
and five-level books it implies, the public feed's spoofing alerts (scope ``feed:orders``) and the firms' alerts by
account. A report comes after the public events of its millisecond; the firms' detectors judge it once the public
feed is past it, so their alerts do not depend on how the two interleave (as in the stream). What the stage would
dead-letter — a record beyond the venue's bounds, an event the book refuses, a report whose ``exec_id`` was judged
already — is counted with its reason; a sequence gap or an overfill is applied and counted.

:func:`derived_ticks` turns the derived trades and books into the tick input of
:func:`~tapewatch.evaluation.lookback.detect_frames`, dropping what the market stage would (its venue's bounds), each
trade with the touch the level-2 feed gave it: the stream's market and detect stages over the same records.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import pandas as pd

from tapewatch.detectors.orders.firm_desk import NO_REFERENCE, FirmDesk, ReferenceOf
from tapewatch.detectors.orders.firm_detector import FirmDetectorParams
from tapewatch.detectors.orders.level2 import Level2Feed
from tapewatch.detectors.orders.params import Level2Params
from tapewatch.detectors.orders.symbol_orders import PublicWatch, apply_record
from tapewatch.evaluation.lookback import Input, tick_input
from tapewatch.feeds import FeedProfile
from tapewatch.records import Alert, Book, ExecutionReport, OrderBookEvent, Quote, Side
from tapewatch.ticks import LEVEL_COLUMNS

#: the reason of a report whose exec_id came already (the stage's dead-letter reason)
DUPLICATE: Final = "duplicate: a report of this exec_id was judged already"

Profiles = Callable[[str], FeedProfile]
Record = OrderBookEvent | ExecutionReport


@dataclass
class OrderPathOutput:
    """What the market-by-order path gave over the input."""

    #: the public feed's and the firms' alerts, symbol by symbol in the order raised
    alerts: list[Alert] = field(default_factory=list)
    #: the trades and books the books implied, symbol by symbol in the order made
    derived: list[Quote | Book] = field(default_factory=list)
    #: records the stage would dead-letter: (where — symbol and sequence or exec_id —, why)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    #: events applied with an anomaly (a sequence gap, an overfill), by anomaly
    anomalies: Counter[str] = field(default_factory=Counter)
    #: symbol → venue
    venues: dict[str, str] = field(default_factory=dict)


def order_feeds(feeds: Profiles) -> Profiles:
    """Each venue's profile as for a market-by-order input: its level-2 from its orders and its feed watched by the
    public detector (offline the orders are the only source of its trades and books)."""
    return lambda venue: replace(feeds(venue), level2="orders", market_by_order=True)


@dataclass(slots=True)
class _Symbol:
    profile: FeedProfile
    feed: Level2Feed
    firms: FirmDesk
    public: PublicWatch | None


def run_orders(
    events: Iterable[OrderBookEvent],
    reports: Iterable[ExecutionReport] = (),
    feeds: Profiles | None = None,
    *,
    level2: Level2Params | None = None,
    firm_params: FirmDetectorParams | None = None,
    reference: ReferenceOf = NO_REFERENCE,
    flush: bool = True,
) -> OrderPathOutput:
    """Each symbol's events (in the feed's order) and reports (in the drop copy's) through the orders stage's step, as
    ``feeds`` profiles their venues (the stream worker's: ``order_feeds(settings.venues.feeds())``). ``flush``: at the
    end, the book held back, the pulls and the reports still waiting are judged (a stream, never ending, does not)."""
    profiles = feeds or order_feeds(lambda _: FeedProfile())
    out = OrderPathOutput()
    by_symbol: dict[str, tuple[list[Record], list[Record]]] = {}
    for event in events:
        by_symbol.setdefault(event.symbol, ([], []))[0].append(event)
    for report in reports:
        by_symbol.setdefault(report.symbol, ([], []))[1].append(report)
    for symbol, (public, firm) in by_symbol.items():
        first = public[0] if public else firm[0]
        out.venues[symbol] = first.venue
        chain = _chain(first, profiles(first.venue), level2, firm_params, reference)
        for record in _in_time(public, firm):
            _one(chain, record, out)
        if flush:
            _flush(chain, out)
    return out


def _chain(
    first: Record,
    profile: FeedProfile,
    level2: Level2Params | None,
    firm_params: FirmDetectorParams | None,
    reference: ReferenceOf,
) -> _Symbol:
    """A symbol's book, firms and public watch, as the stage starts them."""
    symbol, venue, public = first.symbol, first.venue, profile.market_by_order
    feed = Level2Feed(symbol, venue, profile.order_sequence, level2)
    watch = PublicWatch.new(symbol, venue, feed.book) if public else None
    desk = FirmDesk(symbol, venue, firm_params, reference, public, ms_to_close=profile.ms_to_close)
    return _Symbol(profile, feed, desk, watch)


def _in_time(public: Sequence[Record], firm: Sequence[Record]) -> Iterator[Record]:
    """The public events in their order with the reports merged in by time, a report after the events of its ms."""
    keyed = heapq.merge(
        ((e.ts, 0, e) for e in public), ((r.ts, 1, r) for r in firm), key=lambda entry: (entry[0], entry[1])
    )
    return (record for _, _, record in keyed)


def _one(chain: _Symbol, record: Record, out: OrderPathOutput) -> None:
    problem = chain.profile.implausible(record)
    if problem is not None:
        out.rejected.append((_place(record), problem[1]))
        return
    if isinstance(record, ExecutionReport) and chain.firms.duplicate(record):
        out.rejected.append((_place(record), DUPLICATE))
        return
    applied = apply_record(chain.feed, chain.firms, chain.public, record)
    out.alerts += applied.alerts
    if applied.derived is None:
        return
    anomaly = applied.derived.step.anomaly
    if anomaly is not None and anomaly.refused:
        out.rejected.append((_place(record), f"refused by the book: {anomaly.value}"))
    elif anomaly is not None:
        out.anomalies[anomaly.value] += 1
    if chain.profile.level2 == "orders":
        out.derived += applied.derived.records


def _flush(chain: _Symbol, out: OrderPathOutput) -> None:
    if chain.profile.level2 == "orders":
        out.derived += chain.feed.flush()
    out.alerts += chain.firms.flush()
    if chain.public is not None:
        out.alerts += chain.public.flush()


def _place(record: Record) -> str:
    if isinstance(record, ExecutionReport):
        return f"{record.symbol} exec_id {record.exec_id}"
    return f"{record.symbol} seq {record.sequence}"


# --- the derived level-2 feed as ticks ----------------------------------------------------------------------------
_SIDES: Final = {Side.BUY: "B", Side.SELL: "S"}


def derived_ticks(derived: Sequence[Quote | Book], feeds: Profiles) -> tuple[Input, list[tuple[str, str]]]:
    """The derived trades and books as :func:`~tapewatch.evaluation.lookback.detect_frames`' tick input, and those the
    market stage would dead-letter (beyond the venue's bounds: a locked book where the venue allows none), with why."""
    kept: list[Quote | Book] = []
    rejected: list[tuple[str, str]] = []
    for record in derived:
        problem = feeds(record.venue).implausible(record)
        if problem is None:
            kept.append(record)
        else:
            kind = "book" if isinstance(record, Book) else "trade"
            rejected.append((f"{record.symbol} derived {kind} at {record.ts}", problem[1]))
    data = tick_input(_frame(kept))
    # a derived trade carries the touch the book gave it, as the stream's flow reads it (not the last book's)
    data.frame["quote_bid"], data.frame["quote_ask"] = data.frame.pop("touch_bid"), data.frame.pop("touch_ask")
    rejected += [(f"derived row {row}", reason) for row, reason in data.rejected]
    return Input(data.kind, data.frame), rejected


def _frame(records: Sequence[Quote | Book]) -> pd.DataFrame:
    """Trades and books in the tick-file layout, one row each, with each trade's touch (``touch_bid``/``_ask``)."""
    n = len(records)
    columns: dict[str, list[object]] = {
        name: [None] * n
        for name in ("symbol", "venue", "ts", "price", "size", "side", "touch_bid", "touch_ask", *LEVEL_COLUMNS)
    }
    for i, record in enumerate(records):
        columns["symbol"][i], columns["venue"][i], columns["ts"][i] = record.symbol, record.venue, record.ts
        if isinstance(record, Quote):
            columns["price"][i], columns["size"][i] = record.price, record.size
            columns["side"][i] = None if record.side is None else _SIDES[record.side]
            columns["touch_bid"][i], columns["touch_ask"][i] = record.bid, record.ask
            continue
        for side, levels in (("bid", record.bids), ("ask", record.asks)):
            for level, (price, size) in enumerate(levels, start=1):
                columns[f"{side}{level}"][i], columns[f"{side}sz{level}"][i] = price, size
    frame = pd.DataFrame(columns)
    for name in ("price", "size", "touch_bid", "touch_ask", *LEVEL_COLUMNS):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    frame["ts"] = frame["ts"].astype(np.int64)
    return frame
