"""Why the public spoofing detector scores as it does on a generator: the lifecycles of the large orders outside the
labelled episodes (the false alarms' material), and each spoofing episode's qualifying cycles against the symbol's own
rate (the misses'). A reading aid for the cross-generator report, not a detector: nothing here is tuned.

``python -m tapewatch.evaluation.order_diagnosis --generator sim --seeds 201-203 --symbols 8``
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.orders.public_spoofing import Cycle, PublicSpoofing
from tapewatch.evaluation.judge import DEFAULT_TOLERANCE_MS
from tapewatch.evaluation.order_level import OrderSession, order_session
from tapewatch.records import AlertKind, BookAction


@dataclass(frozen=True, slots=True)
class LargeOrders:
    """Orders added outside the labelled episodes (their windows widened by the judge's tolerance), and what became of
    those ``multiple`` × their symbol's median addition or larger."""

    adds: int
    large: int
    #: cancelled in one cancel, unfilled, within a minute: what the public detector calls a pull
    pulled_whole: int
    trimmed: int
    filled: int


def large_orders(session: OrderSession, multiple: float = 8.0, within_ms: int = 60_000) -> LargeOrders:
    episodes = session.episodes_frame()
    counts: Counter[str] = Counter()
    for symbol in session.symbols:
        windows = episodes[episodes["symbol"] == symbol][["start", "end"]].to_numpy()
        placed: dict[str, tuple[int, float]] = {}
        cancels: Counter[str] = Counter()
        fills: Counter[str] = Counter()
        gone: dict[str, int] = {}
        for event in session.order_events(symbol):
            order_id = event.order_id or ""
            if event.action is BookAction.ADD and not event.snapshot:
                placed[order_id] = (event.ts, event.size)
            elif event.action is BookAction.CANCEL and order_id in placed:
                cancels[order_id] += 1
                gone.setdefault(order_id, event.ts)
            elif event.action is BookAction.FILL and order_id in placed:
                fills[order_id] += 1
        if not placed:
            continue
        median = float(np.median([size for _, size in placed.values()]))
        outside = {i: v for i, v in placed.items() if not _inside(windows, v[0])}
        counts["adds"] += len(outside)
        for order_id, (ts, size) in outside.items():
            if size < multiple * median:
                continue
            counts["large"] += 1
            counts["trimmed"] += cancels[order_id] > 1
            counts["filled"] += fills[order_id] > 0
            whole = cancels[order_id] == 1 and not fills[order_id] and gone[order_id] - ts <= within_ms
            counts["pulled_whole"] += whole
    return LargeOrders(*(counts[k] for k in ("adds", "large", "pulled_whole", "trimmed", "filled")))


def _inside(windows: np.ndarray, ts: int) -> bool:
    return bool(((windows[:, 0] - DEFAULT_TOLERANCE_MS <= ts) & (windows[:, 1] + DEFAULT_TOLERANCE_MS >= ts)).any())


@dataclass(frozen=True, slots=True)
class EpisodeCycles:
    """A spoofing episode as the public detector saw it, at its most surprising cycle: the qualifying cycles in the
    window on that side, the cycles as large expected at the symbol's own rate then, how likely that many were (a hit
    needs at most the detector's ``surprise``), and whether the episode began in the warm-up."""

    symbol: str
    variant: str
    minutes_in: float
    cycles: int
    expected: float
    surprise: float
    in_warmup: bool


class _Recording(PublicSpoofing):
    """The detector, recording each cycle: (pulled, side, cycles in the window, expected, surprise)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[int, int, int, float, float]] = []

    def _cycle(self, side: int, cycle: Cycle) -> list[Hit]:
        hits = super()._cycle(side, cycle)
        cycles = list(self.cycles[side])
        expected, surprise = math.inf, 1.0
        if len(cycles) >= self.params.min_cycles:
            expected, surprise = self._surprise(cycles, self.history[side], cycle.pulled_ts)
        self.log.append((cycle.pulled_ts, side, len(cycles), expected, surprise))
        return hits


def episode_cycles(session: OrderSession, start_ms: int) -> list[EpisodeCycles]:
    episodes = session.episodes_frame()
    spoofing = episodes[episodes["kind"] == str(AlertKind.SPOOFING)]
    found: list[EpisodeCycles] = []
    for symbol in sorted(set(spoofing["symbol"])):
        detector = _Recording()
        for event in session.order_events(symbol):
            detector.on_order(event)
        detector.flush()
        for row in spoofing[spoofing["symbol"] == symbol].to_dict("records"):
            inside = [entry for entry in detector.log if row["start"] <= entry[0] <= row["end"] + 1_000]
            best = min(inside, key=lambda e: e[4], default=(0, 0, 0, math.inf, 1.0))
            minutes = (int(row["start"]) - start_ms) / 60_000
            warmup = minutes * 60_000 < detector.params.warmup_ms
            found.append(EpisodeCycles(symbol, str(row.get("variant", "")), minutes, best[2], best[3], best[4], warmup))
    return found


def _start_ms(session: OrderSession) -> int:
    """The session's open: the first public event's time."""
    return min(next(iter(session.order_events(symbol))).ts for symbol in session.symbols)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--generator", default="sim")
    parser.add_argument("--seeds", default="201-203")
    parser.add_argument("--symbols", type=int, default=8)
    args = parser.parse_args()
    low, _, high = str(args.seeds).partition("-")
    for seed in range(int(low), int(high or low) + 1):
        session = order_session(args.generator, seed, args.symbols)
        print(f"{args.generator} seed {seed}: {large_orders(session)}")
        for episode in episode_cycles(session, _start_ms(session)):
            print(f"  {episode}")


if __name__ == "__main__":
    main()
