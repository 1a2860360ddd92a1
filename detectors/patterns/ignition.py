"""Momentum ignition: a one-sided sweep that is not part of a pump or a closing push.

An *ignition chunk* is a sweep's (:mod:`~tapewatch.detectors.patterns.context`): ``|ret_bps| ≥ tape.sweep_ret_bps``,
aggressor imbalance of the same sign ``≥ tape.sweep_imbalance``; and the chunk's activity ``≥ ignition.activity_z``
above the symbol's usual (:func:`~tapewatch.detectors.patterns.base.surge_z` of the chunk: its trade count, on a
snapshot feed — one print per snapshot however hard it trades — also its volume; the sweep is one order among the
chunk's prints) and a move of more than ``tape.sweep_min_spreads`` spreads
(:func:`~tapewatch.detectors.patterns.base.takes_levels`), while no pump is under way (no onset chunk in the onset
window and surge chunks under half of ``ignition.pump_surge_ms``) and the chunk is not a closing push; so it runs after
:mod:`~tapewatch.detectors.patterns.pump_onset` and
:mod:`~tapewatch.detectors.patterns.closing`. Where there are books, the mid moved the same way by more than
``tape.sweep_min_spreads`` spreads too (a snapshot's one print may sit at either quote: the bid-ask bounce).

Such a chunk is a *candidate*. An ignition *ignites*: over the ``ignition.follow_ms`` after it others trade its way
(the chunks' mean aggressor imbalance towards the move ``≥ ignition.follow_imbalance`` and mean activity ``≥
ignition.activity_z``; a chunk the stream did not emit counts as neither), and then the price gives back
``ignition.reversal_share`` of the move within ``ignition.reversal_ms``: the igniter trading against the move he started
and the followers he drew, which is what makes a sweep manipulation (the definition regulators use: orders meant to
start a trend and draw others into it). A burst of trades taking levels in one direction is as often a block buyer,
a liquidity shock or the market's own cascade, hence the reversal on every feed; and a large order that walked
the book and was given back with nobody following it is not an ignition, hence the followers. State key
``ignition``: the pending candidate.

Evidence: ``ret_bps``, ``aggr_imbalance``, ``trades_z``, ``volume_z``, ``range_bps``, ``mid_ret_bps``,
``spread_bps``, ``follow_imbalance``, ``follow_activity_z`` (the followers' means; absent for a candidate resumed
from a state that did not watch followers), ``reversal_bps``, ``reversal_s``.

>>> from tapewatch.detectors.patterns.context import TapeContext
>>> from tapewatch.detectors.patterns.params import TapeParams
>>> params, own = TapeParams(close_time=None), MomentumIgnitionParams()
>>> tape, ignition = TapeContext(params), MomentumIgnition(params, own)
>>> sweep = {"ret_bps": -60.0, "aggr_imbalance": -1.0, "trades_z": 6.0}
>>> follow, back = {"aggr_imbalance": -0.6, "trades_z": 2.0}, {"ret_bps": 35.0}
>>> chunks = [sweep, follow, follow, follow, follow, back]
>>> times = range(5_000, 35_000, 5_000)
>>> [[h.message for h in ignition.on_chunk(tape.on_chunk(t, v), v)] for t, v in zip(times, chunks)]
[[], [], [], [], [], ['one-sided sweep moved the price -60 bps in 5 s, then gave back +35 bps in 30 s']]

Nobody following it, the same sweep given back is a large order and the market, not an ignition:

>>> tape, ignition = TapeContext(params), MomentumIgnition(params, own)
>>> chunks = [sweep, {}, {}, {}, {}, back]
>>> times = range(5_000, 35_000, 5_000)
>>> [[h.message for h in ignition.on_chunk(tape.on_chunk(t, v), v)] for t, v in zip(times, chunks)]
[[], [], [], [], [], []]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Evidence, Key, Rule, bound, derived, number
from tapewatch.detectors.patterns.base import (
    ChunkContext,
    Values,
    activity_bounds,
    cited,
    context,
    get,
    strength,
    surge_z,
    takes_levels,
)
from tapewatch.detectors.patterns.checks import finite, non_negative, not_longer, positive
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: params.py composes this module's record
    from tapewatch.detectors.patterns.params import PatternParams, TapeParams


@dataclass(frozen=True, slots=True)
class MomentumIgnitionParams:
    """Momentum ignition: a sweep (``tape.sweep_*``) that others follow and the igniter sells into."""

    GROUP: ClassVar[str] = "ignition"

    #: a one-sided jump is as often a block order, a liquidity shock or the market's own cascade: the ignition is
    #: confirmed when the price then gives back at least this share of the move (the igniter sells into the
    #: followers) within ``reversal_ms``
    reversal_share: float = 0.5
    reversal_ms: int = 300_000
    #: the candidate's activity need only be this far above the symbol's usual (σ): a sweep's volume is one order
    #: among an interval's prints, while the mid moving several spreads shows the levels taken
    activity_z: float = 1.0
    #: an ignition *ignites*: over the ``follow_ms`` after the sweep others trade its way, the chunks' mean activity
    #: ``≥ activity_z`` and mean same-side aggressor imbalance ``≥ follow_imbalance`` (a large order that walked the
    #: book and was given back with nobody following is not one)
    follow_ms: int = 20_000
    follow_imbalance: float = 0.3
    #: no candidate while a pump is under way: the pump onset's surge chunks (``ChunkContext.surge_chunks``) cover
    #: half this or more
    pump_surge_ms: int = 35_000

    def __post_init__(self) -> None:
        positive(self, "reversal_ms", "follow_ms", "pump_surge_ms")
        finite(self, "activity_z")
        non_negative(self, "reversal_share")
        non_negative(self, "follow_imbalance")  # an imbalance or share bar: above 1 turns the path off
        not_longer(self, "follow_ms", "reversal_ms")


def _levels_of_move(p: PatternParams, e: Evidence) -> float | None:
    ret = number(e, "ret_bps")
    spreads = p.tape.sweep_min_spreads
    return None if ret is None or spreads <= 0 else abs(ret) / spreads


def _spreads(p: PatternParams, e: Evidence) -> float:
    return p.tape.sweep_min_spreads * (number(e, "spread_bps") or 0.0)


def _given_back(p: PatternParams, e: Evidence) -> float | None:
    ret = number(e, "ret_bps")
    return None if ret is None else p.ignition.reversal_share * abs(ret)


def _within(p: PatternParams, _: Evidence) -> float:
    return (p.ignition.reversal_ms + p.tape.chunk_ms) / 1000


_COUNT, _VOLUME = activity_bounds("ignition.activity_z", chunk=True)


class MomentumIgnition:
    """State: the pending candidate (start, move, return since, evidence, followers' imbalance and activity sums,
    followed)."""

    __slots__ = ("follow_chunks", "max_surge", "params", "pending", "tape")

    PARAMS: ClassVar[type[MomentumIgnitionParams]] = MomentumIgnitionParams
    NEEDS: ClassVar[frozenset[str]] = frozenset({"prints"})

    #: the hit's evidence (:mod:`tapewatch.detectors.evidence`): the sweep's chunk (its imbalance and the mid on the
    #: move's side), its followers and its reversal (against the move); no pump or closing push under way (not in it)
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.MOMENTUM_IGNITION,
            "momentum ignition",
            None,
            {
                "ret_bps": cited("ret_bps", bound("|x| ≥", "tape.sweep_ret_bps")),
                "spread_bps": cited(
                    "spread_bps",
                    derived("≤", "tape.sweep_min_spreads", "|ret_bps| / tape.sweep_min_spreads", _levels_of_move),
                ),
                "aggr_imbalance": cited("aggr_imbalance", bound("|x| ≥", "tape.sweep_imbalance")),
                "trades_z": cited("trades_z", _COUNT),
                "volume_z": cited("volume_z", _VOLUME),
                "mid_ret_bps": cited(
                    "mid_ret_bps",
                    derived("|x| ≥", "tape.sweep_min_spreads", "tape.sweep_min_spreads × spread_bps", _spreads),
                ),
                "follow_imbalance": Key(
                    "the followers' mean aggressor imbalance towards the move",
                    "−1…1",
                    bound("≥", "ignition.follow_imbalance"),
                ),
                "follow_activity_z": Key(
                    "the followers' mean activity vs the symbol's baseline", "σ", bound("≥", "ignition.activity_z")
                ),
                "reversal_bps": Key(
                    "price given back since the sweep (against the move)",
                    "bps",
                    derived("|x| ≥", "ignition.reversal_share", "ignition.reversal_share × |ret_bps|", _given_back),
                ),
                "reversal_s": Key(
                    "time from the sweep's start to the reversal",
                    "s",
                    derived("≤", "ignition.reversal_ms", "(ignition.reversal_ms + tape.chunk_ms) / 1000", _within),
                ),
                **context("range_bps"),
            },
        ),
    )

    def __init__(self, tape: TapeParams, params: MomentumIgnitionParams) -> None:
        self.tape, self.params = tape, params
        self.max_surge = tape.chunks(params.pump_surge_ms) // 2
        self.follow_chunks = tape.chunks(params.follow_ms)
        self.pending: _Pending | None = None

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        hits = self._confirm(ctx, v)
        evidence = self._ignition(ctx, v)
        if evidence is not None and self._mid_takes_levels(evidence):
            self.pending = _Pending(ctx.start, evidence["ret_bps"], evidence)
        return hits

    def _ignition(self, ctx: ChunkContext, v: Values) -> dict[str, Any] | None:
        """The chunk's evidence if it is an ignition chunk, else None."""
        p, tape = self.params, self.tape
        ret, imb = get(v, "ret_bps"), get(v, "aggr_imbalance")
        if ret is None or imb is None or abs(ret) < tape.sweep_ret_bps:
            return None
        if not takes_levels(ret, v, tape.sweep_min_spreads):
            return None
        activity = surge_z(v, tape.prints, chunk=True)
        one_sided = imb * (1 if ret > 0 else -1) >= tape.sweep_imbalance and (activity or 0.0) >= p.activity_z
        pump_underway = ctx.surge_chunks >= self.max_surge or ctx.onset_chunks > 0
        if not one_sided or pump_underway or ctx.close_push:
            return None
        return {
            "ret_bps": ret,
            "aggr_imbalance": imb,
            "trades_z": get(v, "trades_z"),
            "volume_z": get(v, "volume_z"),
            "range_bps": get(v, "range_bps"),
            "mid_ret_bps": get(v, "mid_ret_bps"),
            "spread_bps": get(v, "spread_bps"),
        }

    def _mid_takes_levels(self, evidence: Mapping[str, Any]) -> bool:
        """A print may sit at either quote, so its jump may be the bid-ask bounce: where there are books, the
        mid must move the same way by more than ``tape.sweep_min_spreads`` spreads too."""
        ret, mid = evidence["ret_bps"], evidence["mid_ret_bps"]
        if mid is None:
            return True  # no books: the prints are all there is
        return mid * ret > 0 and takes_levels(mid, evidence, self.tape.sweep_min_spreads)

    def _confirm(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        """The pending candidate's hit once others followed it and the price then gave back enough of its move."""
        pending, p = self.pending, self.params
        if pending is None:
            return []
        if ctx.start - pending.start > p.reversal_ms:
            self.pending = None
            return []
        pending.since += get(v, "ret_bps") or 0.0
        if not pending.followed:
            over = self._follow(pending, ctx, v)
            if not pending.followed:
                if over:
                    self.pending = None  # nobody traded its way: a large order given back, not an ignition
                return []
        if pending.since * (1 if pending.move > 0 else -1) > -p.reversal_share * abs(pending.move):
            return []
        self.pending = None
        reversal = {**pending.evidence, "reversal_bps": pending.since, "reversal_s": (ctx.ts - pending.start) / 1000}
        return [self._hit(ctx, pending.start, reversal)]

    def _follow(self, pending: _Pending, ctx: ChunkContext, v: Values) -> bool:
        """Adds the chunk to the followers' sums; once the follow window is over, judges them (``followed``, and
        their means in the evidence) and returns True. Chunks the stream did not emit (no quote, no book) count as
        neither activity nor imbalance."""
        p = self.params
        side = 1.0 if pending.move > 0 else -1.0
        pending.imbalance += (get(v, "aggr_imbalance") or 0.0) * side
        pending.activity += surge_z(v, self.tape.prints, chunk=True) or 0.0
        if ctx.start - pending.start < p.follow_ms:
            return False
        n = self.follow_chunks
        imbalance, activity = pending.imbalance / n, pending.activity / n
        pending.evidence.update(follow_imbalance=imbalance, follow_activity_z=activity)
        pending.followed = imbalance >= p.follow_imbalance and activity >= p.activity_z
        return True

    def _hit(self, ctx: ChunkContext, start: int, evidence: dict[str, Any]) -> Hit:
        tape, ret = self.tape, evidence["ret_bps"]
        message = f"one-sided sweep moved the price {ret:+.0f} bps in {tape.chunk_ms // 1000} s"
        if "reversal_bps" in evidence:
            message += f", then gave back {evidence['reversal_bps']:+.0f} bps in {evidence['reversal_s']:.0f} s"
        return ctx.hit(AlertKind.MOMENTUM_IGNITION, start, strength(abs(ret) / tape.sweep_ret_bps), evidence, message)

    def to_state(self) -> dict[str, Any]:
        return {"ignition": None if self.pending is None else self.pending.to_state()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: MomentumIgnitionParams) -> MomentumIgnition:
        detector = cls(tape, params)
        raw = state["ignition"]
        detector.pending = None if raw is None else _Pending.from_state(raw)
        return detector


class _Pending:
    """An ignition candidate waiting for its followers and its reversal."""

    __slots__ = ("activity", "evidence", "followed", "imbalance", "move", "since", "start")

    def __init__(self, start: int, move: float, evidence: dict[str, Any]) -> None:
        self.start, self.move, self.evidence = start, move, evidence
        self.since = self.imbalance = self.activity = 0.0
        self.followed = False

    def to_state(self) -> list[Any]:
        return [self.start, self.move, self.since, self.evidence, self.imbalance, self.activity, self.followed]

    @classmethod
    def from_state(cls, raw: list[Any]) -> _Pending:
        pending = cls(int(raw[0]), float(raw[1]), dict(raw[3]))
        pending.since = float(raw[2])
        pending.imbalance, pending.activity, pending.followed = float(raw[4]), float(raw[5]), bool(raw[6])
        return pending
