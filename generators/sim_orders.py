"""The labelled simulator's orders one by one: a market-by-order feed and a firm's drop copy drawn on top of a session
of :mod:`tapewatch.generators.simulator`, so that the order-level detectors are judged on a second generator.

The simulator models the book as queue sizes at each snapshot (its ``cadence_ms``) and shows its large orders (spoofing
layers, genuine large orders) as explicit resting orders on top of them. The feed turns that into orders, through the
order-book market's ledger (:class:`~tapewatch.generators.order_ledger.OrderLedger`: its ids, its reports, its
records), by these rules:

* **The book of the open**: each level's queue cut into orders of about the symbol's usual addition (a clear and one
  snapshot add per order, at the open).
* **Prints**, at their own millisecond, in the session's order; consecutive prints of one millisecond and side are one
  marketable order, which meets the orders resting at a price once (the simulator prints one print per order met). What
  the simulator takes from the level-1 queue executes the anonymous orders resting at its price in time priority (a
  trade and a fill per order met); what is left of it,
  and every print the queues do not model (a quote that walked inside the interval, an ignition's sweep, the auction),
  executed liquidity the book did not display (a trade no fill follows). A spoofer's genuine orders on the other side
  are placed at the first of their prints and filled by them (the simulator says whom these prints executed: they go
  before the anonymous queue at that price); a genuine large order is filled by its takers' prints; a wash pair's
  prints cross off the book (a trade no fill follows; both sides in the drop copy when the pair is the firm's).
* **The queues' changes**, at each snapshot's millisecond (the model knows a queue's size at snapshots only), after
  that interval's prints: the anonymous orders at a price that left the best five, or that the quote moved through,
  are cancelled; at each of the best five prices a size above what rests is one new order, a size below it cancels
  the newest orders there first (the last one partly).
* **Explicit orders** (``_RestingOrder``) are each one order with its own id: added at the first snapshot showing it
  (after the queues), cut back by a partial cancel when the simulator shows less of it than its fills left, cancelled
  at the first snapshot without it (or when the quote moves through its price).

So a book rebuilt from the events shows, at every snapshot's millisecond, the simulator's five levels (tested).

**Who**: the anonymous orders and the marketable ones are drawn like the order-book market's noise flow (a
``firm_share`` of them the firm's ordinary clients, some owners with several accounts); a ``firm_agents`` share of the
spoofing episodes trade through the firm (one new owner's account: its layers and its genuine orders), of the wash
episodes (one owner's two accounts, two linked owners' or a ring of unlinked owners', as :meth:`Clients.wash_accounts`
draws them), of the pumps and markings of the close (one new owner's account: the orders on its side of the flow the
episode drives, the simulator's :data:`~tapewatch.generators.simulator.AGENT_FLOW`), of the meta-orders (an
institution's account: its child orders) and of the genuine large orders (an ordinary client's account). The
episodes' labels name the firm's accounts (``accounts``, as the order-book market's); ignitions are the order flow's
(no account).

**Quote stuffers** (``SimOrdersConfig(quote_stuffing=True)``; on about half the manipulated symbols, beside their
episodes, a ``firm_agents`` share through the firm with a new owner's account): one to three bursts of 2–10 s, 5–30 s
apart, of 20–150 small orders a second (one to two lots) two to five prices behind the last snapshot's best, on one
side or both, each cancelled 5–500 ms after it rests and before the next snapshot (so a book rebuilt from the events
still shows the simulator's five levels at every snapshot), none executed; labelled ``quote_stuffing`` with their
account in :meth:`SimOrderSession.episodes_frame`.

Every draw comes from streams of the feed's own (spawn keys 4, (5, symbol), (6, symbol) and, for the quote stuffers,
(7, symbol)): the simulator's records are the same with and without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from tapewatch.generators.order_ledger import (
    OUTSIDE,
    Clients,
    LedgerOrder,
    OrderLedger,
    Participant,
    account_refs,
    accounts_frame,
    drop_copy_frame,
    execution_reports,
    order_events,
    orders_frame,
    ring_pair,
)
from tapewatch.generators.simulator import (
    AGENT_FLOW,
    LARGE_FILL,
    LOT_SHARES,
    SPOOF_FILL,
    WASH_PRINT,
    Built,
    Simulation,
    SimulationConfig,
    generate_built,
    index_to_price,
    queue_lots,
)
from tapewatch.generators.simulator import episodes_frame as truth_frame
from tapewatch.records import BOOK_DEPTH, AccountRef, AlertKind, Episode, ExecutionReport, OrderBookEvent

#: the firm's client book's stream, and each symbol's orders' (``(5, index)``): the simulator's own keys are 0–3
_CLIENTS_KEY: Final = 4
_ORDERS_KEY: Final = 5
#: each symbol's draws of which meta-orders go through the firm (``(6, index)``)
_INSTITUTIONS_KEY: Final = 6
#: each symbol's quote stuffer's stream is ``(7, index)``
_STUFFING_KEY: Final = 7
#: a quote stuffer at another firm (its orders apart from the other agents' there)
ELSEWHERE: Final = Participant(None, "stuffer")


@dataclass(frozen=True, slots=True)
class SimOrdersConfig:
    """Who trades through the firm: a share of the anonymous orders, and of the manipulators and large orders."""

    firm_share: float = 0.3
    firm_agents: float = 0.5
    #: the console tenant the firm's drop copy belongs to
    tenant: str = "firm"
    #: quote stuffers on about half the manipulated symbols (off: the sessions the earlier evaluations measured)
    quote_stuffing: bool = False


@dataclass(frozen=True)
class SimOrderSession:
    """A simulator session with its orders: the session's records unchanged, each symbol's ledger, the firm's
    clients, and each episode's accounts at the firm."""

    simulation: Simulation
    orders: SimOrdersConfig
    ledgers: dict[str, OrderLedger]
    clients: Clients
    #: (symbol, kind, start, end) → the episode's accounts at the firm, ";"-joined (empty: through other firms)
    accounts: dict[tuple[str, str, int, int], str] = field(default_factory=dict)
    #: the quote stuffers' episodes (the simulator does not know them)
    stuffing: list[Episode] = field(default_factory=list)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.ledgers)

    @property
    def venue(self) -> str:
        return self.simulation.config.venue

    @property
    def tenant(self) -> str:
        return self.orders.tenant

    def episodes_frame(self) -> pd.DataFrame:
        """The simulator's ground truth with ``accounts``: the firm's accounts of each episode (empty when it traded
        through other firms, or is not an order-level kind)."""
        frame = self.simulation.episodes_frame()
        if self.stuffing:
            extra = truth_frame(self.stuffing)
            if "variant" in frame.columns:
                extra["variant"] = ""
            frame = pd.concat([frame, extra], ignore_index=True)
        keys = zip(frame["symbol"], frame["kind"], frame["start"], frame["end"], strict=True)
        frame["accounts"] = [self.accounts.get((str(s), str(k), int(a), int(b)), "") for s, k, a, b in keys]
        return frame

    def lookalikes_frame(self) -> pd.DataFrame:
        return self.simulation.lookalikes_frame()

    def orders_frame(self) -> pd.DataFrame:
        return orders_frame(self.ledgers, self.venue)

    def order_events(self, symbol: str) -> Iterator[OrderBookEvent]:
        return order_events(self.ledgers[symbol], symbol, self.venue)

    def execution_reports(self, symbol: str) -> Iterator[ExecutionReport]:
        return execution_reports(self.ledgers[symbol], symbol, self.venue, self.tenant)

    def drop_copy_frame(self) -> pd.DataFrame:
        return drop_copy_frame(self.ledgers, self.venue, self.tenant)

    def accounts_frame(self) -> pd.DataFrame:
        return accounts_frame(self.clients)

    def account_refs(self) -> list[AccountRef]:
        return account_refs(self.clients, self.tenant, self.simulation.config.start_ms)


