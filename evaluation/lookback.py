"""Offline look-back: the stream's detectors over CSV or Parquet files, the offline twin of the stream.

Inputs (:func:`read_input`):

* **ticks** — ``symbol``, ``ts`` (epoch ms), ``price``, ``size``; optional ``side`` (``B``/``S``), ``venue``
  and the book level columns ``bid1..bid5``, ``bidsz1..bidsz5``, ``ask1..ask5``, ``asksz1..asksz5``. A row
  with a price is a trade; a row with ``bid1`` or ``ask1`` is a book snapshot (the replay layout, which is
  ``simulator.ticks_frame()``).
* **1-minute bars** — ``symbol``, ``start``, ``open``, ``high``, ``low``, ``close``, ``volume`` (optional
  ``vwap``, else the close; optional ``trades``). Bars carry no prints and no books: each bar is one 1-minute chunk
  of the flow (:mod:`tapewatch.detectors.bar_chunks`), and the pattern detectors that read prices and volumes alone
  run on them (:func:`coverage` says which did not), beside the K-means scorer.

:func:`detect_frames` computes, per symbol, the records the stream computes — bars (:mod:`tapewatch.detectors.bars`,
closed bars only, as the stream's watermark closes them), bar features (:mod:`tapewatch.detectors.features`) and flow
chunks (:mod:`tapewatch.detectors.flow`) — and feeds them, in event-time order, to one :class:`SymbolDetector` per
symbol. That is exactly the stream's per-symbol path, so the same input gives the same alerts. Alerts are
returned in (symbol, emission) order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from tapewatch.detectors.alerting import PolicyParams
from tapewatch.detectors.bar_chunks import BAR_FLOW, BarChunks
from tapewatch.detectors.bars import DEFAULT_GRACE_MS, MINUTE_MS, bars_from_quotes, pct_change
from tapewatch.detectors.calibration import Calibration
from tapewatch.detectors.features import compute_frame
from tapewatch.detectors.flow import FLOW_FEATURE_NAMES, QUOTE_COLUMNS, FlowConfig, compute_flow_frame
from tapewatch.detectors.hit_model import HitModel
from tapewatch.detectors.kmeans import KMeansModel
from tapewatch.detectors.model_venues import ExtraVenues, VenueGate
from tapewatch.detectors.news.context import NewsContext, NewsContextParams
from tapewatch.detectors.patterns import PatternParams, SymbolDetector
from tapewatch.detectors.patterns.base import CARRIED
from tapewatch.errors import TapewatchError
from tapewatch.feeds import FeedProfile, FeedProfiles, Prints
from tapewatch.records import Alert, NewsRef, Score
from tapewatch.ticks import LEVEL_COLUMNS, Validated

TICK_REQUIRED: Final = ("symbol", "ts", "price", "size")
BAR_REQUIRED: Final = ("symbol", "start", "open", "high", "low", "close", "volume")
DEFAULT_VENUE: Final = "file"

log = logging.getLogger(__name__)


class InputError(TapewatchError, ValueError):
    """An input file that cannot be used (unreadable, missing columns, bad values)."""


@dataclass
class Input:
    """What was read: ticks (trades + books) or bars, and the venue per symbol."""

    kind: str  # "ticks" or "bars"
    frame: pd.DataFrame
    #: rows of the input that were refused (tick files): (row number across the files, 1-based, and why)
    rejected: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class DetectionOutput:
    alerts: list[Alert] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    bars: pd.DataFrame = field(default_factory=pd.DataFrame)
    symbols: list[str] = field(default_factory=list)
    #: venue → why the K-means model was not applied to it (patterns only there)
    kmeans_refused: dict[str, str] = field(default_factory=dict)
    #: symbol → its prints as learnt from its records, for the symbols of a venue no feed profile names
    #: (``None``: too few records to tell; :mod:`tapewatch.detectors.feed_learning`)
    learnt_prints: dict[str, Prints | None] = field(default_factory=dict)
    #: symbol → venue
    venues: dict[str, str] = field(default_factory=dict)
    #: symbol → its detector at the end of the input (what ``tapewatch calibrate`` reads the baselines from)
    detectors: dict[str, SymbolDetector] = field(default_factory=dict)


def _read_one(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".gz", ".txt"):
            return pd.read_csv(path, dtype={"symbol": str, "side": str, "venue": str})
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    raise InputError(f"{path}: unknown format (expected .csv or .parquet)")


def read_input(paths: Sequence[Path], venue: str = DEFAULT_VENUE) -> Input:
    """Read and validate tick or bar files (all of one kind), concatenated in file order; ``venue`` for the
    rows of files without a ``venue`` column (it names the feed profile their records are read with)."""
    if not paths:
        raise InputError("no input files")
    frames = [_read_one(Path(p)) for p in paths]
    kinds = set()
    for path, frame in zip(paths, frames, strict=True):
        if all(c in frame.columns for c in TICK_REQUIRED):
            kinds.add("ticks")
        elif all(c in frame.columns for c in BAR_REQUIRED):
            kinds.add("bars")
        else:
            lacking = [c for c in TICK_REQUIRED if c not in frame.columns]
            raise InputError(
                f"{path}: missing column(s) {', '.join(lacking)} for ticks "
                f"(or {', '.join(c for c in BAR_REQUIRED if c not in frame.columns)} for 1-minute bars)"
            )
    if len(kinds) > 1:
        raise InputError("inputs mix ticks and bars; give one kind at a time")
    kind = kinds.pop()
    frame = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    frame = frame.copy()
    frame["symbol"] = frame["symbol"].astype(str)
    if "venue" not in frame.columns:
        frame["venue"] = venue
    frame["venue"] = frame["venue"].fillna(venue)
    if kind == "ticks":
        return tick_input(frame)
    try:
        frame["start"] = pd.to_numeric(frame["start"], errors="raise").astype("int64")
    except (ValueError, TypeError) as exc:
        raise InputError(f"column start: not integer epoch milliseconds ({exc})") from None
    for column in BAR_REQUIRED[2:]:
        values = pd.to_numeric(frame[column], errors="coerce")
        if np.isinf(values.to_numpy(dtype=np.float64)).any():
            raise InputError(f"column {column}: infinite values")
        frame[column] = values
    return Input(kind, frame)


def tick_input(frame: pd.DataFrame) -> Input:
    """The rows of a tick table that pass the tick-file contract (:mod:`tapewatch.ticks`, the replay's), typed,
    sides in every spelling the replay accepts read as ``B``/``S``; the others named with their reason."""
    if "venue" not in frame.columns:
        frame = frame.assign(venue=DEFAULT_VENUE)
    checked = Validated(frame, DEFAULT_VENUE)
    good = frame.loc[checked.good].copy()
    good["symbol"] = checked.symbol[checked.good]
    good["ts"] = checked.ts[checked.good]
    good["price"] = checked.price[checked.good]
    good["size"] = np.where(np.isnan(checked.price[checked.good]), np.nan, checked.size[checked.good])
    good["side"] = [None if s is None or s is pd.NA else str(s) for s in checked.side[checked.good]]
    # the quote in force before each trade (the replay attaches the same to its quotes)
    good["quote_bid"] = checked.quote_bid[checked.good]
    good["quote_ask"] = checked.quote_ask[checked.good]
    for column in (c for c in LEVEL_COLUMNS if c in frame.columns):
        good[column] = pd.to_numeric(good[column], errors="coerce")
    rejected = [(int(i) + 1, str(checked.reason[i])) for i in np.flatnonzero(~checked.good)]
    return Input("ticks", good.reset_index(drop=True), rejected)


def split_ticks(ticks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trades (the flow library's quote columns) and book snapshots (its book columns) of a ticks frame."""
    trades = ticks[ticks["price"].notna()]
    quotes = pd.DataFrame(
        {
            "symbol": trades["symbol"].to_numpy(),
            "venue": trades["venue"].to_numpy(),
            "ts": trades["ts"].to_numpy(dtype=np.int64),
            "price": trades["price"].to_numpy(dtype=np.float64),
            "size": trades["size"].fillna(0.0).to_numpy(dtype=np.float64),
            "side": trades["side"].to_numpy() if "side" in trades.columns else None,
            "bid": trades["quote_bid"].to_numpy(dtype=np.float64) if "quote_bid" in trades.columns else np.nan,
            "ask": trades["quote_ask"].to_numpy(dtype=np.float64) if "quote_ask" in trades.columns else np.nan,
        }
    )
    quotes["side"] = quotes["side"].where(quotes["side"].isin(["B", "S"]), None)
    has_book = [c for c in ("bid1", "ask1") if c in ticks.columns]
    if not has_book:
        return quotes[["venue", *QUOTE_COLUMNS]], pd.DataFrame(columns=["symbol", "ts", *LEVEL_COLUMNS])
    book_rows = ticks[ticks[has_book].notna().any(axis=1)]
    books = pd.DataFrame({"symbol": book_rows["symbol"].to_numpy(), "ts": book_rows["ts"].to_numpy(dtype=np.int64)})
    for column in LEVEL_COLUMNS:
        books[column] = book_rows[column].to_numpy(dtype=np.float64) if column in book_rows else np.nan
    return quotes[["venue", *QUOTE_COLUMNS]], books


def ticks_as_bars(ticks: pd.DataFrame) -> Input:
    """A tick table as a vendor would sell it in 1-minute bars (its trades' bars, with their trade counts): what a
    user with bars alone gives ``detect file``."""
    source = tick_input(ticks)
    quotes = source.frame[source.frame["price"].notna()]
    bars = bars_from_quotes(quotes[["symbol", "venue", "ts", "price", "size"]], include_open=True)
    return Input("bars", bars[["symbol", "venue", *BAR_REQUIRED[1:], "vwap", "trades"]].reset_index(drop=True))


def bars_from_bar_file(frame: pd.DataFrame) -> pd.DataFrame:
    """Normalise a 1-minute bar file: sorted per symbol, ``end``, ``vwap`` and the change percentages filled."""
    bars = frame.sort_values(["symbol", "start"], kind="stable").drop_duplicates(["symbol", "start"], keep="last")
    bars = bars.reset_index(drop=True)
    bars["end"] = bars["start"] + MINUTE_MS
    if "vwap" not in bars.columns:
        bars["vwap"] = bars["close"]
    prev_close = bars.groupby("symbol", sort=False)["close"].shift(1)
    prev_volume = bars.groupby("symbol", sort=False)["volume"].shift(1)
    bars["price_change_pct"] = [
        np.nan if (v := pct_change(c, None if math.isnan(p) else p)) is None else v
        for c, p in zip(bars["close"].tolist(), prev_close.tolist(), strict=True)
    ]
    bars["volume_change_pct"] = [
        np.nan if (v := pct_change(c, None if math.isnan(p) else p)) is None else v
        for c, p in zip(bars["volume"].tolist(), prev_volume.tolist(), strict=True)
    ]
    return bars


def bar_features(bars: pd.DataFrame) -> pd.DataFrame:
    """Per symbol (sorted), the incremental feature definition folded over its bars; ``ts`` = bar end."""
    parts = []
    for symbol, unsorted in bars.groupby("symbol", sort=True):
        group = unsorted.sort_values("start", kind="stable")
        feats = compute_frame(group)
        feats.insert(0, "ts", group["end"].to_numpy(dtype=np.int64))
        feats.insert(0, "start", group["start"].to_numpy(dtype=np.int64))
        feats.insert(0, "symbol", str(symbol))
        if "venue" in group.columns:  # what a model trained on these rows records as its venues
            feats.insert(1, "venue", group["venue"].astype(str).to_numpy())
        parts.append(feats.reset_index(drop=True))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _values(row: Sequence[float], names: Sequence[str]) -> dict[str, float | None]:
    return {name: (None if math.isnan(x) else float(x)) for name, x in zip(names, row, strict=True)}


#: a detector input: (ts, cadence, feature values); cadence 0 is a flow chunk, 1 bar features, and at the same
#: ts flow goes first
_Event = tuple[int, int, dict[str, float | None]]
_FLOW_CADENCE: Final = 0
_BAR_CADENCE: Final = 1


def _bars_and_flow(
    source: Input,
    venues: dict[str, str],
    flow_config: FlowConfig | None,
    grace_ms: int,
    feeds: Callable[[str], FeedProfile] | None,
    learnt: dict[str, Prints | None],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The input's closed bars and flow chunks, as the stream computes them (a bar file has no flow); fills
    ``learnt`` with the prints learnt per symbol."""
    frame = source.frame
    if source.kind != "ticks":
        bars = bars_from_bar_file(frame)
        return bars, bar_flow(bars)
    quotes, books = split_ticks(frame)
    bars = bars_from_quotes(quotes[["symbol", "venue", "ts", "price", "size"]], grace_ms=grace_ms)
    with_books = None if feeds is None else (lambda symbol: feeds(venues[symbol]).books)
    profiles = feeds or FeedProfiles()
    flow = compute_flow_frame(
        quotes[list(QUOTE_COLUMNS)],
        books,
        flow_config,
        with_books=with_books,
        prints=lambda symbol: profiles(venues[symbol]).prints,
        learnt=learnt,
    )
    return bars, flow


def bar_flow(bars: pd.DataFrame) -> pd.DataFrame:
    """The 1-minute bars' flow chunks (:mod:`tapewatch.detectors.bar_chunks`: ``symbol``, ``ts`` = the bar's end and
    the :data:`~tapewatch.detectors.flow.FLOW_FEATURE_NAMES`), symbol by symbol in time order."""
    rows: list[dict[str, object]] = []
    for symbol, unsorted in bars.groupby("symbol", sort=True):
        chunks = BarChunks(BAR_FLOW)
        group = unsorted.sort_values("start", kind="stable")
        counts = group["trades"].tolist() if "trades" in group.columns else [math.nan] * len(group)
        columns = (group[name].tolist() for name in ("start", "open", "high", "low", "close", "volume"))
        for (start, open_, high, low, close, volume), trades in zip(zip(*columns, strict=True), counts, strict=True):
            count = None if trades is None or math.isnan(trades) else int(trades)
            values = chunks.on_bar(int(start), open_, high, low, close, volume, count)
            rows.append({"symbol": str(symbol), "ts": int(start) + MINUTE_MS, **values})
    return pd.DataFrame(rows, columns=["symbol", "ts", *FLOW_FEATURE_NAMES])


def flow_chunks(
    source: Input,
    *,
    flow_config: FlowConfig | None = None,
    grace_ms: int = DEFAULT_GRACE_MS,
    feeds: Callable[[str], FeedProfile] | None = None,
) -> pd.DataFrame:
    """The input's order-flow chunks as the stream computes them (``symbol``, ``ts`` and the
    :data:`~tapewatch.detectors.flow.FLOW_FEATURE_NAMES`), what it publishes as fast features and the sink stores."""
    firsts = source.frame.groupby("symbol", sort=False)["venue"].first()
    venues = {str(k): str(v) for k, v in firsts.items()}
    return _bars_and_flow(source, venues, flow_config, grace_ms, feeds, {})[1]


def _events(features: pd.DataFrame | None, names: Sequence[str], cadence: int) -> list[_Event]:
    """One symbol's rows of ``features`` (None: it has none) as detector inputs."""
    if features is None:
        return []
    rows = features[list(names)].to_numpy(dtype=np.float64).tolist()
    return [(ts, cadence, _values(r, names)) for ts, r in zip(features["ts"].tolist(), rows, strict=True)]


