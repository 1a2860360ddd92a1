"""News items from a file, scored and grouped by symbol as the alerts cite them: what the offline twin
(``tapewatch detect file --news``) and the evaluation put beside their alerts, as the stream's detect stage does.

A file holds one :class:`~tapewatch.records.NewsItem` per line (JSON Lines, as ``news.items`` carries them). An item
seen again with a later edit replaces the earlier one, as in the stream.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from tapewatch.detectors.news.context import cited
from tapewatch.evaluation.lookback import InputError
from tapewatch.records import NewsItem, NewsRef, RecordError


class Scorer(Protocol):
    def score(self, title: str, summary: str, language: str) -> float: ...


def read_news_items(path: Path) -> list[NewsItem]:
    """The items of a JSON Lines file; :class:`InputError` naming the first line that is not one."""
    items: list[NewsItem] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                items.append(NewsItem.from_json(line))
            except RecordError as exc:
                raise InputError(f"{path}:{number}: {exc}") from None
    return items


def news_by_symbol(items: Iterable[NewsItem], scorer: Scorer) -> dict[str, list[NewsRef]]:
    """Symbol → its items as alerts cite them (the latest edit of each), oldest edit first."""
    latest: dict[tuple[str, str], NewsItem] = {}
    for item in items:
        key = (item.symbol, item.item_id)
        held = latest.get(key)
        if held is None or _edition(held) < _edition(item):
            latest[key] = item
    out: dict[str, list[NewsRef]] = defaultdict(list)
    for item in sorted(latest.values(), key=_edition):
        out[item.symbol].append(cited(item, scorer.score(item.title, item.summary, item.language)))
    return dict(out)


def _edition(item: NewsItem) -> int:
    return item.updated_ts if item.updated_ts is not None else item.ts
