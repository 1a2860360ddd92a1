"""An account's cash and positions: fills in, fees and taxes out, P&L marked on the tape, the kill switch.

Long only (a sell never exceeds what is held). A buy's fee goes into the position's cost, so a sell's realised
P&L is what the round trip earned after every cost. Taiwan taxes a sell 0.3 % — 0.15 % for the part that
closes a position bought the same day (a day trade); crypto venues charge 0.1 % a side and no tax.

>>> ledger = Ledger.open("a", 1_000_000.0)
>>> costs = venue_costs("twse")
>>> ledger.fill("2330", "BUY", 1000.0, 500.0, costs)     # fee 0.1425 % of 500,000
(712.5, 0.0, 0.0)
>>> fee, tax, realized = ledger.fill("2330", "SELL", 1000.0, 510.0, costs)   # a day trade: 0.15 % tax
>>> round(fee, 2), round(tax, 2), round(realized, 2)
(726.75, 765.0, 7795.75)
>>> round(ledger.cash, 2), ledger.positions()
(1007795.75, {})
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from tapewatch.feeds import ORDER_BOOK_MARKET_VENUE
from tapewatch.records import Portfolio
from tapewatch.signals.dqn.costs import CostModel, cost_preset

#: venue → (costs, costs of a day trade's sell) from the shared presets; both generated markets keep Taipei's hours
#: and are charged as the Taiwan venues
_VENUE_COSTS: Final = {
    **dict.fromkeys(("twse", "tpex", "sim", "sim-snapshots", ORDER_BOOK_MARKET_VENUE), ("taiwan", "taiwan-daytrade")),
    **dict.fromkeys(("binance", "bitstamp"), ("crypto", "crypto")),
}


@dataclass(frozen=True, slots=True)
class VenueCosts:
    normal: CostModel
    day_trade: CostModel


def venue_costs(venue: str) -> VenueCosts | None:
    """The venue's cost presets; None for a venue without a preset (its decisions are refused)."""
    names = _VENUE_COSTS.get(venue)
    return None if names is None else VenueCosts(cost_preset(names[0]), cost_preset(names[1]))


@dataclass(slots=True)
class Holding:
    quantity: float = 0.0
    #: what the open quantity cost, buy fees included
    cost: float = 0.0
    #: bought since the day started and not yet sold: a sell of it is a day trade
    bought_today: float = 0.0
    mark: float = 0.0


@dataclass(slots=True)
class Ledger:
    account: str
    cash: float
    holdings: dict[str, Holding] = field(default_factory=dict)
    realized: float = 0.0
    fees: float = 0.0
    taxes: float = 0.0
    day: int = -1
    day_start_equity: float = 0.0
    halted: bool = False
    seq: int = 0

    @classmethod
    def open(cls, account: str, capital: float) -> Ledger:
        return cls(account, capital, day_start_equity=capital)

    def positions(self) -> dict[str, float]:
        return {s: h.quantity for s, h in sorted(self.holdings.items()) if h.quantity > 0}

    def held(self, symbol: str) -> float:
        holding = self.holdings.get(symbol)
        return 0.0 if holding is None else holding.quantity

    def equity(self) -> float:
        return self.cash + sum(h.quantity * h.mark for h in self.holdings.values())

    def gross(self) -> float:
        return sum(abs(h.quantity) * h.mark for h in self.holdings.values())

    def unrealized(self) -> float:
        return sum(h.quantity * h.mark - h.cost for h in self.holdings.values())

    def day_pnl(self) -> float:
        return self.equity() - self.day_start_equity

    def mark(self, symbol: str, price: float) -> None:
        holding = self.holdings.get(symbol)
        if holding is not None:
            holding.mark = price

    def new_day(self, day: int) -> bool:
        """A new trading day: the day's P&L restarts, the kill switch resets, nothing is bought today yet."""
        if day <= self.day:
            return False
        self.day, self.day_start_equity, self.halted = day, self.equity(), False
        for holding in self.holdings.values():
            holding.bought_today = 0.0
        return True

    def fill(
        self, symbol: str, side: str, quantity: float, price: float, costs: VenueCosts
    ) -> tuple[float, float, float]:
        """Book a fill; (fee, tax, realised P&L of this fill)."""
        holding = self.holdings.setdefault(symbol, Holding(mark=price))
        value = quantity * price
        if side == "BUY":
            fee = value * costs.normal.buy_commission
            holding.quantity += quantity
            holding.cost += value + fee
            holding.bought_today += quantity
            tax, realized = 0.0, 0.0
            self.cash -= value + fee
        else:
            fee, tax = value * costs.normal.sell_commission, _sell_tax(holding, quantity, price, costs)
            share = quantity / holding.quantity if holding.quantity > 0 else 1.0
            basis = holding.cost * share
            realized = value - fee - tax - basis
            holding.quantity, holding.cost = holding.quantity - quantity, holding.cost - basis
            holding.bought_today = max(0.0, holding.bought_today - quantity)
            self.cash += value - fee - tax
            self.realized += realized
            if holding.quantity <= 1e-12:
                del self.holdings[symbol]
        holding.mark = price
        self.fees += fee
        self.taxes += tax
        return fee, tax, realized

    def snapshot(self, ts: int, symbol: str, venue: str, reason: Literal["fill", "mark", "halt", "close"]) -> Portfolio:
        self.seq += 1
        return Portfolio(
            symbol=symbol,
            venue=venue,
            ts=ts,
            account=self.account,
            seq=self.seq,
            reason=reason,
            cash=self.cash,
            equity=self.equity(),
            gross_exposure=self.gross(),
            realized_pnl=self.realized,
            unrealized_pnl=self.unrealized(),
            day_pnl=self.day_pnl(),
            fees=self.fees,
            taxes=self.taxes,
            halted=self.halted,
            positions=self.positions(),
        )

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Ledger:
        holdings = {s: Holding(**h) for s, h in state.pop("holdings").items()}
        return cls(holdings=holdings, **state)


def _sell_tax(holding: Holding, quantity: float, price: float, costs: VenueCosts) -> float:
    """The sell's tax: the day-trade rate on the part bought today, the normal rate on the rest."""
    day_part = min(quantity, holding.bought_today)
    return price * (day_part * costs.day_trade.sell_tax + (quantity - day_part) * costs.normal.sell_tax)