def _replay(detector: SymbolDetector, events: list[_Event], out: DetectionOutput, news: NewsContext) -> None:
    """Feed one symbol's inputs to its detector in event-time order; its alerts, beside the symbol's news
    (:mod:`tapewatch.detectors.news.context`: what the stream's alerts converge on once every news item has arrived),
    and its scores go to ``out``."""
    events.sort(key=lambda e: (e[0], e[1]))
    for ts, cadence, values in events:
        if cadence == _FLOW_CADENCE:
            alerts = detector.on_chunk(ts, values)
        else:
            score, alerts = detector.on_bar(ts, values)
            if score is not None:
                out.scores.append(score)
        out.alerts.extend(news.annotate(alert) for alert in alerts)


def news_context(
    symbol: str, news: Mapping[str, Sequence[NewsRef]] | None, params: NewsContextParams | None
) -> NewsContext:
    """``symbol``'s news context holding every one of its items in ``news`` (symbol → items)."""
    context = NewsContext(params or NewsContextParams())
    for ref in (news or {}).get(symbol, ()):
        context.observe(ref)
    return context


def detect_frames(
    source: Input,
    model: KMeansModel | None = None,
    params: PatternParams | None = None,
    policy: PolicyParams | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    flow_config: FlowConfig | None = None,
    grace_ms: int = DEFAULT_GRACE_MS,
    feeds: Callable[[str], FeedProfile] | None = None,
    extra_venues: ExtraVenues | None = None,
    calibrations: Mapping[str, Calibration] | None = None,
    hit_model: HitModel | None = None,
    news: Mapping[str, Sequence[NewsRef]] | None = None,
    news_params: NewsContextParams | None = None,
) -> DetectionOutput:
    """Replay the stream's per-symbol detection over a whole input. ``flow_config``, ``grace_ms`` and ``feeds`` must be
    the stream worker's (``FlowConfig.from_settings(settings)``, ``settings.stream.grace_ms``,
    ``settings.venues.feeds()``) for the same alerts; without ``feeds`` a symbol's flow waits for books when the input
    has books for it. The model scores only the venues it may (:mod:`tapewatch.detectors.model_venues`); a refused venue
    is logged once. A venue's calibration (venue → :class:`~tapewatch.detectors.calibration.Calibration`) starts its
    symbols' baselines; one made for another venue or feed shape raises
    :class:`~tapewatch.detectors.calibration.CalibrationError`. ``hit_model`` scores the kinds it was kept for
    (:mod:`tapewatch.detectors.hit_model`), as the stream worker does with the published one. ``news`` (symbol → its
    news items) stands beside the alerts as the stream's ``news_params`` put it."""
    gate = VenueGate(feeds or FeedProfiles(), _extra_venues(extra_venues), log.warning)
    firsts = source.frame.groupby("symbol", sort=False)["venue"].first()
    venues = {str(k): str(v) for k, v in firsts.items()}
    learnt: dict[str, Prints | None] = {}
    bars, flow = _bars_and_flow(source, venues, flow_config, grace_ms, feeds, learnt)
    feats = bar_features(bars)
    out = DetectionOutput(bars=bars, symbols=sorted(venues), learnt_prints=learnt, venues=venues)
    flow_by_symbol = dict(iter(flow.groupby("symbol", sort=False))) if len(flow) else {}
    feat_by_symbol = dict(iter(feats.groupby("symbol", sort=False))) if len(feats) else {}
    bar_names = list(model.feature_names) if model is not None else []
    for symbol in out.symbols:
        if progress:
            progress(symbol)
        model_here = gate.model_for(model, venues[symbol])
        detector = _detector(
            symbol,
            venues[symbol],
            model_here,
            params,
            policy,
            flow_config,
            feeds,
            calibrations,
            hit_model,
            bars=source.kind == "bars",
        )
        out.detectors[symbol] = detector
        events = _events(flow_by_symbol.get(symbol), FLOW_FEATURE_NAMES, _FLOW_CADENCE)
        if detector.model is not None:  # None: no model, or one that may not score the venue
            events += _events(feat_by_symbol.get(symbol), bar_names, _BAR_CADENCE)
        _replay(detector, events, out, news_context(symbol, news, news_params))
    out.kmeans_refused = gate.refused()
    return out


