"""Spoofing / layering: a persistent layer vanished without trading, under pressure, repeatedly.

A *layer* (a level 2–5 of ``≥ 4×`` the book's mean level, shown over consecutive snapshots, or in one where books
come 2 s or more apart and a few seconds' rest shows only once; not one that moved to another price or left with the
other side's: :mod:`tapewatch.detectors.layers`) vanished without trading, ``layer_cancel_rel ≥ spoofing.layer_rel``
typical levels left untraded, in a chunk whose cancellations there stand out against the symbol's own book churn
(``cancel_l25_z ≥ spoofing.cancel_z``: where large quotes are cancelled all day, as market makers re-quote, one more is
ordinary), *under pressure*, which is any of:

* the mid (or the last price) moved away from the layer's side by ``≥ spoofing.move_sigma`` of the symbol's own
  long-window volatility;
* the mid moved away from it over the layer's whole life by ``≥ spoofing.move_sigma`` of the symbol's
  volatility over that long (``layer_move_bps``): a layer shown for a minute moves the
  price early and is cancelled late, when the long window no longer sees the move;
* where the feed tells the sides, the flow traded on the other side (``aggr_imbalance_long`` towards the
  layer's side ``≥ spoofing.pressure_imbalance``: the spoofer's genuine orders being filled).

Hit when ``spoofing.min_cycles`` chunks of the last ``spoofing.window_ms`` saw that, or ``spoofing.min_layers`` chunks
saw such a layer vanish (beyond the churn) and at least one of them under pressure: spoofing cycles
repeat, and a single vanished layer with a drift the right way happens by chance; pressure shows one cycle at a time
and a 5 s snapshot often misses the one-tick move it made, so a third cycle says as much as a second push. Churn
alone never qualifies: a size that jumps and falls with every snapshot is not shown twice at one price (without
persistence and pressure, a vanished size against the typical level fires hundreds of times a day on such a book).

Evidence: ``layer_cancel_rel``, ``layer_side``, ``cycles`` (under pressure), ``layers``, ``cancel_l25``,
``cancel_rel``, ``cancel_l25_z``, ``level_max_rel_long``, ``level_max_z_long``, ``book_imb_l5_long``,
``layer_move_bps``, ``layer_books``, ``layer_level``, ``price_moved_away``, ``flow_on_other_side``.

>>> from tapewatch.detectors.patterns.context import TapeContext
>>> from tapewatch.detectors.patterns.params import TapeParams
>>> params, own = TapeParams(close_time=None), SpoofingParams()
>>> tape, spoofing = TapeContext(params), Spoofing(params, own)
>>> layer_gone = {"level_typical": 100.0, "cancel_l25": 900.0, "layer_cancel_rel": 8.0, "layer_side": 1.0,
...               "cancel_l25_z": 6.0, "mid_sigma_bps": 2.0, "mid_ret_bps_long": 20.0}
>>> [len(spoofing.on_chunk(tape.on_chunk(ts, layer_gone), layer_gone)) for ts in (5_000, 10_000)]
[0, 1]

A layer shown for 12 chunks (60 snapshots at 5 a chunk) whose effect on the mid came too early for the long
window: 30 bps over its life is far beyond ``0.5 × 2 bps × √12``; 3 bps is not.

>>> spoofing = Spoofing(params, own)
>>> long_lived = {**layer_gone, "mid_ret_bps_long": 0.0, "layer_move_bps": 30.0, "layer_books": 60.0,
...               "book_updates": 5.0}
>>> [len(spoofing.on_chunk(tape.on_chunk(ts, long_lived), long_lived)) for ts in (15_000, 20_000)]
[0, 1]
>>> spoofing = Spoofing(params, own)
>>> early = {**long_lived, "layer_move_bps": 3.0}
>>> [len(spoofing.on_chunk(tape.on_chunk(ts, early), early)) for ts in (25_000, 30_000)]
[0, 0]

Pressure is seen one cycle at a time, and a 5 s snapshot often misses a one-tick move: a third vanished layer within
the window, one of the three under pressure, is as repeated as a second pressed one.

>>> hit, = spoofing.on_chunk(tape.on_chunk(35_000, long_lived), long_lived)
>>> hit.evidence["layers"], hit.evidence["cycles"], hit.window_start
(3, 1, 10000)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Key, Rule, bound
from tapewatch.detectors.patterns.base import ChunkContext, Run, Values, cited, context, get, strength
from tapewatch.detectors.patterns.checks import non_negative, positive
from tapewatch.records import AlertKind

if TYPE_CHECKING:  # annotations only: params.py composes this module's record
    from tapewatch.detectors.patterns.params import TapeParams


@dataclass(frozen=True, slots=True)
class SpoofingParams:
    """Large size appears and vanishes far beyond the book's own churn, with pressure, repeatedly."""

    GROUP: ClassVar[str] = "spoofing"

    #: pressure by flow: the flow trades on the other side of the layers (``aggr_imbalance_long`` towards the layer's
    #: side at least this)
    pressure_imbalance: float = 0.3
    #: a layer displayed over consecutive snapshots that vanished untraded, this many times the typical level
    layer_rel: float = 6.0
    #: … and the chunk's size cancelled at levels 2–5 stands out against the symbol's own book churn
    #: (``cancel_l25_z``): a market maker's large quotes are cancelled all day long, a spoofer's layers are not
    cancel_z: float = 3.0
    #: pressure by price: the mid (or last price) moved away from the layer's side by this many of the symbol's
    #: own long-window volatility units
    move_sigma: float = 0.5
    #: hit when this many chunks of the last ``window_ms`` saw a layer vanish under pressure (a count of spoofing
    #: cycles, not a duration: one cycle shows in one chunk whatever its length). The window holds two cycles of a
    #: layer resting a minute and a half
    min_cycles: int = 2
    window_ms: int = 240_000
    #: … or this many chunks of the window saw such a layer vanish beyond the book's churn, at least one of them
    #: under pressure: pressure is seen one cycle at a time and a 5 s snapshot often misses a one-tick move; a third
    #: cycle says as much as a second push
    min_layers: int = 3

    def __post_init__(self) -> None:
        positive(self, "window_ms", "min_cycles", "min_layers")
        non_negative(self, "layer_rel", "cancel_z", "move_sigma")
        non_negative(self, "pressure_imbalance")  # an imbalance or share bar: above 1 turns the path off


