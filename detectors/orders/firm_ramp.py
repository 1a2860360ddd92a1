"""Pumps and marking the close driven by the firm's own accounts: an owner (or linked-account group) whose net buying
or selling is a large share of everything the symbol traded meanwhile, while the price moved its way by far more
than the symbol's own volatility says a price moves in as long.

On each execution of an owner, over its executions of the last ``window_ms`` (at least ``min_trades``, the first
``min_span_ms`` or more before): its **net** executed quantity against the public tape's volume over the same
time (``share`` or more), and the public price's move from just before its first execution to now, in the net's
direction, far beyond chance and material: ``move_z`` × the symbol's one-minute volatility (known before the owner
started) × √minutes, ``min_move_bps`` or more, and the part of it that the owner's share of the volume accounts for
(share × move) ``min_driven_bps`` or more — an owner that is all the market needs a smaller move to have driven it
than one that is two fifths of it. Then:

* within ``close_window_ms`` of the venue's close, either direction: **marking the close**, naming the accounts;
* else, buying the price up: a **pump**'s run-up, raised at most medium; when the same owner then sells back
  ``dump_share`` of what it bought within ``dump_within_ms``, the price still above where it started, the
  pump-and-dump is whole and the alert escalates.

A meta-order works a parent order over an hour at a participation its trader chose, and the price it moves is
about what its size moves; a market maker's net is near nothing; a genuine large order rests and others trade into
it, the price moving against it. What would break it: a ramp shared between accounts the reference data does not
link (each below the share), one that walks the price on a symbol so volatile that its move is ordinary there, a
pump whose buying goes through other firms (only the public feed shows it), and a thin symbol where one ordinary
client's order is most of a few minutes' volume and moves the price (the floors on trades and span are what keep
that out). Down-ramps outside the close (a bear raid) are not raised.

The public tape (:class:`~tapewatch.detectors.orders.public_tape.PublicTape`) is read as of each execution's time;
without the venue's public trades nothing is raised.

>>> from tapewatch.detectors.orders.public_tape import PublicTape
>>> from tapewatch.records import ExecutionReport
>>> tape = PublicTape(keep_ms=900_000, min_minutes=5)
>>> for second in range(0, 1_200):  # twenty minutes of 100 shares a second, the price wobbling a basis point
...     tape.on_order_values(second * 1_000, 100.0 * (1 + 1e-4 * (second // 60 % 2)), 100.0)
>>> ramp = FirmRamp(tape, lambda ts: None, FirmRampParams())
>>> hits = []
>>> for n, second in enumerate(range(1_200, 1_320, 5)):  # an account buys 300 a print as the price climbs
...     price = 100.0 * (1 + 0.0005 * n)
...     tape.on_order_values(second * 1_000, price, 400.0)
...     hits += ramp.on_execution(ExecutionReport(symbol="X", venue="v", ts=second * 1_000, exec_id=f"e{n}",
...         order_id=f"o{n}", tenant="acme", account="A1", owner="O1", exec_type="trade", side="BUY", price=price,
...         quantity=300.0, last_qty=300.0, last_price=price, cum_qty=300.0))
>>> first = hits[0]
>>> str(first.kind), first.evidence["accounts"], first.evidence["share"] >= 0.5, first.score < 0.85
('pump_and_dump', 'A1', True, True)
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field

from tapewatch.detectors.alerting import MEDIUM_AT_MOST, Hit
from tapewatch.detectors.evidence import Key, Rule
from tapewatch.detectors.orders.firm_spoofing import MODEL_VERSION
from tapewatch.detectors.orders.owners import owner_keys
from tapewatch.detectors.orders.public_tape import PublicTape
from tapewatch.records import AlertKind, ExecType, ExecutionReport, OrderSide

#: milliseconds to the venue's close from a time (negative after it), None where it never closes
MsToClose = Callable[[int], int | None]


class FirmRampParams(BaseModel):
    """What an owner driving the price is, and when its ramp is a pump or marks the close."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    window_ms: int = Field(300_000, gt=0, description="An owner's executions counted over this")
    min_trades: int = Field(5, ge=1, description="… at least this many of them")
    min_span_ms: int = Field(30_000, ge=0, description="… the first at least this long before")
    share: float = Field(
        0.4, gt=0, le=1, description="Its net executed quantity, at least this share of the symbol's volume meanwhile"
    )
    move_z: float = Field(4.0, gt=0, description="The price moved its way this × the symbol's volatility over as long")
    min_move_bps: float = Field(20.0, gt=0, description="… and at least this much")
    min_driven_bps: float = Field(20.0, gt=0, description="… and its share of the volume × the move at least this")
    close_window_ms: int = Field(600_000, ge=0, description="Within this of the venue's close it marks the close")
    dump_share: float = Field(0.5, gt=0, le=1, description="A pump's owner selling back this share of what it bought")
    dump_within_ms: int = Field(1_800_000, gt=0, description="… within this of its run-up")


