"""The order-book market's orders one by one: the same market with and without them, every order accounted for,
a market-by-order feed that rebuilds the market's own book, and a drop copy that covers the firm's clients only."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from tapewatch.detectors.orders.book import ASK, BID, OrderBook
from tapewatch.generators.lob_market import LobConfig, LobSession, Market, generate, run_symbol
from tapewatch.generators.order_ledger import Clients, ring_pair
from tapewatch.records import OrderBookEvent
from tests.order_feed import checked_feed
from tests.order_samples import firm_market

CONFIG = LobConfig(symbols=2, minutes=30, seed=5, quiet_open_s=600, news=False)


@pytest.fixture(scope="module")
def session() -> LobSession:
    return generate(replace(CONFIG, orders=True))


def test_the_market_is_the_same_with_its_orders(session: LobSession) -> None:
    plain = generate(CONFIG)
    assert plain.ticks_frame().equals(session.ticks_frame())
    assert plain.episodes_frame().equals(session.episodes_frame().drop(columns="accounts"))


def test_the_ledger_holds_what_the_market_holds_at_every_price() -> None:
    clients = Clients(np.random.default_rng(1))
    config = LobConfig(symbols=1, minutes=30, seed=9, quiet_open_s=300, news=False, orders=True)
    for index in range(2):
        market, _ = run_symbol(config, index, True, clients)
        assert market.ledger is not None
        for side, book in ((1, market.bids), (-1, market.asks)):
            prices = set(book) | set(market.own[side]) | {t for s, t in market.ledger.prices() if s == side}
            for tick in prices:
                assert market.ledger.resting(side, tick) == (book.get(tick, 0), market.own[side].get(tick, 0))


def replay(market: Market) -> tuple[OrderBook, Counter[str]]:
    ledger = market.ledger
    assert ledger is not None
    book, anomalies = OrderBook("contiguous"), Counter[str]()
    for sequence, (ts, action, order_id, side, tick, size, snapshot) in enumerate(ledger.events, start=1):
        event = OrderBookEvent(
            symbol="X",
            venue="sim",
            ts=ts,
            sequence=sequence,
            action=action,
            order_id=order_id or None,
            side=None if side == 0 else ("BUY" if side > 0 else "SELL"),
            price=None if tick < 0 else round(tick * ledger.tick_size, 10),
            size=float(size),
            snapshot=snapshot,
        )
        step = book.on_order(event)
        if step.anomaly is not None:
            anomalies[step.anomaly] += 1
    return book, anomalies


def test_the_market_by_order_feed_rebuilds_the_markets_book() -> None:
    clients = Clients(np.random.default_rng(2))
    config = LobConfig(symbols=1, minutes=30, seed=11, quiet_open_s=300, news=False, orders=True)
    for index in range(2):
        market, _ = run_symbol(config, index, True, clients)
        book, anomalies = replay(market)
        assert not anomalies
        tick = market.inst.tick
        assert book.top(BID) == [(round(k * tick, 10), float(s)) for k, s in market.top(1)]
        assert book.top(ASK) == [(round(k * tick, 10), float(s)) for k, s in market.top(-1)]


def test_every_event_and_report_is_a_valid_record(session: LobSession) -> None:
    orders, reports = checked_feed(session)
    read = [r.exec_id for symbol in session.tapes for r in session.execution_reports(symbol)]
    assert sorted(read) == sorted(reports["exec_id"])  # one id whichever way the drop copy is read
    for symbol, events in orders.groupby("symbol"):
        assert list(events["sequence"]) == list(range(1, len(events) + 1)), symbol
        assert events["action"].iloc[0] == "clear" and events["ts"].is_monotonic_increasing


def test_the_drop_copy_is_the_firms_clients_and_links_to_the_public_feed(session: LobSession) -> None:
    reports, orders, accounts = session.drop_copy_frame(), session.orders_frame(), session.accounts_frame()
    assert set(reports["account"]) <= set(accounts["account"])
    owners = dict(zip(accounts["account"], accounts["owner"], strict=True))
    assert all(owners[a] == o for a, o in zip(reports["account"], reports["owner"], strict=True))
    public = set(orders["order_id"].dropna())
    resting_fills = reports[
        (reports["exec_type"] == "trade") & (reports["order_kind"] == "limit") & reports["displayed"]
    ]
    assert set(resting_fills["order_id"]) <= public
    # the firm sees some orders, not all: the other firms' clients are only in the public feed
    firm_orders = set(reports["order_id"])
    added = set(orders.loc[orders["action"] == "add", "order_id"])
    assert 0.1 < len(added & firm_orders) / len(added) < 0.6


def test_a_wash_through_the_firm_shows_one_owner_on_both_sides() -> None:
    config = firm_market(6, symbols=3, minutes=25, clean_fraction=0.0, lookalikes=False)
    session = generate(config)
    episodes = session.episodes_frame()
    washes = episodes[episodes["kind"] == "wash_trading"]
    assert len(washes), "the seed must wash somewhere"
    reports, accounts = session.drop_copy_frame(), session.accounts_frame()
    groups = dict(zip(accounts["account"], accounts["group"], strict=True))
    for wash in washes.itertuples():
        pair = str(wash.accounts).split(";")
        assert len(pair) == 2
        owners = set(accounts.loc[accounts["account"].isin(pair), "owner"])
        assert len(owners) == 1 or (groups[pair[0]] is not None and groups[pair[0]] == groups[pair[1]])
        window = reports[
            (reports["ts"] >= wash.start) & (reports["ts"] <= wash.end) & (reports["symbol"] == wash.symbol)
        ]
        traded = window[(window["exec_type"] == "trade") & window["account"].isin(pair)]
        assert set(traded["side"]) == {"BUY", "SELL"} and not traded["displayed"].any()
        assert traded.groupby("side")["last_qty"].sum().nunique() == 1  # both sides of every print


def test_a_wash_traders_accounts_are_one_owners_linked_owners_or_a_ring_the_firm_does_not_know() -> None:
    rng = np.random.default_rng(4)
    clients = Clients(np.random.default_rng(3), owners=0)
    shapes = Counter[str]()
    for _ in range(400):
        accounts = clients.wash_accounts(rng)
        names = [p.account for p in accounts if p.account is not None]
        owners = {clients.accounts[a] for a in names}
        groups = {clients.groups.get(a) for a in names}
        if len(owners) == 1:
            shapes["one owner"] += len(names) == 2
        elif groups != {None}:
            shapes["linked"] += len(groups) == 1 and len(names) == 2
        else:
            shapes[f"ring of {len(names)}"] += len(owners) == len(names)
    assert sum(shapes.values()) == 400
    assert 250 < shapes["one owner"] < 310 and 40 < shapes["linked"] < 80
    assert 15 < shapes["ring of 2"] < 50 and 15 < shapes["ring of 3"] < 50


def test_a_ring_passes_the_position_round_and_a_pair_always_trades_between_its_two() -> None:
    clients = Clients(np.random.default_rng(3), owners=0)
    pair, ring = tuple(clients.new_owner(2)), tuple(p for _ in range(3) for p in clients.new_owner())
    assert {ring_pair(pair, n) for n in range(6)} == {pair}
    assert [ring_pair(ring, n) for n in range(3)] == [(ring[0], ring[1]), (ring[1], ring[2]), (ring[2], ring[0])]