def generate_orders(config: SimulationConfig, orders: SimOrdersConfig | None = None) -> SimOrderSession:
    """The session of ``config`` (the same records as :func:`~tapewatch.generators.simulator.generate`) with its
    market-by-order feed and the firm's drop copy."""
    orders = orders or SimOrdersConfig()
    simulation, built = generate_built(config)
    clients = Clients(np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_CLIENTS_KEY,))))
    session = SimOrderSession(simulation, orders, {}, clients)
    for index, name in enumerate(simulation.symbols):
        rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_ORDERS_KEY, index)))
        ledger = OrderLedger(rng, clients, 0.0, orders.firm_share, ladder=index_to_price)
        feed = _SymbolFeed(config.start_ms, built, index, ledger)
        institutions = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_INSTITUTIONS_KEY, index)))
        feed.assign(orders.firm_agents, name, session.accounts, institutions)
        if orders.quote_stuffing and feed.sym.episodes:
            draws = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_STUFFING_KEY, index)))
            episode = feed.stuff(draws, orders.firm_agents, name, config.venue)
            if episode is not None:
                session.stuffing.append(episode)
                session.accounts[(name, str(episode.kind), episode.start, episode.end)] = feed.stuffer.account or ""
        feed.run()
        session.ledgers[name] = ledger
    return session


