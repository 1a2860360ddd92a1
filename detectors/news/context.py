"""News beside an alert: the symbol's news around the onset, and a pump's score lowered when there is some.

The most common false pump on a real market is a repricing on news: the price runs, buyers crowd in, and every
rule of a run-up fires. An analyst's first question is whether there was news at the onset, so every alert carries
the symbol's news published from ``before_ms`` before its onset (``window_start``) to ``after_ms`` after it (an onset
is estimated from the first chunks that moved, which can lead the wire's publication time by a minute or two), at
most :data:`~tapewatch.records.ALERT_NEWS_MAX` items, newest first, and says how many there were.

When there is news at the onset, the score of a run-up of the kinds in ``discounted`` (a pump's) is multiplied by
``1 − discount`` and its severity follows the lowered score; the evidence keeps the score before it. A pump confirmed
by its dump (its evidence gives back a share of the rise: :data:`DUMP_EVIDENCE`) keeps its score: a repricing on news
holds, a pump gives the rise back, whatever was on the wire. Whether the news is good or bad does not matter here: a
sentiment model's sign is not reliable enough to clear or condemn a move, and bad news moves prices as much as good.
A scheme that plants its own news is not cleared by this: its run-up is lowered, not dropped, and its dump reports
at full strength.

The outcome depends only on the alert and on the news published around its onset, never on which arrived first:
:meth:`NewsContext.annotate` always starts from the alert as the rules raised it, so a stream that learns of the news
after it raised the alert re-annotates that alert and converges on the alert it would have raised with the news in
hand.

>>> from tapewatch.records import Alert
>>> context = NewsContext(NewsContextParams())
>>> context.observe({"item_id": "cnyes:1", "ts": 590_000, "source": "cnyes", "title": "營收創高", "url": "",
...                  "sentiment": 0.6})
True
>>> alert = Alert(alert_id="a", symbol="2330", venue="twse", ts=900_000, kind="pump_and_dump", severity="high",
...               score=0.9, window_start=600_000, window_end=900_000, model_version="patterns")
>>> seen = context.annotate(alert)
>>> seen.score, str(seen.severity), seen.evidence["news_at_onset"], seen.evidence["score_before_news"]
(0.45, 'low', True, 0.9)
>>> [ref["item_id"] for ref in seen.news]
['cnyes:1']
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final

from tapewatch.detectors.alerting import severity_of
from tapewatch.detectors.evidence import Key
from tapewatch.detectors.patterns.checks import non_negative, shares
from tapewatch.records import ALERT_NEWS_MAX, Alert, AlertKind, NewsItem, NewsRef
from tapewatch.state_versions import StateVersions

if TYPE_CHECKING:
    from tapewatch.settings import NewsSettings

#: the news context's state versions (one so far: no steps)
CONTEXT_STATE: Final = StateVersions("news context state")
STATE_VERSION: Final = CONTEXT_STATE.current
#: an item's sentiment travels rounded to this many decimals (on signals.news and in the alerts that cite it)
SENTIMENT_DIGITS: Final = 6
#: at most this many items a symbol keeps (the oldest go first)
KEPT_MAX: Final = 64

#: the evidence of a pump confirmed by its dump (:mod:`tapewatch.detectors.patterns.pump_dump`: the share of the rise
#: given back)
DUMP_EVIDENCE: Final = "fall_share"

#: what the news context adds to every alert's evidence (:mod:`tapewatch.detectors.evidence`)
NEWS_EVIDENCE: Final[Mapping[str, Key]] = {
    "news_at_onset": Key("news on the symbol around the onset"),
    "news_count": Key("news items on the symbol around the onset", "items"),
    "score_before_news": Key("the score before the news discount", "score"),
}


def cited(item: NewsItem, sentiment: float | None) -> NewsRef:
    """``item`` as an alert cites it, with its sentiment (rounded as it travels)."""
    return NewsRef(
        item_id=item.item_id,
        ts=item.ts,
        source=item.source,
        title=item.title,
        url=item.url,
        sentiment=None if sentiment is None else round(sentiment, SENTIMENT_DIGITS),
    )


@dataclass(frozen=True, slots=True)
class NewsContextParams:
    """Which news counts as "at the onset", and what it does to a run-up's score."""

    GROUP: ClassVar[str] = "news_context"
    #: news published this long before the onset is news at the onset
    before_ms: int = 30 * 60_000
    #: …and this long after it (an onset leads the wire by up to a minute or two)
    after_ms: int = 2 * 60_000
    #: the share of the score a run-up loses when there is news at its onset (0: none, 1: all of it)
    discount: float = 0.5
    #: the kinds whose score the news lowers
    discounted: tuple[AlertKind, ...] = (AlertKind.PUMP_AND_DUMP,)
    #: how long a symbol keeps an item (an alert's onset is never older than this when it is raised or re-read)
    keep_ms: int = 24 * 3_600_000

    def __post_init__(self) -> None:
        non_negative(self, "before_ms", "after_ms", "keep_ms")
        shares(self, "discount")
        for kind in self.discounted:
            AlertKind(kind)

    @classmethod
    def from_settings(cls, news: NewsSettings) -> NewsContextParams:
        """Which news stands beside an alert and what it does to a run-up's score, from ``TAPEWATCH_NEWS_BEFORE_MS``,
        ``TAPEWATCH_NEWS_AFTER_MS`` and ``TAPEWATCH_NEWS_DISCOUNT``."""
        return cls(before_ms=news.before_ms, after_ms=news.after_ms, discount=news.discount)


