"""News items from the labelled generators: the wire around their news repricings, news that moves nothing, and
the promoters' own items during some pump-and-dumps.

An evaluation that only ever saw news beside news repricings would flatter any rule that trusts news: every
generator therefore writes three kinds of item (:data:`NEWS_LABELS`), each a :class:`~tapewatch.records.NewsItem`
of source ``sim`` with one symbol, drawn from streams of their own so that the market a seed gives (quotes, books,
episodes, look-alikes) is the same with and without them:

* ``repricing`` — one item per news repricing the generator enacts, published ``repricing_lag_s`` after the jump's
  first move (uniform; negative: the wire leads the prints, positive: the prints lead the wire), its headline good
  or bad news in the jump's direction;
* ``background`` — items that move nothing, at a rate drawn per symbol (log-uniform in ``background_rate`` per full
  270-minute session: a stock nobody writes about to a covered large cap), at uniform times over the session, with
  neutral headlines (board meetings, investor conferences); some land by chance near a real episode;
* ``touting`` — a ``touting_share`` of the pump-and-dumps get a promotional item of their own (schemes tout their
  stock): a ``touting_before_share`` of them 0–``touting_before_s`` before the run-up starts, the others at a
  uniform time over the run-up; its headline is good news.

Headlines are short templates in the generator's language (:data:`HEADLINES`): sentiment is not the point here.
Item ids are ``sim:<generator>-<day>-<seed>-<n>``, numbered in publication order, so two sessions never share one.

>>> wire = NewsWire(generator="simulator", seed=3, day=date(2024, 1, 2), venue="sim", language="en")
>>> plan = SymbolPlan("SIM0001", repricings=((1_000_000, -1),), runups=())
>>> rngs = news_streams(3, (9,))
>>> drafts = draft_symbol(NewsParams(background_rate=(0.0, 0.0)), plan, rngs, (0, 16_200_000))
>>> [(d.label, d.tone) for d in drafts]
[('repricing', -1)]
>>> items, labels = publish(wire, drafts)
>>> items[0].item_id, items[0].source, labels
('sim:simulator-20240102-3-1', 'sim', ('repricing',))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np
import pandas as pd

from tapewatch.records import NewsItem

Range = tuple[float, float]

NEWS_SOURCE: Final = "sim"
#: what an item is there for: beside a news repricing, moving nothing, or touting a pump
NEWS_LABELS: Final[tuple[str, ...]] = ("repricing", "background", "touting")
NEWS_COLUMNS: Final[tuple[str, ...]] = ("item_id", "symbol", "ts", "label", "title")
FULL_SESSION_MINUTES: Final = 270.0


@dataclass(frozen=True, slots=True)
class NewsParams:
    """How much news a generator writes and when; ranges are drawn uniformly unless said otherwise."""

    #: publication time minus the repricing's first move, in seconds: the wire may lead the first prints by up to a
    #: minute or trail them by up to two
    repricing_lag_s: Range = (-60.0, 120.0)
    #: items that move nothing, per symbol and full 270-minute session: the symbol's rate is log-uniform in this
    #: range (its geometric mean 1); (0, 0) writes none
    background_rate: Range = (0.25, 4.0)
    #: the share of pump-and-dumps touted by an item of their own
    touting_share: float = 0.3
    #: the share of those items published before the run-up starts, and how long before it (seconds); the others
    #: at a uniform time over the run-up
    touting_before_share: float = 0.25
    touting_before_s: Range = (0.0, 900.0)

    def __post_init__(self) -> None:
        for name in ("repricing_lag_s", "background_rate", "touting_before_s"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"news.{name} must be a finite range, low ≤ high")
        if self.background_rate[0] < 0 or (self.background_rate[0] == 0 < self.background_rate[1]):
            raise ValueError("news.background_rate must be (0, 0) or a positive range")
        if self.touting_before_s[0] < 0:
            raise ValueError("news.touting_before_s must not be negative")
        for name in ("touting_share", "touting_before_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"news.{name} must be within 0..1")

    def mean_background_rate(self) -> float:
        """The expected background items per symbol and full session (the log-uniform's mean)."""
        low, high = self.background_rate
        return low if low == high else (high - low) / math.log(high / low)


@dataclass(frozen=True, slots=True)
class SymbolPlan:
    """What a generator did on one symbol that news goes with (times in epoch ms)."""

    symbol: str
    #: each enacted news repricing: its first move and its direction (+1 up, −1 down)
    repricings: Sequence[tuple[int, int]]
    #: each labelled pump-and-dump: its onset and the end of its run-up
    runups: Sequence[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Draft:
    """An item before it has an id: when, on which symbol, why (:data:`NEWS_LABELS`), its tone and headline."""

    ts: int
    symbol: str
    label: str
    tone: int  # +1 good news, −1 bad, 0 neutral
    headline: int  # index into the tone's headlines


@dataclass(frozen=True, slots=True)
class NewsWire:
    """How a generator's items are written: whose ids, which venue and language."""

    generator: str
    seed: int
    day: date
    venue: str
    language: str


def news_streams(seed: int, key: tuple[int, ...]) -> tuple[np.random.Generator, ...]:
    """A symbol's three news streams (background, repricing, touting), from spawn keys no market stream uses, so
    that the news never shifts a market draw and each kind of item is drawn alike whatever the others do."""
    return tuple(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(*key, i))) for i in range(3))


