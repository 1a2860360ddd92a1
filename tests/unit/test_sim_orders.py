"""The simulator's orders one by one: its records the same with and without them, a market-by-order feed that
rebuilds its five-level books at every snapshot, and a drop copy that shows each labelled firm episode's accounts."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from itertools import pairwise

import pytest

from tapewatch.detectors.orders.book import ASK, BID, OrderBook
from tapewatch.evaluation.order_diagnosis import episode_cycles, large_orders
from tapewatch.generators.sim_orders import SimOrdersConfig, SimOrderSession, generate_orders
from tapewatch.generators.simulator import LookalikeParams, SimulationConfig, generate
from tapewatch.records import AlertKind
from tests.order_feed import checked_feed, records

#: three symbols, half an hour, spoofing and wash on most symbols, genuine large orders on all
CONFIG = SimulationConfig(
    symbols=3,
    minutes=30,
    seed=7,
    news=False,
    lookalikes=True,
    variants=True,
    quiet_open_s=60,
    episode_gap_s=30,
    clean_fraction=0.0,
    rates={AlertKind.SPOOFING: 1.5, AlertKind.WASH_TRADING: 1.0},
    lookalike_params=LookalikeParams(large_rate=6),
)
#: every manipulator and large order through the firm
ALL_THROUGH = SimOrdersConfig(firm_agents=1.0)


@pytest.fixture(scope="module")
def session() -> SimOrderSession:
    return generate_orders(CONFIG, ALL_THROUGH)


def test_the_simulators_records_are_the_same_with_its_orders(session: SimOrderSession) -> None:
    plain, with_orders = generate(CONFIG), session.simulation
    assert [p for chunk in plain.encoded() for p in chunk[2]] == [
        p for chunk in with_orders.encoded() for p in chunk[2]
    ]
    assert plain.episodes_frame().equals(session.episodes_frame().drop(columns="accounts"))
    assert plain.lookalikes_frame().equals(session.lookalikes_frame())


def test_the_same_seed_gives_the_same_orders_and_reports(session: SimOrderSession) -> None:
    again = generate_orders(CONFIG, ALL_THROUGH)
    assert again.orders_frame().equals(session.orders_frame())
    assert again.drop_copy_frame().equals(session.drop_copy_frame())
    assert again.episodes_frame().equals(session.episodes_frame())
    assert again.accounts_frame().equals(session.accounts_frame())


def test_a_book_rebuilt_from_the_feed_is_the_simulators_at_every_snapshot(session: SimOrderSession) -> None:
    assert_rebuilt(session)


def assert_rebuilt(session: SimOrderSession) -> None:
    books = session.simulation.books_frame()
    for symbol in session.symbols:
        book, anomalies, events = OrderBook("contiguous"), Counter[str](), list(session.order_events(symbol))
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        assert all(a.ts <= b.ts for a, b in pairwise(events))
        i = 0
        for row in records(books[books["symbol"] == symbol]):
            while i < len(events) and events[i].ts <= row["ts"]:
                step = book.on_order(events[i])
                if step.anomaly is not None:
                    anomalies[step.anomaly] += 1
                i += 1
            for sign, side in ((BID, "bid"), (ASK, "ask")):
                wanted = [(row[f"{side}{n}"], row[f"{side}sz{n}"]) for n in range(1, 6)]
                assert book.top(sign) == wanted, (symbol, row["ts"], side)
        assert not anomalies, symbol  # no cancel or fill of an unknown id, no overfill
        fills = [(e.ts, e.order_id) for e in events if e.action == "fill"]
        assert len(fills) == len(set(fills)), symbol  # a marketable order meets a resting order once


def test_every_event_and_report_is_a_valid_record(session: SimOrderSession) -> None:
    orders, reports = checked_feed(session)
    adds = orders[orders["action"] == "add"]
    added = set(zip(adds["symbol"], adds["order_id"], strict=True))
    firm = set(zip(reports["symbol"], reports["order_id"], strict=True))
    assert 0.1 < len(added & firm) / len(added) < 0.6  # the firm sees some orders, not all (ids are per symbol)


def test_each_firm_episode_shows_its_accounts_in_the_drop_copy(session: SimOrderSession) -> None:
    episodes, reports, accounts = session.episodes_frame(), session.drop_copy_frame(), session.accounts_frame()
    owners = dict(zip(accounts["account"], accounts["owner"], strict=True))
    groups = dict(zip(accounts["account"], accounts["group"], strict=True))
    kinds = Counter[str]()
    for episode in episodes.itertuples():
        named = [a for a in str(episode.accounts).split(";") if a]
        if episode.kind not in ("spoofing", "wash_trading"):
            assert not named
            continue
        kinds[str(episode.kind)] += 1
        window = reports[
            (reports["symbol"] == episode.symbol)
            & (reports["ts"] >= episode.start)
            & (reports["ts"] <= episode.end)
            & reports["account"].isin(named)
        ]
        if episode.kind == "spoofing":
            assert len(named) == 1
            cancelled = window[window["exec_type"] == "canceled"]
            assert len(cancelled) and set(window["side"]) == {"BUY", "SELL"}  # layers pulled, genuine orders filled
            assert (window["exec_type"] == "trade").any()
        else:
            assert len(named) in (2, 3)
            tied = len({owners[a] for a in named}) == 1 or groups[named[0]] == groups[named[1]] is not None
            ring = len({owners[a] for a in named}) == len(named) and all(groups[a] is None for a in named)
            assert (tied and len(named) == 2) or ring
            traded = window[window["exec_type"] == "trade"]
            assert set(traded["side"]) == {"BUY", "SELL"} and not traded["displayed"].any()
            assert traded.groupby("side")["last_qty"].sum().nunique() == 1  # both sides of every print
    assert kinds["spoofing"] >= 2 and kinds["wash_trading"] >= 2


def test_genuine_large_orders_through_the_firm_are_ordinary_accounts_and_execute(session: SimOrderSession) -> None:
    reports, episodes = session.drop_copy_frame(), session.episodes_frame()
    manipulators = {a for cell in episodes["accounts"] for a in str(cell).split(";") if a}
    large = reports[(reports["exec_type"] == "new") & (reports["quantity"] >= reports["quantity"].quantile(0.99))]
    genuine = large[~large["account"].isin(manipulators)]
    assert len(genuine)
    filled = reports[(reports["exec_type"] == "trade") & reports["order_id"].isin(genuine["order_id"])]
    assert set(filled["order_id"]) & set(genuine["order_id"])


def test_the_diagnosis_counts_large_orders_and_each_spoofing_episodes_cycles(session: SimOrderSession) -> None:
    counts = large_orders(session)
    assert 0 < counts.large < counts.adds and counts.pulled_whole + counts.trimmed <= counts.large
    cycles = episode_cycles(session, session.simulation.config.start_ms)
    episodes = session.episodes_frame()
    assert len(cycles) == (episodes["kind"] == "spoofing").sum()
    assert {c.variant for c in cycles} <= {"short", "long"} and all(0 <= c.surprise <= 1 for c in cycles)


def test_quote_stuffers_burst_between_snapshots_and_name_their_accounts() -> None:
    """Bursts of small orders, each cancelled within half a second and before the next snapshot (the rebuilt books
    are still the simulator's), none executed; the episode names the stuffer's account; the simulator's records and
    the other episodes are those of the session without stuffers."""
    stuffed = generate_orders(CONFIG, SimOrdersConfig(firm_agents=1.0, quote_stuffing=True))
    assert_rebuilt(stuffed)
    episodes, reports = stuffed.episodes_frame(), stuffed.drop_copy_frame()
    stuffing = episodes[episodes["kind"] == str(AlertKind.QUOTE_STUFFING)]
    assert len(stuffing) >= 1
    for episode in stuffing.itertuples():
        mine = reports[(reports["symbol"] == episode.symbol) & (reports["account"] == episode.accounts)]
        placed = mine[mine["exec_type"] == "new"].groupby("order_id")["ts"].min()
        left = mine[mine["exec_type"] == "canceled"].groupby("order_id")["ts"].max()
        assert len(placed) >= 40 and not (mine["exec_type"] == "trade").any()
        assert ((left - placed).dropna() <= 1_000).all()
    others = episodes[episodes["kind"] != str(AlertKind.QUOTE_STUFFING)].reset_index(drop=True)
    plain = generate_orders(CONFIG, ALL_THROUGH)
    # a stuffer's account is a new owner's: the accounts created after it are numbered one later
    assert others.drop(columns="accounts").equals(plain.episodes_frame().drop(columns="accounts"))
    payloads = [[p for chunk in session.simulation.encoded() for p in chunk[2]] for session in (plain, stuffed)]
    assert payloads[0] == payloads[1]


def test_pumps_closes_and_meta_orders_through_the_firm_are_one_accounts_own_side_of_the_flow() -> None:
    """A pump's account buys the run-up and sells the dump, a close's account buys into the close, a meta-order's
    account trades one side only; each episode's label names the account, and the rebuilt books are the
    simulator's."""
    config = replace(
        CONFIG,
        symbols=3,
        minutes=60,
        rates={AlertKind.PUMP_AND_DUMP: 1.5, AlertKind.MARKING_THE_CLOSE: 1.0},
        lookalike_params=LookalikeParams(meta_rate=8, meta_s=(600.0, 900.0)),
    )
    session = generate_orders(config, ALL_THROUGH)
    assert_rebuilt(session)
    episodes, reports = session.episodes_frame(), session.drop_copy_frame()
    traded = reports[reports["exec_type"] == "trade"]
    driven = episodes[episodes["kind"].isin([str(AlertKind.PUMP_AND_DUMP), str(AlertKind.MARKING_THE_CLOSE)])]
    assert len(driven) >= 2
    for episode in driven.itertuples():
        named = str(episode.accounts).split(";")
        assert len(named) == 1 and named[0]
        mine = traded[(traded["symbol"] == episode.symbol) & (traded["account"] == named[0])]
        bought = mine.loc[mine["side"] == "BUY", "last_qty"].sum()
        assert bought > 0 and mine["ts"].between(int(str(episode.start)), int(str(episode.end))).all()
        if episode.kind == str(AlertKind.PUMP_AND_DUMP):
            assert (mine["side"] == "SELL").any()
    ordinary = {p.account for p in session.clients.ordinary}
    agents = traded[~traded["account"].isin(ordinary) & ~traded["account"].isin(driven["accounts"])]
    metas = session.lookalikes_frame()
    metas = metas[metas["kind"] == "meta_order"]
    assert len(metas) >= 1
    for meta in metas.itertuples():  # an institution's account: its child orders on one side, in the window
        mine = agents[
            (agents["symbol"] == meta.symbol) & agents["ts"].between(int(str(meta.start)), int(str(meta.end)))
        ]
        by_account = mine.groupby("account")["side"].agg(["nunique", "size"])
        assert ((by_account["nunique"] == 1) & (by_account["size"] >= 3)).any(), meta
