"""The evaluation matrix: simulate → detect → score over feed profiles × seeds, in one table.

Each *cell* is one simulated session (:mod:`tapewatch.generators.simulator`) of one feed profile and one seed, run
through the same look-back detection as ``tapewatch detect file`` (:func:`tapewatch.evaluation.lookback.detect_frames`,
the stream's twin) and scored against its labelled episodes (:mod:`tapewatch.evaluation.judge`). Cells of one feed are
pooled (every seed's symbols kept apart), so a feed's precision, recall and delays are over all its episodes.

Honesty rules the command follows:

* the K-means model scored in a feed's cells is trained on a *training seed* of that feed that is never
  evaluated (a model fitted on the evaluated session would flatter its AUC);
* the seed baseline (K-means k = 2 on price and volume change, the seed 003 method) is fitted in-sample, as
  that method is used, and shown beside every kind;
* tune on seeds you choose and report on seeds you never looked at: the command takes any seeds.

Every cell also reads its alerts with the session's news (:mod:`tapewatch.evaluation.news_effect`): each alert annotated
by the news context as a stream that read every item would annotate it. The precision, recall, false alerts and
look-alike counts are of the alerts as the rules raised them; :attr:`FeedResult.news` says what the news context
changes.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import time as clock
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import orjson
import pandas as pd

from tapewatch.detectors.flow import FLOW_FEATURE_SET_VERSION, FlowConfig
from tapewatch.detectors.kmeans import KMEANS_FEATURES, KMeansModel, KMeansParams
from tapewatch.detectors.patterns import PATTERNS_VERSION
from tapewatch.evaluation import judge as ev
from tapewatch.evaluation import order_cells as oc
from tapewatch.evaluation.lookalikes import LookalikeRate, lookalike_alerts
from tapewatch.evaluation.lookback import (
    DetectionOutput,
    Input,
    bar_features,
    detect_frames,
    tick_input,
    ticks_as_bars,
)
from tapewatch.evaluation.news_effect import NewsEffect, news_alerts_frame, news_effect, with_news
from tapewatch.feeds import FeedProfiles
from tapewatch.generators import lob_market as lob
from tapewatch.generators.feed_shapes import FEEDS
from tapewatch.generators.news import NewsParams
from tapewatch.generators.simulator import Simulation, SimulationConfig, generate
from tapewatch.records import NewsItem

#: the trades feed's session as 1-minute bars alone (what a user with a vendor's bars has)
BARS_1M: Final = "bars-1m"
#: every feed shape the matrix runs: the level-2 shapes and the market-by-order ones
MATRIX_FEEDS: Final[tuple[str, ...]] = (*FEEDS, BARS_1M, *oc.ORDER_FEEDS)
#: the venue a simulated feed is published under: its feed profile tells the detectors what the records carry
FEED_VENUES: Final[Mapping[str, str]] = {
    "trades": "sim",
    "twse-mis": "sim-snapshots",
    "snapshot-1s": "sim-snapshots",
    BARS_1M: "sim",
}
#: how much the book's level 2–5 queues churn per book step, per feed: TWSE's best five move every snapshot
DEFAULT_CHURN: Final[Mapping[str, float]] = {"trades": 0.2, "twse-mis": 1.0, "snapshot-1s": 0.5, BARS_1M: 0.2}
#: the issue's quality bars per kind: minimum F1 over held-out seeds
QUALITY_F1: Final[Mapping[str, float]] = {
    "pump_and_dump": 0.95,
    "spoofing": 0.85,
    "wash_trading": 0.90,
    "marking_the_close": 0.85,
}
MAX_FALSE_ALERTS: Final = 0.5
GENERATORS: Final[tuple[str, ...]] = ("sim", "lob")


@dataclass(frozen=True, slots=True)
class MatrixSpec:
    """What the matrix runs: the same session shape for every feed and seed."""

    feeds: tuple[str, ...] = FEEDS
    seeds: tuple[int, ...] = (300, 301, 302, 303, 304)
    train_seed: int = 1
    symbols: int = 20
    minutes: float = 270.0
    variants: bool = True
    regimes: str = "twse"
    #: None: :data:`DEFAULT_CHURN` per feed
    book_churn: float | None = None
    tolerance_s: float = 30.0
    flow: FlowConfig = field(default_factory=FlowConfig)
    #: the venue table (with the user's ``TAPEWATCH_FEED_PROFILES``), so the cells detect as the stream would
    profiles: FeedProfiles = field(default_factory=FeedProfiles)
    #: which labelled market makes the sessions: ``sim`` (:mod:`tapewatch.generators.simulator`) or ``lob``, the
    #: order-book market of :mod:`tapewatch.generators.lob_market`, written apart and never tuned on (regimes and churn
    #: do not apply)
    generator: str = "sim"
    #: legitimate look-alikes (news, meta-orders, large orders, quote pulls) in every session, labelled apart, so
    #: that the alerts they draw are counted (the order-book market leaves out its large orders and quote pulls)
    lookalikes: bool = True
    #: the news both generators write (:mod:`tapewatch.generators.news`), read by the news context in every cell
    news: NewsParams = field(default_factory=NewsParams)

    def __post_init__(self) -> None:
        unknown = [f for f in self.feeds if f not in MATRIX_FEEDS]
        if unknown:
            raise ValueError(f"unknown feed(s) {unknown}; choose from {', '.join(MATRIX_FEEDS)}")
        if self.train_seed in self.seeds:
            raise ValueError(f"the training seed {self.train_seed} must not be evaluated")
        if not self.seeds:
            raise ValueError("give at least one seed")
        if self.generator not in GENERATORS:
            raise ValueError(f"generator must be one of {', '.join(GENERATORS)}, not {self.generator!r}")

    def simulation(self, feed: str, seed: int) -> SimulationConfig:
        # the session ends at the TWSE close, so marking the close is in every cell
        open_at = (datetime.combine(datetime(2024, 1, 2), time(13, 30)) - timedelta(minutes=self.minutes)).time()
        churn = DEFAULT_CHURN[feed] if self.book_churn is None else self.book_churn
        return SimulationConfig(
            symbols=self.symbols,
            seed=seed,
            minutes=self.minutes,
            open_time=open_at,
            feed=_ticks_of(feed),
            book_churn=churn,
            regimes=self.regimes,
            variants=self.variants,
            venue=FEED_VENUES[feed],
            lookalikes=self.lookalikes,
            news_params=self.news,
        )

    def lob(self, feed: str, seed: int) -> lob.LobConfig:
        return lob.LobConfig(
            symbols=self.symbols,
            seed=seed,
            minutes=self.minutes,
            feed=_ticks_of(feed),
            venue=FEED_VENUES[feed],
            lookalikes=self.lookalikes,
            news_params=self.news,
        )


@dataclass
class Cell:
    """One simulated session's outcome, symbols prefixed with the seed so that cells pool without clashes."""

    feed: str
    seed: int
    truth: pd.DataFrame
    lookalikes: pd.DataFrame
    alerts: pd.DataFrame
    #: the same alerts annotated with the session's news (:func:`tapewatch.evaluation.news_effect.news_alerts_frame`),
    #: and the session's items with their labels
    alerts_news: pd.DataFrame
    news: pd.DataFrame
    baseline: pd.DataFrame
    bar_scores: dict[str, pd.DataFrame]
    universe: list[str]
    seconds: float
    #: kind → (the drop copy's true alerts, those naming an account of their episode); empty without a drop copy
    named: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        """What its symbols and alert ids are prefixed with."""
        return f"s{self.seed}/"


