"""The exchange seam: what the executor needs of a venue, and the paper venue that fills against the tape.

:class:`Exchange` is the whole interface a real venue adapter would implement: take a limit order, cancel it,
and report executions. :class:`PaperExchange` is the only one shipped: it keeps every working order with its
place in the queue (:mod:`tapewatch.execution.queue_model`) and fills it from the prints that follow, never from the
order's own wish. Its state is plain data, written to the worker's changelog.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from tapewatch.execution.queue_model import Levels, Resting, placed


@dataclass(slots=True)
class WorkingOrder:
    """An order the venue holds: the request, its queue and fills, and where it came from."""

    client_order_id: str
    account: str
    symbol: str
    venue: str
    resting: Resting
    placed_ts: int
    expires_ts: int
    taker: bool
    signal_model: str
    signal_version: str
    signal_ts: int
    decision_price: float | None
    value: float = 0.0  # Σ price × quantity filled
    revision: int = 0

    @property
    def side(self) -> str:
        return self.resting.side

    def average_price(self) -> float | None:
        return self.value / self.resting.filled if self.resting.filled > 0 else None


@dataclass(frozen=True, slots=True)
class Execution:
    order: WorkingOrder
    ts: int
    quantity: float
    price: float
    tape_price: float


class Exchange(Protocol):
    """What the executor asks of a venue. A live adapter would send ``place``/``cancel`` to the venue and turn
    its execution reports into :class:`Execution`; the tape arrives as ``on_book``/``on_print`` either way."""

    def place(self, order: WorkingOrder, bids: Levels, asks: Levels) -> WorkingOrder: ...

    def cancel(self, client_order_id: str) -> WorkingOrder | None: ...

    def working(self, account: str, symbol: str) -> list[WorkingOrder]: ...

    def all_working(self) -> Iterator[WorkingOrder]: ...

    def on_book(self, symbol: str, bids: Levels, asks: Levels) -> None: ...

    def on_print(self, symbol: str, ts: int, price: float, size: float) -> list[Execution]: ...

    def to_state(self) -> list[dict[str, Any]]:
        """The working orders as plain data, for the executor's checkpoint."""
        ...


@dataclass
class PaperExchange:
    """Working orders per symbol, filled by later prints in placement order: a print is shared down the
    orders it reaches, so two paper orders never both take the same traded quantity."""

    orders: dict[str, dict[str, WorkingOrder]] = field(default_factory=dict)
    #: client order id → symbol, so a cancel finds its order at once
    symbol_of: dict[str, str] = field(default_factory=dict)

    def place(self, order: WorkingOrder, bids: Levels, asks: Levels) -> WorkingOrder:
        ahead, order.taker = placed(order.side, order.resting.price, bids, asks)
        order.resting.queue_ahead = ahead
        self._keep(order)
        return order

    def _keep(self, order: WorkingOrder) -> None:
        self.orders.setdefault(order.symbol, {})[order.client_order_id] = order
        self.symbol_of[order.client_order_id] = order.symbol

    def cancel(self, client_order_id: str) -> WorkingOrder | None:
        symbol = self.symbol_of.pop(client_order_id, None)
        return None if symbol is None else self.orders[symbol].pop(client_order_id, None)

    def working(self, account: str, symbol: str) -> list[WorkingOrder]:
        return [o for o in self.orders.get(symbol, {}).values() if o.account == account]

    def all_working(self) -> Iterator[WorkingOrder]:
        for book in self.orders.values():
            yield from book.values()

    def on_book(self, symbol: str, bids: Levels, asks: Levels) -> None:
        for order in self.orders.get(symbol, {}).values():
            order.resting.on_book(bids, asks)

    def on_print(self, symbol: str, ts: int, price: float, size: float) -> list[Execution]:
        """Executions of a print; an order placed at this very time does not see it (it was not there yet)."""
        book = self.orders.get(symbol)
        if not book:
            return []
        done: list[Execution] = []
        left = size
        for order in list(book.values()):
            if order.placed_ts >= ts or left <= 0:
                continue
            before = order.resting.queue_ahead
            quantity = order.resting.on_print(price, left)
            left -= quantity + (before - order.resting.queue_ahead)  # the print is shared down the queue
            if quantity > 0:  # at the printed price: never one the tape did not print, never better than it
                order.value += quantity * price
                done.append(Execution(order, ts, quantity, price, price))
            if order.resting.remaining <= 0:
                del book[order.client_order_id]
                del self.symbol_of[order.client_order_id]
        return done

    def to_state(self) -> list[dict[str, Any]]:
        return [asdict(o) for o in self.all_working()]

    @classmethod
    def from_state(cls, state: list[dict[str, Any]]) -> PaperExchange:
        exchange = cls()
        for entry in state:
            exchange._keep(WorkingOrder(**{**entry, "resting": Resting(**entry["resting"])}))
        return exchange
