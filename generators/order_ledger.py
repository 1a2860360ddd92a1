"""The order-book market's orders one by one, and who placed them: what a venue's market-by-order feed and a
broker's drop copy would publish of it.

The market (:mod:`tapewatch.generators.lob_market`) keeps each price's size; with ``LobConfig(orders=True)`` it also
tells this ledger every order it rests, cancels, executes or crosses, and the ledger keeps them by id in time
priority (at a price, the noise flow's orders before the agents', as the market fills them) and writes:

* the **market-by-order events** (add, cancel, trade, fill, clear): a trade per resting order an aggressor meets,
  followed by that order's fill; a cross off the book is a trade no fill follows; the book of the open is a clear
  and one snapshot add per resting order;
* the **firm's drop copy**: the execution reports (new, canceled, replaced, trade) of the orders of the firm's
  clients — some of the noise flow's orders (ordinary owners, some with several accounts) and the agents that trade
  through the firm; the others' orders are only in the public feed.

Its random draws (whose order an order is, how a seed level splits) come from streams of its own, so the market's
tapes are the same with and without it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from tapewatch.records import AccountRef, BookAction, ExecType, ExecutionReport, OrderBookEvent, OrderKind, OrderSide

#: a market-by-order event: (ts, action, order id or "", side (+1 buy, -1 sell, 0 none), tick (-1 none), size,
#: snapshot)
Event = tuple[int, str, str, int, int, int, bool]
#: a drop-copy report: (ts, exec type, order id, account, owner, side, order kind, displayed, limit tick (-1 none),
#: quantity, last quantity, last tick (-1 none), cumulative quantity, leaves quantity)
Report = tuple[int, str, str, str, str, int, str, bool, int, int, int, int, int, int]
#: a symbol's price ladder: tick indices → prices (a venue whose tick changes with the price band, as the simulator's)
Ladder = Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float64]]


@dataclass(frozen=True, slots=True)
class Participant:
    """Whose an order is: a firm's client ``account`` and its beneficial ``owner``, or (account None) someone at
    another firm, whom only the public feed shows."""

    account: str | None = None
    owner: str | None = None

    @property
    def at_firm(self) -> bool:
        return self.account is not None


OUTSIDE: Final = Participant()
#: not the acting agent but someone of the noise flow (drawn like a noise order's participant): the taker that
#: executes a genuine large order
ANYONE: Final = Participant(None, "anyone")


class Clients:
    """The firm's client book: ordinary owners with one to three accounts each (70 %, 20 %, 10 %), and new owners
    and accounts for the agents that trade through the firm. Account and owner names say nothing of who they are."""

    def __init__(self, rng: np.random.Generator, owners: int = 150) -> None:
        self.rng = rng
        self.accounts: dict[str, str] = {}  # account → owner
        self.groups: dict[str, str] = {}  # account → linked-account group, where the firm knows one
        self._owners = 0
        self.ordinary = [
            a for _ in range(owners) for a in self.new_owner(int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1])))
        ]

    def new_owner(self, accounts: int = 1) -> list[Participant]:
        self._owners += 1
        owner = f"O{self._owners:05d}"
        made = []
        for _ in range(accounts):
            account = f"A{len(self.accounts) + 1:06d}"
            self.accounts[account] = owner
            made.append(Participant(account, owner))
        return made

    def linked(self, first: Participant, second: Participant) -> None:
        """Record that two accounts of different owners act together (a group the firm's onboarding found)."""
        group = f"G{len(set(self.groups.values())) + 1:04d}"
        for p in (first, second):
            if p.account is not None:
                self.groups[p.account] = group

    def wash_accounts(self, rng: np.random.Generator) -> tuple[Participant, ...]:
        """A wash trader's accounts: one new owner's two (seven times in ten), two new owners' the firm knows to be
        linked (15 %), or a collusive ring the firm knows nothing of: two new owners' accounts (8 %) or three's
        (7 %)."""
        draw = rng.random()
        if draw < 0.7:
            return tuple(self.new_owner(2))
        if draw < 0.85:
            first, second = self.new_owner()[0], self.new_owner()[0]
            self.linked(first, second)
            return first, second
        return tuple(self.new_owner()[0] for _ in range(2 if draw < 0.93 else 3))

    def ordinary_client(self) -> Participant:
        return self.ordinary[int(self.rng.integers(len(self.ordinary)))]


def ring_pair(accounts: tuple[Participant, ...], n: int) -> tuple[Participant, Participant]:
    """The two of a wash trader's accounts that make its ``n``-th print: a pair always the same two, a ring of three
    or more each neighbour in turn (the position goes round)."""
    if len(accounts) <= 2:
        return accounts[0], accounts[-1]
    return accounts[n % len(accounts)], accounts[(n + 1) % len(accounts)]


@dataclass(slots=True)
class LedgerOrder:
    order_id: str
    side: int
    tick: int
    size: int
    who: Participant
    quantity: int = 0
    filled: int = 0
    reports: int = 0


@dataclass(slots=True)
class OrderLedger:
    """One symbol's resting orders by id, and what the market-by-order feed and the drop copy publish of them."""

    rng: np.random.Generator
    clients: Clients
    #: the price of one tick
    tick_size: float
    #: the share of the noise flow's orders that are the firm's ordinary clients'
    firm_share: float = 0.3
    #: the symbol's price ladder when one tick is not one price step everywhere (None: ``tick × tick_size``)
    ladder: Ladder | None = None
    noise: dict[tuple[int, int], deque[LedgerOrder]] = field(default_factory=dict)
    agents: dict[tuple[int, int], deque[LedgerOrder]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    opened: bool = False
    next_id: int = 1
    #: the marketable order being executed, when it is a firm client's
    taker: LedgerOrder | None = None

    # --- what the market tells ---------------------------------------------------------------------------------
    def rest(self, ts: int, live: bool, side: int, tick: int, size: int, who: Participant | None) -> None:
        """An order rests: the noise flow's (``who`` None: drawn from the firm's clients or outside) or an agent's."""
        self._open(ts, live)
        order = self._order(side, tick, size, who if who is not None else self._noise_participant())
        queues = self.noise if who is None else self.agents
        queues.setdefault((side, tick), deque()).append(order)
        if live:
            self.events.append((ts, "add", order.order_id, side, tick, size, False))
            self._report(ts, order, "new")

    def seed(self, side: int, tick: int, size: int, median: float) -> None:
        """A level of the book before the session: orders of about ``median`` each, the noise flow's."""
        while size > 0:
            piece = min(size, max(1, round(median * float(np.exp(0.9 * self.rng.standard_normal())))))
            self.rest(0, False, side, tick, piece, None)
            size -= piece

    def cancel(self, ts: int, live: bool, side: int, tick: int, size: int, agent: Participant | None) -> None:
        """``size`` leaves the price: the noise flow's orders there (``agent`` None), newest first; or the acting
        agent's, newest first, then (when the market took more) other agents' there."""
        self._open(ts, live)
        if agent is None:
            self._take_back(ts, live, self.noise, (side, tick), size, None)
            return
        left = self._take_back(ts, live, self.agents, (side, tick), size, agent)
        self._take_back(ts, live, self.agents, (side, tick), left, None)

    def begin_market(self, ts: int, live: bool, side: int, size: int, aggressor: Participant | None) -> None:
        """A marketable order of ``size`` arrives (the noise flow's when ``aggressor`` is None)."""
        self._open(ts, live)
        taker = aggressor if aggressor is not None else self._noise_participant()
        self.taker = self._order(side, -1, size, taker) if taker.at_firm and live else None
        if self.taker is not None:
            self._report(ts, self.taker, "new", kind="market")

    def execute(self, ts: int, live: bool, side: int, tick: int, noise: int, agents: int) -> None:
        """The marketable order takes ``noise`` from the noise flow's orders at ``tick``, then ``agents`` from the
        agents': a trade and a fill per resting order met."""
        for book, wanted in ((self.noise, noise), (self.agents, agents)):
            queue, left = book.get((-side, tick)), wanted
            while left > 0 and queue:
                order = queue[0]
                take = min(left, order.size)
                order.size -= take
                order.filled += take
                left -= take
                if order.size == 0:
                    queue.popleft()
                if live:
                    self.events.append((ts, "trade", "", side, tick, take, False))
                    self.events.append((ts, "fill", order.order_id, -side, tick, take, False))
                    self._report(ts, order, "trade", take, tick)
                    self._taker_fill(ts, tick, take)
            if queue is not None and not queue:
                del book[(-side, tick)]

    def end_market(self, ts: int) -> None:
        """What the marketable order did not fill is cancelled."""
        taker, self.taker = self.taker, None
        if taker is not None and taker.size > 0:
            self._report(ts, taker, "canceled", kind="market")

    def cross(
        self, ts: int, live: bool, side: int, tick: int, size: int, buyer: Participant, seller: Participant
    ) -> None:
        """A print between two accounts off the book (reported to the tape): a trade no fill follows; the drop copy
        has both sides' executions when they are the firm's."""
        self._open(ts, live)
        if not live:
            return
        self.events.append((ts, "trade", "", side, tick, size, False))
        for who, sign in ((buyer, 1), (seller, -1)):
            if who.at_firm:
                order = self._order(sign, tick, size, who)
                self._report(ts, order, "new", displayed=False)
                order.filled = size
                self._report(ts, order, "trade", size, tick, displayed=False)

    # --- what the market asks ----------------------------------------------------------------------------------
    def resting(self, side: int, tick: int) -> tuple[int, int]:
        """(noise flow's, agents') size resting at the price."""
        noise, agents = self.noise.get((side, tick), ()), self.agents.get((side, tick), ())
        return sum(o.size for o in noise), sum(o.size for o in agents)

    def prices(self) -> Iterator[tuple[int, int]]:
        yield from {*self.noise, *self.agents}

    def price(self, tick: int) -> float | None:
        """A tick's price (None for no tick, -1)."""
        if tick < 0:
            return None
        if self.ladder is not None:
            return float(self.ladder(np.array([tick], dtype=np.int64))[0])
        return round(tick * self.tick_size, 10)

    def price_array(self, ticks: pd.Series) -> npt.NDArray[np.float64]:
        """The prices of a column of ticks (NaN for no tick)."""
        values = ticks.to_numpy(dtype=np.int64)
        if self.ladder is not None:
            return np.where(values >= 0, self.ladder(np.maximum(values, 0)), np.nan)
        return np.where(values >= 0, (ticks * self.tick_size).round(10), np.nan)

    def hidden(self, ts: int, side: int, tick: int, size: int) -> None:
        """A print against liquidity the book did not display (or an auction's, ``side`` 0): a trade no fill
        follows; the marketable order being executed, when it is a firm client's, is filled by it."""
        self._open(ts, True)
        self.events.append((ts, "trade", "", side, tick, size, False))
        self._taker_fill(ts, tick, size)

    # --- inside -------------------------------------------------------------------------------------------------
    def _order(self, side: int, tick: int, size: int, who: Participant) -> LedgerOrder:
        order = LedgerOrder(str(self.next_id), side, tick, size, who, quantity=size)
        self.next_id += 1
        return order

    def _noise_participant(self) -> Participant:
        return self.clients.ordinary_client() if self.rng.random() < self.firm_share else OUTSIDE

    def _take_back(
        self,
        ts: int,
        live: bool,
        book: dict[tuple[int, int], deque[LedgerOrder]],
        key: tuple[int, int],
        size: int,
        only: Participant | None,
    ) -> int:
        """Cancel ``size`` from the back of the queue at ``key`` (``only`` that participant's orders); what could
        not be."""
        queue = book.get(key)
        if not queue or size <= 0:
            return size
        for order in reversed(list(queue)):
            if size <= 0:
                break
            if only is not None and order.who != only:
                continue
            take = min(size, order.size)
            order.size -= take
            size -= take
            if order.size == 0:
                queue.remove(order)
            if live:
                self.events.append((ts, "cancel", order.order_id, order.side, order.tick, take, False))
                order.quantity = order.filled + order.size if order.size else order.quantity
                self._report(ts, order, "canceled" if order.size == 0 else "replaced")
        if not queue:
            del book[key]
        return size

    def _open(self, ts: int, live: bool) -> None:
        """The book of the open, once, before the first live event: a clear and each resting order."""
        if self.opened or not live:
            return
        self.opened = True
        self.events.append((ts, "clear", "", 0, -1, 0, False))
        resting = [o for book in (self.noise, self.agents) for q in book.values() for o in q]
        for order in sorted(resting, key=lambda o: int(o.order_id)):
            self.events.append((ts, "add", order.order_id, order.side, order.tick, order.size, True))
            self._report(ts, order, "new")

    def _report(
        self,
        ts: int,
        order: LedgerOrder,
        exec_type: str,
        last: int = 0,
        last_tick: int = -1,
        kind: str = "limit",
        displayed: bool = True,
    ) -> None:
        who = order.who
        if who.account is None:
            return
        order.reports += 1
        leaves = 0 if exec_type == "canceled" else order.size
        self.reports.append(
            (ts, exec_type, order.order_id, who.account, who.owner or "", order.side, kind, displayed,
             order.tick if kind == "limit" else -1, order.quantity, last, last_tick, order.filled, leaves)
        )  # fmt: skip

    def _taker_fill(self, ts: int, tick: int, size: int) -> None:
        taker = self.taker
        if taker is None:
            return
        taker.filled += size
        taker.size = max(0, taker.size - size)
        self._report(ts, taker, "trade", size, tick, kind="market")


# --- what is published ----------------------------------------------------------------------------------------------
#: the market-by-order feed's columns (:class:`tapewatch.records.OrderBookEvent`'s fields) and the drop copy's
#: (:class:`tapewatch.records.ExecutionReport`'s, ``order_kind`` and ``displayed`` included)
ORDER_COLUMNS: Final = ("symbol", "venue", "ts", "sequence", "action", "order_id", "side", "price", "size", "snapshot")
REPORT_COLUMNS: Final = (
    "symbol",
    "venue",
    "tenant",
    "ts",
    "exec_type",
    "order_id",
    "account",
    "owner",
    "side",
    "order_kind",
    "displayed",
    "price",
    "quantity",
    "last_qty",
    "last_price",
    "cum_qty",
    "leaves_qty",
    "exec_id",
)
EVENT_COLUMNS: Final = ("ts", "action", "order_id", "side", "tick", "size", "snapshot")
_SIDES: Final = {1: OrderSide.BUY, -1: OrderSide.SELL, 0: None}


def exec_id(symbol: str, n: int) -> str:
    """The ``n``-th execution report of a symbol's drop copy: one id whichever way the drop copy is read."""
    return f"{symbol}-E{n:08d}"


def orders_frame_of(ledger: OrderLedger, symbol: str, venue: str) -> pd.DataFrame:
    """One symbol's market-by-order feed (:data:`ORDER_COLUMNS`), in its order, numbered from 1 (``sequence``)."""
    frame = pd.DataFrame(ledger.events, columns=list(EVENT_COLUMNS))
    frame["price"] = ledger.price_array(frame["tick"])
    frame["side"] = frame["side"].map({1: "BUY", -1: "SELL", 0: None})
    frame["order_id"] = frame["order_id"].replace("", None)
    frame["sequence"] = np.arange(1, len(frame) + 1)
    frame = frame.assign(symbol=symbol, venue=venue, size=frame["size"].astype(float))
    return frame[list(ORDER_COLUMNS)]


def orders_frame(ledgers: Mapping[str, OrderLedger], venue: str) -> pd.DataFrame:
    """Every symbol's market-by-order feed, each numbered one after the other, in time order across symbols."""
    frames = [orders_frame_of(ledger, symbol, venue) for symbol, ledger in ledgers.items()]
    merged = pd.concat(frames, ignore_index=True).sort_values(["ts"], kind="stable").reset_index(drop=True)
    return merged[list(ORDER_COLUMNS)]


def order_events(ledger: OrderLedger, symbol: str, venue: str) -> Iterator[OrderBookEvent]:
    """One symbol's market-by-order feed as records (built from the market's own state, so not validated again:
    the generators' tests validate every one)."""
    prices: dict[int, float | None] = {}
    for sequence, (ts, action, order_id, side, tick, size, snapshot) in enumerate(ledger.events, start=1):
        price = prices.get(tick)
        if price is None and tick not in prices:
            price = prices[tick] = ledger.price(tick)
        yield OrderBookEvent.model_construct(
            symbol=symbol,
            venue=venue,
            ts=ts,
            sequence=sequence,
            action=BookAction(action),
            order_id=order_id or None,
            side=_SIDES[side],
            price=price,
            size=float(size),
            snapshot=snapshot,
        )


def execution_reports(ledger: OrderLedger, symbol: str, venue: str, tenant: str) -> Iterator[ExecutionReport]:
    """One symbol's drop copy as records, in time order (not validated again, as :func:`order_events`)."""
    for n, report in enumerate(ledger.reports, start=1):
        ts, exec_type, order_id, account, owner, sign, kind, displayed, tick, qty, last, last_tick, cum, left = report
        yield ExecutionReport.model_construct(
            symbol=symbol,
            venue=venue,
            ts=ts,
            exec_id=exec_id(symbol, n),
            order_id=order_id,
            client_order_id=None,
            tenant=tenant,
            account=account,
            trader=None,
            owner=owner or None,
            exec_type=ExecType(exec_type),
            side=OrderSide.BUY if sign > 0 else OrderSide.SELL,
            order_kind=OrderKind(kind),
            displayed=displayed,
            price=ledger.price(tick),
            quantity=float(qty),
            last_qty=float(last),
            last_price=ledger.price(last_tick),
            cum_qty=float(cum),
            leaves_qty=float(left),
        )


def drop_copy_frame(ledgers: Mapping[str, OrderLedger], venue: str, tenant: str) -> pd.DataFrame:
    """The firm's execution reports (:data:`REPORT_COLUMNS`), in time order across symbols."""
    frames = []
    for symbol, ledger in ledgers.items():
        frame = pd.DataFrame(ledger.reports, columns=list(REPORT_COLUMNS[3:-1]))  # what the ledger keeps
        for column in ("price", "last_price"):
            frame[column] = ledger.price_array(frame[column])
        frame["side"] = frame["side"].map({1: "BUY", -1: "SELL"})
        frame["exec_id"] = [exec_id(symbol, n) for n in range(1, len(frame) + 1)]
        frames.append(frame.assign(symbol=symbol, venue=venue, tenant=tenant))
    merged = pd.concat(frames, ignore_index=True).sort_values(["ts"], kind="stable").reset_index(drop=True)
    return merged[list(REPORT_COLUMNS)]


def accounts_frame(clients: Clients) -> pd.DataFrame:
    """The firm's reference data: each account's beneficial owner, and its linked-account group if any."""
    accounts = sorted(clients.accounts)
    return pd.DataFrame(
        {
            "account": accounts,
            "owner": [clients.accounts[a] for a in accounts],
            "group": [clients.groups.get(a) for a in accounts],
        }
    )


def account_refs(clients: Clients, tenant: str, ts: int) -> list[AccountRef]:
    """The firm's reference data as its tenant's ``ref.accounts`` records, set at ``ts``."""
    return [
        AccountRef(tenant=tenant, account=a, owner=clients.accounts[a], group=clients.groups.get(a), ts=ts)
        for a in sorted(clients.accounts)
    ]
