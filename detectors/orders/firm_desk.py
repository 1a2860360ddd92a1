"""One symbol's surveillance of every firm that sends its drop copy: the symbol's public placements and trades, kept
once, and one :class:`FirmDetector` per tenant, each with that tenant's own reference data (account → beneficial
owner, → linked-account group). A firm's reports are judged only against its own accounts and its alerts are its own
(``Alert.tenant``): two firms' accounts are never matched with each other, and no firm's alert names another's
account.

>>> from tapewatch.records import ExecutionReport, OrderBookEvent
>>> desk = FirmDesk("X", "v")
>>> report = ExecutionReport(symbol="X", venue="v", ts=1_000, exec_id="e1", order_id="o1", account="A1",
...     tenant="acme", exec_type="new", side="BUY", price=10.0, quantity=500.0)
>>> desk.on_execution(report), desk.pending_reports(), desk.tenants()
([], 1, ['acme'])
>>> add = OrderBookEvent(symbol="X", venue="v", ts=2_500, sequence=1, action="add", order_id="o2", side="BUY",
...     price=10.0, size=500.0)
>>> desk.on_order(add, depth=2_000.0), desk.pending_reports()
([], 0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tapewatch.detectors.alerting import PolicyParams
from tapewatch.detectors.orders.firm_detector import FirmDetector, FirmDetectorParams, never_closes
from tapewatch.detectors.orders.firm_ramp import MsToClose
from tapewatch.detectors.orders.placements import PublicPlacements
from tapewatch.detectors.orders.public_tape import PublicTape
from tapewatch.records import Alert, ExecutionReport, OrderBookEvent


@dataclass(frozen=True, slots=True)
class AccountReference:
    """A tenant's reference data: account → beneficial owner, account → linked-account group. The detectors read
    the mappings as they are at each report, so a table that follows the tenant's updates changes them in place."""

    owners: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)


#: tenant → its reference data (the same object for a tenant as long as the desk lives)
ReferenceOf = Callable[[str], AccountReference]


def fixed_reference(by_tenant: Mapping[str, AccountReference]) -> ReferenceOf:
    """Reference data that does not change (an evaluation's): a tenant not in ``by_tenant`` has none."""
    none = AccountReference()
    return lambda tenant: by_tenant.get(tenant, none)


NO_REFERENCE: ReferenceOf = fixed_reference({})


class FirmDesk:
    """The public feed in (``on_order``), each tenant's drop copy in (``on_execution``), each tenant's alerts out."""

    def __init__(
        self,
        symbol: str,
        venue: str,
        params: FirmDetectorParams | None = None,
        reference: ReferenceOf = NO_REFERENCE,
        public: bool = True,
        policy: PolicyParams | None = None,
        ms_to_close: MsToClose = never_closes,
    ) -> None:
        """``reference``: each tenant's reference data; ``public``: whether the venue's market-by-order feed comes
        too (the reports wait for it); ``ms_to_close``: the venue's session calendar."""
        self.symbol, self.venue = symbol, venue
        self.params = params or FirmDetectorParams()
        self.reference = reference
        self.policy = policy
        self.ms_to_close = ms_to_close
        self.placements = PublicPlacements(self.params.keep_ms, public)
        self.tape = PublicTape(self.params.tape_ms)
        self.firms: dict[str, FirmDetector] = {}

    def on_order(self, event: OrderBookEvent, depth: float) -> list[Alert]:
        """A public event; ``depth``: the visible depth of its side before it. Returns the alerts of the reports it
        lets through, tenant by tenant in the order the tenants first came."""
        self.placements.on_order(event, depth)
        if self.placements.public:
            self.tape.on_order(event)
        if not self.firms:  # no drop copy of the symbol yet: nothing waits
            return []
        return [alert for firm in self.firms.values() if firm.pending for alert in firm.release()]

    def on_execution(self, report: ExecutionReport) -> list[Alert]:
        firm = self.firms.get(report.tenant)
        if firm is None:
            firm = self.firms[report.tenant] = self._firm(report.tenant)
        return firm.on_execution(report)

    def duplicate(self, report: ExecutionReport) -> bool:
        """Whether ``report`` was judged already (its tenant's detector has seen its exec_id)."""
        firm = self.firms.get(report.tenant)
        return firm is not None and firm.seen(report)

    def pending_reports(self) -> int:
        return sum(firm.pending_reports() for firm in self.firms.values())

    def tenants(self) -> list[str]:
        return list(self.firms)

    def flush(self) -> list[Alert]:
        return [alert for firm in self.firms.values() for alert in firm.flush()]

    def _firm(self, tenant: str) -> FirmDetector:
        known = self.reference(tenant)
        return FirmDetector(
            self.symbol,
            self.venue,
            tenant,
            self.placements,
            self.tape,
            self.params,
            known.owners,
            known.groups,
            self.policy,
            self.ms_to_close,
        )

    # --- state ------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "placements": self.placements.to_state(),
            "tape": self.tape.to_state(),
            "firms": {tenant: firm.to_state() for tenant, firm in self.firms.items()},
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        symbol: str,
        venue: str,
        params: FirmDetectorParams | None = None,
        reference: ReferenceOf = NO_REFERENCE,
        public: bool = True,
        policy: PolicyParams | None = None,
        ms_to_close: MsToClose = never_closes,
    ) -> FirmDesk:
        desk = cls(symbol, venue, params, reference, public, policy, ms_to_close)
        desk.placements = PublicPlacements.from_state(state["placements"], desk.params.keep_ms, public)
        desk.tape = PublicTape.from_state(state["tape"], desk.params.tape_ms)
        for tenant, firm in state["firms"].items():
            known = desk.reference(tenant)
            desk.firms[tenant] = FirmDetector.from_state(
                firm, desk.placements, desk.tape, desk.params, known.owners, known.groups, policy, ms_to_close
            )
        return desk
