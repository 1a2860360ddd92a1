"""One scorecard: both labelled generators × feed shapes × kinds, the legitimate look-alikes, the false alerts on
clean symbol-days and the real tapes, judged against the desk's bars in one table, a PNG and a JSON.

Each generator's part is an evaluation matrix (:mod:`tapewatch.evaluation.matrix`: its honesty rules hold — K-means
trained on a seed never evaluated, every kind scored against its labelled episodes); each real tape is run as
:mod:`tapewatch.evaluation.real_tapes` runs it, where every alert is false. The bars:

* every manipulation kind with episodes: F1 ≥ :data:`F1_TRADES` on a trade feed (the market-by-order feeds are
  trade feeds), ≥ :data:`F1_SNAPSHOTS` on a snapshot feed; spoofing and wash trading ≥ :data:`F1_FIRM` with a
  firm's drop copy (``mbo+firm``, :mod:`tapewatch.evaluation.order_cells`), where the drop copy's true alerts also
  name their episode's account at least :data:`MIN_ACCOUNT_NAMED` of the time;
* at most :data:`MAX_FALSE_ALERTS` false alerts of the manipulation kinds per clean symbol-day;
* at most :data:`MAX_LOOKALIKE_SHARE` of the legitimate look-alikes alerted (on a generator that labels them);
* on a real tape, at most one alert a session and none high or critical.

Every number judged against a bar is of the alerts as the rules raised them. Beside them, per generator × feed, what
the news context does to those alerts (:mod:`tapewatch.evaluation.news_effect`, the generators' news read as a stream
would read it): the look-alike alerts it takes out of the queue and the true pumps it demotes; no bar judges it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson
import pandas as pd

from tapewatch.detectors.flow import FLOW_FEATURE_SET_VERSION, FlowConfig
from tapewatch.detectors.patterns import PATTERNS_VERSION
from tapewatch.evaluation import matrix as em
from tapewatch.evaluation import real_tapes
from tapewatch.evaluation.news_effect import NewsEffect
from tapewatch.evaluation.order_cells import MBO_FIRM, ORDER_FEEDS
from tapewatch.feeds import FeedProfiles

#: a real tape's loader: its name → (tick rows, sessions) (:func:`tapewatch.producers.real_tapes.load_tape`)
TapeLoader = Callable[[str], tuple[pd.DataFrame, int]]

F1_TRADES: Final = 0.85
F1_SNAPSHOTS: Final = 0.80
#: pumps and marking the close from 1-minute bars alone
F1_BARS: Final = 0.80
#: spoofing and wash trading where a firm's drop copy names who did what
F1_FIRM: Final = 0.90
FIRM_KINDS: Final = frozenset({"spoofing", "wash_trading"})
MIN_ACCOUNT_NAMED: Final = 0.90
MAX_FALSE_ALERTS: Final = 0.5
MAX_LOOKALIKE_SHARE: Final = 0.10
#: the feed shapes whose records are trades (the others are book snapshots)
TRADE_FEEDS: Final = frozenset({"trades", *ORDER_FEEDS})
#: the manipulation kinds the F1 bar judges
KINDS: Final = ("pump_and_dump", "spoofing", "wash_trading", "marking_the_close", "momentum_ignition")
#: the kinds a feed shape can show, where it cannot show them all: the others are not judged there, and said so
#: (1-minute bars carry no prints and no books: spoofing, wash trading and a momentum ignition's sweep are not in them)
SEEN: Final[Mapping[str, frozenset[str]]] = {em.BARS_1M: frozenset({"pump_and_dump", "marking_the_close"})}


@dataclass(frozen=True, slots=True)
class ScorecardSpec:
    """What the scorecard runs."""

    generators: tuple[str, ...] = em.GENERATORS
    feeds: tuple[str, ...] = em.MATRIX_FEEDS
    seeds: tuple[int, ...] = (300, 301)
    symbols: int = 16
    minutes: float = 210.0
    #: real tapes by name (:data:`tapewatch.producers.real_tapes.TAPES`)
    tapes: tuple[str, ...] = ()
    flow: FlowConfig = field(default_factory=FlowConfig)
    profiles: FeedProfiles = field(default_factory=FeedProfiles)

    def __post_init__(self) -> None:
        unknown = [g for g in self.generators if g not in em.GENERATORS]
        if unknown:
            raise ValueError(f"scorecard: unknown generator {', '.join(unknown)}; choose {', '.join(em.GENERATORS)}")
        if not self.generators and not self.tapes:
            raise ValueError("scorecard: nothing to run (no generator and no tape)")

    def matrix(self, generator: str) -> em.MatrixSpec:
        return em.MatrixSpec(
            feeds=self.feeds,
            seeds=self.seeds,
            symbols=self.symbols,
            minutes=self.minutes,
            flow=self.flow,
            profiles=self.profiles,
            generator=generator,
        )


def f1_bar(feed: str, kind: str) -> float:
    if feed == MBO_FIRM and kind in FIRM_KINDS:
        return F1_FIRM
    if feed == em.BARS_1M:
        return F1_BARS
    return F1_TRADES if feed in TRADE_FEEDS else F1_SNAPSHOTS


@dataclass(frozen=True, slots=True)
class KindLine:
    generator: str
    feed: str
    kind: str
    episodes: int
    precision: float
    recall: float
    f1: float
    delay_median_s: float
    bar: float
    met: bool
    #: the share of the drop copy's true alerts naming their episode's account (nan: no drop copy, or none true)
    account_named: float = math.nan


@dataclass(frozen=True, slots=True)
class FeedLine:
    generator: str
    feed: str
    #: false alerts per clean symbol-day: the manipulation kinds, and every kind (bursts, K-means too)
    false_alerts: float
    false_alerts_all: float
    #: legitimate look-alike events and how many were alerted (0 events: the generator labels none)
    lookalikes: int
    lookalikes_alerted: int

    @property
    def lookalike_share(self) -> float:
        return self.lookalikes_alerted / self.lookalikes if self.lookalikes else math.nan

    @property
    def met(self) -> bool:
        share = self.lookalike_share
        return self.false_alerts <= MAX_FALSE_ALERTS and (math.isnan(share) or share <= MAX_LOOKALIKE_SHARE)


@dataclass(frozen=True, slots=True)
class NewsLine:
    """What the news context does to one generator × feed's alerts (not judged by a bar)."""

    generator: str
    feed: str
    effect: NewsEffect


