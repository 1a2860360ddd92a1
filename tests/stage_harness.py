"""Stream stages without a broker: fake messages in, a producer that keeps what was sent, a changelog in memory.

A :class:`StageRun` drives one real stage (:func:`orders_stage_run`, :func:`market_stage_run`) over batches it
checkpoints and commits, and can be killed (``kill -9``) after any message: what was applied since the last
checkpoint is lost, what it sent is not, and a new stage recovers the changelog and goes on from the last commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from tapewatch.detectors.orders.firm_desk import NO_REFERENCE, ReferenceOf
from tapewatch.feeds import FeedProfiles
from tapewatch.records import Book, ExecutionReport, OrderBookEvent, Quote
from tapewatch.streams.market import MarketStage
from tapewatch.streams.metrics import StreamMetrics
from tapewatch.streams.orders import OrdersStage
from tapewatch.streams.stage import StageBase, StageIO
from tapewatch.streams.state import ChangelogTable
from tests.detect_harness import FakeMessage, FakeProducer

ORDERS, QUOTES, BOOKS, BARS, FEATURES = "md.orders", "md.quotes", "md.books", "md.bars.1m", "features.1m"
FIRM, ALERTS, INDICATORS = "orders.firm", "alerts", "venue.indicators"
CHANGELOG = "changelog"


def as_messages(topic: str, records: Sequence[OrderBookEvent | ExecutionReport | Quote | Book]) -> list[FakeMessage]:
    """Each record at the next offset of its symbol's partition (of two, by the symbol's last character)."""
    offsets: dict[int, int] = defaultdict(int)
    out = []
    for record in records:
        partition = ord(record.symbol[-1]) % 2
        out.append(FakeMessage(topic, partition, offsets[partition], record.key(), record.to_json()))
        offsets[partition] += 1
    return out


@dataclass
class StageRun:
    """One stage of a worker over fake messages; :meth:`restart` is a ``kill -9`` after the last checkpoint."""

    build: Callable[[FakeProducer, ChangelogTable], StageBase[Any, Any]]
    producer: FakeProducer = field(default_factory=FakeProducer)
    changelog: dict[int, dict[bytes, dict[str, Any]]] = field(default_factory=dict)
    stage: StageBase[Any, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        table = ChangelogTable("state", CHANGELOG, self.producer)  # type: ignore[arg-type]
        table._entries = {p: dict(entries) for p, entries in self.changelog.items()}
        self.stage = self.build(self.producer, table)

    def run(self, messages: Sequence[FakeMessage], kills: Sequence[int] = (), batch: int = 500) -> None:
        """Batches of ``batch``, each checkpointed and its processed offsets committed; once ``kills[i]`` messages
        have been delivered in all, the worker dies part-way through a batch, and a new one reads every partition
        again from its committed offset, as Kafka would deliver it."""
        committed: dict[tuple[str, int], int] = {}  # next offset to read
        todo, killed, delivered = list(messages), sorted(kills), 0
        while todo:
            end = min(batch, len(todo))
            if killed and killed[0] < delivered + end:
                cut = max(0, killed.pop(0) - delivered)
                self.stage.process(todo[:cut])  # type: ignore[arg-type]
                delivered += cut
                self.restart()  # what was applied since the checkpoint is lost, what it sent is not
                todo = [m for m in messages if m.offset() >= committed.get((m.topic(), m.partition()), 0)]
                continue
            self.stage.process(todo[:end])  # type: ignore[arg-type]
            todo, delivered = todo[end:], delivered + end
            if not todo:  # the end of the input: what the stage held back, until it takes no more
                while self.stage.held() and self._progress():
                    pass
            self._checkpoint(committed)

    def _progress(self) -> bool:
        before = self.stage.processed()
        self.stage.process([])
        return self.stage.processed() != before

    def _checkpoint(self, committed: dict[tuple[str, int], int]) -> None:
        """Outputs durable, the state written to the changelog, then the processed offsets committed."""
        done = self.stage.processed()
        self.stage.write_state()
        self.changelog = {
            p: {k: orjson.loads(orjson.dumps(v)) for k, v in entries.items()}
            for p, entries in self.stage.table._entries.items()
        }
        committed.update({source: offset + 1 for source, offset in done.items()})

    def sent(self, topic: str) -> list[bytes]:
        return [value for t, _, value in self.producer.sent if t == topic]


def io(producer: FakeProducer, stage: str) -> StageIO:
    return StageIO(stage, stage.split(":")[1], producer, StreamMetrics())  # type: ignore[arg-type]


def orders_stage_run(
    feeds: FeedProfiles | None = None, max_pending: int = 200, reference: ReferenceOf = NO_REFERENCE
) -> StageRun:
    def build(producer: FakeProducer, table: ChangelogTable) -> StageBase[Any, Any]:
        return OrdersStage(
            reference=reference,
            orders_topic=ORDERS,
            firm_topic=FIRM,
            quotes_topic=QUOTES,
            books_topic=BOOKS,
            alerts_topic=ALERTS,
            feeds=feeds or FeedProfiles(),
            max_pending=max_pending,
            io=io(producer, "stream:orders"),
            table=table,
        )

    return StageRun(build)


def market_stage_run(indicators: bool = False) -> StageRun:
    """The market stage; with ``indicators``, the wash tests on too (to :data:`INDICATORS`)."""

    def build(producer: FakeProducer, table: ChangelogTable) -> StageBase[Any, Any]:
        return MarketStage(
            quotes_topic=QUOTES,
            books_topic=BOOKS,
            bars_topic=BARS,
            features_topic=FEATURES,
            indicators_topic=INDICATORS if indicators else None,
            io=io(producer, "stream:market"),
            table=table,
        )

    return StageRun(build)


def derived(run: StageRun) -> list[FakeMessage]:
    """What the orders stage sent, as md.quotes and md.books messages in the order sent (a re-send included)."""
    records: list[Quote | Book] = [
        Book.from_json(value) if topic == BOOKS else Quote.from_json(value)
        for topic, _, value in run.producer.sent
        if topic in (QUOTES, BOOKS)
    ]
    quotes = as_messages(QUOTES, [r for r in records if isinstance(r, Quote)])
    books = iter(as_messages(BOOKS, [r for r in records if isinstance(r, Book)]))
    quotes_it = iter(quotes)
    return [next(books) if isinstance(r, Book) else next(quotes_it) for r in records]
