"""The venue-level wash indicator (:mod:`tapewatch.detectors.venue_wash`) over files, generated markets and real tapes.

* :func:`indicators` — every symbol's windows of a tick frame (the replay layout: trades have a price), as
  ``detect file`` and the stream compute them; a venue whose prints are snapshots (size traded since the previous
  snapshot, not one trade's) gets none.
* :func:`generated` — the two labelled markets, clean sessions against sessions with wash trading. Their sizes are
  whole lots drawn from each generator's own distribution, so what the tests can say there is decided by those
  draws, not by the wash agents (see the study).
* :func:`real` — the real tapes that ship in packages (``tapewatch.producers.real_tapes`` loads them).
* :func:`injected` — a real tape with fabricated trades added, a given share of its trades, sized as a wash bot
  sizes them (uniform over a range, or log-uniform, at the tape's own precision): how much fabricated volume the
  tests need before they stop conforming.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from tapewatch.detectors.venue_wash import VenueWash, VenueWashParams
from tapewatch.feeds import FeedProfile, FeedProfiles
from tapewatch.records import AlertKind, VenueIndicator

__all__ = ["BOT_STYLES", "Row", "generated", "indicators", "injected", "real", "write_indicators"]

#: how a wash bot sizes its trades: ``uniform`` over [low, high], ``log-uniform`` over it (digits then follow Benford)
BOT_STYLES: Final = ("uniform", "log-uniform")


@dataclass(frozen=True)
class Row:
    """One indicator with what the tape was."""

    tape: str
    kind: str  # clean, wash, real, injected <share>
    indicator: VenueIndicator


def _trades(frame: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    trades = frame[frame["price"].notna()]
    for (symbol, venue), group in trades.groupby(["symbol", "venue"], sort=True):
        yield str(symbol), str(venue), group.sort_values("ts", kind="stable")


def indicators(
    frame: pd.DataFrame,
    params: VenueWashParams | None = None,
    feeds: Callable[[str], FeedProfile] | None = None,
) -> list[VenueIndicator]:
    """Every window of every symbol of ``frame`` (columns symbol, venue, ts, price, size), the last one cut short
    (``complete`` False) unless a later trade closed it. Windows start at each venue's local midnight."""
    base, profiles = params or VenueWashParams(), feeds or FeedProfiles()
    out: list[VenueIndicator] = []
    for symbol, venue, group in _trades(frame):
        profile = profiles(venue)
        if profile.prints == "snapshots":
            continue
        wash = VenueWash(symbol, venue, replace(base, utc_offset_min=profile.utc_offset_min))
        for ts, size in zip(group["ts"].to_numpy(np.int64), group["size"].to_numpy(np.float64), strict=True):
            closed = wash.on_quote_values(int(ts), float(size))
            if closed is not None:
                out.append(closed)
        last = wash.flush()
        if last is not None:
            out.append(last)
    return out


def write_indicators(path: Path, records: Sequence[VenueIndicator]) -> None:
    """One record per line, as ``venue.indicators`` carries them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(record.to_json() + b"\n" for record in records))


def _with_venue(frame: pd.DataFrame, venue: str) -> pd.DataFrame:
    return frame if "venue" in frame.columns else frame.assign(venue=venue)


def _wash_symbols(episodes: pd.DataFrame) -> set[str]:
    return set(episodes.loc[episodes["kind"] == str(AlertKind.WASH_TRADING), "symbol"].astype(str))


def generated(seeds: tuple[int, ...], params: VenueWashParams | None = None) -> list[Row]:
    """Per seed: the simulator's clean session and one where every symbol trades mostly wash (forty wash episodes
    asked for per symbol), and the order-book market's session (its symbols with a wash agent against its clean
    ones). One window per symbol-session (the sessions are shorter than a day)."""
    from tapewatch.generators import lob_market as lob
    from tapewatch.generators.simulator import SimulationConfig, WashInjection, generate

    rows: list[Row] = []
    for seed in seeds:
        clean = generate(SimulationConfig(symbols=6, seed=seed, clean_fraction=1.0))
        heavy = generate(
            SimulationConfig(
                symbols=6, seed=seed, clean_fraction=0.0, rates={AlertKind.WASH_TRADING: 40.0},
                wash=WashInjection(bursts=(5, 10)), episode_gap_s=10.0,
            )
        )  # fmt: skip
        for kind, sim in (("clean", clean), ("wash", heavy)):
            rows += [Row(f"sim/{seed}", kind, i) for i in indicators(_with_venue(sim.ticks_frame(), "sim"), params)]
        session = lob.generate(lob.LobConfig(symbols=8, seed=seed))
        washed = _wash_symbols(session.episodes_frame())
        for indicator in indicators(_with_venue(session.ticks_frame(), "sim"), params):
            rows.append(Row(f"lob/{seed}", "wash" if indicator.symbol in washed else "clean", indicator))
    return rows


def real(tapes: Mapping[str, pd.DataFrame], params: VenueWashParams | None = None) -> list[Row]:
    """Each real tape's ticks (name → frame); every window, the last one cut short where the tape ends."""
    return [Row(name, "real", i) for name, ticks in tapes.items() for i in indicators(ticks, params)]


def bot_sizes(
    rng: np.random.Generator, n: int, style: str, low: float, high: float, decimals: int
) -> npt.NDArray[np.float64]:
    """``n`` sizes a wash bot draws: uniform or log-uniform over [low, high], rounded to ``decimals``."""
    if style == "uniform":
        sizes = rng.uniform(low, high, n)
    elif style == "log-uniform":
        sizes = np.exp(rng.uniform(np.log(low), np.log(high), n))
    else:
        raise ValueError(f"bot style {style!r}: choose {', '.join(BOT_STYLES)}")
    return np.maximum(np.round(sizes, decimals), 10.0**-decimals)


def inject(ticks: pd.DataFrame, share: float, style: str, seed: int = 0, decimals: int = 8) -> pd.DataFrame:
    """``ticks`` with fabricated trades added so that they are ``share`` of all trades, at times drawn uniformly
    over each symbol's trading span, sized by :func:`bot_sizes` between the tape's 10th and 90th size percentiles."""
    if not 0.0 <= share < 1.0:
        raise ValueError("share must be within [0, 1)")
    trades = ticks[ticks["price"].notna() & (ticks["size"] > 0)]
    rng = np.random.default_rng(seed)
    extra = []
    for (symbol, venue), group in trades.groupby(["symbol", "venue"]):
        n = round(len(group) * share / (1.0 - share))
        low, high = np.quantile(group["size"], [0.1, 0.9])
        ts = np.sort(rng.integers(int(group["ts"].min()), int(group["ts"].max()) + 1, n))
        sizes = bot_sizes(rng, n, style, float(low), float(high), decimals)
        price = float(group["price"].median())
        extra.append(pd.DataFrame({"symbol": symbol, "venue": venue, "ts": ts, "price": price, "size": sizes}))
    both = pd.concat([trades[["symbol", "venue", "ts", "price", "size"]], *extra], ignore_index=True)
    return both.sort_values("ts", kind="stable").reset_index(drop=True)


def injected(
    name: str,
    ticks: pd.DataFrame,
    shares: tuple[float, ...],
    style: str,
    params: VenueWashParams | None = None,
    seed: int = 0,
) -> list[Row]:
    """The real tape ``name`` (its ``ticks``) with :func:`inject`'s fabricated trades at each share."""
    rows: list[Row] = []
    for share in shares:
        frame = inject(ticks, share, style, seed)
        rows += [Row(name, f"{style} {share:.0%}", i) for i in indicators(frame, params)]
    return rows