def replay_flow(
    flow: pd.DataFrame,
    venues: Mapping[str, str],
    params: PatternParams | None = None,
    policy: PolicyParams | None = None,
    *,
    flow_config: FlowConfig | None = None,
    feeds: Callable[[str], FeedProfile] | None = None,
    calibrations: Mapping[str, Calibration] | None = None,
    hit_model: HitModel | None = None,
    news: Mapping[str, Sequence[NewsRef]] | None = None,
    news_params: NewsContextParams | None = None,
) -> DetectionOutput:
    """The pattern detectors (no K-means) over order-flow chunks computed already, as the stream stored them
    (``symbol``, ``ts`` and the :data:`~tapewatch.detectors.flow.FLOW_FEATURE_NAMES`; symbol → venue in ``venues``):
    what
    :func:`detect_frames` does after its flow stage, so the same chunks give the same alerts."""
    out = DetectionOutput(symbols=sorted(venues), venues=dict(venues))
    by_symbol = dict(iter(flow.groupby("symbol", sort=False))) if len(flow) else {}
    for symbol in out.symbols:
        detector = _detector(symbol, venues[symbol], None, params, policy, flow_config, feeds, calibrations, hit_model)
        out.detectors[symbol] = detector
        events = _events(by_symbol.get(symbol), FLOW_FEATURE_NAMES, _FLOW_CADENCE)
        _replay(detector, events, out, news_context(symbol, news, news_params))
    return out