class Spoofing:
    """State keys ``spoof`` (layers that vanished under pressure) and ``spoof_layers`` (all that vanished)."""

    __slots__ = ("cycles", "layers", "params", "tape")

    PARAMS: ClassVar[type[SpoofingParams]] = SpoofingParams
    NEEDS: ClassVar[frozenset[str]] = frozenset({"books"})

    #: the hit's evidence (:mod:`tapewatch.detectors.evidence`): this chunk's layer vanished beyond the churn; the
    #: window repeats it (either count). Pressure is the price's move (``price_moved_away``, against
    #: ``spoofing.move_sigma`` of a volatility the evidence does not carry) or the flow (``flow_on_other_side``) in this
    #: chunk, and in one chunk of the window at least (``cycles``): context here
    EVIDENCE: ClassVar[tuple[Rule, ...]] = (
        Rule(
            AlertKind.SPOOFING,
            "spoofing",
            None,
            {
                "layer_cancel_rel": cited("layer_cancel_rel", bound("≥", "spoofing.layer_rel")),
                "cancel_l25_z": cited("cancel_l25_z", bound("≥", "spoofing.cancel_z")),
                "cycles": Key(
                    "chunks of the window whose layer vanished under pressure",
                    "chunks",
                    bound("≥", "spoofing.min_cycles", unless="cycles ≥ 1 and layers ≥ spoofing.min_layers"),
                ),
                "layers": Key(
                    "chunks of the window whose layer vanished beyond the churn",
                    "chunks",
                    bound("≥", "spoofing.min_layers", unless="cycles ≥ spoofing.min_cycles"),
                ),
                "layer_side": cited("layer_side"),
                "price_moved_away": Key("the price moved away from the layer's side, this chunk"),
                "flow_on_other_side": Key("the flow traded on the other side of the layer, this chunk"),
                "cancel_l25": cited("cancel_l25"),
                "cancel_rel": Key("size cancelled at levels 2–5 / the typical level size, this chunk", "×"),
                **context(
                    "layer_move_bps",
                    "layer_books",
                    "layer_level",
                    "level_max_rel_long",
                    "level_max_z_long",
                    "book_imb_l5_long",
                ),
            },
        ),
    )

    def __init__(self, tape: TapeParams, params: SpoofingParams) -> None:
        self.tape, self.params = tape, params
        self.cycles = Run(tape.chunks(params.window_ms))  # layers that vanished under pressure
        self.layers = Run(tape.chunks(params.window_ms))  # layers that vanished, pressure or not

    def on_chunk(self, ctx: ChunkContext, v: Values) -> list[Hit]:
        p, tape = self.params, self.tape
        typical = get(v, "level_typical")
        cancel = get(v, "cancel_l25")
        if not typical or typical <= 0 or cancel is None:
            return []
        layer = get(v, "layer_cancel_rel") or 0.0
        side = get(v, "layer_side") or 0.0
        chunk_sigma = get(v, "mid_sigma_bps") or get(v, "ret_sigma_bps") or 0.0
        moves = (get(v, "mid_ret_bps_long") or 0.0, get(v, "ret_bps_long") or 0.0)
        moved = any(x * side > p.move_sigma * chunk_sigma * math.sqrt(tape.long_chunks) for x in moves)
        moved = moved or self._moved_over_life(v, chunk_sigma)
        # by flow only where the feed tells the sides: inferred ones over a few snapshots are mostly noise
        sided = (get(v, "inferred_share_long") or 0.0) <= 0.5
        traded = sided and (get(v, "aggr_imbalance_long") or 0.0) * side >= p.pressure_imbalance
        level = get(v, "layer_level")
        unusual = (get(v, "cancel_l25_z") or 0.0) >= p.cancel_z  # beyond the book's own churn
        vanished = layer >= p.layer_rel and unusual
        pressed = vanished and (moved or traded)
        # spoofing repeats (layer, push, cancel, again): one vanished layer with the price drifting the right
        # way happens by chance in a busy book, several within a couple of minutes do not
        cycles = self.cycles.observe(ctx.start, pressed, tape.chunk_ms)
        layers = self.layers.observe(ctx.start, vanished, tape.chunk_ms)
        repeated = cycles >= p.min_cycles or (cycles >= 1 and layers >= p.min_layers)
        first = self.layers.first_start
        if not vanished or not repeated or first is None:
            return []
        evidence = {
            "cancel_l25": cancel,
            "cancel_rel": cancel / typical,
            "layer_side": side,
            "cancel_l25_z": get(v, "cancel_l25_z"),
            "level_max_rel_long": get(v, "level_max_rel_long"),
            "level_max_z_long": get(v, "level_max_z_long"),
            "layer_cancel_rel": layer,
            "cycles": cycles,
            "layers": layers,
            "book_imb_l5_long": get(v, "book_imb_l5_long"),
            "layer_move_bps": get(v, "layer_move_bps"),
            "layer_books": get(v, "layer_books"),
            "layer_level": level,
            "price_moved_away": moved,
            "flow_on_other_side": traded,
        }
        books = get(v, "layer_books")
        shown = f"shown in {books:.0f} snapshot{'' if books == 1 else 's'}" if books else "shown in the book"
        return [
            ctx.hit(
                AlertKind.SPOOFING,
                min(first, ctx.ts - tape.long_ms),
                strength(layer / p.layer_rel),
                evidence,
                f"a {'bid' if side > 0 else 'ask'} layer of {layer:.1f}× the typical level size, {shown}, left "
                f"level {level or 0:.0f} without trading ({layers} such layers in {p.window_ms // 60_000} min, "
                f"{cycles} under pressure)",
            )
        ]

    def _moved_over_life(self, v: Values, chunk_sigma: float) -> bool:
        """The mid moved away from the layer's side over the layer's life by ``spoofing.move_sigma`` of the
        symbol's volatility over as long (a random walk's √time: the life in chunks, from the snapshots it
        showed in and this chunk's book rate). A long-lived layer moves the price early and is cancelled late,
        when the long window no longer sees the move."""
        move, books, rate = get(v, "layer_move_bps"), get(v, "layer_books"), get(v, "book_updates")
        if move is None or not books or not rate:
            return False
        return move > self.params.move_sigma * chunk_sigma * math.sqrt(max(1.0, books / rate))

    def to_state(self) -> dict[str, Any]:
        return {"spoof": self.cycles.to_state(), "spoof_layers": self.layers.to_state()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tape: TapeParams, params: SpoofingParams) -> Spoofing:
        detector = cls(tape, params)
        detector.cycles = Run.from_state(state["spoof"], detector.cycles.window)
        detector.layers = Run.from_state(state["spoof_layers"], detector.layers.window)
        return detector
