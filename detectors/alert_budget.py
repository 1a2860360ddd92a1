"""Score cut-offs set to an alert budget on a venue's own history, as surveillance teams set them: above the line,
no more alerts than the desk can work; below it, what would have fired, to look at.

The history is taken as the venue's ordinary trading: every alert it raised counts against the budget (alerts per
symbol-day, :data:`DEFAULT_BUDGET`), shared equally by the pattern kinds (:data:`BUDGETED_KINDS`). Per kind, the
cut-off is the lowest score that lets no more of the history's alerts (each counted once, at its best score) through
than the kind's share, never below the policy's own minimum. A kind whose history raised fewer keeps that minimum. A
kind that cannot meet its share below a score of 1 gets 1 and is reported as not met. A history too short for each
kind's share to be one whole alert (:func:`symbol_days_needed`) sets no cut-off.

>>> from tapewatch.records import AlertKind
>>> scores = {AlertKind.PUMP_AND_DUMP: [0.95, 0.9, 0.72, 0.61], AlertKind.SPOOFING: [0.66]}
>>> lines = cutoffs(scores, symbol_days=10.0, budget=0.7, floor=0.5)
>>> [(str(line.kind), line.allowed, line.cutoff, line.above, line.met) for line in lines[:2]]
[('pump_and_dump', 1, 0.900001, 1, True), ('spoofing', 1, 0.5, 1, True)]
>>> lines[0].below  # what would fire just below the line, best first
(0.9, 0.72, 0.61)

A venue's thin names raise more alerts than its liquid ones: one set of cut-offs over all of them would be set by
the thin ones and silence the liquid ones. So the symbols are split into *liquidity tiers* by how much they trade
(:func:`liquidity_tiers`: equal shares by rank of trades per session), and a tier with history enough gets cut-offs
of its own, on the same budget per symbol-day.

>>> liquidity_tiers({"A": 10.0, "B": 500.0, "C": 40.0, "D": 9_000.0, "E": 80.0, "F": 3_000.0})
{'A': 'thin', 'C': 'thin', 'E': 'mid', 'B': 'mid', 'F': 'liquid', 'D': 'liquid'}
>>> liquidity_tiers({"A": 10.0, "B": 500.0, "C": 40.0})  # too few symbols to tell tiers apart
{}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from tapewatch.records import AlertKind

#: alerts per symbol-day a desk can work, every pattern kind together
DEFAULT_BUDGET: Final = 0.5
#: the kinds whose cut-offs are calibrated (K-means has its own calibrated score)
BUDGETED_KINDS: Final = (
    AlertKind.PUMP_AND_DUMP,
    AlertKind.SPOOFING,
    AlertKind.WASH_TRADING,
    AlertKind.MARKING_THE_CLOSE,
    AlertKind.MOMENTUM_IGNITION,
    AlertKind.VOLUME_BURST,
    AlertKind.PRICE_BURST,
)
#: a cut-off sits this far above the best score it must stop (scores travel rounded to 6 decimals)
STEP: Final = 1e-6
#: how many of the alerts just below the line are reported
BELOW_SHOWN: Final = 3


#: liquidity tiers, thinnest first; fewer where the venue has too few symbols (:func:`liquidity_tiers`)
TIERS: Final = ("thin", "mid", "liquid")
#: the fewest symbols a tier is made of
MIN_TIER_SYMBOLS: Final = 2


def liquidity_tiers(activity: Mapping[str, float], min_symbols: int = MIN_TIER_SYMBOLS) -> dict[str, str]:
    """Symbol → tier, by rank of its activity (trades per session): equal shares, as many tiers as the venue has
    ``min_symbols`` symbols for (thin and liquid only, with two); empty when it cannot make two."""
    count = min(len(TIERS), len(activity) // max(1, min_symbols))
    if count < 2:
        return {}
    names = TIERS if count == len(TIERS) else (TIERS[0], TIERS[-1])
    ranked = sorted(activity, key=lambda symbol: (activity[symbol], symbol))
    return {symbol: names[rank * count // len(ranked)] for rank, symbol in enumerate(ranked)}


def symbol_days_needed(budget: float) -> int:
    """The symbol-days a history must hold for each kind's share of the budget to be one whole alert: a shorter
    history cannot tell a cut-off that holds the budget from one that stops every alert."""
    return math.ceil(len(BUDGETED_KINDS) / budget - 1e-9)


@dataclass(frozen=True, slots=True)
class BudgetLine:
    kind: AlertKind
    #: the kind's share of the budget over the history, in whole alerts
    allowed: int
    cutoff: float
    #: the history's alerts at or above the cut-off, and the best scores just below it
    above: int
    below: tuple[float, ...]

    @property
    def met(self) -> bool:
        return self.above <= self.allowed


def cutoffs(
    scores: Mapping[AlertKind, Sequence[float]], *, symbol_days: float, budget: float, floor: float
) -> list[BudgetLine]:
    """One line per budgeted kind from the best score of each of the history's alerts of that kind."""
    if not (budget > 0 and math.isfinite(budget)):
        raise ValueError(f"the alert budget must be a positive number of alerts per symbol-day, got {budget!r}")
    if symbol_days < symbol_days_needed(budget):
        raise ValueError(
            f"a budget of {budget:g} alerts per symbol-day needs at least {symbol_days_needed(budget)} symbol-days of "
            f"history to set cut-offs; this one holds {symbol_days:g}"
        )
    allowed = math.floor(budget * symbol_days / len(BUDGETED_KINDS))
    lines = []
    for kind in BUDGETED_KINDS:
        ranked = sorted(scores.get(kind, ()), reverse=True)
        # the first score that must not pass, stepped over; no cut-off where the history stays within the share
        cutoff = floor if len(ranked) <= allowed else max(floor, min(1.0, round(ranked[allowed] + STEP, 6)))
        above = sum(score >= cutoff for score in ranked)
        below = tuple(score for score in ranked if score < cutoff)[:BELOW_SHOWN]
        lines.append(BudgetLine(kind, allowed, cutoff, above, below))
    return lines