@dataclass(frozen=True, slots=True)
class Scorecard:
    kinds: list[KindLine]
    feeds: list[FeedLine]
    tapes: list[real_tapes.TapeResult]
    spec: dict[str, Any] = field(default_factory=dict)
    news: list[NewsLine] = field(default_factory=list)
    #: (generator, feed, kind) with episodes the feed shape cannot show (:data:`SEEN`): not judged
    unseen: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def bars(self) -> tuple[int, int]:
        """(bars met, bars judged): one per kind line, feed line and tape."""
        met = [k.met for k in self.kinds] + [f.met for f in self.feeds] + [t.meets_bar for t in self.tapes]
        return sum(met), len(met)

    def to_json(self) -> bytes:
        payload = {
            "spec": self.spec,
            "versions": {"flow": FLOW_FEATURE_SET_VERSION, "patterns": PATTERNS_VERSION},
            "bars": {
                "f1_trades": F1_TRADES,
                "f1_snapshots": F1_SNAPSHOTS,
                "f1_spoofing_wash_with_drop_copy": F1_FIRM,
                "account_named": MIN_ACCOUNT_NAMED,
                "false_alerts_per_clean_symbol_day": MAX_FALSE_ALERTS,
                "lookalike_share": MAX_LOOKALIKE_SHARE,
                "real_tape_alerts_per_session": real_tapes.MAX_ALERTS_PER_SESSION,
            },
            "met": dict(zip(("met", "judged"), self.bars, strict=True)),
            "kinds": [asdict(k) for k in self.kinds],
            "feeds": [asdict(f) | {"lookalike_share": f.lookalike_share, "met": f.met} for f in self.feeds],
            "tapes": [
                asdict(t) | {"per_session": t.per_session, "serious": t.serious, "met": t.meets_bar} for t in self.tapes
            ],
            # the alerts above as the rules raised them; these, with the generators' news read by the news context
            "news_context": [asdict(line) for line in self.news],
            "not_judged": [{"generator": g, "feed": f, "kind": k} for g, f, k in self.unseen],
        }
        return orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


