"""What news context does to a labelled session's alerts: the look-alike alerts it takes out of an analyst's queue,
and the true pump-and-dumps it demotes with them.

Every alert is annotated as a stream that has read all of the session's news would annotate it
(:func:`with_news`: one :class:`~tapewatch.detectors.news.context.NewsContext` per symbol holding every item, the one
definition of what news does to an alert), and the session is read twice, as the rules raised it and with the news
context. Alerts are collapsed by ``alert_id`` (:func:`tapewatch.evaluation.judge.collapse`); an alert's severity is the
highest of its versions. An analyst's queue holds the alerts at medium or above; an alert the news context takes
from medium or above down to low is **removed from the queue**.

* **look-alike alerts**: collapsed alerts of the evaluated kinds that match no episode and overlap a labelled
  legitimate look-alike (:func:`tapewatch.evaluation.lookalikes.alerts_on_lookalikes`), all of them, at medium+ and at
  high+, without and with the news context, and how many it removed from the queue;
* **pumps demoted**: pump-and-dump episodes detected by at least one alert whose score the news lowered, and those
  the queue held (an alert at medium+) without the news context but no longer with it; which kind of item
  (:data:`tapewatch.generators.news.NEWS_LABELS`) the lowered alerts cited;
* **pump precision and recall at medium+**, without and with the news context
  (:func:`tapewatch.evaluation.judge.kind_metrics` over the alerts' versions at medium or above), and per pump in the
  queue how long after its start its first alert at medium+ came, without and with it (a run-up's alert lowered by news
  reaches the queue only with the dump).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import pandas as pd

from tapewatch.detectors.alerting import SEVERITY_ORDER
from tapewatch.detectors.news.context import NewsContextParams, cited
from tapewatch.evaluation import judge as ev
from tapewatch.evaluation.lookalikes import alerts_on_lookalikes
from tapewatch.evaluation.lookback import news_context
from tapewatch.records import Alert, AlertKind, NewsItem, NewsRef

PUMP: Final = str(AlertKind.PUMP_AND_DUMP)
#: severity → its rank; medium and above are in an analyst's queue
SEVERITY_RANK: Final = {str(severity): rank for rank, severity in enumerate(SEVERITY_ORDER)}
MEDIUM: Final = SEVERITY_RANK["medium"]
HIGH: Final = SEVERITY_RANK["high"]


def with_news(
    alerts: Iterable[Alert], news: Iterable[NewsItem], params: NewsContextParams | None = None
) -> list[Alert]:
    """Every alert annotated by its symbol's news context holding all of ``news`` (as ``detect file --news`` and a
    stream that has read every item annotate it, whatever came first), from the alerts as the rules raised them."""
    refs: dict[str, list[NewsRef]] = {}
    for item in news:
        refs.setdefault(item.symbol, []).append(cited(item, None))  # the context does not read the sentiment
    contexts = {symbol: news_context(symbol, refs, params) for symbol in refs}
    nothing = news_context("", None, params)
    return [contexts.get(alert.symbol, nothing).annotate(alert) for alert in alerts]


def news_alerts_frame(alerts: Sequence[Alert]) -> pd.DataFrame:
    """:func:`tapewatch.evaluation.judge.alerts_frame` and, per alert, whether the news lowered its score
    (``discounted``) and the ids of the items it cites (``news_ids``, space-separated)."""
    frame = ev.alerts_frame(alerts)
    frame["discounted"] = [bool(a.evidence.get("score_before_news") is not None) for a in alerts]
    frame["news_ids"] = [" ".join(ref["item_id"] for ref in a.news) for a in alerts]
    return frame


@dataclass(frozen=True, slots=True)
class NewsEffect:
    """One generator × feed: the alerts without and with the news context (see the module's note)."""

    lookalike_alerts: int
    lookalike_medium: int
    lookalike_medium_news: int
    lookalike_high: int
    lookalike_high_news: int
    #: look-alike alerts at medium+ that the news context took down to low
    lookalike_removed: int
    pump_episodes: int
    #: detected pumps with an alert whose score the news lowered; those no longer at medium+ with the news context
    pumps_demoted: int
    pumps_demoted_below_medium: int
    #: the pump-and-dump alerts at medium+ scored against the episodes, without and with the news context
    pumps_medium: ev.KindMetrics
    pumps_medium_news: ev.KindMetrics
    #: the demoted pumps by the kind of item their lowered alerts cite (a pump may count under several)
    pumps_demoted_by: dict[str, int] = field(default_factory=dict)
    #: per pump in the queue without the news context: seconds from its start to its first alert at medium+, without
    #: and with it (None: never at medium+ with it)
    queue_delays: list[tuple[float, float | None]] = field(default_factory=list)
    #: the sessions' news items by label
    news_items: dict[str, int] = field(default_factory=dict)


def collapsed(alerts: pd.DataFrame) -> pd.DataFrame:
    """:func:`tapewatch.evaluation.judge.collapse` with each alert's highest severity (``rank``) and, when the frame
    says, whether any version was discounted and the items its versions cite."""
    out = ev.collapse(alerts)
    if alerts.empty:
        return out.assign(rank=pd.Series(dtype="int64"), discounted=pd.Series(dtype=bool), news_ids="")
    grouped = alerts.assign(rank=alerts["severity"].map(SEVERITY_RANK)).groupby("alert_id", sort=False)
    out["rank"] = out["alert_id"].map(grouped["rank"].max())
    if "discounted" in alerts.columns:
        out["discounted"] = out["alert_id"].map(grouped["discounted"].any())
        out["news_ids"] = out["alert_id"].map(grouped["news_ids"].agg(" ".join))
    return out


def _pump_matches(truth: pd.DataFrame, alerts: pd.DataFrame, tolerance_ms: int) -> pd.DataFrame:
    """(episode, collapsed pump alert) pairs that match: same symbol, windows within the tolerance."""
    episodes = truth[truth["kind"] == PUMP].reset_index(drop=True).reset_index(names="episode")
    pairs = episodes[["episode", "symbol", "start", "end"]].merge(alerts[alerts["kind"] == PUMP], on="symbol")
    overlap = (pairs["window_start"] <= pairs["end"] + tolerance_ms) & (
        pairs["window_end"] >= pairs["start"] - tolerance_ms
    )
    return pairs[overlap]


def _queued_pumps(alerts: pd.DataFrame) -> pd.DataFrame:
    """The pump alerts' versions at medium or above, collapsed: an alert is in the queue from its first such
    version (its ``ts``)."""
    rank = alerts["severity"].map(SEVERITY_RANK)
    return ev.collapse(alerts[(alerts["kind"] == PUMP) & (rank >= MEDIUM)]).reset_index(drop=True)


def _at_medium(truth: pd.DataFrame, alerts: pd.DataFrame, tolerance_ms: int) -> ev.KindMetrics:
    return ev.kind_metrics(truth, _queued_pumps(alerts), PUMP, tolerance_ms)


def _queue_delays(truth: pd.DataFrame, alerts: pd.DataFrame, tolerance_ms: int) -> dict[int, float]:
    """Episode → seconds from its start to the first version at medium+ of an alert that matches it."""
    pairs = _pump_matches(truth, _queued_pumps(alerts), tolerance_ms)
    first = pairs.groupby("episode").agg(ts=("ts", "min"), start=("start", "first"))
    rows = zip(first.index, first["ts"], first["start"], strict=True)
    return {int(episode): max(0.0, (ts - start) / 1000) for episode, ts, start in rows}


def _demoted_by(pairs: pd.DataFrame, labels: dict[str, str]) -> dict[str, int]:
    """Demoted episodes per label of the items their discounted alerts cite."""
    seen: dict[str, set[int]] = {}
    for episode, ids in zip(pairs["episode"], pairs["news_ids"], strict=True):
        for item_id in str(ids).split():
            seen.setdefault(labels.get(item_id, "unlabelled"), set()).add(int(episode))
    return {label: len(episodes) for label, episodes in sorted(seen.items())}


def news_effect(
    truth: pd.DataFrame,
    lookalikes: pd.DataFrame,
    alerts: pd.DataFrame,
    alerts_news: pd.DataFrame,
    news: pd.DataFrame,
    tolerance_ms: int = ev.DEFAULT_TOLERANCE_MS,
) -> NewsEffect:
    """The news context's effect (see the module's note): ``alerts`` as raised, ``alerts_news`` the same alerts
    annotated (:func:`news_alerts_frame`), ``news`` the session's items with their labels
    (:data:`tapewatch.generators.news.NEWS_COLUMNS`)."""
    before, after = collapsed(alerts), collapsed(alerts_news)
    on_lookalikes = alerts_on_lookalikes(truth, lookalikes, alerts, tolerance_ms)["alert_id"]
    rank_before = before.set_index("alert_id")["rank"].reindex(on_lookalikes)
    rank_after = after.set_index("alert_id")["rank"].reindex(on_lookalikes)
    matches = _pump_matches(truth, after, tolerance_ms)
    demoted = matches[matches["discounted"]]
    delays, delays_news = _queue_delays(truth, alerts, tolerance_ms), _queue_delays(truth, alerts_news, tolerance_ms)
    labels = dict(zip(news["item_id"].astype(str), news["label"].astype(str), strict=True))
    return NewsEffect(
        lookalike_alerts=len(on_lookalikes),
        lookalike_medium=int((rank_before >= MEDIUM).sum()),
        lookalike_medium_news=int((rank_after >= MEDIUM).sum()),
        lookalike_high=int((rank_before >= HIGH).sum()),
        lookalike_high_news=int((rank_after >= HIGH).sum()),
        lookalike_removed=int(((rank_before >= MEDIUM) & (rank_after < MEDIUM)).sum()),
        pump_episodes=int((truth["kind"] == PUMP).sum()),
        pumps_demoted=demoted["episode"].nunique(),
        pumps_demoted_below_medium=len(set(delays) - set(delays_news)),
        pumps_medium=_at_medium(truth, alerts, tolerance_ms),
        pumps_medium_news=_at_medium(truth, alerts_news, tolerance_ms),
        pumps_demoted_by=_demoted_by(demoted, labels),
        queue_delays=[(delay, delays_news.get(e)) for e, delay in sorted(delays.items())],
        news_items={str(label): int(n) for label, n in news["label"].value_counts().sort_index().items()},
    )
