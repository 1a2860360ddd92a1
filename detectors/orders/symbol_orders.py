"""One symbol's market-by-order surveillance, record by record: the book and the level-2 feed it implies
(:class:`~tapewatch.detectors.orders.level2.Level2Feed`), the public feed's own spoofing and wash detectors
(:class:`PublicWatch`)
and the firms' drop copies (:class:`~tapewatch.detectors.orders.firm_desk.FirmDesk`). :func:`apply_record` is what the
stream's orders stage does with each record it admits, without Kafka; ``tapewatch detect file --orders`` runs it over
files.

>>> from tapewatch.records import OrderBookEvent
>>> feed, desk = Level2Feed("X", "v"), FirmDesk("X", "v")
>>> add = OrderBookEvent(symbol="X", venue="v", ts=1, sequence=1, action="add", order_id="a", side="SELL",
...     price=10.5, size=4.0)
>>> apply_record(feed, desk, PublicWatch.new("X", "v", feed.book), add).alerts
[]
>>> apply_record(feed, desk, None, add).derived.step.anomaly.refused  # the same order id again: refused
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tapewatch.detectors.alerting import AlertPolicy, Hit
from tapewatch.detectors.orders.book import OrderBook, Step
from tapewatch.detectors.orders.firm_desk import FirmDesk
from tapewatch.detectors.orders.level2 import Derived, Level2Feed
from tapewatch.detectors.orders.public_spoofing import Before, PublicSpoofing
from tapewatch.detectors.orders.public_wash import PublicWash
from tapewatch.records import ADD, Alert, ExecutionReport, OrderBookEvent

#: the scope of the public market-by-order path's alert ids (:func:`tapewatch.records.alert_id`): they never merge
#: with the level-2 path's
PUBLIC_SCOPE: Final = "feed:orders"


@dataclass(slots=True)
class PublicWatch:
    """The public feed's own detectors — spoofing, and wash trading — on one book, and their alert policy, for one
    symbol."""

    spoofing: PublicSpoofing
    wash: PublicWash
    policy: AlertPolicy

    @classmethod
    def new(cls, symbol: str, venue: str, book: OrderBook | None = None) -> PublicWatch:
        """The watch of a symbol on its own book, or on ``book``, to which the symbol's level-2 feed applies its
        events (then :meth:`after_book` is told of each)."""
        spoofing = PublicSpoofing(book=book)
        return cls(spoofing, PublicWash(book=spoofing.book), AlertPolicy(symbol, venue, scope=PUBLIC_SCOPE))

    def on_order(self, event: OrderBookEvent) -> list[Alert]:
        """An event of the feed, applied to the watch's own book."""
        before = self.spoofing.before(event)
        step = self.spoofing.book.on_order(event)
        return self.after_book(event, step, before)

    def after_book(self, event: OrderBookEvent, step: Step, before: Before) -> list[Alert]:
        hits = self.spoofing.after_book(event, step, before)
        wash = self.wash.after_book(event, step, before)
        return self._alerts(hits + wash if wash else hits)

    def flush(self) -> list[Alert]:
        """The end of the input: the pulls still waiting to be judged and the last print (a stream, never ending,
        does not call it)."""
        return self._alerts(self.spoofing.flush() + self.wash.flush())

    def _alerts(self, hits: list[Hit]) -> list[Alert]:
        return [alert for hit in hits for alert in self.policy.on_hit(hit)] if hits else []

    def to_state(self) -> dict[str, Any]:
        # the orders state format keeps the spoofing detector under "detector"
        return {"detector": self.spoofing.to_state(), "wash": self.wash.to_state(), "policy": self.policy.to_state()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], book: OrderBook | None = None) -> PublicWatch:
        spoofing = PublicSpoofing.from_state(dict(state["detector"]), book=book)
        wash = PublicWash.from_state(state["wash"], book=spoofing.book)
        return cls(spoofing, wash, AlertPolicy.from_state(state["policy"]))


@dataclass(slots=True)
class Applied:
    """What one record gave: the book's step and the level-2 records it released (``None`` for a report), and the
    alerts — the firms' first, then the public feed's."""

    derived: Derived | None
    alerts: list[Alert]


def apply_record(
    feed: Level2Feed, firms: FirmDesk, public: PublicWatch | None, record: OrderBookEvent | ExecutionReport
) -> Applied:
    """Apply one record to a symbol's book, firms and public watch (``None``: the venue's market-by-order feed is not
    watched; else one on ``feed``'s book). A report goes to its firm; an event to the book, then — unless the book
    refused it — to the firms' placements, with its side's visible depth before it, and to the public watch."""
    # an event's exact type first: isinstance on a record contract costs several times as much, on every event
    if type(record) is not OrderBookEvent and isinstance(record, ExecutionReport):
        return Applied(None, firms.on_execution(record))
    depth = feed.book.visible_depth(record.side) if record.action is ADD else 0.0
    before = None if public is None else public.spoofing.before(record)
    derived = feed.on_order(record)
    if derived.step.anomaly is not None and derived.step.anomaly.refused:
        return Applied(derived, [])
    alerts: list[Alert] = []
    if public is not None and before is not None:  # what public.after_book does, without its calls per event
        hits = public.spoofing.after_book(record, derived.step, before)
        wash = public.wash.after_book(record, derived.step, before)
        if hits or wash:
            alerts = public._alerts(hits + wash)
    from_firms = firms.on_order(record, depth)
    return Applied(derived, [*from_firms, *alerts] if from_firms else alerts)
