"""Quote stuffing by account from the drop copy: a burst of orders placed and cancelled within seconds with nothing
executed is found and names its account; a market maker re-quoting at its steady pace, a busy algorithm that trades
what it sends, and the firm's ordinary flow are not; the state round-trips wherever it is cut; the parameters are
validated."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.orders.firm_detector import FirmDetector
from tapewatch.detectors.orders.firm_messages import EVIDENCE, RULE, FirmMessages, FirmMessagesParams, fresh_state
from tapewatch.detectors.orders.placements import PublicPlacements
from tapewatch.detectors.orders.public_tape import PublicTape
from tapewatch.detectors.patterns.explain import rule_of
from tapewatch.records import AlertKind, ExecutionReport

_ids = itertools.count()
MINUTE = 60_000
#: a trading day's first millisecond (any: the detector reads times, not dates)
DAY = 1_704_160_000_000


def report(ts: int, exec_type: str, order_id: str, account: str, owner: str | None = None) -> ExecutionReport:
    filled = exec_type == "trade"
    return ExecutionReport(
        symbol="X",
        venue="v",
        ts=ts,
        exec_id=f"e{next(_ids)}",
        order_id=order_id,
        tenant="acme",
        account=account,
        owner=owner,
        exec_type=exec_type,
        side="BUY",
        price=10.0,
        quantity=100.0,
        last_qty=100.0 if filled else 0.0,
        last_price=10.0 if filled else None,
        cum_qty=100.0 if filled else 0.0,
    )


def ordinary_flow(start: int, minutes: int, seed: int = 1, accounts: int = 20) -> list[ExecutionReport]:
    """The firm's ordinary clients: each places an order every few seconds, half cancelled, a third executed."""
    rng = random.Random(seed)
    reports = []
    for n in range(accounts):
        t = start + rng.randrange(5_000)
        while t < start + minutes * MINUTE:
            oid = f"n{n}-{t}"
            reports.append(report(t, "new", oid, f"N{n}", f"ON{n}"))
            u = rng.random()
            if u < 0.5:
                reports.append(report(t + rng.randrange(200, 20_000), "canceled", oid, f"N{n}", f"ON{n}"))
            elif u < 0.85:
                reports.append(report(t + rng.randrange(50, 20_000), "trade", oid, f"N{n}", f"ON{n}"))
            t += rng.randrange(1_000, 8_000)
    return reports


def burst(
    start: int, orders: int, account: str = "S1", spacing_ms: int = 10, life_ms: int = 40
) -> list[ExecutionReport]:
    """``orders`` small orders placed ``spacing_ms`` apart, each cancelled ``life_ms`` later, nothing executed."""
    out = []
    for n in range(orders):
        t = start + n * spacing_ms
        out += [
            report(t, "new", f"{account}-{n}", account, "OS"),
            report(t + life_ms, "canceled", f"{account}-{n}", account, "OS"),
        ]
    return out


def market_maker(start: int, minutes: int, rate: float, account: str = "MM", seed: int = 2) -> list[ExecutionReport]:
    """Re-quotes both sides whenever the touch moves, about ``rate`` messages a second (±30 %), a fill now and then."""
    rng = random.Random(seed)
    out = []
    t, n = start, 0
    while t < start + minutes * MINUTE:
        for side in ("b", "a"):
            oid = f"{account}-{side}{n}"
            out.append(report(t, "new", oid, account, "OM"))
            if rng.random() < 0.01:
                out.append(report(t + 300, "trade", oid, account, "OM"))
            else:
                out.append(report(t + rng.randrange(200, 900), "canceled", oid, account, "OM"))
        n += 1
        t += max(1, round(4_000 / (rate * rng.uniform(0.7, 1.3))))
    return out


def run(detector: FirmMessages, reports: Iterable[ExecutionReport]) -> list[Hit]:
    hits: list[Hit] = []
    for r in sorted(reports, key=lambda r: r.ts):
        hits += detector.on_execution(r)
    return hits


def test_a_burst_of_orders_cancelled_within_seconds_is_found_and_names_its_account() -> None:
    stuffer = burst(DAY + 30 * MINUTE, 300)
    hits = run(FirmMessages(), [*ordinary_flow(DAY, 40), *stuffer])
    assert len(hits) == 1
    hit = hits[0]
    assert hit.kind is AlertKind.QUOTE_STUFFING
    evidence = hit.evidence
    assert (evidence["account"], evidence["owner"], evidence["executions"]) == ("S1", "OS", 0)
    assert int(str(evidence["messages"])) >= 50 and float(str(evidence["otr"])) >= 20
    ids = str(evidence["order_ids"]).split(";")
    assert 1 <= len(ids) <= FirmMessagesParams().sample_orders
    assert set(ids) <= {r.order_id for r in stuffer}
    assert hit.window_start >= DAY + 30 * MINUTE and hit.ts - hit.window_start <= FirmMessagesParams().window_ms
    # every key is declared, and the console reads the hit with this rule
    assert set(evidence) == set(EVIDENCE) and rule_of(hit.kind, evidence) is RULE