def _detector(
    symbol: str,
    venue: str,
    model: KMeansModel | None,
    params: PatternParams | None,
    policy: PolicyParams | None,
    flow_config: FlowConfig | None,
    feeds: Callable[[str], FeedProfile] | None,
    calibrations: Mapping[str, Calibration] | None,
    hit_model: HitModel | None = None,
    *,
    bars: bool = False,
) -> SymbolDetector:
    """A symbol's detector on its venue's feed (``bars``: its 1-minute bars, which carry no prints and no books),
    started from the venue's calibration where there is one, scoring with the calibrated hit model where one is
    given."""
    profile = (feeds or FeedProfiles())(venue)
    base = params or PatternParams()
    on_feed = base.for_bars(profile) if bars else base.for_feed(flow_config or FlowConfig(), profile)
    if feeds is None and not bars:  # the flow used the books wherever the input had them
        on_feed = on_feed.carrying(CARRIED)
    calibration = (calibrations or {}).get(venue)
    if calibration is not None:
        calibration.check(venue, profile.prints, on_feed)
    on_venue = policy if calibration is None else calibration.policy(policy, symbol)
    detector = SymbolDetector(symbol, venue, model, on_feed, on_venue, hit_model)
    if calibration is not None:
        calibration.seed(detector)
    return detector


