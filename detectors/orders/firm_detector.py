"""One firm's surveillance of its own orders in one symbol: spoofing, wash trades, collusive rings, quote stuffing, and
pumps or marking the close driven by its accounts, from its drop copy (:class:`FirmSpoofing`, :class:`FirmWash`,
:class:`FirmRing`, :class:`FirmMessages`, :class:`FirmRamp`), raised as alerts of the firm's tenant by one
:class:`AlertPolicy`, with each order's size against the public book it was placed into (read from the symbol's
:class:`PublicPlacements`) and the price and volume of the public tape (its :class:`PublicTape`).

The drop copy and the public feed are two streams, and which one a reader sees first is chance; the alerts must not
depend on it. So a report is judged only once the public feed has passed its time by ``lag_ms`` (the venue may
publish an order a moment after the firm's gateway reported it), in the order the reports came (``release``), and a
placement the public feed showed later than that is taken as unknown, whenever it arrived. The placements are kept
for ``keep_ms`` of the public feed's time: a drop copy read more than that behind the public feed finds its orders'
depth unknown, so the alerts are the same however the streams interleave as long as the drop copy is not read that
far behind (a drop copy read ahead only waits). A venue without a public market-by-order feed has its reports
judged as they come, each order's depth unknown.

>>> from tapewatch.records import ExecutionReport, OrderBookEvent
>>> placements = PublicPlacements(keep_ms=60_000)
>>> detector = FirmDetector("X", "v", "acme", placements, PublicTape(keep_ms=360_000))
>>> new = ExecutionReport(symbol="X", venue="v", ts=1_000, exec_id="e1", order_id="o1", account="A1",
...     tenant="acme", exec_type="new", side="BUY", price=10.0, quantity=500.0)
>>> detector.on_execution(new)  # waits for the public feed
[]
>>> add = OrderBookEvent(symbol="X", venue="v", ts=2_500, sequence=1, action="add", order_id="o2", side="BUY",
...     price=10.0, size=500.0)
>>> placements.on_order(add, depth=2_000.0)
>>> detector.release(), detector.pending_reports()
([], 0)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tapewatch.detectors.alerting import AlertPolicy, PolicyParams
from tapewatch.detectors.orders.firm_messages import FirmMessages, FirmMessagesParams
from tapewatch.detectors.orders.firm_ramp import FirmRamp, FirmRampParams, MsToClose
from tapewatch.detectors.orders.firm_ring import FirmRing, FirmRingParams
from tapewatch.detectors.orders.firm_spoofing import FirmSpoofing, FirmSpoofingParams
from tapewatch.detectors.orders.firm_wash import FirmWash, FirmWashParams
from tapewatch.detectors.orders.placements import PublicPlacements
from tapewatch.detectors.orders.public_tape import PublicTape
from tapewatch.records import Alert, ExecutionReport


class FirmDetectorParams(BaseModel):
    """The firm's detectors' parameters, and how the drop copy waits for the public feed."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    spoofing: FirmSpoofingParams = Field(default_factory=FirmSpoofingParams)
    wash: FirmWashParams = Field(default_factory=FirmWashParams)
    ring: FirmRingParams = Field(default_factory=FirmRingParams)
    ramp: FirmRampParams = Field(default_factory=FirmRampParams)
    messages: FirmMessagesParams = Field(default_factory=FirmMessagesParams)
    lag_ms: int = Field(
        1_000, ge=0, le=600_000, description="A report is judged once the public feed is this far past it"
    )
    keep_ms: int = Field(
        60_000, ge=1_000, le=86_400_000, description="A public placement is remembered this long (public feed time)"
    )
    dedupe_ms: int = Field(
        60_000,
        ge=0,
        le=86_400_000,
        description="A report's exec_id is remembered this long (report time): a report sent again within it is a "
        "duplicate, judged once",
    )

    tape_keep_ms: int = Field(
        3_600_000,
        ge=60_000,
        le=86_400_000,
        description="The public trades are kept this long past an owner's window (public feed time): a drop copy read "
        "further behind the public feed finds them gone, and raises no pump or close",
    )

    @property
    def tape_ms(self) -> int:
        """How long the public tape is kept: an owner's window, and as far behind the public feed as a report may be
        read (a drop copy read after a whole session's public feed, as a worker catching up may, finds it there)."""
        return self.ramp.window_ms + self.tape_keep_ms


def never_closes(ts: int) -> int | None:
    """The session calendar of a venue that never closes."""
    return None


