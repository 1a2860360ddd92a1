"""Decisions → target positions → limit orders on the venue's grid, filled by the paper exchange, booked by
each account's ledger: the whole paper trader, driven by records in event-time order.

Time is the inputs' event time, never the wall clock, so the same inputs give the same orders, fills and
portfolio however often they are replayed. A decision at ``ts`` (a bar's end) becomes an order resting from
``ts + latency_ms``; orders live ``ttl_ms``; once a minute of event time the executor marks each account, starts
new trading days, and takes intraday accounts flat before their venue's close.

Every input either changes the state and yields records (orders, fills, portfolio snapshots) or is refused
with a reason (:class:`InputRefusedError`) that the worker dead-letters: an unknown symbol, a symbol without a book or a
tick size, an absurd position, a decision after the close.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from tapewatch.execution.accounts import AccountConfig
from tapewatch.execution.decisions import Decision, decision_of
from tapewatch.execution.exchange import Exchange, Execution, PaperExchange, WorkingOrder
from tapewatch.execution.grid import TickRules, VenueRules
from tapewatch.execution.portfolio import Ledger, venue_costs
from tapewatch.execution.queue_model import Resting
from tapewatch.feeds import FeedProfiles
from tapewatch.records import Action, Book, Fill, Forecast, Liquidity, Order, OrderEvent, Quote, Record

MINUTE_MS: Final = 60_000
DAY_MS: Final = 86_400_000
Input = Quote | Book | Action | Forecast


class InputRefusedError(Exception):
    """An input the executor will not act on; the worker dead-letters it with this reason."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.field = reason, field


@dataclass(slots=True)
class Market:
    """What the tape last said of a symbol."""

    venue: str
    bids: list[list[float]] = field(default_factory=list)
    asks: list[list[float]] = field(default_factory=list)
    last: float | None = None

    def mid(self) -> float | None:
        if self.bids and self.asks:
            return (self.bids[0][0] + self.asks[0][0]) / 2.0
        return self.last