def _extra_venues(given: ExtraVenues | None) -> ExtraVenues:
    """The venues users assert are alike per model: the caller's, else the settings'
    ``TAPEWATCH_KMEANS_EXTRA_VENUES`` (the offline twin must score the venues the stream worker scores, and not
    every caller passes them)."""
    if given is not None:
        return given
    from tapewatch.settings import Settings

    # read afresh, not through the cached get_settings(): a library call must not freeze the settings
    return Settings().venues.kmeans_extra()


def coverage(out: DetectionOutput) -> tuple[list[str], dict[str, frozenset[str]]]:
    """Which pattern detectors (by their parameters' group, as ``pump_onset``) ran on some symbol of the input, and
    which did not run on some symbol → what they need that its feed does not carry (prints, books): 1-minute bars
    carry neither."""
    ran: set[str] = set()
    missing: dict[str, set[str]] = {}
    for detector in out.detectors.values():
        for name, needs in detector.patterns.ran().items():
            if needs:
                missing.setdefault(name, set()).update(needs)
            else:
                ran.add(name)
    return sorted(ran), {name: frozenset(needs) for name, needs in sorted(missing.items())}


def write_jsonl(path: Path, records: Sequence[Alert] | Sequence[Score]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for record in records:
            handle.write(record.to_json())
            handle.write(b"\n")