class FirmDetector:
    """One firm (tenant) in one symbol: its drop copy in (``on_execution``), judged as the public feed's clock
    passes it (``release``), alerts of that tenant out."""

    PARAMS: ClassVar[type[FirmDetectorParams]] = FirmDetectorParams

    def __init__(
        self,
        symbol: str,
        venue: str,
        tenant: str,
        placements: PublicPlacements,
        tape: PublicTape,
        params: FirmDetectorParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
        policy: PolicyParams | None = None,
        ms_to_close: MsToClose = never_closes,
    ) -> None:
        """``placements``, ``tape``: the symbol's public placements and trades, shared by every firm; ``owners``,
        ``groups``: the firm's reference data (account → beneficial owner, → linked-account group);
        ``ms_to_close``: the venue's session calendar."""
        self.params = params or FirmDetectorParams()
        self.tenant = tenant
        self.placements = placements
        self.spoofing = FirmSpoofing(self.params.spoofing, self._known_share)
        self.wash = FirmWash(self.params.wash, owners, groups)
        self.ring = FirmRing(self.params.ring, owners, groups, tape)
        self.ramp = FirmRamp(tape, ms_to_close, self.params.ramp, owners, groups)
        self.messages = FirmMessages(self.params.messages, owners, groups)
        self.policy = AlertPolicy(symbol, venue, policy, tenant=tenant)
        #: the reports not judged yet, in the order they came
        self.pending: deque[ExecutionReport] = deque()
        self._judging: ExecutionReport | None = None
        #: exec_id → report time, for :attr:`FirmDetectorParams.dedupe_ms`, oldest first
        self.exec_ids: dict[str, int] = {}
        self._exec_order: deque[tuple[int, str]] = deque()

    def seen(self, report: ExecutionReport) -> bool:
        """Whether a report of this exec_id came already (within ``dedupe_ms``): a duplicate."""
        return report.exec_id in self.exec_ids

    def on_execution(self, report: ExecutionReport) -> list[Alert]:
        """One report of the firm's drop copy; returns the alerts of the reports the public clock lets through. A
        duplicate (:meth:`seen`) is not judged again."""
        if report.tenant != self.tenant:
            raise ValueError(f"a report of tenant {report.tenant!r} given to tenant {self.tenant!r}'s detector")
        if self.seen(report):
            return []
        self._remember(report.exec_id, report.ts)
        self.pending.append(report)
        return self.release()

    def _remember(self, exec_id: str, ts: int) -> None:
        self.exec_ids[exec_id] = ts
        self._exec_order.append((ts, exec_id))
        while self._exec_order and self._exec_order[0][0] < ts - self.params.dedupe_ms:
            _, old = self._exec_order.popleft()
            self.exec_ids.pop(old, None)

    def release(self) -> list[Alert]:
        """Judge the waiting reports the public feed has passed by ``lag_ms`` (all of them without a public feed)."""
        alerts: list[Alert] = []
        clock, public = self.placements.clock, self.placements.public
        while self.pending and (not public or self.pending[0].ts + self.params.lag_ms <= clock):
            alerts += self._judge(self.pending.popleft())
        return alerts

    def pending_reports(self) -> int:
        return len(self.pending)

    def flush(self) -> list[Alert]:
        """The end of the input: every report still waiting judged (the public feed has said all it will)."""
        alerts: list[Alert] = []
        while self.pending:
            alerts += self._judge(self.pending.popleft())
        return alerts

    def _known_share(self, order_id: str) -> float | None:
        """The share of the report being judged's order, if the public feed showed it by the report's time + lag
        (a later placement is unknown, whenever it came: the alerts must not depend on it)."""
        judging = self._judging
        return None if judging is None else self.placements.share(order_id, judging.ts + self.params.lag_ms)

    def _judge(self, report: ExecutionReport) -> list[Alert]:
        self._judging = report
        try:
            hits = [
                *self.spoofing.on_execution(report),
                *self.wash.on_execution(report),
                *self.ring.on_execution(report),
                *self.ramp.on_execution(report),
                *self.messages.on_execution(report),
            ]
        finally:
            self._judging = None
        return [alert for hit in hits for alert in self.policy.on_hit(hit)]

    # --- state ------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "spoofing": self.spoofing.to_state(),
            "wash": self.wash.to_state(),
            "ring": self.ring.to_state(),
            "ramp": self.ramp.to_state(),
            "messages": self.messages.to_state(),
            "policy": self.policy.to_state(),
            "pending": [report.to_json().decode() for report in self.pending],
            "exec_ids": [[ts, exec_id] for ts, exec_id in self._exec_order],
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        placements: PublicPlacements,
        tape: PublicTape,
        params: FirmDetectorParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
        policy: PolicyParams | None = None,
        ms_to_close: MsToClose = never_closes,
    ) -> FirmDetector:
        restored = AlertPolicy.from_state(state["policy"], policy)
        if restored.tenant is None:
            raise ValueError("a firm detector's state names its tenant")
        detector = cls(
            restored.symbol,
            restored.venue,
            restored.tenant,
            placements,
            tape,
            params,
            owners,
            groups,
            policy,
            ms_to_close,
        )
        detector.policy = restored
        detector.spoofing = FirmSpoofing.from_state(state["spoofing"], detector.params.spoofing, detector._known_share)
        detector.wash = FirmWash.from_state(state["wash"], detector.params.wash, owners, groups)
        detector.ring = FirmRing.from_state(state["ring"], detector.params.ring, owners, groups, tape)
        detector.ramp = FirmRamp.from_state(state["ramp"], tape, ms_to_close, detector.params.ramp, owners, groups)
        detector.messages = FirmMessages.from_state(state["messages"], detector.params.messages, owners, groups)
        detector.pending = deque(ExecutionReport.from_json(raw) for raw in state["pending"])
        for ts, exec_id in state["exec_ids"]:
            detector.exec_ids[exec_id] = int(ts)
            detector._exec_order.append((int(ts), exec_id))
        return detector
