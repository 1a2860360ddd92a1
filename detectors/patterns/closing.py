"""Marking the close: the price pushed in the last minutes before the venue's session close.

Inside the last ``tape.close_window_ms`` before the close (``tape.close_time`` local, ``tape.utc_offset_min``; ``None``
disables it, e.g. for 24-hour crypto; the chunk that straddles the close counts), either of two paths:

* the **push** (buying into the close): a *push chunk* has activity far above the symbol's usual
  (:func:`~tapewatch.detectors.patterns.base.surge_z` ``≥ closing.surge_z``: its trade count, on a snapshot feed also
  its volume), one-sided buying (``aggr_imbalance_long ≥ closing.imbalance``, sides given or inferred) and a drift over
  ``tape.drift_ms`` ``≥ closing.drift_bps`` (the push walks the price up 1–3 % in 3–8 min); hit when push chunks
  covering ``closing.min_ms`` fall within the last ``closing.push_window_ms``;
* the **closing move** (any feed, either direction, no surge needed): tested once, at the
  close (the chunk that ends at it, and again the one that straddles it), not at every chunk of the window:
  the price's move over each of the last ``closing.horizons_ms`` (up to the closing window) in units of the
  symbol's own volatility over as long (:func:`~tapewatch.detectors.patterns.base.chunk_volatility` × √chunks, mid
  where the feed has books); a hit when the largest ``|z| ≥ closing.move_z``. Marking the close is about the
  closing price: a push that the price gave back before the close did not mark it, and one test per session
  instead of one per chunk keeps an ordinary symbol's chance walks from crossing the bar somewhere in ten
  minutes (testing every chunk needs a bar so high that half the pushes on ordinary volume are missed).

Neither path reports within ``closing.after_pump_ms`` of a pump-and-dump hit on the symbol (the pump detectors
run first and set :attr:`ChunkContext.pump_hit`): a pump's ramp or dump running into the close is that pump.

Evidence: ``ms_to_close``, ``push_chunks`` (the push) or ``horizon_s``, ``move_bps`` and ``move_z`` (the
closing move), ``trades_z_long``, ``aggr_imbalance_long``, ``ret_bps_long``, ``drift_bps``, ``drift_z``,
``volume_z_long``.

>>> from tapewatch.detectors.patterns.context import TapeContext
>>> from tapewatch.detectors.patterns.params import TapeParams
>>> tape, close = TapeContext(TapeParams()), MarkingTheClose(TapeParams(), MarkingTheCloseParams())
>>> push = {"trades_z_long": 4.0, "aggr_imbalance_long": 0.6, "ret_bps": 10.0}
>>> close_ts = 1_704_173_400_000  # 2024-01-02 13:30 Asia/Taipei, the TWSE close
>>> hits = [h for i in range(18, 0, -1) for h in close.on_chunk(tape.on_chunk(close_ts - i * 5_000, push), push)]
>>> [h.evidence["push_chunks"] for h in hits]  # the drift reaches 40 bps in the 4th chunk, a minute later
[12, 13, 14, 15]

A walk down on ordinary volume, seen only at the close as a move far beyond the symbol's volatility:

>>> tape, close = TapeContext(TapeParams()), MarkingTheClose(TapeParams(), MarkingTheCloseParams())
>>> down = {"mid_ret_bps": -3.0, "mid_sigma_bps": 2.0, "volume_z_long": 0.5}
>>> hits = [h for i in range(36, -2, -1) for h in close.on_chunk(tape.on_chunk(close_ts - i * 5_000, down), down)]
>>> [(h.evidence["ms_to_close"], h.evidence["horizon_s"], round(h.evidence["move_z"], 1)) for h in hits]
[(0, 185, -9.1), (-5000, 190, -9.2)]
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Key, Rule, bound, fixed
from tapewatch.detectors.patterns.base import (
    ChunkContext,
    Run,
    Values,
    activity_bounds,
    chunk_volatility,
    cited,
    context,
    ge,
    get,
    strength,
    surge_z,
)
from tapewatch.detectors.patterns.checks import non_negative, not_longer, positive
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: params.py composes this module's record
    from tapewatch.detectors.patterns.params import TapeParams


@dataclass(frozen=True, slots=True)
class MarkingTheCloseParams:
    """Marking the close, inside the tape's closing window (``tape.close_window_ms`` before ``tape.close_time``)."""

    GROUP: ClassVar[str] = "closing"

    #: the push: activity (:func:`~tapewatch.detectors.patterns.base.surge_z`) this many σ above the symbol's usual (on
    #: snapshots also the volume: the count of snapshots that printed saturates on a busy symbol at 5 s) …
    surge_z: float = 2.5
    #: … one-sided buying (``aggr_imbalance_long``) at least this …
    imbalance: float = 0.3
    #: … push chunks covering ``min_ms`` within the last ``push_window_ms``: where volume is heavy-tailed,
    #: half-minute surges with some one-sided buying happen every day; a minute's push does not, and the closing
    #: move still finds the shorter pushes at the close
    push_window_ms: int = 90_000
    min_ms: int = 60_000
    #: … and the push walks the price up 1–3 % in 3–8 min: the drift over ``tape.drift_ms`` is at least this (bps)
    drift_bps: float = 40.0
    #: the closing move (any feed, either direction, no surge needed): tested at the close, the price's move over
    #: each of these horizons ending there (capped by the closing window) …
    horizons_ms: tuple[int, ...] = (180_000, 300_000, 480_000, 600_000)
    #: … in units of the symbol's own volatility over as long: a hit at this many
    move_z: float = 2.5
    #: no closing alert this long after a pump-and-dump was reported on the symbol: a move into the close then is
    #: the pump's ramp or its dump (a slow ramp runs 30 min), one episode already in an analyst's queue
    after_pump_ms: int = 1_800_000

    def __post_init__(self) -> None:
        positive(self, "surge_z", "push_window_ms", "min_ms", "move_z")
        non_negative(self, "drift_bps", "after_pump_ms")
        non_negative(self, "imbalance")  # an imbalance or share bar: above 1 turns the path off
        not_longer(self, "min_ms", "push_window_ms")
        if not self.horizons_ms or any(not isinstance(h, int) or h <= 0 for h in self.horizons_ms):
            raise ValueError(f"closing.horizons_ms must be one or more whole ms > 0, got {self.horizons_ms!r}")


