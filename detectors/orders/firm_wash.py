"""Wash and cross trades among the firm's accounts, from its drop copy: both sides of a print are the firm's, and
their accounts are one beneficial owner's, or of one linked-account group (the firm's reference data).

Two executions of one symbol at one price and quantity on opposite sides within ``pair_ms`` are one print's two
sides. A print whose two accounts share an owner or a group is a **self-match**; ``min_prints`` of them by one owner
(or group) within ``window_ms``, making up at least ``self_share`` of what that owner executed in the window, raise a
hit naming the accounts, the owner and the prints' order ids. A print between two accounts of an owner now and then
(a transfer, two of its algorithms meeting by chance in a busy book) is not a hit: such an owner trades mostly with
others.

What would break it: a wash whose other side trades through another firm (the drop copy shows one side only),
accounts whose common owner the reference data does not know, and prints split into unequal pieces on each side.

>>> from tapewatch.records import ExecutionReport
>>> def fill(ts, account, side, order_id):
...     return ExecutionReport(symbol="X", venue="v", ts=ts, exec_id=f"{order_id}-t", order_id=order_id,
...         tenant="acme", account=account, owner="O7", exec_type="trade", side=side, price=10.0, quantity=500.0,
...         last_qty=500.0, last_price=10.0, cum_qty=500.0)
>>> detector = FirmWash(FirmWashParams(min_prints=2))
>>> hits = []
>>> for n in range(2):
...     hits += detector.on_execution(fill(60_000 * n, "A1", "BUY", f"b{n}"))
...     hits += detector.on_execution(fill(60_000 * n + 5, "A2", "SELL", f"s{n}"))
>>> [(h.evidence["owner"], h.evidence["accounts"], h.evidence["prints"]) for h in hits]
[('O7', 'A1;A2', 2)]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Key, Rule
from tapewatch.detectors.orders.firm_spoofing import MODEL_VERSION
from tapewatch.detectors.orders.owners import owner_keys
from tapewatch.records import AlertKind, ExecType, ExecutionReport


class FirmWashParams(BaseModel):
    """What a self-match is, and how many of one owner's make a hit."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    pair_ms: int = Field(1_000, ge=0, description="Two sides of one print are at most this far apart")
    min_prints: int = Field(3, ge=1, description="Self-matches of one owner or group within the window for a hit")
    window_ms: int = Field(600_000, gt=0, description="The window the self-matches are counted over")
    self_share: float = Field(
        0.5, ge=0, le=1, description="Self-matched volume (both sides) as a share of the owner's executed volume"
    )


EVIDENCE: Final[Mapping[str, Key]] = {
    "owner": Key("the beneficial owner (or linked-account group) on both sides"),
    "accounts": Key("its accounts that traded with each other"),
    "prints": Key("prints between them", "prints"),
    "volume": Key("what they traded with each other", "shares"),
    "self_share": Key("that, both sides, as a share of all the owner executed meanwhile", "share"),
    "order_ids": Key("the orders of the prints' buy sides at the venue"),
}
RULE: Final = Rule(AlertKind.WASH_TRADING, "wash trades between an owner's accounts", "accounts", EVIDENCE)


@dataclass(slots=True)
class PrintSide:
    """One side of a print, waiting ``pair_ms`` for its other side."""

    ts: int
    account: str
    key: str  # the owner or group it belongs to
    buy: bool
    price: float
    quantity: float
    order_id: str


@dataclass(slots=True)
class SelfMatch:
    ts: int
    accounts: tuple[str, str]
    quantity: float
    order_id: str