EVIDENCE: Final[Mapping[str, Key]] = {
    "accounts": Key("the owner's accounts that traded"),
    "owner": Key("their beneficial owner (or linked-account group)"),
    "trades": Key("their executions in the window", "trades"),
    "net_qty": Key("what they bought (sold: negative), net", "shares"),
    "share": Key("that, against everything the symbol traded meanwhile", "share"),
    "move_bps": Key("the price's move their way meanwhile", "bps"),
    "move_z": Key("that, in the symbol's own volatility over as long", "σ"),
    "ms_to_close": Key("time to the venue's close", "ms"),
    "dumped_qty": Key("what the owner sold back after the run-up", "shares"),
    "order_ids": Key("their orders' ids at the venue (the latest)"),
}
RULES: Final = (
    Rule(AlertKind.PUMP_AND_DUMP, "a pump by an owner's accounts", "accounts", EVIDENCE),
    Rule(AlertKind.MARKING_THE_CLOSE, "the close marked by an owner's accounts", "accounts", EVIDENCE),
)
#: how many order ids an alert lists
ORDER_IDS: Final = 20


@dataclass(slots=True)
class Execution:
    ts: int
    signed: float
    account: str
    order_id: str


@dataclass(slots=True)
class Ramp:
    """An owner's run-up, waiting for its dump."""

    ts: int
    start: float  # the price before it
    bought: float
    dumped: float = 0.0


@dataclass(slots=True)
class OwnerFlow:
    executions: deque[Execution] = field(default_factory=deque)
    net: float = 0.0
    ramp: Ramp | None = None
    #: derived from the executions: the newest tape bucket they reach and their net in it, and each account's count
    bucket: int = -1
    bucket_net: float = 0.0
    accounts: Counter[str] = field(default_factory=Counter)


