"""One symbol's recent public placements: each new order's size against the visible depth of its side when it was
placed, remembered for ``keep_ms`` of the public feed's time, and that feed's clock. Every tenant's drop copy of the
symbol reads them (:class:`~tapewatch.detectors.orders.firm_desk.FirmDesk`): one copy per symbol, however many firms
trade it.

>>> from tapewatch.records import OrderBookEvent
>>> placements = PublicPlacements(keep_ms=60_000)
>>> add = OrderBookEvent(symbol="X", venue="v", ts=1_000, sequence=1, action="add", order_id="o1", side="BUY",
...     price=10.0, size=500.0)
>>> placements.on_order(add, depth=2_000.0)
>>> placements.clock, placements.share("o1", by_ts=1_000), placements.share("o1", by_ts=999)
(1000, 0.25, None)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from tapewatch.records import ADD, OrderBookEvent


class PublicPlacements:
    """Order id → (time placed, size over its side's visible depth then), for the last ``keep_ms`` of public time.

    ``public``: whether the venue publishes its orders at all. Without a public feed to wait for, a placement would
    count or not by which stream a reader saw first, so none is kept and every order's depth is unknown."""

    def __init__(self, keep_ms: int, public: bool = True) -> None:
        self.keep_ms = keep_ms
        self.public = public
        self.placed: dict[str, tuple[int, float]] = {}
        self._order: deque[tuple[int, str]] = deque()
        #: the public feed's newest event time
        self.clock = -1

    def on_order(self, event: OrderBookEvent, depth: float) -> None:
        """A public event; ``depth``: the visible depth of its side before it (read only for a new order)."""
        if self.public and event.action is ADD and not event.snapshot and event.order_id is not None:
            self.placed[event.order_id] = (event.ts, event.size / depth if depth > 0 else math.inf)
            self._order.append((event.ts, event.order_id))
        if event.ts > self.clock:  # noqa: PLR1730 - max() costs a builtin's call, for every public event
            self.clock = event.ts
        if self._order and self._order[0][0] < self.clock - self.keep_ms:
            self._forget(self.clock - self.keep_ms)

    def share(self, order_id: str, by_ts: int) -> float | None:
        """The order's share of its side's depth, if the public feed showed it placed at or before ``by_ts``."""
        placed = self.placed.get(order_id)
        if placed is None or placed[0] > by_ts:
            return None
        return placed[1]

    def _forget(self, before: int) -> None:
        order = self._order
        while order and order[0][0] < before:
            _, order_id = order.popleft()
            entry = self.placed.get(order_id)
            if entry is not None and entry[0] < before:
                del self.placed[order_id]

    def to_state(self) -> dict[str, Any]:
        # an order placed into an empty side has an infinite share: JSON has no infinity, null stands for it
        return {
            "placements": [[ts, order_id, _finite(self.placed[order_id][1])] for ts, order_id in self._order],
            "clock": self.clock,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], keep_ms: int, public: bool = True) -> PublicPlacements:
        placements = cls(keep_ms, public)
        for ts, order_id, share in state["placements"]:
            placements.placed[order_id] = (int(ts), math.inf if share is None else float(share))
            placements._order.append((int(ts), order_id))
        placements.clock = int(state["clock"])
        return placements


def _finite(share: float) -> float | None:
    return share if math.isfinite(share) else None