def test_a_burst_by_an_account_with_a_quiet_history_is_found() -> None:
    quiet = [r for r in ordinary_flow(DAY, 40, accounts=1) if r.ts < DAY + 30 * MINUTE]
    quiet = [r.model_copy(update={"account": "S1"}) for r in quiet]
    hits = run(FirmMessages(), [*ordinary_flow(DAY, 40, seed=3), *quiet, *burst(DAY + 31 * MINUTE, 200)])
    assert [h.evidence["account"] for h in hits] == ["S1"]
    assert hits[0].evidence["usual_rate"] is not None


def test_the_firms_ordinary_flow_raises_nothing() -> None:
    assert run(FirmMessages(), ordinary_flow(DAY, 120, accounts=40)) == []


def test_a_market_maker_at_its_steady_pace_is_not_alerted_once_it_has_a_history() -> None:
    """Its first seconds on the symbol have no history to judge it against (a burst, as far as anyone can tell);
    after that, and on the next day (the night does not age its history), its steady pace is its own."""
    detector = FirmMessages()
    first_day = run(detector, [*ordinary_flow(DAY, 60), *market_maker(DAY, 60, rate=25.0)])
    params = FirmMessagesParams()
    assert all(h.ts - DAY <= params.min_history_ms + params.window_ms for h in first_day), first_day
    next_day = DAY + 24 * 60 * MINUTE
    assert run(detector, [*ordinary_flow(next_day, 60, seed=4), *market_maker(next_day, 60, 25.0, seed=5)]) == []


def test_a_market_makers_ordinary_pace_is_below_the_floors() -> None:
    assert run(FirmMessages(), [*ordinary_flow(DAY, 60), *market_maker(DAY, 60, rate=3.0)]) == []


def test_a_busy_algorithm_that_trades_what_it_sends_is_not_alerted() -> None:
    """Fifty messages a second from its first, doubled for a minute: its OTR is a few messages per execution."""
    algo = []
    for n in range(40 * 60 * 25):  # 25 orders a second for 40 minutes, twice as many in the 30th minute
        t = DAY + n * 40 if n < 29 * 60 * 25 else DAY + 29 * MINUTE + (n - 29 * 60 * 25) * 20
        kind = "trade" if n % 3 == 0 else "canceled"
        algo += [report(t, "new", f"g{n}", "ALGO"), report(t + 15, kind, f"g{n}", "ALGO")]
    assert run(FirmMessages(), [*ordinary_flow(DAY, 45), *algo]) == []


def test_a_burst_below_the_floors_is_not_a_hit() -> None:
    slow = burst(DAY + 30 * MINUTE, 40, spacing_ms=250)  # 8 messages a second
    assert run(FirmMessages(), [*ordinary_flow(DAY, 40), *slow]) == []


def spread(accounts: Iterable[str] = ("S1", "S2", "S3")) -> list[ExecutionReport]:
    """One burst spread over ``accounts`` (of owner ``OS``), each below the floors: 8 messages a second apiece."""
    return [r for n, a in enumerate(accounts) for r in burst(DAY + 30 * MINUTE + 70 * n, 60, a, spacing_ms=250)]


def test_a_burst_spread_over_one_owners_accounts_is_found_and_names_them() -> None:
    hits = run(FirmMessages(), [*ordinary_flow(DAY, 40), *spread()])
    assert hits and {(h.evidence["account"], h.evidence["owner"]) for h in hits} == {("S1;S2;S3", "OS")}
    assert all(int(str(h.evidence["messages"])) >= 50 for h in hits)
    assert "owner OS's accounts S1, S2, S3" in hits[0].message


def test_the_same_burst_over_unlinked_accounts_raises_nothing_and_linked_ones_are_one_group() -> None:
    apart = {"S1": "P1", "S2": "P2", "S3": "P3"}  # the reference data: three owners
    assert run(FirmMessages(owners=apart), [*ordinary_flow(DAY, 40), *spread()]) == []
    linked = FirmMessages(owners=apart, groups=dict.fromkeys(("S1", "S2", "S3"), "G7"))
    hits = run(linked, [*ordinary_flow(DAY, 40), *spread()])
    assert hits and {(h.evidence["account"], h.evidence["owner"]) for h in hits} == {("S1;S2;S3", "G7")}


def test_an_owners_spread_flow_that_trades_what_it_sends_is_not_stuffing() -> None:
    """The same spread burst, each account executing one order in six: the owner's order-to-trade ratio (its
    accounts' executions counted with their messages) is under the floor."""
    flow = spread()
    fills = [report(r.ts + 20, "trade", r.order_id, r.account, "OS") for r in flow if r.exec_type == "new"][::6]
    assert run(FirmMessages(), [*ordinary_flow(DAY, 40), *flow, *fills]) == []


def test_an_accounts_own_burst_is_its_alone_even_with_its_owners_other_accounts_busy() -> None:
    """S1 stuffs while S2, of the same owner, trades at its ordinary pace: one account's burst, not the owner's."""
    other = [r.model_copy(update={"account": "S2", "owner": "OS"}) for r in ordinary_flow(DAY, 40, accounts=1)]
    hits = run(FirmMessages(), [*ordinary_flow(DAY, 40), *other, *burst(DAY + 30 * MINUTE, 300)])
    assert hits and {h.evidence["account"] for h in hits} == {"S1"}