class FirmWash:
    """One symbol's self-matches by owner, from the drop copy (stage: ``on_execution``). ``owners`` and ``groups``
    are the firm's reference data (account → beneficial owner, account → linked-account group), read as they are
    when each report comes (a table that follows the firm's reference data updates them in place); an execution
    report's own ``owner`` is used when the reference data does not know the account."""

    PARAMS: ClassVar[type[FirmWashParams]] = FirmWashParams
    EVIDENCE: ClassVar[Mapping[str, Key]] = EVIDENCE

    def __init__(
        self,
        params: FirmWashParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> None:
        self.params = params or FirmWashParams()
        self.owners: Mapping[str, str] = owners if owners is not None else {}
        self.groups: Mapping[str, str] = groups if groups is not None else {}
        self.recent: deque[PrintSide] = deque()
        self.matches: dict[str, deque[SelfMatch]] = {}
        #: what each owner (and group) executed in the window: (ts, quantity)
        self.executed: dict[str, deque[tuple[int, float]]] = {}

    def keys(self, account: str, owner: str | None) -> set[str]:
        """What ties an account to others: its owner, and its group."""
        return set(owner_keys(account, owner, self.owners, self.groups))

    def on_execution(self, report: ExecutionReport) -> list[Hit]:
        if report.exec_type is not ExecType.TRADE or report.last_price is None:
            return []
        while self.recent and self.recent[0].ts < report.ts - self.params.pair_ms:
            self.recent.popleft()
        buy = report.side.value == "BUY"
        keys = self.keys(report.account, report.owner)
        for key in keys:
            self._window(self.executed.setdefault(key, deque()), report.ts).append((report.ts, report.last_qty))
        for other in self.recent:
            same_print = other.price == report.last_price and other.quantity == report.last_qty
            if other.buy != buy and same_print and other.key in keys:
                self.recent = deque(
                    e for e in self.recent if (e.account, e.order_id) != (other.account, other.order_id)
                )
                order_id = report.order_id if buy else other.order_id
                return self._matched(other.key, report.ts, (other.account, report.account), report.last_qty, order_id)
        for key in sorted(keys):
            self.recent.append(
                PrintSide(report.ts, report.account, key, buy, report.last_price, report.last_qty, report.order_id)
            )
        return []

    def _window(self, executed: deque[tuple[int, float]], ts: int) -> deque[tuple[int, float]]:
        while executed and executed[0][0] < ts - self.params.window_ms:
            executed.popleft()
        return executed

    def _matched(self, key: str, ts: int, accounts: tuple[str, str], quantity: float, order_id: str) -> list[Hit]:
        matches = self.matches.setdefault(key, deque())
        matches.append(SelfMatch(ts, accounts, quantity, order_id))
        while matches and matches[0].ts < ts - self.params.window_ms:
            matches.popleft()
        executed = sum(q for _, q in self._window(self.executed.get(key, deque()), ts))
        matched = 2 * sum(m.quantity for m in matches)
        if len(matches) < self.params.min_prints or matched < self.params.self_share * executed:
            return []
        accounts_seen = sorted({a for m in matches for a in m.accounts})
        evidence: dict[str, Any] = {
            "owner": key.split(":", 1)[1],
            "self_share": round(matched / executed, 4) if executed else 1.0,
            "accounts": ";".join(accounts_seen),
            "prints": len(matches),
            "volume": sum(m.quantity for m in matches),
            "order_ids": ";".join(m.order_id for m in matches),
        }
        score = min(0.99, 0.75 + 0.04 * (len(matches) - self.params.min_prints))
        message = f"accounts {', '.join(accounts_seen)} of one owner traded {len(matches)} times with each other"
        return [Hit(AlertKind.WASH_TRADING, ts, matches[0].ts, ts, score, evidence, MODEL_VERSION, message)]

    # --- state --------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The executions still waiting for their other side, each owner's recent self-matches and executions."""
        return {
            "recent": [[e.ts, e.account, e.key, e.buy, e.price, e.quantity, e.order_id] for e in self.recent],
            "matches": {
                key: [[m.ts, list(m.accounts), m.quantity, m.order_id] for m in matches]
                for key, matches in self.matches.items()
                if matches
            },
            "executed": {key: [list(pair) for pair in done] for key, done in self.executed.items() if done},
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        params: FirmWashParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> FirmWash:
        detector = cls(params, owners, groups)
        detector.recent = deque(PrintSide(*row) for row in state["recent"])
        detector.matches = {
            key: deque(SelfMatch(ts, (accounts[0], accounts[1]), qty, oid) for ts, accounts, qty, oid in rows)
            for key, rows in state["matches"].items()
        }
        detector.executed = {key: deque((ts, qty) for ts, qty in rows) for key, rows in state["executed"].items()}
        return detector
