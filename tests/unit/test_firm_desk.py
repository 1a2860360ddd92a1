"""A symbol's firm desk keeps each tenant's drop copy apart: one firm's accounts are never matched with another's,
even under the same names and owners; each firm's alerts carry its tenant and an id of its own; a report sent again
is judged once; the desk's state (every tenant's and the shared public placements) round-trips."""

from __future__ import annotations

import itertools

import orjson
import pytest

from tapewatch.detectors.orders.firm_desk import AccountReference, FirmDesk, fixed_reference
from tapewatch.detectors.orders.firm_detector import FirmDetector, FirmDetectorParams
from tapewatch.records import Alert, AlertKind, ExecutionReport, OrderBookEvent, alert_id

_ids = itertools.count()
#: both firms call an owner "O1": two different people
REFERENCE = fixed_reference(
    {
        "acme": AccountReference(owners={"A1": "O1", "A2": "O1"}),
        "bravo": AccountReference(owners={"A1": "O1", "A2": "O1"}),
    }
)


def fill(ts: int, tenant: str, account: str, side: str, qty: float = 500.0) -> ExecutionReport:
    order_id = f"{tenant}-{next(_ids)}"
    return ExecutionReport(
        symbol="X", venue="v", ts=ts, exec_id=f"e-{order_id}", order_id=order_id, tenant=tenant, account=account,
        exec_type="trade", side=side, price=10.0, quantity=qty, last_qty=qty, last_price=10.0, cum_qty=qty,
    )  # fmt: skip


def prints(buyer: tuple[str, str], seller: tuple[str, str], times: int = 3) -> list[ExecutionReport]:
    """``times`` prints between (tenant, account) ``buyer`` and ``seller``, ten seconds apart."""
    return [
        report
        for n in range(times)
        for report in (fill(10_000 * (n + 1), *buyer, "BUY"), fill(10_000 * (n + 1) + 3, *seller, "SELL"))
    ]


def judged(desk: FirmDesk, reports: list[ExecutionReport]) -> list[Alert]:
    return [alert for report in reports for alert in desk.on_execution(report)] + desk.flush()


def test_one_owners_accounts_are_wash_within_a_firm_and_never_across_firms() -> None:
    within = judged(FirmDesk("X", "v", reference=REFERENCE, public=False), prints(("acme", "A1"), ("acme", "A2")))
    across = judged(FirmDesk("X", "v", reference=REFERENCE, public=False), prints(("acme", "A1"), ("bravo", "A2")))
    assert [alert.kind for alert in within] == [AlertKind.WASH_TRADING] and across == []
    [alert] = within
    assert alert.tenant == "acme"
    assert alert.alert_id == alert_id("X", "wash_trading", alert.window_start, "acme")


def test_two_firms_washing_at_once_get_their_own_alerts_naming_their_own_accounts() -> None:
    desk = FirmDesk("X", "v", reference=REFERENCE, public=False)
    acme = prints(("acme", "A1"), ("acme", "A2"))
    bravo = [r.model_copy(update={"tenant": "bravo", "order_id": f"b{r.order_id}"}) for r in acme]
    alerts = judged(desk, [report for pair in zip(acme, bravo, strict=True) for report in pair])
    assert sorted(str(alert.tenant) for alert in alerts) == ["acme", "bravo"]
    assert len({alert.alert_id for alert in alerts}) == 2
    assert desk.tenants() == ["acme", "bravo"]


def test_the_desks_state_round_trips_with_every_tenant_waiting_for_the_public_feed() -> None:
    def add(ts: int, n: int) -> OrderBookEvent:
        return OrderBookEvent(
            symbol="X", venue="v", ts=ts, sequence=n, action="add", order_id=f"p{n}", side="BUY", price=9.9, size=100.0
        )  # fmt: skip

    acme = prints(("acme", "A1"), ("acme", "A2"))
    bravo = [r.model_copy(update={"tenant": "bravo", "order_id": f"b{r.order_id}"}) for r in acme]
    reports = [report for pair in zip(acme, bravo, strict=True) for report in pair]
    desk = FirmDesk("X", "v", reference=REFERENCE)
    assert judged_without_flush(desk, reports[:6]) == [] and desk.pending_reports() == 6
    desk.on_order(add(5_000, 1), depth=1_000.0)
    restored = FirmDesk.from_state(orjson.loads(orjson.dumps(desk.to_state())), "X", "v", reference=REFERENCE)
    assert restored.to_state() == desk.to_state()
    outputs = []
    for one in (desk, restored):
        alerts = judged_without_flush(one, reports[6:])
        alerts += one.on_order(add(60_000, 2), depth=1_000.0)
        outputs.append(sorted(alert.to_json() for alert in alerts))
    assert outputs[0] == outputs[1] and len(outputs[0]) == 2


def judged_without_flush(desk: FirmDesk, reports: list[ExecutionReport]) -> list[Alert]:
    return [alert for report in reports for alert in desk.on_execution(report)]


def test_a_firms_detector_refuses_another_firms_report() -> None:
    desk = FirmDesk("X", "v")
    desk.on_execution(fill(1_000, "acme", "A1", "BUY"))
    detector: FirmDetector = desk.firms["acme"]
    with pytest.raises(ValueError, match="tenant 'bravo'"):
        detector.on_execution(fill(1_001, "bravo", "A1", "BUY"))


def test_a_report_sent_again_is_judged_once_within_the_dedupe_window_and_through_a_restore() -> None:
    params = FirmDetectorParams(dedupe_ms=60_000)
    desk = FirmDesk("X", "v", params, REFERENCE, public=False)
    washes = prints(("acme", "A1"), ("acme", "A2"))
    alerts = [alert for report in washes for alert in desk.on_execution(report)]
    restored = FirmDesk.from_state(orjson.loads(orjson.dumps(desk.to_state())), "X", "v", params, REFERENCE, False)
    for one in (desk, restored):
        assert all(one.duplicate(report) for report in washes)
        assert [alert for report in washes for alert in one.on_execution(report)] == []  # nothing doubled
    later = fill(washes[-1].ts + 120_000, "acme", "A3", "BUY")
    desk.on_execution(later)  # two minutes on, the first reports' ids are forgotten (the window's limit)
    assert not desk.duplicate(washes[0]) and desk.duplicate(later) and len(alerts) == 1
