"""The ``stream:news`` stage: news.items → signals.news and the news cadence of features.1m.

Per news item and symbol: the item's sentiment (the newest published sentiment model, else the plain lexicon:
:class:`SentimentSlot`), then the symbol's news indicator (:mod:`tapewatch.detectors.news.indicator`) right after it.
Outputs, keyed by symbol on the item's partition:

* a :class:`~tapewatch.records.NewsSignal` → ``signals.news`` (the item, its sentiment, the indicator, the count);
* a :class:`~tapewatch.records.Features` record of cadence ``news`` → ``features.1m`` (``news_sentiment`` in %,
  ``news_count_1h``), so whoever reads the features sees the symbol's news beside its bars; a venue without a news
  source has no such records.

A re-edit of an item (same id, a later edit) is scored and signalled again, with the indicator as it stands: an
item counts once in the indicator, at its first version. A repeat (same id, same edit) produces nothing. The state
per symbol (indicator, the items seen, offsets) lives in a changelog-backed table like the other stages'
(:mod:`tapewatch.streams.stage`), so a replay after a crash skips what was applied.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from confluent_kafka import Message

from tapewatch.detectors.news.context import SENTIMENT_DIGITS
from tapewatch.detectors.news.indicator import NewsIndicator, NewsIndicatorParams
from tapewatch.records import Cadence, Features, NewsItem, NewsSignal
from tapewatch.state_versions import StateVersions
from tapewatch.streams.stage import StageBase, decode_keyed

STAGE: Final = "stream:news"
AGENT: Final = "news"
#: the formats of a symbol's entry (one so far: no steps)
NEWS_STATE: Final = StateVersions("news state", key="format")
STATE_FORMAT: Final = NEWS_STATE.current
#: the feature-set version of the ``news`` cadence of features.1m
NEWS_FEATURE_SET_VERSION: Final = "news-v1"
#: the items a symbol remembers to tell a repeat from a re-edit (the least recently seen forgotten first)
SEEN_MAX: Final = 256
#: the items whose sentiment the stage remembers: an item about several symbols is one record per symbol, scored once
SCORED_MAX: Final = 4_096

log = logging.getLogger(__name__)


class SentimentScorer(Protocol):
    """What the stage needs of a sentiment model."""

    @property
    def version(self) -> str: ...

    def score(self, title: str, summary: str, language: str) -> float: ...


class SentimentSlot(Protocol):
    """The model the stage scores with now (reloaded by the worker's timer)."""

    @property
    def scorer(self) -> SentimentScorer: ...

    def refresh(self) -> bool: ...


@dataclass(slots=True)
class NewsCounters:
    events_in: int = 0
    signals_out: int = 0
    repeats: int = 0
    dead_letters: int = 0
    replayed: int = 0


@dataclass(slots=True)
class NewsState:
    indicator: NewsIndicator
    partition: int
    offset: int  # of the last news item applied (-1: none)
    #: item id → its edit (updated_ts, else ts) last signalled
    seen: OrderedDict[str, int] = field(default_factory=OrderedDict)
    dirty: bool = False

    def applied(self, topic: str, partition: int, offset: int) -> bool:
        return partition == self.partition and offset <= self.offset

    def mark_applied(self, topic: str, partition: int, offset: int) -> None:
        self.partition, self.offset, self.dirty = partition, offset, True


@dataclass
class NewsStage(StageBase[NewsState, NewsItem]):
    news_topic: str
    signals_topic: str
    features_topic: str
    sentiment: SentimentSlot
    indicator_params: NewsIndicatorParams = field(default_factory=NewsIndicatorParams)
    counters: NewsCounters = field(default_factory=NewsCounters, kw_only=True)
    stage: str = STAGE
    sources: tuple[str, ...] = field(init=False)
    #: (model version, item id, edit) → the item's sentiment
    _scored: OrderedDict[tuple[str, str, int], float] = field(default_factory=OrderedDict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.sources = (self.news_topic,)

    def _decode(self, message: Message) -> NewsItem:
        return decode_keyed(NewsItem, message.value(), message.key())

    def _apply(self, message: Message, record: NewsItem, key: bytes, state: NewsState) -> None:
        edit = record.updated_ts if record.updated_ts is not None else record.ts
        known = state.seen.get(record.item_id)
        if known is not None and edit <= known:
            self.counters.repeats += 1
            return
        scorer = self.sentiment.scorer
        try:
            sentiment = self._sentiment(scorer, record, edit)
        except Exception as exc:  # isolate the item, whatever the model made of it
            log.exception("%s %s: item %s could not be scored", self.stage, record.symbol, record.item_id)
            self._dead_letter(message, f"could not be scored: {type(exc).__name__}: {exc}", None, "error")
            return
        if known is None:
            indicator, count = state.indicator.observe(record.ts, sentiment)
        else:
            indicator, count = state.indicator.at(record.ts)
        state.seen[record.item_id] = edit
        state.seen.move_to_end(record.item_id)
        while len(state.seen) > SEEN_MAX:
            state.seen.popitem(last=False)
        self._emit(record, key, state.partition, sentiment, indicator, count, scorer.version)

    def _sentiment(self, scorer: SentimentScorer, item: NewsItem, edit: int) -> float:
        """The item's sentiment at this edit, scored once for all the symbols it concerns."""
        key = (scorer.version, item.item_id, edit)
        known = self._scored.get(key)
        if known is None:
            known = min(max(float(scorer.score(item.title, item.summary, item.language)), -1.0), 1.0)
            self._scored[key] = known
            if len(self._scored) > SCORED_MAX:
                self._scored.popitem(last=False)
        return known

    def _emit(
        self, item: NewsItem, key: bytes, partition: int, sentiment: float, indicator: float, count: int, version: str
    ) -> None:
        signal = NewsSignal(
            symbol=item.symbol,
            venue=item.venue,
            ts=item.ts,
            updated_ts=item.updated_ts,
            item_id=item.item_id,
            source=item.source,
            title=item.title,
            url=item.url,
            language=item.language,
            sentiment=round(sentiment, SENTIMENT_DIGITS),
            indicator=indicator,
            count_1h=count,
            model_version=version,
        )
        features = Features(
            symbol=item.symbol,
            venue=item.venue,
            ts=item.ts,
            values={"news_sentiment": indicator, "news_count_1h": float(count)},
            version=NEWS_FEATURE_SET_VERSION,
            cadence=Cadence.NEWS,
        )
        self._send("signals", self.signals_topic, key, signal.to_json(), partition, item.ts)
        self._send("features", self.features_topic, key, features.to_json(), partition, None)
        self.counters.signals_out += 1

    def _after_batch(self, messages: Sequence[Message]) -> None:
        if messages:
            self.io.metrics.records_in.labels(AGENT, "news").inc(len(messages))

    # -- state -------------------------------------------------------------------------------------------
    def _load(self, record: NewsItem, key: bytes, partition: int) -> NewsState:
        stored: Mapping[str, Any] | None = self.table.get(key, partition)
        if stored is None:
            return NewsState(NewsIndicator(self.indicator_params), partition, -1)
        stored = NEWS_STATE.upgrade(stored, of=record.symbol)
        return NewsState(
            indicator=NewsIndicator.from_state(stored["indicator"], self.indicator_params),
            partition=int(stored["partition"]),
            offset=int(stored["offset"]),
            seen=OrderedDict((str(item), int(edit)) for item, edit in stored["seen"]),
        )

    def _store(self, key: bytes, state: NewsState) -> None:
        entry: dict[str, Any] = {
            "format": STATE_FORMAT,
            "indicator": state.indicator.to_state(),
            "seen": [[item, edit] for item, edit in state.seen.items()],
            "partition": state.partition,
            "offset": state.offset,
        }
        self.table.write(state.partition, key, entry)
