"""Collusive rings among the firm's accounts, from its drop copy: accounts the firm's reference data does **not** tie
together that trade among themselves while their positions stay flat.

Wash trades between one owner's accounts, or a linked group's, are :mod:`~tapewatch.detectors.orders.firm_wash`'s.
Colluding owners are what the reference data does not know, so a ring is read from what the accounts do:

* **Internal prints**: two executions of one symbol at one price and quantity on opposite sides within ``pair_ms``,
  of two of the firm's accounts, are one print between them. From each, the ring grows from the print's two
  accounts, one account at a time, by any account that printed with them and did at least ``ring_share`` of what it
  executed in the window with them, up to ``max_accounts``; a ring all of whose prints are between accounts the
  reference data ties is the wash detector's.
* **Among themselves**: every account did at least ``ring_share`` of what it executed in the window with the others
  (an ordinary client trades mostly with the market), and, where the public tape is known, more often than chance
  makes at all likely (a binomial tail of at most ``surprise`` for every account): an account's counterparty is
  another member about as often as the others are the rest of the market (their business outside the ring, against
  the volume that did not print within it), so two clients that are most of a thin symbol's volume and trade with
  others too meet each other often without colluding, while a ring's own prints never explain it.
* **Flat**: every account's net position over the window is at most ``flat_share`` of what it executed (a ring
  turns volume over; a buyer or a seller who happens to meet another client accumulates).
* **Repeated**: ``min_prints`` internal prints within ``window_ms``.

The hit names the accounts, their owners and the buy sides' order ids. The work per execution is O(1) (the sums of
what each account executed and of each pair's prints are kept as they go); an internal print also reads the
neighbours of the ring's accounts (O(the accounts they printed with in the window)). What would break it: a ring
that trades through other firms (the drop copy shows one side of each print), one that splits each print into
unequal pieces on each side, one that lets positions build for longer than the window, one whose accounts trade
mostly with the market and only now and then with each other (under ``ring_share``), and ordinary clients that are
most of a thin symbol and meet each other while flat (the chance test assumes counterparties are met in proportion
to their volume, which two passive market makers are not).

>>> from tapewatch.records import ExecutionReport
>>> def fill(ts, account, side, order_id):
...     return ExecutionReport(symbol="X", venue="v", ts=ts, exec_id=f"{order_id}-t", order_id=order_id,
...         tenant="acme", account=account, owner=f"O-{account}", exec_type="trade", side=side, price=10.0,
...         quantity=500.0, last_qty=500.0, last_price=10.0, cum_qty=500.0)
>>> ring = FirmRing(FirmRingParams(min_prints=3))
>>> hits = []
>>> for n, (buyer, seller) in enumerate([("A1", "A2"), ("A2", "A3"), ("A3", "A1")]):
...     hits += ring.on_execution(fill(60_000 * n, buyer, "BUY", f"b{n}"))
...     hits += ring.on_execution(fill(60_000 * n + 5, seller, "SELL", f"s{n}"))
>>> [(h.evidence["accounts"], h.evidence["prints"], h.evidence["owners"]) for h in hits]
[('A1;A2;A3', 3, 3)]
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
from tapewatch.detectors.orders.public_tape import PublicTape
from tapewatch.detectors.orders.public_wash import binomial_tail
from tapewatch.records import AlertKind, ExecType, ExecutionReport


class FirmRingParams(BaseModel):
    """What an internal print is, and what makes the accounts it joins a ring."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    pair_ms: int = Field(1_000, ge=0, le=60_000, description="Two sides of one print are at most this far apart")
    min_prints: int = Field(6, ge=2, le=1_000, description="Prints among the ring's accounts within the window")
    window_ms: int = Field(900_000, gt=0, le=86_400_000, description="The window prints and positions are read over")
    ring_share: float = Field(
        0.5, gt=0, le=1, description="Their prints with each other, both sides, as a share of all they executed"
    )
    surprise: float = Field(
        1e-6, gt=0, lt=1, description="… and at most this likely for each at the others' share of the public volume"
    )
    flat_share: float = Field(
        0.5, ge=0, lt=1, description="Each account's net position at most this share of what it executed"
    )
    max_accounts: int = Field(6, ge=2, le=100, description="Connected accounts beyond this are not read as one ring")


