"""Spoofing and layering by one of the firm's accounts, from its drop copy: the conditions the surveillance trade
names (Trillium's five, SMARTS's layering alert), judged per account.

A **cycle** is: the account places an order large for the symbol (``size_multiple`` × the firm's usual order there
and, where the public book tells, ``depth_share`` of its side's visible depth then); while it rests, the same
account places an order on the *other* side at least ``asymmetry`` times smaller (and the account rests nothing
large on that side: a market maker's two-sided quotes, whose other side is itself large, are not this); then the
large order is cancelled (``cancel_share`` of it or more, within ``max_life_ms`` of its placement). ``min_cycles``
cycles of one account on one side within ``window_ms`` raise a hit that names the account, its owner and the large
orders' ids; what the small orders executed meanwhile strengthens it. Several large orders of the account resting
on one side at once (layering) count each as a cycle when each is cancelled so.

Genuine large orders are filled, not cancelled after a small trade on the other side; a market maker quotes both
sides large and pulls both; an institution's sliced order executes on one side only. What would break it: a
spoofer whose genuine trades go through another firm (only the public feed shows the link), one whose spoof orders
are no larger than its usual ones, and a drop copy that misses the cancels.

>>> from tapewatch.records import ExecutionReport
>>> def report(ts, exec_type, order_id, side, qty, filled=0.0):
...     return ExecutionReport(symbol="X", venue="v", ts=ts, exec_id=f"{order_id}-{ts}", order_id=order_id,
...         tenant="acme", account="A1", owner="O1", exec_type=exec_type, side=side, price=10.0, quantity=qty,
...         last_qty=filled, last_price=10.0 if filled else None, cum_qty=filled)
>>> detector = FirmSpoofing(FirmSpoofingParams(warmup_orders=0))
>>> for n in range(20):
...     _ = detector.on_execution(report(n, "new", f"u{n}", "BUY", 100.0))
>>> hits = []
>>> for cycle in range(2):  # a large bid, a small offer that trades, the bid cancelled; twice
...     t = 10_000 * (cycle + 1)
...     hits += detector.on_execution(report(t, "new", f"big{cycle}", "BUY", 2_000.0))
...     hits += detector.on_execution(report(t + 1_000, "new", f"s{cycle}", "SELL", 100.0))
...     hits += detector.on_execution(report(t + 2_000, "trade", f"s{cycle}", "SELL", 100.0, filled=100.0))
...     hits += detector.on_execution(report(t + 3_000, "canceled", f"big{cycle}", "BUY", 2_000.0))
>>> [(h.evidence["account"], h.evidence["cycles"], h.evidence["order_ids"]) for h in hits]
[('A1', 2, 'big0;big1')]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Key, Rule
from tapewatch.detectors.orders.usual_size import UsualSize
from tapewatch.records import AlertKind, ExecType, ExecutionReport, OrderSide

MODEL_VERSION: Final = "orders-v1"


class FirmSpoofingParams(BaseModel):
    """What a spoofing cycle of one account is, and how many make a hit."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    size_multiple: float = Field(5.0, gt=1, description="A large order: this × the firm's usual order on the symbol")
    depth_share: float = Field(
        0.2, ge=0, description="… and this share of its side's visible depth when placed (where the book is known)"
    )
    asymmetry: float = Field(4.0, ge=1, description="… and this × the other side's order placed meanwhile")
    max_life_ms: int = Field(120_000, gt=0, description="Cancelled within this of its placement")
    cancel_share: float = Field(0.8, gt=0, le=1, description="At least this share of it cancelled, not filled")
    min_cycles: int = Field(2, ge=1, description="Cycles of one account within the window for a hit")
    window_ms: int = Field(600_000, gt=0, description="The window the cycles are counted over")
    warmup_orders: int = Field(50, ge=0, description="The symbol's firm orders seen before a usual size is trusted")