def draft_symbol(
    params: NewsParams, plan: SymbolPlan, rngs: Sequence[np.random.Generator], session: tuple[int, int]
) -> list[Draft]:
    """A symbol's items: background over ``session`` (start, end ms), one per repricing, touting for some pumps."""
    background, repricing, touting = rngs
    return [
        *_background(params, plan.symbol, background, session),
        *_repricing_items(params, plan, repricing),
        *_touting(params, plan, touting),
    ]


def session_news(
    params: NewsParams,
    wire: NewsWire,
    plans: Sequence[SymbolPlan],
    keys: Sequence[tuple[int, ...]],
    session: tuple[int, int],
) -> tuple[tuple[NewsItem, ...], tuple[str, ...]]:
    """A session's items and their labels: each symbol's drafts (its streams spawned from ``keys``), published."""
    drafts = [
        draft
        for plan, key in zip(plans, keys, strict=True)
        for draft in draft_symbol(params, plan, news_streams(wire.seed, key), session)
    ]
    return publish(wire, drafts, [plan.symbol for plan in plans])


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _headline(rng: np.random.Generator) -> int:
    return int(rng.integers(HEADLINES_PER_TONE))


def _background(params: NewsParams, symbol: str, rng: np.random.Generator, session: tuple[int, int]) -> list[Draft]:
    start, end = session
    low, high = params.background_rate
    rate = low if low == high else math.exp(_uniform(rng, (math.log(low), math.log(high))))
    count = int(rng.poisson(rate * (end - start) / (FULL_SESSION_MINUTES * 60_000)))
    times = np.sort(rng.integers(start, end, count)) if count and end > start else np.zeros(0, dtype=np.int64)
    return [Draft(int(ts), symbol, "background", 0, _headline(rng)) for ts in times]


def _repricing_items(params: NewsParams, plan: SymbolPlan, rng: np.random.Generator) -> list[Draft]:
    drafts = []
    for first_move, direction in plan.repricings:
        lag_ms = round(_uniform(rng, params.repricing_lag_s) * 1000)
        drafts.append(Draft(first_move + lag_ms, plan.symbol, "repricing", direction, _headline(rng)))
    return drafts


def _touting(params: NewsParams, plan: SymbolPlan, rng: np.random.Generator) -> list[Draft]:
    drafts = []
    for onset, runup_end in plan.runups:
        # every draw is made for every pump, so one pump's luck never shifts the next one's
        touted = rng.random() < params.touting_share
        before = rng.random() < params.touting_before_share
        lead_ms = round(_uniform(rng, params.touting_before_s) * 1000)
        during_ms = round(float(rng.random()) * max(0, runup_end - onset))
        headline = _headline(rng)
        if touted:
            ts = onset - lead_ms if before else onset + during_ms
            drafts.append(Draft(ts, plan.symbol, "touting", 1, headline))
    return drafts


def publish(
    wire: NewsWire, drafts: Iterable[Draft], symbols: Sequence[str] = ()
) -> tuple[tuple[NewsItem, ...], tuple[str, ...]]:
    """The drafts as records in publication order (ties: ``symbols``' order, then the label's), numbered from 1,
    and each item's label (:data:`NEWS_LABELS`)."""
    rank = {symbol: i for i, symbol in enumerate(symbols)}
    ordered = sorted(drafts, key=lambda d: (d.ts, rank.get(d.symbol, len(rank)), d.symbol, NEWS_LABELS.index(d.label)))
    items = tuple(_item(wire, n, draft) for n, draft in enumerate(ordered, 1))
    return items, tuple(draft.label for draft in ordered)