EVIDENCE: Final[Mapping[str, Key]] = {
    "accounts": Key("the accounts that traded among themselves"),
    "owners": Key("how many beneficial owners (or linked groups) they belong to", "owners"),
    "prints": Key("prints among them in the window", "prints"),
    "volume": Key("what they traded with each other", "shares"),
    "ring_share": Key("that, both sides, as a share of all they executed in the window", "share"),
    "chance": Key("how likely that many prints with the others are for the least surprising account", "probability"),
    "net_share": Key("the largest account's net position as a share of what it executed", "share"),
    "order_ids": Key("the orders of the prints' buy sides at the venue"),
}
RULE: Final = Rule(AlertKind.WASH_TRADING, "a collusive ring among the firm's accounts", "accounts", EVIDENCE)


@dataclass(slots=True)
class Side:
    """One side of a print, waiting ``pair_ms`` for its other side."""

    ts: int
    account: str
    buy: bool
    price: float
    quantity: float
    order_id: str


@dataclass(slots=True)
class Executed:
    """An account's executions in the window, (ts, signed quantity), and their sums, kept as it goes (O(1) an
    execution; the sums are state, so a restored detector adds and takes away the same numbers)."""

    done: deque[tuple[int, float]]
    gross: float = 0.0
    net: float = 0.0

    def add(self, ts: int, quantity: float) -> None:
        self.done.append((ts, quantity))
        self.gross += abs(quantity)
        self.net += quantity

    def forget(self, before: int) -> None:
        while self.done and self.done[0][0] < before:
            _, quantity = self.done.popleft()
            self.gross -= abs(quantity)
            self.net -= quantity
        if not self.done:
            self.gross = self.net = 0.0


@dataclass(slots=True)
class Link:
    """A print between two accounts: when, how much, the buy side's order id."""

    ts: int
    quantity: float
    order_id: str


@dataclass(slots=True)
class Links:
    """Two accounts' prints with each other in the window, and their volume, kept as it goes (a state, as
    :class:`Executed`'s sums)."""

    done: deque[Link]
    volume: float = 0.0

    def add(self, link: Link) -> None:
        self.done.append(link)
        self.volume += link.quantity

    def forget(self, before: int) -> None:
        while self.done and self.done[0].ts < before:
            self.volume -= self.done.popleft().quantity
        if not self.done:
            self.volume = 0.0