EVIDENCE: Final[Mapping[str, Key]] = {
    "account": Key("the account that placed and cancelled the large orders"),
    "owner": Key("its beneficial owner"),
    "cycles": Key("large orders cancelled after an execution on the other side", "cycles"),
    "order_ids": Key("the large orders' ids at the venue"),
    "size_multiple": Key("the largest against the firm's usual order on the symbol", "×"),
    "opposite_qty": Key("what the account ordered on the other side meanwhile", "shares"),
    "opposite_filled": Key("what of that executed", "shares"),
    "median_life_s": Key("how long the large orders rested", "s"),
}
RULE: Final = Rule(AlertKind.SPOOFING, "spoofing by an account", "order_ids", EVIDENCE)


@dataclass(slots=True)
class Tracked:
    """One of the firm's resting orders."""

    account: str
    owner: str | None
    side: OrderSide
    quantity: float
    placed_ts: int
    large: bool
    filled: float = 0.0
    opposite_qty: float = 0.0
    opposite_filled: float = 0.0


@dataclass(slots=True)
class Cycle:
    order_id: str
    placed_ts: int
    cancelled_ts: int
    side: OrderSide
    multiple: float
    opposite_qty: float
    opposite_filled: float


@dataclass(slots=True)
class AccountState:
    cycles: deque[Cycle] = field(default_factory=deque)
    large: dict[str, Tracked] = field(default_factory=dict)  # its large orders resting now