class PaperExecutor:
    """The paper trader's state and rules; :meth:`apply` one input at a time, in event-time order."""

    def __init__(
        self,
        accounts: Sequence[AccountConfig],
        rules: VenueRules,
        feeds: FeedProfiles,
        exchange: Callable[[list[dict[str, Any]]], Exchange] = PaperExchange.from_state,
    ) -> None:
        """``exchange`` makes the venue from the working orders of a checkpoint (none at the start): the paper
        exchange, or a live adapter of the same :class:`~tapewatch.execution.exchange.Exchange` seam."""
        self.accounts = {a.name: a for a in accounts}
        self.rules, self.feeds = rules, feeds
        self.now = 0
        self.minute = -1
        self.ledgers = {a.name: Ledger.open(a.name, a.capital) for a in accounts}
        self.market: dict[str, Market] = {}
        self._make_exchange = exchange
        self.exchange = exchange([])
        #: "account|symbol" → target units, and → the number of the next order
        self.targets: dict[str, int] = {}
        self.numbers: dict[str, int] = {}
        #: (expiry ts, client order id): the time-to-live heap (cancelled orders are skipped when popped)
        self.expiry: list[tuple[int, str]] = []
        #: "account|venue" → the local day it last went flat before the close
        self.flat_day: dict[str, int] = {}
        self.out: list[Record] = []

    # -- inputs ------------------------------------------------------------------------------------------
    def apply(self, record: Input) -> list[Record]:
        """Apply one input at its event time; the records it produced (:class:`InputRefusedError` when refused)."""
        self.out = []
        if isinstance(record, Action | Forecast) and record.ts < self.now:
            raise InputRefusedError(f"late: a decision at {record.ts} reached the executor at {self.now}", "ts")
        self.advance(record.ts)
        if isinstance(record, Quote):
            self._on_quote(record)
        elif isinstance(record, Book):
            self._on_book(record)
        else:
            try:
                decision = decision_of(record)
            except ValueError as exc:
                raise InputRefusedError(str(exc), "position") from None
            self._on_decision(decision, record)
        return self.out

    def advance(self, ts: int) -> None:
        """Event time moves on to ``ts`` (never back): expiries, then the minute's work when one ended."""
        if ts <= self.now:
            return
        self.now = ts
        while self.expiry and self.expiry[0][0] <= ts:
            expires, order_id = heapq.heappop(self.expiry)
            self._cancel(order_id, expires, "time to live ran out")
        minute = ts // MINUTE_MS
        if minute != self.minute:
            boundary = minute * MINUTE_MS
            if self.minute >= 0:
                self._new_minute(boundary)
            else:
                self._start_days(ts)
            self.minute = minute

    def _on_quote(self, quote: Quote) -> None:
        market = self._market(quote.symbol, quote.venue)
        if quote.price is None:
            return
        market.last = quote.price
        if quote.size > 0:
            for execution in self.exchange.on_print(quote.symbol, quote.ts, quote.price, quote.size):
                self._book_fill(execution)
        self._mark(quote.symbol, quote.venue, quote.price)

    def _on_book(self, book: Book) -> None:
        market = self._market(book.symbol, book.venue)
        market.bids = [[p, s] for p, s in book.bids]
        market.asks = [[p, s] for p, s in book.asks]
        self.exchange.on_book(book.symbol, market.bids, market.asks)

    def _market(self, symbol: str, venue: str) -> Market:
        market = self.market.get(symbol)
        if market is None:
            market = self.market[symbol] = Market(venue)
        return market

    # -- decisions ---------------------------------------------------------------------------------------
    def _on_decision(self, decision: Decision, record: Action | Forecast) -> None:
        followers = [a for a in self.accounts.values() if a.follows(decision.signal, record.venue)]
        if not followers:
            return
        market, rules = self._tradable(record)
        for account in followers:
            self._decide(account, decision, record.symbol, market, rules)

    def _tradable(self, record: Action | Forecast) -> tuple[Market, TickRules]:
        """The symbol's market and grid, or :class:`InputRefusedError` saying why it cannot be traded now."""
        market = self.market.get(record.symbol)
        if market is None:
            raise InputRefusedError(f"unknown symbol {record.symbol!r}: no quote or book seen for it", "symbol")
        rules = self.rules(record.venue, record.symbol)
        if rules is None:
            raise InputRefusedError(
                f"no tick size for {record.venue}:{record.symbol}: no order without the venue's grid", "symbol"
            )
        if venue_costs(record.venue) is None:
            raise InputRefusedError(f"no cost preset for venue {record.venue!r}", "venue")
        if not market.bids and not market.asks:
            raise InputRefusedError(f"missing book: no bids or asks seen for {record.symbol}", "symbol")
        close = self._close_ms(record.venue)
        if close is not None and self._time_of_day(record.ts, record.venue) > close:
            raise InputRefusedError(
                f"after the close: the decision at {record.ts} came after {record.venue}'s close", "ts"
            )
        return market, rules

    def _decide(
        self, account: AccountConfig, decision: Decision, symbol: str, market: Market, rules: TickRules
    ) -> None:
        key = f"{account.name}|{symbol}"
        target = decision.target(account, self.targets.get(key, 0))
        self.targets[key] = target
        reference = market.mid()
        if reference is None or self._closing(account, market.venue, decision.ts):
            return  # no price to size with, or the account is going flat for the close
        unit = rules.lots(account.unit_value / reference)
        if unit <= 0 and target > 0:
            price = self._price(account.pricing, "BUY", market, rules)
            why = f"one unit ({account.unit_value:,.0f}) buys less than a lot of {rules.lot:g} at {reference:g}"
            self._reject(account, decision, symbol, market, price, rules.lot, why)
            return
        wanted = unit * target
        held = self.ledgers[account.name].held(symbol)
        working = self.exchange.working(account.name, symbol)
        net = held + sum(o.resting.remaining * (1 if o.side == "BUY" else -1) for o in working)
        if abs(wanted - net) <= 0.25 * unit and not (wanted == 0 and net > 0):
            return  # already there, or on the way: keep the queue place
        for order in working:
            self._cancel(order.client_order_id, decision.ts, "the signal changed")
        if wanted > held:
            self._buy(account, decision, symbol, market, rules, wanted - held)
        elif held > wanted:
            self._place(account, decision, symbol, market, rules, "SELL", held - wanted)

    def _buy(
        self, account: AccountConfig, decision: Decision, symbol: str, market: Market, rules: TickRules, want: float
    ) -> None:
        """A buy within the account's limits: halted, gross exposure, cash, lot and minimum value."""
        ledger, price = self.ledgers[account.name], self._price(account.pricing, "BUY", market, rules)
        open_buys = sum(
            o.resting.remaining * o.resting.price
            for o in self.exchange.all_working()
            if o.account == account.name and o.side == "BUY"
        )
        fee = 1.0 + venue_costs(market.venue).normal.buy_commission  # type: ignore[union-attr]
        room = min(account.max_gross - ledger.gross() - open_buys, (ledger.cash - open_buys) / fee)
        quantity = rules.lots(min(want, max(0.0, room) / price))
        reason = ""
        if ledger.halted:
            reason = "kill switch: the day's loss limit was hit"
        elif quantity <= 0:
            reason = "max gross exposure or cash: no room for one lot"
        elif not rules.notional_ok(quantity, price):
            reason = "below the venue's minimum order value"
        if reason:
            self._reject(account, decision, symbol, market, price, want, reason)
            return
        self._place(account, decision, symbol, market, rules, "BUY", quantity)

    def _price(self, pricing: str, side: str, market: Market, rules: TickRules) -> float:
        best_bid = market.bids[0][0] if market.bids else None
        best_ask = market.asks[0][0] if market.asks else None
        near, far = (best_bid, best_ask) if side == "BUY" else (best_ask, best_bid)
        if pricing == "cross":
            price = far if far is not None else near
        elif pricing == "mid" and best_bid is not None and best_ask is not None:
            price = (best_bid + best_ask) / 2.0
        else:
            price = near if near is not None else far
        assert price is not None  # _tradable saw a book
        return rules.floor_price(price) if side == "BUY" else rules.ceil_price(price)

    # -- orders ------------------------------------------------------------------------------------------
    def _place(
        self,
        account: AccountConfig,
        decision: Decision,
        symbol: str,
        market: Market,
        rules: TickRules,
        side: str,
        quantity: float,
        pricing: str | None = None,
    ) -> None:
        """A limit order resting from the decision's time plus the account's latency; the executor's own
        orders (``pricing`` given: flat for the close or the kill switch) rest at once."""
        price = self._price(pricing or account.pricing, side, market, rules)
        start = self.now if pricing else max(decision.ts + account.latency_ms, self.now)
        order = WorkingOrder(
            client_order_id=self._order_id(account.name, symbol, decision.ts),
            account=account.name,
            symbol=symbol,
            venue=market.venue,
            resting=Resting(side, price, quantity),
            placed_ts=start,
            expires_ts=start + account.ttl_ms,
            taker=False,
            signal_model=decision.signal,
            signal_version=decision.version,
            signal_ts=decision.ts,
            decision_price=market.mid(),
        )
        self.exchange.place(order, market.bids, market.asks)
        heapq.heappush(self.expiry, (order.expires_ts, order.client_order_id))
        self.out.append(self._order_record(order, OrderEvent.PLACED, start))

    def _order_id(self, account: str, symbol: str, ts: int) -> str:
        """``<account>-<symbol>-<decision ts>-<n>``: made from the inputs alone, so a replay makes the same ids."""
        key = f"{account}|{symbol}"
        number = self.numbers.get(key, 0)
        self.numbers[key] = number + 1
        return f"{account}-{symbol}-{ts}-{number}"

    def _reject(
        self,
        account: AccountConfig,
        decision: Decision,
        symbol: str,
        market: Market,
        price: float,
        want: float,
        why: str,
    ) -> None:
        order = WorkingOrder(
            self._order_id(account.name, symbol, decision.ts), account.name, symbol, market.venue,
            Resting("BUY", price, max(want, 1e-9)), self.now, self.now, False, decision.signal, decision.version,
            decision.ts, market.mid(),
        )  # fmt: skip
        self.out.append(self._order_record(order, OrderEvent.REJECTED, self.now, why))

    def _cancel(self, order_id: str, ts: int, reason: str) -> None:
        order = self.exchange.cancel(order_id)
        if order is None:
            return  # filled, or cancelled before
        order.revision += 1
        self.out.append(self._order_record(order, OrderEvent.CANCELLED, max(ts, order.placed_ts), reason))

    def _order_record(self, order: WorkingOrder, event: OrderEvent, ts: int, reason: str = "") -> Order:
        resting = order.resting
        return Order(
            symbol=order.symbol,
            venue=order.venue,
            ts=ts,
            account=order.account,
            client_order_id=order.client_order_id,
            revision=order.revision,
            event=event,
            side=resting.side,
            price=resting.price,
            quantity=resting.quantity,
            filled=resting.filled,
            average_price=order.average_price(),
            queue_ahead=resting.queue_ahead,
            reason=reason,
            signal_model=order.signal_model,
            signal_version=order.signal_version,
            signal_ts=order.signal_ts,
            decision_price=order.decision_price,
        )

    # -- fills and marks ---------------------------------------------------------------------------------
    def _book_fill(self, execution: Execution) -> None:
        order = execution.order
        ledger = self.ledgers[order.account]
        costs = venue_costs(order.venue)
        assert costs is not None  # only venues with costs get orders
        quantity = execution.quantity
        if order.side == "SELL":
            quantity = min(quantity, ledger.held(order.symbol))
            if quantity <= 0:
                return
        fee, tax, realized = ledger.fill(order.symbol, order.side, quantity, execution.price, costs)
        order.revision += 1
        event = OrderEvent.FILLED if order.resting.remaining <= 0 else OrderEvent.PARTIALLY_FILLED
        self.out.append(self._fill_record(execution, quantity, fee, tax, realized))
        self.out.append(self._order_record(order, event, execution.ts))
        self.out.append(ledger.snapshot(execution.ts, order.symbol, order.venue, "fill"))

    def _fill_record(self, execution: Execution, quantity: float, fee: float, tax: float, realized: float) -> Fill:
        order = execution.order
        return Fill(
            symbol=order.symbol,
            venue=order.venue,
            ts=execution.ts,
            account=order.account,
            fill_id=f"{order.client_order_id}-{order.revision}",
            client_order_id=order.client_order_id,
            side=order.side,
            price=execution.price,
            quantity=quantity,
            fee=fee,
            tax=tax,
            liquidity=Liquidity.TAKER if order.taker else Liquidity.MAKER,
            tape_price=execution.tape_price,
            signal_model=order.signal_model,
            signal_ts=order.signal_ts,
            decision_price=order.decision_price,
            realized_pnl=realized,
        )

    def _mark(self, symbol: str, venue: str, price: float) -> None:
        """Mark every account holding ``symbol``; one whose day loss reaches its limit trips the kill switch."""
        for name, ledger in self.ledgers.items():
            if ledger.held(symbol) <= 0:
                continue
            ledger.mark(symbol, price)
            account = self.accounts[name]
            if not ledger.halted and ledger.day_pnl() <= -account.max_daily_loss:
                self._halt(account, symbol, venue)

    def _halt(self, account: AccountConfig, symbol: str, venue: str) -> None:
        ledger = self.ledgers[account.name]
        ledger.halted = True
        self._go_flat(account, None, "kill switch: the day's loss limit was hit")
        self.out.append(ledger.snapshot(self.now, symbol, venue, "halt"))

    def _go_flat(self, account: AccountConfig, venue: str | None, reason: str) -> None:
        """Cancel the account's working orders (in ``venue``, or everywhere) and sell what it holds there,
        crossing the spread."""
        for order in [o for o in self.exchange.all_working() if o.account == account.name]:
            if venue is None or order.venue == venue:
                self._cancel(order.client_order_id, self.now, reason)
        ledger = self.ledgers[account.name]
        decision = Decision(account.signal, "flat", self.now, 0, None)
        for symbol, quantity in ledger.positions().items():
            market = self.market.get(symbol)
            rules = None if market is None else self.rules(market.venue, symbol)
            if market is None or rules is None or (venue is not None and market.venue != venue):
                continue
            if market.bids or market.asks:
                self._place(account, decision, symbol, market, rules, "SELL", quantity, pricing="cross")

    # -- time --------------------------------------------------------------------------------------------
    def _start_days(self, ts: int) -> None:
        for account in self.accounts.values():
            self.ledgers[account.name].new_day(self._account_day(account, ts))

    def _account_day(self, account: AccountConfig, ts: int) -> int:
        return (ts + account.day_utc_offset_min * MINUTE_MS) // DAY_MS

    def _new_minute(self, boundary: int) -> None:
        """A minute of event time ended: new days, intraday accounts flat before the close, marks."""
        for account in self.accounts.values():
            ledger = self.ledgers[account.name]
            ledger.new_day(self._account_day(account, boundary))
            if account.intraday:
                self._flat_for_close(account, boundary)
            if ledger.holdings:
                symbol = min(ledger.holdings)
                self.out.append(ledger.snapshot(boundary, symbol, self.market[symbol].venue, "mark"))

    def _flat_for_close(self, account: AccountConfig, boundary: int) -> None:
        ledger = self.ledgers[account.name]
        venues = {self.market[s].venue for s in ledger.holdings} | {
            o.venue for o in self.exchange.all_working() if o.account == account.name
        }
        for venue in sorted(venues):
            day = self._day(boundary, venue)
            if not self._closing(account, venue, boundary) or self.flat_day.get(f"{account.name}|{venue}") == day:
                continue
            self.flat_day[f"{account.name}|{venue}"] = day
            self._go_flat(account, venue, "flat before the close")
            if ledger.holdings:
                symbol = min(ledger.holdings)
                self.out.append(ledger.snapshot(boundary, symbol, venue, "close"))

    def _closing(self, account: AccountConfig, venue: str, ts: int) -> bool:
        """Whether ``ts`` is in the venue's closing window, when an intraday account only goes flat."""
        close = self._close_ms(venue)
        if close is None or not account.intraday:
            return False
        return self._time_of_day(ts, venue) >= close - account.flat_before_close_ms

    def _close_ms(self, venue: str) -> int | None:
        close = self.feeds(venue).close_time
        return None if close is None else (close.hour * 60 + close.minute) * MINUTE_MS

    def _time_of_day(self, ts: int, venue: str) -> int:
        return (ts + self.feeds(venue).utc_offset_min * MINUTE_MS) % DAY_MS

    def _day(self, ts: int, venue: str) -> int:
        return (ts + self.feeds(venue).utc_offset_min * MINUTE_MS) // DAY_MS

    # -- state -------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "minute": self.minute,
            "ledgers": {name: ledger.to_state() for name, ledger in self.ledgers.items()},
            "market": {symbol: asdict(m) for symbol, m in self.market.items()},
            "exchange": self.exchange.to_state(),
            "targets": dict(self.targets),
            "numbers": dict(self.numbers),
            "expiry": [list(e) for e in self.expiry],
            "flat_day": dict(self.flat_day),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """The state :meth:`to_state` wrote; accounts added since start fresh, removed ones are dropped."""
        self.now, self.minute = int(state["now"]), int(state["minute"])
        for name, entry in state["ledgers"].items():
            if name in self.accounts:
                self.ledgers[name] = Ledger.from_state(dict(entry))
        self.market = {s: Market(**m) for s, m in state["market"].items()}
        self.exchange = self._make_exchange([o for o in state["exchange"] if o["account"] in self.accounts])
        self.targets, self.numbers = dict(state["targets"]), dict(state["numbers"])
        self.expiry = [(int(ts), str(order_id)) for ts, order_id in state["expiry"]]
        heapq.heapify(self.expiry)
        self.flat_day = dict(state["flat_day"])