class FirmRing:
    """One symbol's collusive rings, from the firm's drop copy (stage: ``on_execution``). ``owners`` and ``groups`` are
    the firm's reference data, read as they are at each report; ``tape``: the symbol's public trades, for what chance
    gives (None, or a tape that does not reach back: that test is left out — so a drop copy read further behind the
    public feed than the tape keeps is judged without it, as :class:`FirmDetectorParams`' ``tape_keep_ms`` says of
    the pumps)."""

    PARAMS: ClassVar[type[FirmRingParams]] = FirmRingParams
    EVIDENCE: ClassVar[Mapping[str, Key]] = EVIDENCE

    def __init__(
        self,
        params: FirmRingParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
        tape: PublicTape | None = None,
    ) -> None:
        self.params = params or FirmRingParams()
        self.owners: Mapping[str, str] = owners if owners is not None else {}
        self.groups: Mapping[str, str] = groups if groups is not None else {}
        self.tape = tape
        self.recent: deque[Side] = deque()
        #: each account's executions in the window
        self.executions: dict[str, Executed] = {}
        #: (a, b), a < b → the window's prints between the two; account → the accounts it printed with
        self.links: dict[tuple[str, str], Links] = {}
        self.neighbours: dict[str, set[str]] = {}
        #: account → its reference owner keys as of its last report
        self.keys: dict[str, list[str]] = {}
        self.swept = 0

    def on_execution(self, report: ExecutionReport) -> list[Hit]:
        if report.exec_type is not ExecType.TRADE or report.last_price is None or report.last_qty <= 0:
            return []
        ts, account, buy = report.ts, report.account, report.side.value == "BUY"
        if ts - self.swept >= self.params.window_ms:
            self.sweep(ts)
        self.keys[account] = owner_keys(account, report.owner, self.owners, self.groups)
        executed = self.executions.get(account)
        if executed is None:
            executed = self.executions[account] = Executed(deque())
        executed.add(ts, report.last_qty if buy else -report.last_qty)
        while self.recent and self.recent[0].ts < ts - self.params.pair_ms:
            self.recent.popleft()
        for n, other in enumerate(self.recent):
            same_print = other.price == report.last_price and other.quantity == report.last_qty
            if other.buy != buy and other.account != account and same_print:
                del self.recent[n]
                order_id = report.order_id if buy else other.order_id
                return self._linked(other.ts, ts, (account, other.account), report.last_qty, order_id)
        self.recent.append(Side(ts, account, buy, report.last_price, report.last_qty, report.order_id))
        return []

    def _linked(self, printed: int, ts: int, accounts: tuple[str, str], quantity: float, order_id: str) -> list[Hit]:
        """A print between two accounts, its first side reported at ``printed``, its second at ``ts``."""
        first, second = accounts
        self.links.setdefault(_pair(first, second), Links(deque())).add(Link(printed, quantity, order_id))
        self.neighbours.setdefault(first, set()).add(second)
        self.neighbours.setdefault(second, set()).add(first)
        members = self._ring(first, second, ts)
        pairs = [self._window(pair, ts) for pair in _pairs(members)]
        if sum(len(links.done) for links in pairs) < self.params.min_prints or not self._untied(members, ts):
            return []
        executed = {account: self._executed(account, ts) for account in members}
        if any(self._within(a, members, ts) < self.params.ring_share * executed[a][0] for a in members):
            return []
        net_share = max(abs(net) / total for total, net in executed.values())
        chance = self._chance(members, ts, executed)
        if net_share > self.params.flat_share or (chance is not None and chance > self.params.surprise):
            return []
        gross = sum(total for total, _ in executed.values())
        share = 2 * sum(links.volume for links in pairs) / gross
        return [
            self._hit(ts, sorted(members), [link for links in pairs for link in links.done], share, net_share, chance)
        ]

    def _ring(self, first: str, second: str, ts: int) -> set[str]:
        """The print's two accounts, and, one at a time, each account that did at least ``ring_share`` of what it
        executed with them (the one that did most first), up to ``max_accounts``: a client that met them by chance
        trades mostly with the market and stays out."""
        members = {first, second}
        while len(members) < self.params.max_accounts:
            shares = [
                (self._within(other, members, ts) / total, other)
                for other in sorted({n for m in members for n in self.neighbours.get(m, ())} - members)
                for total in (self._executed(other, ts)[0],)
                if total > 0
            ]
            best = max(shares, default=None)
            if best is None or best[0] < self.params.ring_share:
                return members
            members.add(best[1])
        return members

    def _within(self, account: str, members: set[str], ts: int) -> float:
        """What ``account`` traded with the other ``members`` in the window."""
        return sum(self._window(_pair(account, other), ts).volume for other in members if other != account)

    def _window(self, pair: tuple[str, str], ts: int) -> Links:
        """The window's prints between the pair (the older ones forgotten; :meth:`sweep` drops the empty pairs)."""
        links = self.links.get(pair)
        if links is None:
            return Links(deque())
        links.forget(ts - self.params.window_ms)
        return links

    def _untied(self, members: set[str], ts: int) -> bool:
        """Whether some print joins two accounts the reference data does not tie (else the wash detector's)."""
        return any(
            self._window(_pair(a, b), ts).done and not set(self.keys[a]) & set(self.keys[b])
            for a in members
            for b in members
            if a < b
        )

    def _executed(self, account: str, ts: int) -> tuple[float, float]:
        """What the account executed in the window, and its net (bought minus sold)."""
        executed = self.executions.get(account)
        if executed is None:
            return 0.0, 0.0
        executed.forget(ts - self.params.window_ms)
        return executed.gross, executed.net

    def _chance(self, members: set[str], ts: int, executed: Mapping[str, tuple[float, float]]) -> float | None:
        """How likely, for the least surprising account, that so many of its executions met the others if each met
        them as often as the others are the rest of the market's volume, the market read since the accounts' first
        execution in the window; None when the tape does not say. The others' volume is what they did with anyone
        but the ring (one side's: half of it), the market's what did not print within the ring: the ring's prints
        are what is being judged, and counting them as its members' ordinary business would let a ring that is most
        of a thin symbol explain itself."""
        since = min(self.executions[account].done[0][0] for account in members)
        market = None if self.tape is None else self.tape.volume(since, ts + 1)
        if not market:
            return None
        outside = {account: max(0.0, executed[account][0] - self._within(account, members, ts)) for account in members}
        inside = sum(self._window(pair, ts).volume for pair in _pairs(members))
        rest = market - inside
        tails = []
        for account in members:
            others = sum(volume for other, volume in outside.items() if other != account) / 2
            share = min(1.0, others / rest) if rest > 0 else float(others > 0)
            met = sum(len(self._window(_pair(account, other), ts).done) for other in members if other != account)
            tails.append(binomial_tail(met, len(self.executions[account].done), share))
        return max(tails)

    def _hit(
        self, ts: int, members: list[str], links: list[Link], share: float, net_share: float, chance: float | None
    ) -> Hit:
        links = sorted(links, key=lambda link: link.ts)
        owners = {self.keys[account][-1] for account in members}
        evidence: dict[str, Any] = {
            "accounts": ";".join(members),
            "owners": len(owners),
            "prints": len(links),
            "volume": sum(link.quantity for link in links),
            "ring_share": round(share, 4),
            "chance": None if chance is None else float(f"{chance:.3g}"),
            "net_share": round(net_share, 4),
            "order_ids": ";".join(link.order_id for link in links),
        }
        score = min(0.95, 0.72 + 0.03 * (len(links) - self.params.min_prints))
        message = (
            f"accounts {', '.join(members)}, which the firm does not link, traded {len(links)} times among "
            f"themselves, their positions flat"
        )
        return Hit(AlertKind.WASH_TRADING, ts, links[0].ts, ts, score, evidence, MODEL_VERSION, message)

    def sweep(self, ts: int) -> None:
        """Forget what left the window: the state stays the window's, whoever stopped trading."""
        self.swept = ts
        for pair in list(self.links):
            if not self._window(pair, ts).done:
                del self.links[pair]
                first, second = pair
                self.neighbours[first].discard(second)
                self.neighbours[second].discard(first)
        for account in list(self.executions):
            self._executed(account, ts)
            if not self.executions[account].done and not self.neighbours.get(account):
                del self.executions[account]
                self.keys.pop(account, None)
                self.neighbours.pop(account, None)

    # --- state --------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "recent": [[s.ts, s.account, s.buy, s.price, s.quantity, s.order_id] for s in self.recent],
            "executions": {a: [[list(row) for row in f.done], f.gross, f.net] for a, f in self.executions.items()},
            "links": [
                [*pair, [[x.ts, x.quantity, x.order_id] for x in links.done], links.volume]
                for pair, links in self.links.items()
            ],
            "keys": {a: list(keys) for a, keys in self.keys.items()},
            "swept": self.swept,
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        params: FirmRingParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
        tape: PublicTape | None = None,
    ) -> FirmRing:
        ring = cls(params, owners, groups, tape)
        ring.recent = deque(Side(*row) for row in state["recent"])
        ring.executions = {
            a: Executed(deque((int(ts), float(q)) for ts, q in rows), gross, net)
            for a, (rows, gross, net) in state["executions"].items()
        }
        ring.links = {
            (first, second): Links(deque(Link(*row) for row in rows), volume)
            for first, second, rows, volume in state["links"]
        }
        for first, second in ring.links:
            ring.neighbours.setdefault(first, set()).add(second)
            ring.neighbours.setdefault(second, set()).add(first)
        ring.keys = {a: list(keys) for a, keys in state["keys"].items()}
        ring.swept = int(state["swept"])
        return ring


def fresh_state() -> dict[str, Any]:
    """The state of a detector that has seen nothing (whatever its parameters)."""
    return FirmRing().to_state()


def _pair(first: str, second: str) -> tuple[str, str]:
    return (first, second) if first < second else (second, first)


def _pairs(members: set[str]) -> list[tuple[str, str]]:
    ordered = sorted(members)
    return [_pair(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :]]