class FirmSpoofing:
    """One symbol's spoofing cycles by account, from the drop copy (stage: ``on_execution``)."""

    PARAMS: ClassVar[type[FirmSpoofingParams]] = FirmSpoofingParams
    EVIDENCE: ClassVar[Mapping[str, Key]] = EVIDENCE

    def __init__(
        self, params: FirmSpoofingParams | None = None, visible_share: Callable[[str], float | None] | None = None
    ) -> None:
        """``visible_share``: an order's size as a share of its side's visible depth when it was placed, by its id
        at the venue, from the public feed (None: not known)."""
        self.params = params or FirmSpoofingParams()
        self.visible_share = visible_share
        self.usual = UsualSize()
        self.orders: dict[str, Tracked] = {}
        self.accounts: dict[str, AccountState] = {}

    def on_execution(self, report: ExecutionReport) -> list[Hit]:
        kind = report.exec_type
        if kind is ExecType.NEW:
            self._placed(report)
            return []
        order = self.orders.get(report.order_id)
        if order is None:
            return []
        if kind is ExecType.TRADE:
            order.filled += report.last_qty
            self._credit(order, filled=report.last_qty)
        if kind is ExecType.REPLACED:
            order.quantity = max(report.quantity, order.filled)
            return []
        if kind in (ExecType.CANCELED, ExecType.EXPIRED, ExecType.REJECTED) or report.leaves_qty <= 0:
            return self._left(report.order_id, order, report.ts, kind is ExecType.CANCELED)
        return []

    def _placed(self, report: ExecutionReport) -> None:
        usual = self.usual.quantile(0.5) if self.usual.count() >= self.params.warmup_orders else None
        large = usual is not None and report.quantity >= self.params.size_multiple * usual
        if large and self.visible_share is not None:
            share = self.visible_share(report.order_id)
            large = share is None or share >= self.params.depth_share
        order = Tracked(report.account, report.owner, report.side, report.quantity, report.ts, large)
        self.orders[report.order_id] = order
        if large:
            self._account(report.account).large[report.order_id] = order
        else:
            self._credit(order, placed=report.quantity)
        self.usual.observe(report.quantity)

    def _credit(self, order: Tracked, placed: float = 0.0, filled: float = 0.0) -> None:
        """The account placed (or executed) ``order`` on one side: its large orders on the other side, much larger,
        saw it (unless the account rests large on ``order``'s side too: two-sided quoting)."""
        state = self.accounts.get(order.account)
        if state is None or order.large or any(o.side is order.side for o in state.large.values()):
            return
        for large in state.large.values():
            if large.side is not order.side and large.quantity >= self.params.asymmetry * order.quantity:
                large.opposite_qty += placed
                large.opposite_filled += filled

    def _left(self, order_id: str, order: Tracked, ts: int, cancelled: bool) -> list[Hit]:
        del self.orders[order_id]
        if not order.large:
            return []
        state = self._account(order.account)
        state.large.pop(order_id, None)
        p = self.params
        is_cycle = (
            cancelled
            and order.opposite_qty > 0
            and ts - order.placed_ts <= p.max_life_ms
            and order.filled <= (1 - p.cancel_share) * order.quantity
        )
        if not is_cycle:
            return []
        usual = self.usual.quantile(0.5) or order.quantity
        multiple = order.quantity / usual
        state.cycles.append(
            Cycle(order_id, order.placed_ts, ts, order.side, multiple, order.opposite_qty, order.opposite_filled)
        )
        while state.cycles and state.cycles[0].cancelled_ts < ts - p.window_ms:
            state.cycles.popleft()
        cycles = [c for c in state.cycles if c.side is order.side]
        if len(cycles) < p.min_cycles:
            return []
        return [self._hit(order, cycles, ts)]

    def _hit(self, order: Tracked, cycles: list[Cycle], ts: int) -> Hit:
        lives = sorted((c.cancelled_ts - c.placed_ts) / 1000 for c in cycles)
        multiple = max(c.multiple for c in cycles)
        filled = sum(c.opposite_filled for c in cycles)
        extra = len(cycles) - self.params.min_cycles
        score = min(0.99, 0.72 + 0.05 * extra + 0.02 * min(multiple / 10, 5) + (0.08 if filled > 0 else 0.0))
        evidence: dict[str, Any] = {
            "account": order.account,
            "owner": order.owner,
            "cycles": len(cycles),
            "order_ids": ";".join(c.order_id for c in cycles),
            "size_multiple": round(multiple, 2),
            "opposite_qty": sum(c.opposite_qty for c in cycles),
            "opposite_filled": filled,
            "median_life_s": lives[len(lives) // 2],
        }
        message = (
            f"account {order.account} placed {len(cycles)} large orders ({multiple:.0f}× its firm's usual) and "
            "cancelled each after ordering on the other side"
        )
        return Hit(AlertKind.SPOOFING, ts, cycles[0].placed_ts, ts, score, evidence, MODEL_VERSION, message)

    def _account(self, account: str) -> AccountState:
        state = self.accounts.get(account)
        if state is None:
            state = self.accounts[account] = AccountState()
        return state

    # --- state --------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The firm's resting orders on the symbol, each account's recent cycles, and the usual order size."""
        orders = {
            order_id: [o.account, o.owner, o.side.value, o.quantity, o.placed_ts, o.large, o.filled, o.opposite_qty,
                       o.opposite_filled]
            for order_id, o in self.orders.items()
        }  # fmt: skip
        cycles = {
            account: [
                [c.order_id, c.placed_ts, c.cancelled_ts, c.side.value, c.multiple, c.opposite_qty, c.opposite_filled]
                for c in state.cycles
            ]
            for account, state in self.accounts.items()
            if state.cycles
        }
        return {"orders": orders, "cycles": cycles, "usual": self.usual.to_state()}

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        params: FirmSpoofingParams | None = None,
        visible_share: Callable[[str], float | None] | None = None,
    ) -> FirmSpoofing:
        detector = cls(params, visible_share)
        detector.usual = UsualSize.from_state(state["usual"])
        for order_id, (account, owner, side, qty, placed, large, filled, opposite, opposite_filled) in state[
            "orders"
        ].items():
            order = Tracked(account, owner, OrderSide(side), qty, placed, large, filled, opposite, opposite_filled)
            detector.orders[order_id] = order
            if large:
                detector._account(account).large[order_id] = order
        for account, rows in state["cycles"].items():
            detector._account(account).cycles.extend(
                Cycle(oid, placed, cancelled, OrderSide(side), multiple, qty, filled)
                for oid, placed, cancelled, side, multiple, qty, filled in rows
            )
        return detector
