"""Quote stuffing by one of the firm's accounts, from its drop copy: a burst of order messages far above the
account's own pace and its peers', with few or no executions.

An account's **messages** on the symbol are its new orders, replacements, cancels and rejects (the order entries,
modifications and deletions MiFID II's RTS 9 counts); its **executions** are its trade reports. Over the last
``window_ms`` the account's message rate is judged; over the last ``otr_window_ms`` its order-to-trade ratio, messages
per execution (messages alone when nothing executed: ESMA's reading of RTS 9 for a member without a transaction). A
hit needs all of:

* **floors** — at least ``min_rate`` messages a second in the window and an OTR of at least ``min_otr``;
* **its own history** — the window's messages at least ``own_multiple`` × the account's usual count per window
  plus ``own_z`` of its standard deviations. The usual count is an exponentially weighted mean (bias-corrected, so a
  short history weighs as much as it holds) over the windows of the symbol's trading time since the account's first
  message (the windows in which the firm sent nothing on the symbol, a night, do not age it), the window being judged
  left out. An account with less than ``min_history_ms`` of that time has no history to be judged against and is
  judged against its peers and the floors alone;
* **its peers** — at least ``peer_multiple`` × what a busy account of the firm sends on the symbol in a window: the
  ``peer_quantile`` of the firm's accounts' (itself among them) counts per window in which they sent anything.

The hit names the account and its owner, the window's messages (new, replaced, cancelled), its executions, the rate,
the OTR, the account's usual rate and its peers', and a sample of the window's order ids. An account raises at most
one hit per window; the alert policy merges a burst's hits into one alert.

**A burst spread over an owner's accounts** is judged the same way: each beneficial owner and linked-account group
(:func:`~tapewatch.detectors.orders.owners.owner_keys`, the firm's reference data as it is at each report) is one more
sender whose messages are all its accounts', with its own history; it is judged when its burst is spread over its
accounts — none of them sent the floor's count alone, nor more than ``spread_share`` of the owner's messages in the
window (an account that did is judged as an account, against its own history) — and its hit names those accounts.
Its counts do not enter the peers' (those are accounts').

A market maker that cancels and re-quotes all day sends many messages and trades little, so its OTR is high, but its
pace is its own usual one: it fails the history test. A busy algorithm that trades what it sends fails the OTR floor.
What would break it: an account that stuffs at the same pace every day (its history is the burst; the peers and the
floors alone would then have to tell), a burst spread over accounts the reference data does not link, a new account
whose first messages of the symbol are a market maker's steady pace above the floors (alerted once, in its first
window), and a drop copy that leaves out the cancels.

>>> from tapewatch.records import ExecutionReport
>>> def report(ts, exec_type, order_id, account="A1"):
...     return ExecutionReport(symbol="X", venue="v", ts=ts, exec_id=f"{order_id}-{exec_type}", order_id=order_id,
...         tenant="acme", account=account, owner="O1", exec_type=exec_type, side="BUY", price=10.0, quantity=100.0)
>>> detector = FirmMessages()
>>> for n in range(600):  # ten minutes of an ordinary account: an order every second, cancelled
...     _ = detector.on_execution(report(n * 1_000, "new", f"q{n}", "A2"))
>>> hits = []
>>> for n in range(150):  # A1: 150 orders placed and cancelled within three seconds, nothing executed
...     hits += detector.on_execution(report(600_000 + 10 * n, "new", f"s{n}"))
...     hits += detector.on_execution(report(600_000 + 10 * n + 5, "canceled", f"s{n}"))
>>> [(h.evidence["account"], h.evidence["messages"], h.evidence["executions"]) for h in hits]
[('A1', 50, 0)]
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, ClassVar, Final, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Key, Rule
from tapewatch.detectors.orders.firm_spoofing import MODEL_VERSION
from tapewatch.detectors.orders.owners import owner_keys
from tapewatch.detectors.orders.usual_size import UsualSize
from tapewatch.records import AlertKind, ExecType, ExecutionReport

#: the reports that are an account's messages to the venue, and their evidence names
MESSAGES: Final[Mapping[ExecType, str]] = {
    ExecType.NEW: "new",
    ExecType.REPLACED: "replaced",
    ExecType.CANCELED: "cancelled",
    ExecType.REJECTED: "rejected",
}
#: the peers' counts per window are remembered with this half-life (windows of any account)
PEER_HALF_LIFE: Final = 5_000


class FirmMessagesParams(BaseModel):
    """What a burst of one account's messages is, against its floors, its own history and its peers."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    window_ms: int = Field(5_000, ge=100, le=60_000, description="The window an account's message rate is judged over")
    otr_window_ms: int = Field(
        60_000, ge=100, le=3_600_000, description="The window its order-to-trade ratio is judged over (≥ window_ms)"
    )
    min_rate: float = Field(10.0, gt=0, description="Floor: messages a second in the window")
    min_otr: float = Field(
        20.0, ge=1, description="Floor: messages per execution in the OTR window (messages alone without executions)"
    )
    own_multiple: float = Field(5.0, ge=1, description="The window's messages: this × the account's usual count …")
    own_z: float = Field(4.0, ge=0, description="… plus this many of its standard deviations")
    history_half_life_ms: int = Field(
        1_800_000, gt=0, description="The account's usual count forgets with this half-life (the symbol's trading time)"
    )
    min_history_ms: int = Field(
        15_000, ge=0, description="An account with less history than this is judged against its peers alone"
    )
    peer_multiple: float = Field(5.0, ge=1, description="The window's messages: this × a busy peer's count per window")
    peer_quantile: float = Field(
        0.9, gt=0, lt=1, description="A busy peer: this quantile of the firm's accounts' counts per active window"
    )
    sample_orders: int = Field(10, ge=1, le=100, description="Order ids named in a hit")
    spread_share: float = Field(
        0.67, gt=0, lt=1, description="An owner's burst is spread: none of its accounts sent more than this share of it"
    )

    @model_validator(mode="after")
    def _windows(self) -> Self:
        if self.otr_window_ms < self.window_ms:
            raise ValueError("otr_window_ms must be at least window_ms")
        return self