def test_an_owners_two_market_makers_at_their_steady_pace_are_its_usual_one() -> None:
    """Each below the floors, together above them all day: as for one market maker, the owner's first seconds have no
    history to judge it against; after that, and the next day, its pace is its own."""

    def makers(day: int) -> list[ExecutionReport]:
        return [*market_maker(day, 60, 7.0, "MM1", seed=day % 7), *market_maker(day, 60, 7.0, "MM2", seed=day % 5)]

    at = DAY + 30 * MINUTE
    window = [r for r in makers(DAY) if at <= r.ts < at + 5_000 and r.exec_type != "trade"]
    assert len(window) >= 50 > max(sum(r.account == a for r in window) for a in ("MM1", "MM2"))
    detector, params = FirmMessages(), FirmMessagesParams()
    first_day = run(detector, [*ordinary_flow(DAY, 60), *makers(DAY)])
    assert all(h.ts - DAY <= params.min_history_ms + params.window_ms for h in first_day), first_day
    next_day = DAY + 24 * 60 * MINUTE
    assert run(detector, [*ordinary_flow(next_day, 60, seed=4), *makers(next_day)]) == []


def test_the_state_round_trips_and_the_hits_do_not_depend_on_where_it_was_kept() -> None:
    reports = sorted([*ordinary_flow(DAY, 40), *burst(DAY + 30 * MINUTE, 300)], key=lambda r: r.ts)
    straight = FirmMessages()
    expected = run(straight, reports)
    for cut in (len(reports) // 3, next(i for i, r in enumerate(reports) if r.account == "S1") + 60):
        first = FirmMessages()
        hits = run(first, reports[:cut])
        restored = FirmMessages.from_state(json.loads(json.dumps(first.to_state())))
        assert restored.to_state() == first.to_state()
        hits += run(restored, reports[cut:])
        assert hits == expected
        assert restored.to_state() == straight.to_state()


def test_a_fresh_state_is_a_new_detectors_whatever_its_parameters() -> None:
    params = FirmMessagesParams(window_ms=2_000, min_rate=50.0)
    assert FirmMessages.from_state(fresh_state(), params).to_state() == FirmMessages(params).to_state()


def test_the_firm_detector_keeps_and_restores_the_quote_stuffing_detector() -> None:
    placements, tape = PublicPlacements(keep_ms=60_000, public=False), PublicTape(keep_ms=60_000)
    detector = FirmDetector("X", "v", "acme", placements, tape)
    alerts = []
    for r in sorted([*ordinary_flow(DAY, 35), *burst(DAY + 30 * MINUTE, 300)], key=lambda r: r.ts):
        alerts += detector.on_execution(r)
    assert [(a.kind, a.evidence["account"], a.tenant) for a in alerts][:1] == [(AlertKind.QUOTE_STUFFING, "S1", "acme")]
    state = json.loads(json.dumps(detector.to_state()))
    assert FirmDetector.from_state(state, placements, tape).to_state() == detector.to_state()


@pytest.mark.parametrize(
    "values",
    [
        {"window_ms": 10_000, "otr_window_ms": 5_000},
        {"min_rate": 0},
        {"min_otr": 0.5},
        {"peer_quantile": 1.0},
        {"own_multiple": 0.5},
        {"sample_orders": 0},
        {"surprise": 1},
    ],
)
def test_the_parameters_are_validated(values: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        FirmMessagesParams.model_validate(values)


#: a report stream: (gap ms, account, what it is)
_steps = st.lists(
    st.tuples(
        st.integers(0, 400), st.sampled_from(["A", "B", "C"]), st.sampled_from(["new", "canceled", "replaced", "trade"])
    ),
    max_size=400,
)


@settings(max_examples=60, deadline=None)
@given(_steps, st.integers(0, 400))
def test_every_hit_passes_the_floors_once_a_window_and_a_cut_anywhere_changes_nothing(
    steps: list[tuple[int, str, str]], cut: int
) -> None:
    params = FirmMessagesParams(min_rate=2.0, min_otr=2.0, min_history_ms=0)
    t, reports = DAY, []
    for n, (gap, account, kind) in enumerate(steps):
        t += gap
        reports.append(report(t, kind, f"o{n}", account))
    straight = FirmMessages(params)
    hits = run(straight, reports)
    last: dict[str, int] = {}
    for hit in hits:
        account = str(hit.evidence["account"])
        assert int(str(hit.evidence["messages"])) >= params.min_rate * params.window_ms / 1000
        assert float(str(hit.evidence["otr"])) >= params.min_otr
        assert hit.ts - last.get(account, -(10**15)) >= params.window_ms
        last[account] = hit.ts
    first = FirmMessages(params)
    cut_hits = run(first, reports[:cut])
    cut_hits += run(FirmMessages.from_state(json.loads(json.dumps(first.to_state())), params), reports[cut:])
    assert cut_hits == hits