def _generator_lines(
    generator: str, results: Sequence[em.FeedResult]
) -> tuple[list[KindLine], list[FeedLine], list[NewsLine], list[tuple[str, str, str]]]:
    kinds: list[KindLine] = []
    feeds: list[FeedLine] = []
    unseen: list[tuple[str, str, str]] = []
    news = [NewsLine(generator, feed.feed, feed.news) for feed in results if feed.news is not None]
    for feed in results:
        for m in feed.result.kinds:
            if m.kind in KINDS and m.episodes > 0 and m.kind not in SEEN.get(feed.feed, KINDS):
                unseen.append((generator, feed.feed, m.kind))
            elif m.kind in KINDS and m.episodes > 0:
                bar, named = f1_bar(feed.feed, m.kind), feed.account_named(m.kind)
                met = not math.isnan(m.f1) and m.f1 >= bar and (math.isnan(named) or named >= MIN_ACCOUNT_NAMED)
                kinds.append(
                    KindLine(generator, feed.feed, m.kind, m.episodes, m.precision, m.recall, m.f1,
                             m.delay_median_s, bar, met, named)
                )  # fmt: skip
        events = sum(rate.events for rate in feed.lookalikes)
        alerted = sum(rate.alerted for rate in feed.lookalikes)
        result = feed.result
        feeds.append(
            FeedLine(generator, feed.feed, result.false_alerts_per_symbol_day_evaluated_kinds,
                     result.false_alerts_per_symbol_day, events, alerted)
        )  # fmt: skip
    return kinds, feeds, news, unseen


def run_scorecard(
    spec: ScorecardSpec, load_tape: TapeLoader, progress: Callable[[str], None] | None = None, jobs: int = 1
) -> Scorecard:
    """Every generator's matrix, then every real tape."""
    say = progress or (lambda _: None)
    kinds: list[KindLine] = []
    feeds: list[FeedLine] = []
    news: list[NewsLine] = []
    unseen: list[tuple[str, str, str]] = []
    for generator in spec.generators:
        results = em.run_matrix(spec.matrix(generator), jobs=jobs, progress=_prefixed(say, generator))
        more_kinds, more_feeds, more_news, more_unseen = _generator_lines(generator, results)
        kinds += more_kinds
        feeds += more_feeds
        news += more_news
        unseen += more_unseen
    tapes = []
    for name in spec.tapes:
        say(f"real tape {name}")
        ticks, sessions = load_tape(name)
        tapes.append(real_tapes.run_tape(name, ticks, sessions, flow_config=spec.flow, feeds=spec.profiles))
    described = {k: v for k, v in asdict(spec).items() if k not in ("profiles", "flow")}
    return Scorecard(kinds, feeds, tapes, described, news, unseen)


def _prefixed(say: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    return lambda message: say(f"{prefix}: {message}")


def plot_scorecard(path: Path, card: Scorecard) -> Path:
    """F1 by generator × feed (rows) and kind (columns), each cell marked met or not, beside the false alerts and
    look-alikes per row and the real tapes' alerts per session."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(dict.fromkeys((k.generator, k.feed) for k in card.kinds)) or [("–", "–")]
    grid = np.full((len(rows), len(KINDS)), np.nan)
    met = {(k.generator, k.feed, k.kind): k.met for k in card.kinds}
    for k in card.kinds:
        grid[rows.index((k.generator, k.feed)), KINDS.index(k.kind)] = k.f1
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 1.2 + 0.5 * max(len(rows), len(card.tapes) + 1)),
                                      gridspec_kw={"width_ratios": [3, 2]})  # fmt: skip
    colours = plt.get_cmap("RdYlGn").copy()
    colours.set_bad("lightgrey")  # no episode of that kind: nothing to judge
    left.imshow(np.ma.masked_invalid(grid), vmin=0.0, vmax=1.0, cmap=colours, aspect="auto")
    for i, (generator, feed) in enumerate(rows):
        for j, kind in enumerate(KINDS):
            if not math.isnan(grid[i, j]):
                mark = "" if met.get((generator, feed, kind)) else " ✗"
                left.text(j, i, f"{grid[i, j]:.2f}{mark}", ha="center", va="center", fontsize=8)
    left.set_xticks(range(len(KINDS)), [k.replace("_", " ") for k in KINDS], rotation=15, fontsize=8)
    left.set_yticks(range(len(rows)), [f"{g} · {f}" for g, f in rows], fontsize=8)
    left.set_title("F1 by kind (✗: under the bar)", fontsize=9)
    right.axis("off")
    lines = [f"{f.generator} · {f.feed}: {f.false_alerts:.2f} false/clean symbol-day, look-alikes "
             + ("–" if math.isnan(f.lookalike_share) else f"{f.lookalikes_alerted}/{f.lookalikes}")
             + ("" if f.met else " ✗") for f in card.feeds]  # fmt: skip
    lines += [f"{t.name}: {t.per_session:.1f} alerts/session, {t.serious} high+" + ("" if t.meets_bar else " ✗")
              for t in card.tapes]  # fmt: skip
    met_count, judged = card.bars
    right.text(0.0, 1.0, f"bars met: {met_count} of {judged}\n\n" + "\n".join(lines), va="top", fontsize=8,
               family="monospace")  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