EVIDENCE: Final[Mapping[str, Key]] = {
    "account": Key("the account that sent the burst (an owner's: its accounts that did, ';'-separated)"),
    "owner": Key("its beneficial owner"),
    "messages": Key("its messages in the window (new, replaced, cancelled, rejected)", "messages"),
    "new": Key("of which new orders", "orders"),
    "cancelled": Key("of which cancels", "messages"),
    "replaced": Key("of which replacements", "messages"),
    "executions": Key("its executions in the OTR window", "executions"),
    "rate": Key("its messages a second in the window", "messages/s"),
    "otr": Key("its messages per execution in the OTR window", "ratio"),
    "usual_rate": Key("its usual messages a second (its history; null: too little)", "messages/s"),
    "peer_rate": Key("a busy account of the firm's messages a second on the symbol", "messages/s"),
    "order_ids": Key("a sample of the window's orders' ids at the venue"),
}
RULE: Final = Rule(AlertKind.QUOTE_STUFFING, "quote stuffing by an account", "otr", EVIDENCE)


@dataclass(slots=True)
class AccountTraffic:
    """One account's messages and executions on the symbol, and its history of counts per window."""

    owner: str | None
    #: the window's messages: (ts, order id, kind, account)
    recent: deque[tuple[int, str, str, str]] = field(default_factory=deque)
    #: the OTR window's messages and executions: their times
    messages: deque[int] = field(default_factory=deque)
    executions: deque[int] = field(default_factory=deque)
    #: the window of the symbol's trading time (its index, :attr:`FirmMessages.clock`) the account's count is of
    slot: int = -1
    count: int = 0
    #: exponentially weighted mean of its count per window and of its square; windows of history
    mean: float = 0.0
    square: float = 0.0
    history: int = 0
    last_hit: int = -(2**62)
    #: the window's messages by kind, and by the account that sent them
    kinds: dict[str, int] = field(default_factory=dict)
    senders: dict[str, int] = field(default_factory=dict)


