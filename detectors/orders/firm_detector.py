"""One symbol's surveillance of a firm's own orders: spoofing and wash trades by account from its drop copy
(:class:`FirmSpoofing`, :class:`FirmWash`), raised as alerts by one :class:`AlertPolicy`, with each order's size
against the public book it was placed into (stage: ``on_order`` for the public feed, ``on_execution`` for the drop
copy).

The two inputs are two streams, and which one a reader sees first is chance; the alerts must not depend on it. So a
report is judged only once the public feed has passed its time by ``lag_ms`` (the venue may publish an order a moment
after the firm's gateway reported it), in the order the reports came, and a placement the public feed showed later
than that is taken as unknown, whenever it arrived. A placement is remembered for ``keep_ms`` of the public feed's
time: a drop copy read more than that behind the public feed finds its orders' depth unknown, so the alerts are the
same however the streams interleave as long as the drop copy is not read that far behind (a drop copy read ahead
only waits). A venue without a public market-by-order feed (``public=False``) has its reports judged as they come,
each order's depth unknown.

>>> from tapewatch.records import ExecutionReport, OrderBookEvent
>>> detector = FirmDetector("X", "v")
>>> new = ExecutionReport(symbol="X", venue="v", ts=1_000, exec_id="e1", order_id="o1", account="A1",
...     exec_type="new", side="BUY", price=10.0, quantity=500.0)
>>> detector.on_execution(new)  # waits for the public feed
[]
>>> detector.pending_reports()
1
>>> add = OrderBookEvent(symbol="X", venue="v", ts=1_000, sequence=1, action="add", order_id="o1", side="BUY",
...     price=10.0, size=500.0)
>>> detector.on_order(add, depth=2_000.0)
[]
>>> detector.on_order(add.model_copy(update={"ts": 2_500, "sequence": 2, "order_id": "o2"}), depth=2_500.0)
[]
>>> detector.pending_reports(), detector.visible_share("o1")
(0, 0.25)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tapewatch.detectors.alerting import AlertPolicy, PolicyParams
from tapewatch.detectors.orders.firm_spoofing import FirmSpoofing, FirmSpoofingParams
from tapewatch.detectors.orders.firm_wash import FirmWash, FirmWashParams
from tapewatch.records import Alert, BookAction, ExecutionReport, OrderBookEvent


class FirmDetectorParams(BaseModel):
    """The firm's detectors' parameters, and how the drop copy waits for the public feed."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    spoofing: FirmSpoofingParams = Field(default_factory=FirmSpoofingParams)
    wash: FirmWashParams = Field(default_factory=FirmWashParams)
    lag_ms: int = Field(
        1_000, ge=0, le=600_000, description="A report is judged once the public feed is this far past it"
    )
    keep_ms: int = Field(
        60_000, ge=1_000, le=86_400_000, description="A public placement is remembered this long (public feed time)"
    )


