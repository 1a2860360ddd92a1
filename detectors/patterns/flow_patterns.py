"""The flow-driven detectors of one symbol, run in a fixed order over each closed chunk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final, Protocol, Self, TypeVar

from tapewatch.detectors.alerting import MEDIUM_AT_MOST, Hit
from tapewatch.detectors.evidence import Key
from tapewatch.detectors.patterns.base import PatternDetector, Values
from tapewatch.detectors.patterns.bursts import Bursts
from tapewatch.detectors.patterns.closing import MarkingTheClose
from tapewatch.detectors.patterns.context import TapeContext
from tapewatch.detectors.patterns.ignition import MomentumIgnition
from tapewatch.detectors.patterns.materiality import Materiality
from tapewatch.detectors.patterns.params import PatternParams, TapeParams
from tapewatch.detectors.patterns.pump_crowd import PumpCrowd
from tapewatch.detectors.patterns.pump_dump import PumpDump
from tapewatch.detectors.patterns.pump_onset import PumpOnset
from tapewatch.detectors.patterns.pump_ramp import PumpRamp
from tapewatch.detectors.patterns.pump_surge import PumpSurge
from tapewatch.detectors.patterns.spoofing import Spoofing
from tapewatch.detectors.patterns.wash import WashTrading
from tapewatch.records import AlertKind


class _Part(Protocol):
    """A part of the flow: built from the tape's parameters and its own, fresh or restored from the state."""

    def __init__(self, tape: TapeParams, params: Any) -> None: ...

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: Any) -> Self: ...


_P = TypeVar("_P", bound=_Part)