class FirmMessages:
    """One symbol's message bursts by account and by owner, from the drop copy (stage: ``on_execution``). ``owners``,
    ``groups``: the firm's reference data (account → beneficial owner, → linked-account group), read as it is at each
    report; a report's own ``owner`` is used when it does not know the account."""

    PARAMS: ClassVar[type[FirmMessagesParams]] = FirmMessagesParams
    EVIDENCE: ClassVar[Mapping[str, Key]] = EVIDENCE

    def __init__(
        self,
        params: FirmMessagesParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> None:
        self.params = params or FirmMessagesParams()
        self.owners: Mapping[str, str] = owners if owners is not None else {}
        self.groups: Mapping[str, str] = groups if groups is not None else {}
        self.accounts: dict[str, AccountTraffic] = {}
        #: each owner's and group's messages (keys of :func:`owner_keys`), of all its accounts
        self.owned: dict[str, AccountTraffic] = {}
        self.peers = UsualSize(PEER_HALF_LIFE)
        #: the symbol's trading time, in windows: how many windows saw a report of the firm's, and the last one's
        #: start (wall windows of ``window_ms`` since the epoch)
        self.clock = 0
        self.window = -1
        #: the latest report time seen (a report a little older is judged at it)
        self.now = -(2**62)

    def on_execution(self, report: ExecutionReport) -> list[Hit]:
        p = self.params
        now = self.now = max(self.now, report.ts)
        window = now // p.window_ms
        if window != self.window:
            self.window, self.clock = window, self.clock + 1
        account = self.accounts.get(report.account)
        if account is None:
            account = self.accounts[report.account] = AccountTraffic(self.owners.get(report.account) or report.owner)
        elif report.account in self.owners:
            account.owner = self.owners[report.account]
        message = self._apply(account, report, now, peers=True) is not None
        hits = self._judge(report.account, account, now) if message else []
        for key in owner_keys(report.account, report.owner, self.owners, self.groups):
            if key == f"owner:{report.account}":
                continue  # an account that is its own owner: judged as the account
            owned = self.owned.setdefault(key, AccountTraffic(key.split(":", 1)[1]))
            # an execution counts too (the owner's order-to-trade ratio); only a message is judged
            if self._apply(owned, report, now, peers=False) is not None:
                hits += self._judge_owned(owned, now)
        return hits

    def _apply(self, traffic: AccountTraffic, report: ExecutionReport, now: int, peers: bool) -> str | None:
        """The report into a sender's counts: its message kind, None for an execution or a report that is neither."""
        if traffic.slot != self.clock:
            self._close(traffic, peers)
        self._expire(traffic, now)
        if report.exec_type is ExecType.TRADE:
            traffic.executions.append(now)
            return None
        kind = MESSAGES.get(report.exec_type)
        if kind is None:
            return None
        traffic.count += 1
        traffic.recent.append((now, report.order_id, kind, report.account))
        traffic.messages.append(now)
        traffic.kinds[kind] = traffic.kinds.get(kind, 0) + 1
        traffic.senders[report.account] = traffic.senders.get(report.account, 0) + 1
        return kind

    def _judge_owned(self, owned: AccountTraffic, now: int) -> list[Hit]:
        """An owner's or group's burst, when it is spread: none of its accounts sent the floor's messages alone, nor
        more than ``spread_share`` of the owner's (an account that did is judged as one, against its own history)."""
        p = self.params
        most = max(owned.senders.values(), default=0)
        if most >= p.min_rate * p.window_ms / 1000 or most > p.spread_share * len(owned.recent):
            return []
        return self._judge(";".join(sorted(owned.senders)), owned, now)

    def _close(self, account: AccountTraffic, peers: bool) -> None:
        """The sender's count of its last window goes into its history (an account's into its peers' too); the
        windows of the symbol's trading time it sent nothing in count as zeros."""
        if account.slot >= 0:
            alpha = self._alpha()
            quiet = self.clock - account.slot - 1
            keep = (1 - alpha) ** quiet
            account.mean, account.square = account.mean * keep, account.square * keep
            account.mean += alpha * (account.count - account.mean)
            account.square += alpha * (account.count**2 - account.square)
            account.history += 1 + quiet
            if peers and account.count > 0:
                self.peers.observe(float(account.count))
        account.slot, account.count = self.clock, 0

    def _alpha(self) -> float:
        return 1.0 - math.pow(0.5, self.params.window_ms / self.params.history_half_life_ms)

    def _expire(self, account: AccountTraffic, now: int) -> None:
        p = self.params
        recent = account.recent
        while recent and recent[0][0] <= now - p.window_ms:
            _, _, kind, sender = recent.popleft()
            account.kinds[kind] -= 1
            account.senders[sender] -= 1
            if not account.senders[sender]:
                del account.senders[sender]
        for times in (account.messages, account.executions):
            while times and times[0] <= now - p.otr_window_ms:
                times.popleft()

    def _judge(self, name: str, account: AccountTraffic, now: int) -> list[Hit]:
        p = self.params
        messages = len(account.recent)
        seconds = p.window_ms / 1000
        if messages < p.min_rate * seconds or now - account.last_hit < p.window_ms:
            return []
        otr = len(account.messages) / max(1, len(account.executions))
        if otr < p.min_otr:
            return []
        usual: float | None = None
        if account.history * p.window_ms >= p.min_history_ms and account.history > 0:
            weight = 1.0 - (1.0 - self._alpha()) ** account.history  # what the history's windows weigh together
            usual = account.mean / weight
            spread = math.sqrt(max(0.0, account.square / weight - usual**2))
            if messages < p.own_multiple * usual + p.own_z * spread:
                return []
        peer = self.peers.quantile(p.peer_quantile) or 0.0
        if messages < p.peer_multiple * peer:
            return []
        account.last_hit = now
        return [self._hit(name, account, now, messages, otr, usual, peer)]

    def _hit(
        self, name: str, account: AccountTraffic, now: int, messages: int, otr: float, usual: float | None, peer: float
    ) -> Hit:
        p = self.params
        seconds = p.window_ms / 1000
        rate = messages / seconds
        ids = list(dict.fromkeys(order_id for _, order_id, _, _ in islice(account.recent, 4 * p.sample_orders)))
        evidence: dict[str, Any] = {
            "account": name,
            "owner": account.owner,
            "messages": messages,
            "new": account.kinds.get("new", 0),
            "cancelled": account.kinds.get("cancelled", 0),
            "replaced": account.kinds.get("replaced", 0),
            "executions": len(account.executions),
            "rate": round(rate, 2),
            "otr": round(otr, 2),
            "usual_rate": None if usual is None else round(usual / seconds, 4),
            "peer_rate": round(peer / seconds, 4),
            "order_ids": ";".join(ids[: p.sample_orders]),
        }
        strength = math.log2(rate / p.min_rate) + math.log2(otr / p.min_otr)
        score = min(0.99, 0.72 + 0.04 * strength)
        who = f"account {name}" if ";" not in name else f"owner {account.owner}'s accounts {name.replace(';', ', ')}"
        message = (
            f"{who} sent {messages} order messages in {seconds:g} s ({rate:.0f}/s) with "
            f"{len(account.executions)} executions in {p.otr_window_ms / 1000:g} s (OTR {otr:.0f})"
        )
        return Hit(AlertKind.QUOTE_STUFFING, now, account.recent[0][0], now, score, evidence, MODEL_VERSION, message)

    # --- state --------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """Each account's and owner's recent messages and executions and its history, the peers' counts, the trading
        clock."""
        return {
            "accounts": {name: _traffic_state(a) for name, a in self.accounts.items()},
            "owned": {key: _traffic_state(a) for key, a in self.owned.items()},
            "peers": self.peers.to_state(),
            "clock": self.clock,
            "window": self.window,
            "now": self.now,
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        params: FirmMessagesParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> FirmMessages:
        detector = cls(params, owners, groups)
        detector.peers = UsualSize.from_state(state["peers"], PEER_HALF_LIFE)
        detector.clock, detector.window, detector.now = int(state["clock"]), int(state["window"]), int(state["now"])
        detector.accounts = {name: _traffic(a) for name, a in state["accounts"].items()}
        detector.owned = {key: _traffic(a) for key, a in state["owned"].items()}
        return detector


def _traffic_state(a: AccountTraffic) -> dict[str, Any]:
    return {
        "owner": a.owner,
        "recent": [list(row) for row in a.recent],
        "messages": list(a.messages),
        "executions": list(a.executions),
        "slot": a.slot,
        "count": a.count,
        "mean": a.mean,
        "square": a.square,
        "history": a.history,
        "last_hit": a.last_hit,
    }


def _traffic(a: Mapping[str, Any]) -> AccountTraffic:
    traffic = AccountTraffic(
        a["owner"],
        deque((int(ts), str(oid), str(kind), str(account)) for ts, oid, kind, account in a["recent"]),
        deque(int(ts) for ts in a["messages"]),
        deque(int(ts) for ts in a["executions"]),
        int(a["slot"]),
        int(a["count"]),
        float(a["mean"]),
        float(a["square"]),
        int(a["history"]),
        int(a["last_hit"]),
    )
    for _, _, kind, sender in traffic.recent:
        traffic.kinds[kind] = traffic.kinds.get(kind, 0) + 1
        traffic.senders[sender] = traffic.senders.get(sender, 0) + 1
    return traffic


def fresh_state() -> dict[str, Any]:
    """The state of a detector that has seen nothing (whatever its parameters)."""
    return FirmMessages().to_state()