@dataclass(frozen=True, slots=True)
class GeneratedSession:
    """A cell's labelled session as ``detect file`` reads it: ticks (with the venue), episodes, the labelled
    legitimate look-alikes (none without them), and its news items with their labels."""

    ticks: pd.DataFrame
    episodes: pd.DataFrame
    lookalikes: pd.DataFrame
    news: tuple[NewsItem, ...]
    news_labels: pd.DataFrame


def generated_session(spec: MatrixSpec, feed: str, seed: int) -> GeneratedSession:
    if spec.generator == "sim":
        market: Simulation | lob.LobSession = generate(spec.simulation(feed, seed))
    else:
        config = replace(spec.lob(feed, seed), feed="trades", venue="sim")
        market = _lob_market(config).shaped(_ticks_of(feed), FEED_VENUES[feed])
    ticks = market.ticks_frame().assign(venue=FEED_VENUES[feed])
    return GeneratedSession(ticks, market.episodes_frame(), market.lookalikes_frame(), market.news, market.news_frame())


def _ticks_of(feed: str) -> str:
    """The tick feed a feed shape is made from (1-minute bars: from the trades feed)."""
    return "trades" if feed == BARS_1M else feed


def _input_of(feed: str, ticks: pd.DataFrame) -> Input:
    """What a feed's user gives the detectors: the ticks, or their 1-minute bars."""
    return ticks_as_bars(ticks) if feed == BARS_1M else tick_input(ticks)