class FirmRamp:
    """One symbol's owners driving the price, from the drop copy (``on_execution``) against the public tape."""

    PARAMS: ClassVar[type[FirmRampParams]] = FirmRampParams
    EVIDENCE: ClassVar[Mapping[str, Key]] = EVIDENCE

    def __init__(
        self,
        tape: PublicTape,
        ms_to_close: MsToClose,
        params: FirmRampParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> None:
        self.tape, self.ms_to_close = tape, ms_to_close
        self.params = params or FirmRampParams()
        self.owners: Mapping[str, str] = owners if owners is not None else {}
        self.groups: Mapping[str, str] = groups if groups is not None else {}
        self.flows: dict[str, OwnerFlow] = {}

    def on_execution(self, report: ExecutionReport) -> list[Hit]:
        if report.exec_type is not ExecType.TRADE or report.last_price is None:
            return []
        signed = report.last_qty if report.side is OrderSide.BUY else -report.last_qty
        execution = Execution(report.ts, signed, report.account, report.order_id)
        hits: list[Hit] = []
        for key in owner_keys(report.account, report.owner, self.owners, self.groups):
            flow = self.flows.setdefault(key, OwnerFlow())
            self._add(flow, execution)
            hit = self._dumped(key, flow, execution) or self._ramped(key, flow, report.ts)
            if hit is not None:
                hits.append(hit)
            if not flow.executions and flow.ramp is None:
                del self.flows[key]
        return hits

    def _add(self, flow: OwnerFlow, execution: Execution) -> None:
        self._count(flow, execution)
        flow.net += execution.signed
        while flow.executions[0].ts < execution.ts - self.params.window_ms:
            gone = flow.executions.popleft()
            flow.net -= gone.signed
            flow.accounts[gone.account] -= 1
            if not flow.accounts[gone.account]:
                del flow.accounts[gone.account]
            if gone.ts >= flow.bucket:
                flow.bucket_net -= gone.signed
        if flow.ramp is not None and flow.ramp.ts < execution.ts - self.params.dump_within_ms:
            flow.ramp = None

    def _count(self, flow: OwnerFlow, execution: Execution) -> None:
        """An execution into the flow's derived counts (not its net: restored from the state as it was)."""
        flow.executions.append(execution)
        flow.accounts[execution.account] += 1
        bucket = execution.ts - execution.ts % self.tape.bucket_ms
        if bucket > flow.bucket:
            flow.bucket, flow.bucket_net = bucket, execution.signed
        elif execution.ts >= flow.bucket:
            flow.bucket_net += execution.signed

    def _dumped(self, key: str, flow: OwnerFlow, execution: Execution) -> Hit | None:
        ramp = flow.ramp
        if ramp is None or execution.signed >= 0:
            return None
        ramp.dumped -= execution.signed
        price = self.tape.price_before(execution.ts)
        if ramp.dumped < self.params.dump_share * ramp.bought or price is None or price <= ramp.start:
            return None
        flow.ramp = None
        evidence = {**self._who(key, flow), "dumped_qty": ramp.dumped, "net_qty": ramp.bought}
        message = f"{evidence['accounts']} sold back {ramp.dumped:g} of the {ramp.bought:g} they bought up"
        return Hit(AlertKind.PUMP_AND_DUMP, execution.ts, ramp.ts, execution.ts, 0.9, evidence, MODEL_VERSION, message)

    def _ramped(self, key: str, flow: OwnerFlow, ts: int) -> Hit | None:
        p, tape = self.params, self.tape
        executions = flow.executions
        first = executions[0].ts
        if len(executions) < p.min_trades or ts - first < p.min_span_ms:
            return None
        volume, start, now = tape.volume(first, ts), tape.price_before(first), tape.price_before(ts)
        sigma = tape.sigma_bps(first)
        if not volume or not start or not now or sigma is None:
            return None
        net = flow.net - self._this_bucket(flow, ts)
        direction = 1.0 if net > 0 else -1.0
        move = direction * math.log(now / start) * 1e4
        share = abs(net) / volume
        floor = max(p.min_move_bps, p.min_driven_bps / min(share, 1.0)) if share > 0 else math.inf
        bar = max(floor, p.move_z * sigma * math.sqrt(max(ts - first, 60_000) / 60_000))
        if share < p.share or move < bar:
            return None
        return self._hit(key, flow, ts, first, share, move, bar, sigma, net, start)

    def _this_bucket(self, flow: OwnerFlow, ts: int) -> float:
        """The net of the executions of ``ts``'s own bucket of the tape and after (its volume is not counted yet):
        kept for the newest bucket, walked back from the newest execution for a report that came late."""
        bucket = ts - ts % self.tape.bucket_ms
        if bucket == flow.bucket:
            return flow.bucket_net
        net = 0.0
        for execution in reversed(flow.executions):
            if execution.ts < bucket:
                break
            net += execution.signed
        return net

    def _hit(
        self,
        key: str,
        flow: OwnerFlow,
        ts: int,
        first: int,
        share: float,
        move: float,
        bar: float,
        sigma: float,
        net: float,
        start: float,
    ) -> Hit | None:
        to_close = self.ms_to_close(ts)
        closing = to_close is not None and -self.tape.bucket_ms <= to_close <= self.params.close_window_ms
        if not closing and net < 0:
            return None
        strength = min(share / self.params.share, move / bar)
        minutes = max(ts - first, 60_000) / 60_000
        evidence: dict[str, Any] = {
            **self._who(key, flow),
            "trades": len(flow.executions),
            "net_qty": net,
            "share": round(share, 4),
            "move_bps": round(move, 2),
            "move_z": round(move / (sigma * math.sqrt(minutes)), 2) if sigma > 0 else None,
            "ms_to_close": to_close,
        }
        if closing:
            score = min(0.94, 0.75 + 0.1 * math.log2(strength))
            message = (
                f"{evidence['accounts']} moved the price {move:.0f} bps with {share:.0%} of the volume before the close"
            )
            return Hit(AlertKind.MARKING_THE_CLOSE, ts, first, ts, score, evidence, MODEL_VERSION, message)
        if flow.ramp is None:
            flow.ramp = Ramp(ts, start, net)
        else:
            flow.ramp.bought = max(flow.ramp.bought, net)
        score = min(MEDIUM_AT_MOST, 0.72 + 0.1 * math.log2(strength))
        message = f"{evidence['accounts']} bought the price up {move:.0f} bps with {share:.0%} of the volume"
        return Hit(AlertKind.PUMP_AND_DUMP, ts, first, ts, score, evidence, MODEL_VERSION, message)

    def _who(self, key: str, flow: OwnerFlow) -> dict[str, Any]:
        order_ids: dict[str, None] = {}
        for execution in reversed(flow.executions):  # the latest, walked back only until there are enough
            order_ids.setdefault(execution.order_id)
            if len(order_ids) == ORDER_IDS:
                break
        return {
            "owner": key.split(":", 1)[1],
            "accounts": ";".join(sorted(flow.accounts)),
            "order_ids": ";".join(reversed(order_ids)),
        }

    # --- state --------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            key: {
                "executions": [[e.ts, e.signed, e.account, e.order_id] for e in flow.executions],
                "net": flow.net,
                "ramp": None
                if flow.ramp is None
                else [flow.ramp.ts, flow.ramp.start, flow.ramp.bought, flow.ramp.dumped],
            }
            for key, flow in self.flows.items()
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        tape: PublicTape,
        ms_to_close: MsToClose,
        params: FirmRampParams | None = None,
        owners: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> FirmRamp:
        detector = cls(tape, ms_to_close, params, owners, groups)
        for key, raw in state.items():
            ramp = None if raw["ramp"] is None else Ramp(int(raw["ramp"][0]), *map(float, raw["ramp"][1:]))
            flow = detector.flows[key] = OwnerFlow(net=float(raw["net"]), ramp=ramp)
            for ts, signed, account, order_id in raw["executions"]:
                detector._count(flow, Execution(int(ts), float(signed), account, order_id))
        return detector
