"""The order-book market (:mod:`tapewatch.generators.lob_market`) as a live source: the firm's accounts first, handed
to whoever keeps them (the command that starts the source loads them into the tenant's accounts table, which publishes
them to ref.accounts: a source never writes reference data past that table), then every symbol's market-by-order
events onto md.orders, the firm's drop copy onto orders.firm, the session's news onto news.items and each labelled
episode onto truth once it is over, all in event-time order across symbols, at ``speed`` × the session's pace (0: as
fast as the broker takes them).

The venue is ``sim-orders`` by default, whose feed profile says the stream worker derives its trades and books from its
orders: the market reaches every detector through its order book, as a venue's market-by-order feed would.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Final

from tapewatch.errors import TapewatchError
from tapewatch.generators.lob_market import LobConfig, LobSession, generate
from tapewatch.producers.framework import Emitter, sleep_or_stop
from tapewatch.records import AccountRef, AlertKind, Episode, Record
from tapewatch.topics import FIRM_ORDERS, MARKET_BY_ORDER, NEWS_ITEMS, TRUTH, Topic

#: the source's name in its dead letters and, as the keeper of the firm's accounts, in the audit trail: no person
MARKET_STAGE: Final = "producer:market"
#: records sent between two looks at the stop flag when sending at once
CHUNK: Final = 4096
#: the order in which records of one millisecond go: the public feed, the drop copy, the news, the labels
_TOPICS: Final[tuple[Topic, ...]] = (MARKET_BY_ORDER, FIRM_ORDERS, NEWS_ITEMS, TRUTH)


#: what becomes of the firm's accounts: kept (and published) before any of its orders is sent; it raises to stop the
#: source, since a drop copy whose accounts are unknown names nobody
AccountsKeeper = Callable[[Sequence[AccountRef]], None]


class MarketSource:
    """One session of the order-book market onto its topics; :meth:`run` is a source
    (:mod:`tapewatch.producers.framework`)."""

    def __init__(self, config: LobConfig, keep_accounts: AccountsKeeper, speed: float = 0.0) -> None:
        if speed < 0:
            raise TapewatchError("market: --speed must be ≥ 0")
        if not config.orders:
            raise TapewatchError("market: the session needs its orders (LobConfig(orders=True))")
        self.config, self.keep_accounts, self.speed = config, keep_accounts, speed

    async def run(self, emitter: Emitter, stop: asyncio.Event) -> None:
        session = await asyncio.to_thread(generate, self.config)
        await asyncio.to_thread(self.keep_accounts, session.account_refs())  # reference data before its trading
        started, first = time.monotonic(), self.config.start_ms
        for n, (ts, kind, record) in enumerate(timeline(session), start=1):
            if self.speed > 0:
                ahead = (ts - first) / 1000.0 / self.speed - (time.monotonic() - started)
                # sleeping costs more than a millisecond of lead is worth: records due together go together
                if ahead > 0.002 and await sleep_or_stop(stop, ahead):
                    return
            elif n % CHUNK == 0:
                await asyncio.sleep(0)
                if stop.is_set():
                    return
            emitter.emit(_TOPICS[kind], record)


def timeline(session: LobSession) -> Iterator[tuple[int, int, Record]]:
    """(event time, 0 public feed / 1 drop copy / 2 news / 3 label, record) of the whole session in time order; each
    symbol's records keep their order; an episode's label goes at its end."""
    streams: list[Iterator[tuple[int, int, Record]]] = []
    venue = session.config.venue
    for symbol, tape in session.tapes.items():
        streams.append((event.ts, 0, event) for event in session.order_events(symbol))
        streams.append((report.ts, 1, report) for report in session.execution_reports(symbol))
        labels = [
            Episode(symbol=symbol, venue=venue, kind=AlertKind(kind), start=start, end=end)
            for kind, start, end, _ in sorted(tape.episodes, key=lambda episode: episode[2])
        ]
        streams.append((label.end, 3, label) for label in labels)
    streams.append((item.ts, 2, item) for item in session.news)
    return heapq.merge(*streams, key=lambda entry: entry[:2])