@functools.lru_cache(maxsize=1)
def _lob_market(config: lob.LobConfig) -> lob.LobSession:
    """The order-book market of a seed, generated once for all the feeds that publish it (the cells run seed by
    seed; each feed is a shape of the same market, :meth:`~tapewatch.generators.lob_market.LobSession.shaped`)."""
    return lob.generate(config)


def session(spec: MatrixSpec, feed: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The ticks, episodes and look-alikes of :func:`generated_session`."""
    generated = generated_session(spec, feed, seed)
    return generated.ticks, generated.episodes, generated.lookalikes


def train_model(spec: MatrixSpec, feed: str) -> KMeansModel:
    """The K-means model a feed's cells score with, fitted on the training seed's bars (the market-by-order feeds':
    on its derived trades and books)."""
    if feed in oc.ORDER_FEEDS:
        return oc.train_order_model(spec)
    ticks, _, _ = session(spec, feed, spec.train_seed)
    source = _input_of(feed, ticks)
    bars = detect_frames(source, None, flow_config=spec.flow, feeds=spec.profiles).bars
    from tapewatch.detectors.kmeans import train

    return train(bar_features(bars), KMEANS_FEATURES, KMeansParams())


def run_cell(spec: MatrixSpec, feed: str, seed: int, model: KMeansModel | None) -> Cell:
    """Simulate, detect and keep what the scoring needs."""
    began = clock.perf_counter()
    generated = generated_session(spec, feed, seed)
    detected: DetectionOutput = detect_frames(
        _input_of(feed, generated.ticks), model, flow_config=spec.flow, feeds=spec.profiles
    )
    alerts = with_news(detected.alerts, generated.news)
    cell = _scored(feed, seed, generated.episodes, generated.lookalikes, detected, model)
    return replace(
        cell,
        alerts=_prefixed(ev.alerts_frame(detected.alerts), cell.prefix),
        alerts_news=_prefixed(news_alerts_frame(alerts), cell.prefix),
        news=_prefixed(generated.news_labels, cell.prefix),
        seconds=clock.perf_counter() - began,
    )


def run_order_cells(spec: MatrixSpec, feeds: Sequence[str], seed: int, model: KMeansModel | None) -> list[Cell]:
    """One seed's order session through the market-by-order path, a cell per market-by-order feed (they share the
    session, its derived trades and books and their detection: :mod:`tapewatch.evaluation.order_cells`)."""
    began = clock.perf_counter()
    run = oc.run_orders_of(spec, seed, model)
    episodes, lookalikes = run.session.episodes_frame(), run.session.lookalikes_frame()
    cell = _scored(feeds[0], seed, episodes, lookalikes, run.detected, model, run.session.symbols)
    seconds = (clock.perf_counter() - began) / len(feeds)
    cells = []
    for feed in feeds:
        alerts = run.alerts(feed)
        cells.append(
            replace(
                cell,
                feed=feed,
                alerts=_prefixed(ev.alerts_frame(alerts), cell.prefix),
                alerts_news=_prefixed(news_alerts_frame(alerts), cell.prefix),
                seconds=seconds,
                named=run.named() if feed == oc.MBO_FIRM else {},
            )
        )
    return cells


def _scored(
    feed: str,
    seed: int,
    episodes: pd.DataFrame,
    lookalikes: pd.DataFrame,
    detected: DetectionOutput,
    model: KMeansModel | None,
    symbols: Sequence[str] = (),
) -> Cell:
    """A cell's labels and bar scores (the seed baseline's, the model's), prefixed with its seed; its alerts, news and
    timing are the caller's."""
    feats = bar_features(detected.bars)
    baseline_alerts, baseline_scores = ev.seed_baseline(feats)
    bar_frame = feats[["symbol", "start", "ts"]].rename(columns={"ts": "end"})
    scores = {"seed baseline k=2": bar_frame.assign(score=baseline_scores)}
    if model is not None:
        scores["kmeans"] = bar_frame.assign(score=model.score_frame(feats).score)
    prefix = f"s{seed}/"
    nothing = ev.alerts_frame(())
    return Cell(
        feed=feed,
        seed=seed,
        truth=_prefixed(episodes, prefix),
        lookalikes=_prefixed(lookalikes, prefix),
        alerts=nothing,
        alerts_news=news_alerts_frame(()),
        news=oc.empty_news(),
        baseline=_prefixed(baseline_alerts, prefix),
        bar_scores={name: _prefixed(frame, prefix) for name, frame in scores.items()},
        universe=[prefix + s for s in dict.fromkeys([*detected.symbols, *symbols])],
        seconds=0.0,
    )