class FirmDetector:
    """One symbol's firm surveillance: public placements in (``on_order``), the drop copy in (``on_execution``),
    alerts out."""

    PARAMS: ClassVar[type[FirmDetectorParams]] = FirmDetectorParams

    def __init__(
        self,
        symbol: str,
        venue: str,
        params: FirmDetectorParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
        public: bool = True,
        policy: PolicyParams | None = None,
    ) -> None:
        """``owners``, ``groups``: the firm's reference data (account → beneficial owner, → linked-account group);
        ``public``: whether the venue's market-by-order feed comes too (its reports wait for it)."""
        self.params = params or FirmDetectorParams()
        self.public = public
        self.spoofing = FirmSpoofing(self.params.spoofing, self._known_share)
        self.wash = FirmWash(self.params.wash, owners, groups)
        self.policy = AlertPolicy(symbol, venue, policy)
        #: order id → (time placed, its size over its side's visible depth then), in the order placed
        self.placements: dict[str, tuple[int, float]] = {}
        self._placed: deque[tuple[int, str]] = deque()
        #: the public feed's newest event time; the reports not judged yet, in the order they came
        self.clock = -1
        self.pending: deque[ExecutionReport] = deque()
        self._judging: ExecutionReport | None = None

    # --- the public feed --------------------------------------------------------------------------------------
    def on_order(self, event: OrderBookEvent, depth: float) -> list[Alert]:
        """A public event; ``depth``: the visible depth of its side before it (read only for a new order). Returns
        the alerts of the reports it lets through."""
        # without a public feed to wait for, a placement would count or not by which stream came first: none kept
        if self.public and event.action is BookAction.ADD and not event.snapshot and event.order_id is not None:
            share = event.size / depth if depth > 0 else math.inf
            self.placements[event.order_id] = (event.ts, share)
            self._placed.append((event.ts, event.order_id))
        self.clock = max(self.clock, event.ts)
        self._forget(self.clock - self.params.keep_ms)
        return self._release()

    def visible_share(self, order_id: str) -> float | None:
        placed = self.placements.get(order_id)
        return None if placed is None else placed[1]

    def _known_share(self, order_id: str) -> float | None:
        """The share of the report being judged's order, if the public feed showed it by the report's time + lag
        (a later placement is unknown, whenever it came: the alerts must not depend on it)."""
        placed = self.placements.get(order_id)
        judging = self._judging
        if placed is None or judging is None or placed[0] > judging.ts + self.params.lag_ms:
            return None
        return placed[1]

    # --- the drop copy ----------------------------------------------------------------------------------------
    def on_execution(self, report: ExecutionReport) -> list[Alert]:
        self.pending.append(report)
        return self._release()

    def pending_reports(self) -> int:
        return len(self.pending)

    def flush(self) -> list[Alert]:
        """The end of the input: every report still waiting judged (the public feed has said all it will)."""
        alerts: list[Alert] = []
        while self.pending:
            alerts += self._judge(self.pending.popleft())
        return alerts

    def _release(self) -> list[Alert]:
        alerts: list[Alert] = []
        while self.pending and (not self.public or self.pending[0].ts + self.params.lag_ms <= self.clock):
            alerts += self._judge(self.pending.popleft())
        return alerts

    def _judge(self, report: ExecutionReport) -> list[Alert]:
        self._judging = report
        try:
            hits = [*self.spoofing.on_execution(report), *self.wash.on_execution(report)]
        finally:
            self._judging = None
        return [alert for hit in hits for alert in self.policy.on_hit(hit)]

    def _forget(self, before: int) -> None:
        placed = self._placed
        while placed and placed[0][0] < before:
            _, order_id = placed.popleft()
            entry = self.placements.get(order_id)
            if entry is not None and entry[0] < before:
                del self.placements[order_id]

    # --- state ------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "spoofing": self.spoofing.to_state(),
            "wash": self.wash.to_state(),
            "policy": self.policy.to_state(),
            # an order placed into an empty side has an infinite share: JSON has no infinity, null stands for it
            "placements": [[ts, order_id, _finite(self.placements[order_id][1])] for ts, order_id in self._placed],
            "clock": self.clock,
            "pending": [report.to_json().decode() for report in self.pending],
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        params: FirmDetectorParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
        public: bool = True,
        policy: PolicyParams | None = None,
    ) -> FirmDetector:
        restored = AlertPolicy.from_state(state["policy"], policy)
        detector = cls(restored.symbol, restored.venue, params, owners, groups, public, policy)
        detector.policy = restored
        detector.spoofing = FirmSpoofing.from_state(state["spoofing"], detector.params.spoofing, detector._known_share)
        detector.wash = FirmWash.from_state(state["wash"], detector.params.wash, owners, groups)
        for ts, order_id, share in state["placements"]:
            detector.placements[order_id] = (int(ts), math.inf if share is None else float(share))
            detector._placed.append((int(ts), order_id))
        detector.clock = int(state["clock"])
        detector.pending = deque(ExecutionReport.from_json(raw) for raw in state["pending"])
        return detector


def _finite(share: float) -> float | None:
    return share if math.isfinite(share) else None