def _item(wire: NewsWire, number: int, draft: Draft) -> NewsItem:
    templates = TOUTING_HEADLINES[wire.language] if draft.label == "touting" else HEADLINES[wire.language][draft.tone]
    title, summary = templates[draft.headline]
    return NewsItem(
        symbol=draft.symbol,
        venue=wire.venue,
        item_id=f"{NEWS_SOURCE}:{wire.generator}-{wire.day:%Y%m%d}-{wire.seed}-{number}",
        source=NEWS_SOURCE,
        ts=draft.ts,
        title=title.format(symbol=draft.symbol),
        summary=summary.format(symbol=draft.symbol),
        language=wire.language,
        symbols=[draft.symbol],
    )


def news_frame(items: Sequence[NewsItem], labels: Sequence[str]) -> pd.DataFrame:
    """The items with their labels (:data:`NEWS_COLUMNS`), in publication order; empty with those columns."""
    return pd.DataFrame(
        {
            "item_id": [item.item_id for item in items],
            "symbol": [item.symbol for item in items],
            "ts": pd.array([item.ts for item in items], dtype="int64"),
            "label": list(labels),
            "title": [item.title for item in items],
        },
        columns=list(NEWS_COLUMNS),
    )


#: templates per tone and language, so that a draft's headline index is valid whatever its language
HEADLINES_PER_TONE: Final = 3
#: language → tone (+1 good, −1 bad, 0 neutral) → (title, summary) templates; ``{symbol}`` is the symbol
HEADLINES: Final[Mapping[str, Mapping[int, tuple[tuple[str, str], ...]]]] = {
    "zh-TW": {
        1: (
            ("{symbol} 接獲大單 下季營收看增", "{symbol} 公告取得新訂單，法人預期下季營收明顯成長。"),
            ("{symbol} 上修全年財測 毛利率優於預期", "{symbol} 調高全年營收與獲利預估，毛利率優於市場預期。"),
            ("{symbol} 月營收創同期新高", "{symbol} 公布月營收，年增逾三成，創歷年同期新高。"),
        ),
        -1: (
            ("{symbol} 下修全年財測 毛利率不如預期", "{symbol} 調降全年營收預估，毛利率低於市場預期。"),
            ("{symbol} 主要客戶砍單 營運轉弱", "{symbol} 證實主要客戶削減訂單，下季營運恐轉弱。"),
            ("{symbol} 月營收年減逾兩成", "{symbol} 公布月營收，年減逾兩成，低於法人預估。"),
        ),
        0: (
            ("{symbol} 公告董事會召開日期", "{symbol} 公告將於下月召開董事會。"),
            ("{symbol} 受邀參加法人說明會", "{symbol} 受邀參加券商舉辦之法人說明會。"),
            ("{symbol} 公告股東常會日期", "{symbol} 公告今年股東常會日期與地點。"),
        ),
    },
    "en": {
        1: (
            ("{symbol} wins a major order, sees next-quarter sales rising", "{symbol} announced a new order."),
            ("{symbol} raises full-year guidance, margins beat", "{symbol} lifted its sales and profit outlook."),
            ("{symbol} posts record monthly sales", "{symbol} reported monthly sales up more than 30 %."),
        ),
        -1: (
            ("{symbol} cuts full-year guidance, margins miss", "{symbol} lowered its sales outlook."),
            ("{symbol} loses orders from its main customer", "{symbol} confirmed its main customer cut orders."),
            ("{symbol} monthly sales fall more than 20 %", "{symbol} reported monthly sales below estimates."),
        ),
        0: (
            ("{symbol} sets a board meeting date", "{symbol} will hold a board meeting next month."),
            ("{symbol} to attend an investor conference", "{symbol} was invited to a broker's conference."),
            ("{symbol} announces its annual meeting date", "{symbol} set the date of its annual meeting."),
        ),
    },
}
#: the promoters' own words: good news, a touch too good
TOUTING_HEADLINES: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "zh-TW": (
        ("飆股搶先看：{symbol} 題材發酵 主力進場", "{symbol} 轉機題材即將爆發，主力已經進場布局。"),
        ("{symbol} 獨家利多 低基期上看漲停", "{symbol} 獨家消息：新產品打入大廠供應鏈，股價上看漲停。"),
        ("明牌：{symbol} 營運大爆發 法人喊進", "{symbol} 營運即將大爆發，法人紛紛喊進。"),
    ),
    "en": (
        ("{symbol}: the breakout everyone will be talking about", "Insiders are loading up on {symbol}."),
        ("Exclusive: {symbol} set to soar on a secret deal", "{symbol} is about to announce a huge deal."),
        ("{symbol} could double from here, say analysts", "{symbol} is the most undervalued stock on the board."),
    ),
}