def _prefixed(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    out = frame.assign(symbol=prefix + frame["symbol"].astype(str))
    if "alert_id" in out.columns:
        out["alert_id"] = prefix + out["alert_id"].astype(str)
    return out


@dataclass
class FeedResult:
    """A feed's pooled evaluation, its per-variant recall and its cells' timings."""

    feed: str
    result: ev.EvaluationResult
    variant_recall: dict[str, dict[str, float]]
    per_seed_f1: dict[str, list[float]]
    seconds: list[float]
    lookalikes: list[LookalikeRate] = field(default_factory=list)
    #: what the news context does to these alerts (:mod:`tapewatch.evaluation.news_effect`)
    news: NewsEffect | None = None
    #: kind → (the drop copy's true alerts, those naming an account of their episode); empty without a drop copy
    named: dict[str, tuple[int, int]] = field(default_factory=dict)

    def account_named(self, kind: str) -> float:
        """The share of the drop copy's true alerts of ``kind`` that name their episode's account (nan: none)."""
        true, right = self.named.get(kind, (0, 0))
        return right / true if true else math.nan


def pool(feed: str, cells: Sequence[Cell], tolerance_ms: int) -> FeedResult:
    """One feed's cells evaluated together."""
    truth = pd.concat([c.truth for c in cells], ignore_index=True)
    alerts = pd.concat([c.alerts for c in cells], ignore_index=True)
    scores = {name: pd.concat([c.bar_scores[name] for c in cells], ignore_index=True) for name in cells[0].bar_scores}
    result = ev.evaluate(
        truth,
        alerts,
        universe=[s for c in cells for s in c.universe],
        sessions=1,
        tolerance_ms=tolerance_ms,
        baseline_alerts=pd.concat([c.baseline for c in cells], ignore_index=True),
        bar_scores=scores,
    )
    # F1 of each seed alone: the spread says how far one pooled number can be trusted
    per_seed: dict[str, list[float]] = {m.kind: [] for m in result.kinds}
    for cell in cells:
        alone = ev.evaluate(cell.truth, cell.alerts, universe=cell.universe, tolerance_ms=tolerance_ms)
        for m in alone.kinds:
            per_seed[m.kind].append(m.f1)
    events = pd.concat([c.lookalikes for c in cells], ignore_index=True)
    rates = lookalike_alerts(truth, events, alerts, tolerance_ms) if len(events) else []
    recall = variant_recall(truth, alerts, tolerance_ms)
    alerts_news = pd.concat([c.alerts_news for c in cells], ignore_index=True)
    news = pd.concat([c.news for c in cells], ignore_index=True)
    effect = news_effect(truth, events, alerts, alerts_news, news, tolerance_ms)
    named: dict[str, tuple[int, int]] = {}
    for cell in cells:
        for kind, (true, right) in cell.named.items():
            before = named.get(kind, (0, 0))
            named[kind] = (before[0] + true, before[1] + right)
    return FeedResult(feed, result, recall, per_seed, [c.seconds for c in cells], rates, effect, named)


def variant_recall(truth: pd.DataFrame, alerts: pd.DataFrame, tolerance_ms: int) -> dict[str, dict[str, float]]:
    """kind → variant → recall, when the truth names variants."""
    if "variant" not in truth.columns:
        return {}
    collapsed = ev.collapse(alerts)
    out: dict[str, dict[str, float]] = {}
    for (kind, variant), episodes in truth.groupby(["kind", "variant"], sort=True):
        mine = collapsed[collapsed["kind"] == kind].reset_index(drop=True)
        metrics = ev.kind_metrics(episodes, mine, str(kind), tolerance_ms)
        out.setdefault(str(kind), {})[str(variant)] = metrics.recall
    return out


def run_matrix(spec: MatrixSpec, jobs: int = 1, progress: Callable[[str], None] | None = None) -> list[FeedResult]:
    """Every feed × seed cell (``jobs`` processes), pooled per feed."""
    say = progress or (lambda _: None)
    models: dict[str, KMeansModel] = {}
    for feed in spec.feeds:
        shared = next((models[f] for f in oc.ORDER_FEEDS if f in models), None) if feed in oc.ORDER_FEEDS else None
        if shared is None:
            say(f"training K-means on {feed}, seed {spec.train_seed}")
        models[feed] = shared or train_model(spec, feed)
    cells: list[Cell] = []
    if jobs <= 1:
        for feeds, seed in _tasks(spec):
            say(f"{', '.join(feeds)}, seed {seed}")
            cells += _run_task(spec, feeds, seed, models)
    else:
        # spawn, not fork: the parent has run scikit-learn's OpenMP threads, and a forked child can hang on them
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool_:
            futures = [pool_.submit(_run_task, spec, feeds, seed, models) for feeds, seed in _tasks(spec)]
            for future in futures:
                done = future.result()
                cells += done
                say(f"{', '.join(c.feed for c in done)}, seed {done[0].seed} done")
    tolerance_ms = int(spec.tolerance_s * 1000)
    return [pool(feed, [c for c in cells if c.feed == feed], tolerance_ms) for feed in spec.feeds]


def _tasks(spec: MatrixSpec) -> list[tuple[tuple[str, ...], int]]:
    """Seed by seed (one market, every feed): each level-2 feed apart, the market-by-order feeds together (one
    session through the orders path gives both)."""
    orders = tuple(f for f in spec.feeds if f in oc.ORDER_FEEDS)
    level2 = [(f,) for f in spec.feeds if f not in oc.ORDER_FEEDS]
    return [(feeds, seed) for seed in spec.seeds for feeds in [*level2, *([orders] if orders else [])]]


def _run_task(spec: MatrixSpec, feeds: tuple[str, ...], seed: int, models: Mapping[str, KMeansModel]) -> list[Cell]:
    if feeds[0] in oc.ORDER_FEEDS:
        return run_order_cells(spec, feeds, seed, models[feeds[0]])
    return [run_cell(spec, feeds[0], seed, models[feeds[0]])]


def meets_bars(feed: FeedResult) -> dict[str, bool]:
    """The issue's quality bars, kind by kind (kinds without episodes are not judged), and the false alerts."""
    out = {
        m.kind: (not math.isnan(m.f1)) and m.f1 >= QUALITY_F1[m.kind]
        for m in feed.result.kinds
        if m.kind in QUALITY_F1 and m.episodes > 0
    }
    out["false_alerts"] = feed.result.false_alerts_per_symbol_day_evaluated_kinds <= MAX_FALSE_ALERTS
    return out


def to_json(spec: MatrixSpec, feeds: Iterable[FeedResult]) -> bytes:
    payload = {
        "spec": {k: v for k, v in asdict(spec).items() if k != "profiles"},
        # which detectors produced the numbers: a table compared across sessions must say what it measured
        "versions": {"flow": FLOW_FEATURE_SET_VERSION, "patterns": PATTERNS_VERSION},
        "venues": {FEED_VENUES[f]: asdict(spec.profiles(FEED_VENUES[f])) for f in spec.feeds},
        "feeds": [
            {
                "feed": f.feed,
                "evaluation": asdict(f.result),
                "variant_recall": f.variant_recall,
                "per_seed_f1": f.per_seed_f1,
                "cell_seconds": f.seconds,
                "quality_bars": meets_bars(f),
                "lookalikes": [asdict(r) | {"share": r.share} for r in f.lookalikes],
                "news_context": None if f.news is None else asdict(f.news),
            }
            for f in feeds
        ],
    }
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def plot_matrix(path: Path, feeds: Sequence[FeedResult]) -> Path:
    """F1 by kind, one bar per feed, the seed baseline as a tick on each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [m.kind for m in feeds[0].result.kinds]
    x = np.arange(len(kinds))
    width = 0.8 / max(1, len(feeds))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, feed in enumerate(feeds):
        offset = (i - (len(feeds) - 1) / 2) * width
        f1 = [_zero_nan(m.f1) for m in feed.result.kinds]
        base = [_zero_nan(m.f1) for m in feed.result.baseline]
        ax.bar(x + offset, f1, width, label=feed.feed)
        ax.scatter(
            x + offset, base, marker="_", s=200, color="black", zorder=3, label="seed baseline" if i == 0 else None
        )
    ax.set_xticks(x, kinds, rotation=15, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1 (pooled over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _zero_nan(value: float) -> float:
    return 0.0 if math.isnan(value) else value