@dataclass
class NewsContext:
    """One symbol's recent news, by publication time: :meth:`observe` an item, :meth:`annotate` an alert with it."""

    params: NewsContextParams = field(default_factory=NewsContextParams)
    #: (published, item id) → the item, kept sorted by publication time
    _items: list[tuple[int, str, NewsRef]] = field(default_factory=list)

    def observe(self, ref: NewsRef) -> bool:
        """Keeps ``ref`` (a re-edit replaces the item of the same id); whether anything changed."""
        for index, (_, item_id, kept) in enumerate(self._items):
            if item_id == ref["item_id"]:
                if kept == ref:
                    return False
                del self._items[index]
                break
        bisect.insort(self._items, (int(ref["ts"]), ref["item_id"], ref), key=lambda item: (item[0], item[1]))
        newest = self._items[-1][0]
        self._items = [item for item in self._items if item[0] >= newest - self.params.keep_ms][-KEPT_MAX:]
        return True

    def around(self, onset: int) -> list[NewsRef]:
        """The items published from ``before_ms`` before ``onset`` to ``after_ms`` after it, newest first."""
        low = bisect.bisect_left(self._items, onset - self.params.before_ms, key=lambda item: item[0])
        high = bisect.bisect_right(self._items, onset + self.params.after_ms, key=lambda item: item[0])
        return [ref for _, _, ref in reversed(self._items[low:high])]

    def touches(self, ref: NewsRef, onset: int) -> bool:
        """Whether an item published at ``ref["ts"]`` is news at an onset at ``onset``."""
        return onset - self.params.before_ms <= ref["ts"] <= onset + self.params.after_ms

    def annotate(self, alert: Alert) -> Alert:
        """``alert`` (as the rules raised it) with the news around its onset; a discounted kind's score lowered."""
        news = self.around(alert.window_start)
        evidence = {k: v for k, v in alert.evidence.items() if k not in NEWS_EVIDENCE}
        evidence["news_at_onset"] = bool(news)
        evidence["news_count"] = len(news)
        score, severity = alert.score, alert.severity
        if news and self._discounted(alert):
            evidence["score_before_news"] = alert.score
            score = round(alert.score * (1.0 - self.params.discount), 6)
            severity = severity_of(score)
        return alert.model_copy(
            update={"news": news[:ALERT_NEWS_MAX], "evidence": evidence, "score": score, "severity": severity}
        )

    def _discounted(self, alert: Alert) -> bool:
        """Whether news at its onset lowers ``alert``'s score: a run-up of a discounted kind, not yet dumped."""
        return alert.kind in self.params.discounted and self.params.discount > 0 and DUMP_EVIDENCE not in alert.evidence

    # -- state -----------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, "items": [dict(ref) for _, _, ref in self._items]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], params: NewsContextParams | None = None) -> NewsContext:
        state = CONTEXT_STATE.upgrade(state)
        context = cls(params or NewsContextParams())
        context._observe_all(state["items"])
        return context

    def _observe_all(self, refs: Iterable[Mapping[str, Any]]) -> None:
        for raw in refs:
            sentiment = raw.get("sentiment")
            self.observe(
                NewsRef(
                    item_id=str(raw["item_id"]),
                    ts=int(raw["ts"]),
                    source=str(raw["source"]),
                    title=str(raw["title"]),
                    url=str(raw.get("url", "")),
                    sentiment=None if sentiment is None else float(sentiment),
                )
            )