@dataclass(slots=True)
class _Explicit:
    """An explicit order of the simulator as the feed holds it: who, and its order in the ledger while it rests."""

    who: Participant
    order: LedgerOrder | None = None
    gone: bool = False


class _SymbolFeed:
    """One symbol's prints and queue changes through its ledger, snapshot step by snapshot step."""

    def __init__(self, start_ms: int, built: Built, index: int, ledger: OrderLedger) -> None:
        self.start, self.cad = start_ms, built.cadence_ms
        self.sym, self.trades = built.symbols[index], built.trades[index]
        self.lots = queue_lots(self.sym, built.queues[index])
        self.ledger = ledger
        self.explicit = [_Explicit(OUTSIDE) for _ in self.sym.resting]
        #: the spoofing episodes' and wash episodes' participants, by their window in steps
        self.spoofers: list[tuple[int, int, Participant]] = []
        #: whose the agent flow is (:data:`AGENT_FLOW`: pumps, marking the close, meta-orders), by its window
        self.drivers: list[tuple[int, int, Participant]] = []
        self.washers: list[tuple[int, int, tuple[Participant, ...]]] = []
        #: the quote stuffer's orders: (ts from the start, +1 place / -1 cancel, side, tick, size), in time order
        self.stuffer = OUTSIDE
        self.stuffed: list[tuple[int, int, int, int, int]] = []

    # --- who ----------------------------------------------------------------------------------------------------
    def assign(
        self,
        share: float,
        name: str,
        accounts: dict[tuple[str, str, int, int], str],
        institutions: np.random.Generator,
    ) -> None:
        """The firm's share of the spoofers, wash pairs, pumps, markings of the close, large orders and (drawn from
        ``institutions``) meta-orders; the episodes' accounts by their label."""
        rng, clients = self.ledger.rng, self.ledger.clients
        for kind, k0, k1, _ in sorted(self.sym.episodes, key=lambda e: (e[1], str(e[0]))):
            through = bool(rng.random() < share)
            key = (name, str(kind), self.start + k0 * self.cad, self.start + k1 * self.cad)
            if kind is AlertKind.SPOOFING:
                spoofer = clients.new_owner()[0] if through else OUTSIDE
                self.spoofers.append((k0, k1, spoofer))
                accounts[key] = spoofer.account or ""
            elif kind is AlertKind.WASH_TRADING:
                washers = clients.wash_accounts(rng) if through else (OUTSIDE, OUTSIDE)
                self.washers.append((k0, k1, washers))
                accounts[key] = ";".join(p.account for p in washers if p.account is not None)
            elif kind in (AlertKind.PUMP_AND_DUMP, AlertKind.MARKING_THE_CLOSE):
                driver = clients.new_owner()[0] if through else OUTSIDE
                self.drivers.append((k0, k1, driver))
                accounts[key] = driver.account or ""
        for look, k0, k1 in self.sym.lookalikes:
            if look == "meta_order":
                self.drivers.append((k0, k1, clients.new_owner()[0] if institutions.random() < share else OUTSIDE))
        for held, order in zip(self.explicit, self.sym.resting, strict=True):
            if order.kind == "spoofing":
                held.who = self._spoofer(order.k_from)
            elif rng.random() < share:
                held.who = clients.ordinary_client()

    def _spoofer(self, k: int) -> Participant:
        return next((who for k0, k1, who in self.spoofers if k0 <= k <= k1), OUTSIDE)

    def _driver(self, k: int) -> Participant:
        return next((who for k0, k1, who in self.drivers if k0 <= k <= k1), OUTSIDE)

    def _washers(self, k: int) -> tuple[Participant, ...]:
        return next((washers for k0, k1, washers in self.washers if k0 <= k <= k1), (OUTSIDE, OUTSIDE))

    def stuff(self, rng: np.random.Generator, share: float, name: str, venue: str) -> Episode | None:
        """A quote stuffer, one symbol in two: its orders (:attr:`stuffed`) and its episode (None: none here)."""
        if rng.random() >= 0.5:
            return None
        steps = len(self.lots)
        first, last = steps // 5, steps - 12 * 60_000 // self.cad
        if last <= first + 120_000 // self.cad:
            return None
        self.stuffer = self.ledger.clients.new_owner()[0] if rng.random() < share else ELSEWHERE
        t = int((first + rng.random() * (last - first)) * self.cad)
        both, one_side = bool(rng.random() < 0.5), 1 if rng.random() < 0.5 else -1
        orders: list[tuple[int, int, int, int, int]] = []
        for _ in range(1 + int(rng.random() * 3)):
            end, rate = t + int(2_000 + 8_000 * rng.random()), 20 + 130 * rng.random()
            while t < end:
                t += 1 + int(rng.exponential(1_000 / rate))
                if t % self.cad in (0, self.cad - 1):  # it rests at least a millisecond, between two snapshots
                    continue
                k = min(t // self.cad, steps - 1)  # the last snapshot before it
                side = (1 if rng.random() < 0.5 else -1) if both else one_side
                best = int(self.sym.bid[k]) if side > 0 else int(self.sym.ask[k])
                tick = best - side * (2 + int(rng.random() * 4))
                size = (1 + int(rng.random() * 2)) * LOT_SHARES
                gone = min(t + 5 + int(495 * rng.random()), (t // self.cad + 1) * self.cad - 1)
                orders += [(t, 1, side, tick, size), (gone, -1, side, tick, size)]
            t = end + int(5_000 + 25_000 * rng.random())
        self.stuffed = sorted(orders, key=lambda order: (order[0], order[1]))
        start, stop = self.start + self.stuffed[0][0], self.start + self.stuffed[-1][0]
        return Episode(symbol=name, venue=venue, kind=AlertKind.QUOTE_STUFFING, start=start, end=stop)

    # --- the session --------------------------------------------------------------------------------------------
    def run(self) -> None:
        self._open_book()
        steps = -(-self.trades.ts // self.cad)
        bounds = np.searchsorted(steps, np.arange(len(self.lots) + 1), side="left").tolist()
        stuffed = iter(self.stuffed)
        waiting = next(stuffed, None)
        for k in range(len(self.lots)):
            lo, hi = bounds[k], bounds[k + 1]
            while lo < hi:  # the prints, with the stuffer's orders of the interval before those after them
                while waiting is not None and waiting[0] < int(self.trades.ts[lo]):
                    self._stuffed(waiting)
                    waiting = next(stuffed, None)
                group = lo + 1
                while group < hi and self.trades.ts[group] == self.trades.ts[lo]:
                    group += 1
                self._prints(lo, group, k)
                lo = group
            while waiting is not None and waiting[0] < k * self.cad:
                self._stuffed(waiting)
                waiting = next(stuffed, None)
            self._reconcile(k)

    def _stuffed(self, order: tuple[int, int, int, int, int]) -> None:
        ts, what, side, tick, size = order
        if what > 0:
            self.ledger.rest(self.start + ts, True, side, tick, size, self.stuffer)
        else:
            self.ledger.cancel(self.start + ts, True, side, tick, size, self.stuffer)

    def _open_book(self) -> None:
        """The queues of the first snapshot, cut into orders of about the symbol's usual addition (published as the
        book of the open at the first live event)."""
        median = 2.5 * self.sym.xmin * LOT_SHARES
        for side, sign in ((0, 1), (1, -1)):
            for level, tick in enumerate(self._ticks(0, side)):
                self.ledger.seed(sign, tick, int(self.lots[0, side, level]) * LOT_SHARES, median)

    def _ticks(self, k: int, side: int) -> list[int]:
        """The best five prices of a side at step ``k`` (bid: best first, down; ask: best first, up)."""
        if side == 0:
            return [int(self.sym.bid[k]) - level for level in range(BOOK_DEPTH)]
        return [int(self.sym.ask[k]) + level for level in range(BOOK_DEPTH)]

    # --- prints -------------------------------------------------------------------------------------------------
    def _prints(self, lo: int, hi: int, k: int) -> None:
        t = self.trades
        i = lo
        while i < hi:
            j = i + 1
            while j < hi and t.ts[j] == t.ts[i] and t.side[j] == t.side[i] and t.tag[j] == t.tag[i]:
                j += 1
            self._order(i, j, k)
            i = j

    def _order(self, i: int, j: int, k: int) -> None:
        """Prints ``i``..``j`` (one millisecond, one side, one kind): one marketable order, a wash pair's crosses, or
        an auction's print. The simulator prints one print per resting order its order met; the ledger meets the
        orders resting at a price in one go (a trade and a fill each), so an order's prints are added up by price."""
        t, ledger = self.trades, self.ledger
        ts, side, tag = self.start + int(t.ts[i]), int(t.side[i]), int(t.tag[i])
        if tag == WASH_PRINT:
            washers = self._washers(k)
            for n in range(i, j):
                first, second = ring_pair(washers, n)
                buyer, seller = (first, second) if side > 0 else (second, first)
                ledger.cross(ts, True, side, int(t.px[n]), int(t.lots[n]) * LOT_SHARES, buyer, seller)
            return
        if side == 0:
            for n in range(i, j):
                ledger.hidden(ts, 0, int(t.px[n]), int(t.lots[n]) * LOT_SHARES)
            return
        if tag == SPOOF_FILL:
            size = int(t.lots[i:j].sum()) * LOT_SHARES
            ledger.rest(ts, True, -side, int(t.px[i]), size, self._spoofer(k))
        aggressor = self._driver(k) if tag == AGENT_FLOW else None
        ledger.begin_market(ts, True, side, int(t.lots[i:j].sum()) * LOT_SHARES, aggressor)
        for tick, size, hits in _by_price(t.px[i:j], t.lots[i:j], t.hits[i:j]):
            noise, agents = ledger.resting(-side, tick)
            if tag in (SPOOF_FILL, LARGE_FILL):
                take, from_noise = min(size, agents), 0
            else:
                take = from_noise = min(size, noise) if hits else 0
            if take:
                ledger.execute(ts, True, side, tick, from_noise, take - from_noise)
            if size > take:
                ledger.hidden(ts, side, tick, size - take)
        ledger.end_market(ts)

    # --- the queues and the explicit orders at a snapshot ---------------------------------------------------------
    def _reconcile(self, k: int) -> None:
        ts, ledger = self.start + k * self.cad, self.ledger
        self._explicit_leaving(k, ts)
        for side, sign in ((0, 1), (1, -1)):
            wanted = dict(zip(self._ticks(k, side), (int(x) * LOT_SHARES for x in self.lots[k, side]), strict=True))
            for key in sorted(key for key in ledger.noise if key[0] == sign and key[1] not in wanted):
                ledger.cancel(ts, True, sign, key[1], ledger.resting(sign, key[1])[0], None)
            for tick, want in wanted.items():
                have = ledger.resting(sign, tick)[0]
                if want > have:
                    ledger.rest(ts, True, sign, tick, want - have, None)
                elif want < have:
                    ledger.cancel(ts, True, sign, tick, have - want, None)
        self._explicit_shown(k, ts)

    def _level(self, k: int, side: int, price: int) -> int:
        return int(self.sym.bid[k]) - price if side == 0 else price - int(self.sym.ask[k])

    def _explicit_leaving(self, k: int, ts: int) -> None:
        """Explicit orders whose time is up, or whose price the quote moved through, are cancelled."""
        for held, order in zip(self.explicit, self.sym.resting, strict=True):
            resting = held.order
            if resting is None or held.gone or resting.size <= 0:
                continue
            if k >= order.k_to or self._level(k, order.side, order.price) < 0:
                self.ledger.cancel(ts, True, 1 - 2 * order.side, order.price, resting.size, held.who)
                held.gone = True

    def _explicit_shown(self, k: int, ts: int) -> None:
        """Explicit orders shown from this snapshot on are added; one shown smaller than its fills left is cut."""
        for held, order in zip(self.explicit, self.sym.resting, strict=True):
            if held.gone or not order.k_from <= k < order.k_to or self._level(k, order.side, order.price) < 0:
                continue
            sign, want = 1 - 2 * order.side, int(order.lots[k - order.k_from]) * LOT_SHARES
            if held.order is None:
                self.ledger.rest(ts, True, sign, order.price, want, held.who)
                held.order = self.ledger.agents[(sign, order.price)][-1]
            elif held.order.size > want:
                self.ledger.cancel(ts, True, sign, order.price, held.order.size - want, held.who)


def _by_price(
    px: npt.NDArray[np.int64], lots: npt.NDArray[np.int64], hits: npt.NDArray[np.bool_]
) -> list[tuple[int, int, bool]]:
    """An order's prints added up by price and by whether they took from the queue, in the order first printed:
    (tick, shares, took from the queue)."""
    sizes: dict[tuple[int, bool], int] = {}
    for tick, size, hit in zip(px.tolist(), lots.tolist(), hits.tolist(), strict=True):
        sizes[(tick, hit)] = sizes.get((tick, hit), 0) + size * LOT_SHARES
    return [(tick, size, hit) for (tick, hit), size in sizes.items()]