_TO_CLOSE = "time to the session close (negative: after it)"
_DRIFT_Z = "the short or long price drift farther from zero, in the symbol's own units"
_COUNT, _VOLUME = activity_bounds("closing.surge_z")


class MarkingTheClose:
    """State keys ``close`` (push chunks) and ``close_levels`` (the closing window's price path); sets
    :attr:`ChunkContext.close_push`."""

    __slots__ = ("levels", "min_pushes", "params", "pump_seen", "pushes", "tape")

    PARAMS: ClassVar[type[MarkingTheCloseParams]] = MarkingTheCloseParams
    NEEDS: ClassVar[frozenset[str]] = frozenset()

    #: the hits' evidence (:mod:`tapewatch.detectors.evidence`), one rule per path; no hit follows a pump-and-dump hit
    #: by less than ``closing.after_pump_ms`` (not in it)
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.MARKING_THE_CLOSE,
            "marking the close: push",
            "push_chunks",
            {
                "ms_to_close": Key(_TO_CLOSE, "ms", bound("≤", "tape.close_window_ms")),
                "push_chunks": Key(
                    "push chunks in the push window", "chunks", bound("≥", "closing.min_ms", chunks=True)
                ),
                "trades_z_long": cited("trades_z_long", _COUNT),
                "volume_z_long": cited("volume_z_long", _VOLUME),
                "aggr_imbalance_long": cited("aggr_imbalance_long", bound("≥", "closing.imbalance")),
                "drift_bps": cited("drift_bps", bound("≥", "closing.drift_bps")),
                "drift_z": Key(_DRIFT_Z, "σ"),
                **context("ret_bps_long"),
            },
        ),
        Rule(
            AlertKind.MARKING_THE_CLOSE,
            "marking the close: closing move",
            "move_z",
            {
                "ms_to_close": Key(_TO_CLOSE, "ms", fixed("≤", 0)),
                "move_z": Key("the move in the symbol's own units over as long", "σ", bound("|x| ≥", "closing.move_z")),
                "move_bps": Key("the price's move into the close", "bps"),
                "horizon_s": Key("the horizon of the largest move, ending at the close", "s"),
                "drift_z": Key(_DRIFT_Z, "σ"),
                **context("trades_z_long", "volume_z_long", "aggr_imbalance_long", "ret_bps_long", "drift_bps"),
            },
        ),
    )

    def __init__(self, tape: TapeParams, params: MarkingTheCloseParams) -> None:
        self.tape, self.params = tape, params
        self.pushes = Run(tape.chunks(params.push_window_ms))
        self.min_pushes = tape.chunks(params.min_ms)
        #: since the closing window opened: ``(chunk end, Σ ret_bps, Σ mid_ret_bps)`` per chunk, after
        #: ``(window open, 0, 0)``; empty outside the window. At most a window's chunks, once a day.
        self.levels: list[tuple[int, float, float]] = []
        #: the end of the last chunk a pump-and-dump was reported in
        self.pump_seen: int | None = None

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p, prints = self.params, self.tape.prints
        push = ctx.close_push = (
            ctx.in_close
            and (activity := surge_z(v, prints)) is not None
            and activity >= p.surge_z
            and ge(v, "aggr_imbalance_long", p.imbalance)
            and ctx.drift_bps >= p.drift_bps
        )
        pushes = self.pushes.observe(ctx.start, push, self.tape.chunk_ms)
        self._track(ctx, v)
        if ctx.pump_hit:
            self.pump_seen = ctx.ts
        if self.pump_seen is not None and ctx.ts - self.pump_seen <= p.after_pump_ms:
            return []  # the move is the pump's (its ramp or its dump), already reported as one
        if push and pushes >= self.min_pushes and self.pushes.first_start is not None:
            ratio = (surge_z(v, prints) or 0.0) / p.surge_z * pushes / self.min_pushes
            run = {"push_chunks": pushes}
            return [
                self._hit(
                    ctx, v, self.pushes.first_start, ratio, run, f"buy-side push into the close ({pushes} chunks)"
                )
            ]
        if ctx.in_close and ctx.ms_to_close is not None and ctx.ms_to_close <= 0:
            return self._closing_move(ctx, v)
        return []

    def _track(self, ctx: ChunkContext, v: Values) -> None:
        if not ctx.in_close:
            self.levels.clear()
            return
        if not self.levels:
            self.levels.append((ctx.start, 0.0, 0.0))
        _, price, mid = self.levels[-1]
        self.levels.append((ctx.ts, price + (get(v, "ret_bps") or 0.0), mid + (get(v, "mid_ret_bps") or 0.0)))

    def _closing_move(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        """The largest move over the horizons ending at this chunk, in σ of the symbol's own volatility."""
        p = self.params
        sigma, of_mid = chunk_volatility(v)
        if sigma is None:
            return []
        column = 2 if of_mid else 1
        ends = [row[0] for row in self.levels]
        last = self.levels[-1]
        best: tuple[float, float, int] | None = None  # (z, move bps, span ms)
        for horizon in p.horizons_ms:
            # the path's last point at least ``horizon`` back, else the window's open
            origin = self.levels[max(0, bisect_right(ends, ctx.ts - horizon) - 1)]
            span = ctx.ts - origin[0]
            if span <= 0:
                continue
            move = last[column] - origin[column]
            z = move / (sigma * math.sqrt(span / self.tape.chunk_ms))
            if best is None or abs(z) > abs(best[0]):
                best = (z, move, span)
        if best is None or abs(best[0]) < p.move_z:
            return []
        z, move, span = best
        direction = "up" if z > 0 else "down"
        evidence = {"horizon_s": int(span // 1000), "move_bps": move, "move_z": z}
        what = f"price moved {direction} into the close ({move:+.0f} bps over {span // 1000} s, {z:+.1f} σ)"
        return [self._hit(ctx, v, ctx.ts - span, abs(z) / p.move_z, evidence, what)]

    def _hit(self, ctx: ChunkContext, v: Values, first: int, ratio: float, run: dict[str, Any], what: str) -> Hit:
        evidence = {
            "ms_to_close": ctx.ms_to_close,
            **run,
            "trades_z_long": get(v, "trades_z_long"),
            "aggr_imbalance_long": get(v, "aggr_imbalance_long"),
            "ret_bps_long": get(v, "ret_bps_long"),
            "drift_bps": ctx.drift_bps,
            "drift_z": ctx.drift_z_abs,
            "volume_z_long": get(v, "volume_z_long"),
        }
        return ctx.hit(
            AlertKind.MARKING_THE_CLOSE,
            first,
            strength(ratio),
            evidence,
            f"{what}, {(ctx.ms_to_close or 0) // 1000} s before it",
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "close": self.pushes.to_state(),
            "close_levels": [list(row) for row in self.levels],
            "close_pump_seen": self.pump_seen,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: MarkingTheCloseParams) -> MarkingTheClose:
        detector = cls(tape, params)
        detector.pushes = Run.from_state(state["close"], detector.pushes.window)
        detector.levels = [(int(ts), float(price), float(mid)) for ts, price, mid in state["close_levels"]]
        seen = state["close_pump_seen"]
        detector.pump_seen = None if seen is None else int(seen)
        return detector