class FlowPatterns:
    """:meth:`on_chunk` returns the hits of every detector for one closed chunk (``ts`` = its end).

    Order matters only where a detector reads what another concluded: momentum ignition runs after the pump
    onset (a pump under way) and marking the close (a closing push); marking the close after the pump
    detectors (a pump reported). The state is the union of the detectors' own keys and the materiality gate's.

    A pump-and-dump seen on its way up (onset, crowd, surge, ramp) is a *run-up*: medium at most, whatever its
    strength. It escalates, under the same alert id, when the dump detector sees the rise sold back. Every hit then
    passes the materiality gate (:mod:`~tapewatch.detectors.patterns.materiality`).

    >>> params = PatternParams().with_values({"tape.close_time": None})  # never closes: no marking the close
    >>> patterns = FlowPatterns(params)
    >>> quiet = {"trades": 3.0, "trades_z": 0.0, "ret_bps": 0.0}
    >>> patterns.on_chunk(5_000, quiet), patterns.on_chunk(10_000, quiet)
    ([], [])
    >>> mirrors = {"mirror_z_long": 9.0, "mirror_vol_share_long": 0.6, "order_imbalance_long": 0.0,
    ...            "mirror_trades_long": 6.0, "mirror_excess_share_long": 0.5}
    >>> [(hit.kind.value, hit.window_start, round(hit.score, 2)) for hit in patterns.on_chunk(15_000, mirrors)]
    [('wash_trading', 10000, 0.69)]
    >>> onset = {"buy_orders_z_long": 7.0, "order_imbalance_z_long": 3.5, "rush_max_z_long": 8.0, "ret_bps": 20.0}
    >>> [[hit.kind.value for hit in patterns.on_chunk(ts, onset)] for ts in (20_000, 25_000)]  # two chunks
    [[], ['pump_and_dump']]

    A detector restored from the state goes on where the original is:

    >>> restored = FlowPatterns.from_state(patterns.to_state(), params)
    >>> [[hit.kind.value for hit in detector.on_chunk(30_000, onset)] for detector in (restored, patterns)]
    [['pump_and_dump'], ['pump_and_dump']]
    """

    __slots__ = (
        "bursts",
        "closing",
        "detectors",
        "ignition",
        "materiality",
        "not_run",
        "params",
        "pump_crowd",
        "pump_dump",
        "pump_onset",
        "pump_ramp",
        "pump_surge",
        "running",
        "spoofing",
        "tape",
        "wash",
    )

    def __init__(self, params: PatternParams | None = None) -> None:
        self._build(params or PatternParams(), None)

    @classmethod
    def from_state(cls, state: Mapping[str, Any], params: PatternParams | None = None) -> FlowPatterns:
        """Restore :meth:`to_state`: every part restored from its own keys."""
        patterns = cls.__new__(cls)  # built as __init__ builds it, its parts from the state
        patterns._build(params or PatternParams(), state)
        return patterns

    def _build(self, p: PatternParams, state: Mapping[str, Any] | None) -> None:
        """The parts, fresh (``state`` ``None``) or restored from ``state``."""
        self.params = p
        tape = p.tape  # every detector is built from the tape's parameters and its own

        def part(kind: type[_P], own: Any) -> _P:
            return kind(tape, own) if state is None else kind.from_state(state, tape, own)

        self.tape = TapeContext(tape) if state is None else TapeContext.from_state(state, tape)
        self.pump_onset = part(PumpOnset, p.pump_onset)
        self.pump_crowd = part(PumpCrowd, p.pump_crowd)
        self.pump_ramp = part(PumpRamp, p.pump_ramp)
        self.pump_surge = part(PumpSurge, p.pump_surge)
        self.pump_dump = part(PumpDump, p.pump_dump)
        self.spoofing = part(Spoofing, p.spoofing)
        self.wash = part(WashTrading, p.wash)
        self.closing = part(MarkingTheClose, p.closing)
        self.ignition = part(MomentumIgnition, p.ignition)
        self.bursts = part(Bursts, p.bursts)
        self.materiality = part(Materiality, p.materiality)
        self.detectors: tuple[PatternDetector, ...] = (
            self.pump_onset,
            self.pump_crowd,
            self.pump_ramp,
            self.pump_surge,
            self.pump_dump,
            self.spoofing,
            self.wash,
            self.closing,
            self.ignition,
            self.bursts,
        )
        carried = set(tape.carries)
        #: the detectors the feed can feed, in order (one that needs what it does not carry could never fire)
        self.running = tuple(detector for detector in self.detectors if carried >= detector.NEEDS)
        #: what every hit says of the detectors that could not run on this feed (empty: every one ran)
        self.not_run = ", ".join(sorted(name for name, needs in self.ran().items() if needs))

    def ran(self) -> dict[str, frozenset[str]]:
        """Each detector by its parameters' group (``pump_ramp``) → what it needs that the feed does not carry
        (empty: it runs)."""
        carried = set(self.params.tape.carries)
        return {detector.PARAMS.GROUP: detector.NEEDS - carried for detector in self.detectors}

    def ms_to_close(self, ts: int) -> int | None:
        return self.tape.ms_to_close(ts)

    def on_chunk(self, ts: int, values: Values) -> list[Hit]:
        ctx = self.tape.on_chunk(ts, values)
        self.materiality.on_chunk(ctx, values)
        hits: list[Hit] = []
        for detector in self.running:
            found = detector.on_chunk(ctx, values)
            ctx.pump_hit = ctx.pump_hit or any(hit.kind is AlertKind.PUMP_AND_DUMP for hit in found)
            hits += found if detector is self.pump_dump else [_run_up(hit) for hit in found]
        # the detectors read each other's conclusions (a pump under way) whether or not its move was material yet
        judged = self.materiality.on_hits(ctx, values, hits)
        if self.not_run:
            judged = [replace(hit, evidence={**hit.evidence, "not_run": self.not_run}) for hit in judged]
        return judged

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {**self.tape.to_state(), **self.materiality.to_state()}
        for detector in self.detectors:
            state.update(detector.to_state())
        return state


#: what a hit on a feed that could not feed every detector carries (:attr:`FlowPatterns.not_run`)
COVERAGE_EVIDENCE: Final[Mapping[str, Key]] = {
    "not_run": Key("the detectors this symbol's feed cannot feed (no prints or no books): silent, not clean"),
}


def _run_up(hit: Hit) -> Hit:
    """A pump found on its way up is a run-up: medium at most. Buying that lifts a price is also what news and a
    patient parent order look like; the episode escalates (same alert) when the dump detector sees it sold back."""
    if hit.kind is not AlertKind.PUMP_AND_DUMP or hit.score <= MEDIUM_AT_MOST:
        return hit
    return replace(hit, score=MEDIUM_AT_MOST)
