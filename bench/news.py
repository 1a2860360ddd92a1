"""`tapewatch bench news`: how many news items per second one stream worker's news stage keeps up with, on one core.

On the real broker, on private topics (a fresh prefix, deleted afterwards): a backlog of news items (headlines and
summaries in Traditional Chinese and English, about a venue of 500 symbols, each item about one to three of them)
is produced up front. The raw reference is a bare confluent-kafka consumer reading that backlog. Then one
``tapewatch stream worker``, pinned to one core, works through it: it scores every item's sentiment (the plain
lexicon: no model is published in the private model directory), updates the symbol's indicator, and writes
signals.news and the news cadence of features.1m; its detect stage reads those signals back. The rate is read from
the news stage's own Prometheus counter between 10 % and 90 % of the backlog (start-up and the tail excluded).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import orjson

from tapewatch.bench.stream import WorkerProcess, raw_consume, sustained_rate
from tapewatch.bench.topics import private_topics
from tapewatch.producers.publisher import Publisher
from tapewatch.records import NewsItem
from tapewatch.settings import Settings
from tapewatch.topics import DLQ_PRODUCERS, NEWS_ITEMS

SYMBOLS = 500
#: headline and summary fragments: positive, negative and neutral wording in both languages
ZH = (
    "營收創新高，法人看好後市",
    "獲利衰退，下修全年財測",
    "董事會決議發放現金股利",
    "遭主管機關裁罰",
    "新廠量產進度順利",
)
EN = ("beats profit forecast, raises outlook", "misses estimates, cuts guidance", "names a new chief executive",
      "faces regulator probe over filings", "wins a large supply contract")  # fmt: skip


@dataclass
class NewsBenchResult:
    items: int
    records: int  # one per item and symbol it concerns
    raw_consume_per_s: float
    worker_per_s: float
    cores: int

    @property
    def items_per_s(self) -> float:
        """News items (not records: an item about three symbols is three) per second."""
        return self.worker_per_s * self.items / self.records if self.records else 0.0

    def to_json(self) -> bytes:
        fields = {"benchmark": "news", **asdict(self), "items_per_s": self.items_per_s}
        return orjson.dumps(fields, option=orjson.OPT_INDENT_2)


def news_backlog(items: int, seed: int = 11) -> list[NewsItem]:
    """``items`` news items over :data:`SYMBOLS` symbols, a record per item and symbol, in publication order."""
    rng = np.random.default_rng(seed)
    start = 1_764_000_000_000
    records: list[NewsItem] = []
    for n in range(items):
        about = [f"{code:04d}" for code in rng.choice(np.arange(1101, 1101 + SYMBOLS), rng.integers(1, 4), False)]
        chinese = bool(rng.random() < 0.6)
        phrase = str(rng.choice(ZH if chinese else EN))
        title = f"{about[0]}{phrase}" if chinese else f"Company {about[0]} {phrase}"
        language = "zh-TW" if chinese else "en"
        summary = _summary(rng, chinese)
        records.extend(_item(n, symbol, start + n * 1_000, title, summary, language, about) for symbol in about)
    return records


def _summary(rng: np.random.Generator, chinese: bool) -> str:
    if chinese:
        return "；".join(str(rng.choice(ZH)) for _ in range(6))
    return ". ".join(f"Company {rng.choice(EN)}" for _ in range(4))


def _item(n: int, symbol: str, ts: int, title: str, summary: str, language: str, about: list[str]) -> NewsItem:
    return NewsItem(
        symbol=symbol, venue="twse", item_id=f"bench:{n}", source="bench", ts=ts, title=title, summary=summary,
        url=f"https://news.example/{n}", language=language, symbols=about,
    )  # fmt: skip


def run_news_bench(settings: Settings, items: int, workdir: Path, cores: int = 1) -> NewsBenchResult:
    records = news_backlog(items)
    workdir.mkdir(parents=True, exist_ok=True)
    with private_topics(settings, f"bench-{uuid.uuid4().hex[:6]}.") as isolated:
        publisher = Publisher(isolated, DLQ_PRODUCERS)
        for record in records:
            publisher.publish(NEWS_ITEMS, record)
        publisher.flush()
        raw = raw_consume(isolated, [isolated.topic(NEWS_ITEMS.name)], len(records))
        models = tempfile.mkdtemp(prefix="bench-news-models-")  # no published model: the plain lexicon
        cpus = set(sorted(os.sched_getaffinity(0))[:cores])
        env = {"TAPEWATCH_MODEL_DIR": models}
        worker = WorkerProcess(isolated, workdir / "worker-news.log", cpus=cpus, agent="news", env=env)
        try:
            samples = worker.follow(len(records))
        finally:
            worker.stop()
    return NewsBenchResult(items, len(records), raw, sustained_rate(samples, len(records)), len(cpus))
