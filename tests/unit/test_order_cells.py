"""The evaluation matrix's market-by-order feeds: one order session per seed through the orders path, judged as the
public feed alone (``mbo``) and with the firm's drop copy (``mbo+firm``), and the scorecard's bars for them."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pandas as pd
import pytest

from tapewatch.detectors.orders.firm_desk import ReferenceOf
from tapewatch.evaluation import matrix as em
from tapewatch.evaluation import order_cells
from tapewatch.evaluation.order_level import session_reference
from tapewatch.evaluation.order_lookback import OrderPathOutput, run_orders
from tapewatch.evaluation.scorecard import MIN_ACCOUNT_NAMED, _generator_lines


@pytest.fixture(scope="module")
def order_feeds() -> tuple[list[em.FeedResult], list[str]]:
    said: list[str] = []
    spec = em.MatrixSpec(feeds=("mbo", "mbo+firm"), seeds=(7,), train_seed=3, symbols=3, minutes=60, generator="sim")
    return em.run_matrix(spec, progress=said.append), said


def test_both_feeds_judge_one_session_with_and_without_the_drop_copy(
    order_feeds: tuple[list[em.FeedResult], list[str]],
) -> None:
    (public, firm), said = order_feeds
    assert (public.feed, firm.feed) == ("mbo", "mbo+firm")
    assert [m.episodes for m in public.result.kinds] == [m.episodes for m in firm.result.kinds]
    assert sum(m.episodes for m in public.result.kinds) >= 4, "the session has episodes to judge"
    assert public.result.clean_symbols == firm.result.clean_symbols
    # the drop copy adds alerts and takes none away; only its alerts are counted for naming accounts
    assert all(f.alerts >= p.alerts for p, f in zip(public.result.kinds, firm.result.kinds, strict=True))
    assert sum(f.alerts for f in firm.result.kinds) > sum(p.alerts for p in public.result.kinds)
    assert public.named == {} and firm.named
    assert all(0 <= right <= true for true, right in firm.named.values())
    # the two feeds share the derived input: one K-means model, trained on the training seed
    assert [s for s in said if s.startswith("training")] == ["training K-means on mbo, seed 3"]


def test_the_drop_copy_must_name_the_right_account(order_feeds: tuple[list[em.FeedResult], list[str]]) -> None:
    (public, firm), _ = order_feeds
    kinds, _, _, _ = _generator_lines("sim", [public, firm])
    named = {(k.feed, k.kind): k.account_named for k in kinds}
    assert all(math.isnan(v) for (feed, _), v in named.items() if feed == "mbo")
    assert all(k.bar == 0.90 for k in kinds if k.feed == "mbo+firm" and k.kind in ("spoofing", "wash_trading"))
    kind = next(iter(firm.named))
    assert named["mbo+firm", kind] == firm.account_named(kind)
    assert MIN_ACCOUNT_NAMED == 0.90
    worse = dataclasses.replace(firm, named={kind: (10, 8)})
    [line] = [k for k in _generator_lines("sim", [worse])[0] if k.kind == kind]
    assert line.account_named == 0.8 and not line.met, "a true alert naming someone else falls short of the bar"


def test_the_drop_copy_reads_the_firms_reference_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each account's owner and linked-account group, as the firm keeps them: a wash between two owners of one group
    is a wash only to a desk that knows the group."""
    given: list[ReferenceOf] = []

    def spied(*args: Any, **kwargs: Any) -> OrderPathOutput:
        given.append(kwargs["reference"])
        return run_orders(*args, **kwargs)

    monkeypatch.setattr(order_cells, "run_orders", spied)
    spec = em.MatrixSpec(feeds=("mbo+firm",), seeds=(7,), train_seed=3, symbols=1, minutes=5, generator="lob")
    session = order_cells.run_orders_of(spec, 7, None).session
    accounts = session.accounts_frame()
    [reference] = given
    known = reference(session.tenant)
    assert len(accounts) and dict(known.owners) == dict(zip(accounts["account"], accounts["owner"], strict=True))
    groups = {a: g for a, g in zip(accounts["account"], accounts["group"], strict=True) if isinstance(g, str)}
    assert dict(known.groups) == groups


def test_the_sessions_reference_data_holds_each_accounts_owner_and_group() -> None:
    class Session:
        tenant = "firm"

        @staticmethod
        def accounts_frame() -> pd.DataFrame:
            return pd.DataFrame({"account": ["A1", "A2", "A3"], "owner": ["O1", "O2", "O3"], "group": ["G", "G", None]})

    known = session_reference(Session())(Session.tenant)  # type: ignore[arg-type]
    assert dict(known.owners) == {"A1": "O1", "A2": "O2", "A3": "O3"} and dict(known.groups) == {"A1": "G", "A2": "G"}
