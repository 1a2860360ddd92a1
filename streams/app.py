"""The stream worker: one consumer-group member running the orders, market, news and detect stages, built from the
settings.

Why not faust: faust-streaming 0.15 delivered at most ~8,900 events/s to an agent that does nothing but batch
and acknowledge on this 2-core machine (raw confluent-kafka reads the same backlog at ~64,000/s in the same
run), below the 20,000 records/s a worker must sustain. The worker therefore reads and writes Kafka with
confluent-kafka (librdkafka, off the GIL) and keeps faust's model of the work:

* **one consumer group** (``<prefix>tapewatch-streams``) over md.orders, md.quotes, md.books and features.1m with the
  range assignor, so partition *p* of every source topic lands on the same member (co-partitioned);
* **tables**: per stage, a compacted changelog topic (``…-market-state-changelog``, ``…-detect-state-changelog``)
  co-partitioned with the sources; on assignment the member recovers the partitions it got
  (:mod:`tapewatch.streams.state`), on revocation it drops them;
* **batches**: up to ``batch_max`` messages or what arrived within ``batch_within_s``; per batch, the outputs
  are flushed (acknowledged), then the state, then the offsets are committed — so a crash replays, never loses,
  and the stored per-symbol offsets make the replay skip what was applied (:mod:`tapewatch.streams.stage`).

Registry topics (md.quotes, md.bars.1m, dlq.streams, …) are created by ``tapewatch topics create``; the
changelogs by :func:`tapewatch.streams.admin.prepare_topics` before the worker starts.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from types import FrameType
from typing import Final

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from tapewatch.artifacts import ArtifactStore
from tapewatch.detectors.flow import FlowConfig
from tapewatch.detectors.news.context import NewsContextParams
from tapewatch.detectors.news.indicator import NewsIndicatorParams
from tapewatch.kafka import consumer_config
from tapewatch.kafka_producer import KafkaProducer
from tapewatch.settings import Settings, get_settings
from tapewatch.streams.accounts import AccountReader, AccountTable
from tapewatch.streams.detect import AGENT as DETECT_AGENT
from tapewatch.streams.detect import STAGE as DETECT_STAGE
from tapewatch.streams.detect import DetectStage, ModelSlot
from tapewatch.streams.forecasting import ForecastSlot
from tapewatch.streams.limits import BATCH_MAX, BATCH_WITHIN_S
from tapewatch.streams.market import AGENT as MARKET_AGENT
from tapewatch.streams.market import STAGE as MARKET_STAGE
from tapewatch.streams.market import MarketStage
from tapewatch.streams.metrics import StreamMetrics
from tapewatch.streams.news import AGENT as NEWS_AGENT
from tapewatch.streams.news import STAGE as NEWS_STAGE
from tapewatch.streams.news import NewsStage
from tapewatch.streams.orders import AGENT as ORDERS_AGENT
from tapewatch.streams.orders import STAGE as ORDERS_STAGE
from tapewatch.streams.orders import OrdersStage
from tapewatch.streams.sentiment import SentimentModelSlot
from tapewatch.streams.stage import Stage, StageIO
from tapewatch.streams.state import ChangelogTable
from tapewatch.topics import (
    ACCOUNTS,
    ACTIONS,
    ALERTS,
    BARS,
    BOOKS,
    DLQ_STREAMS,
    FEATURES,
    FIRM_ORDERS,
    FORECASTS,
    MARKET_BY_ORDER,
    NEWS_ITEMS,
    NEWS_SIGNALS,
    QUOTES,
    SCORES,
    VENUE_INDICATORS,
)

APP_ID: Final = "tapewatch-streams"
MARKET_STATE_TABLE: Final = "market-state"
DETECT_STATE_TABLE: Final = "detect-state"
NEWS_STATE_TABLE: Final = "news-state"
ORDERS_STATE_TABLE: Final = "orders-state"
#: how often a worker looks for a newer model version (a directory listing)
MODEL_POLL_S: Final = 10.0
LAG_INTERVAL_S: Final = 5.0
COUNTERS_INTERVAL_S: Final = 60.0
#: Small fetches per partition keep md.quotes and md.books close in event time during a catch-up: the order-flow
#: watermark is the slower stream's, and every chunk the faster one opens ahead is state carried (and written to
#: the changelog) until the slower one arrives.
MAX_PARTITION_FETCH_BYTES: Final = 64 * 1024
#: The worker's producer lingers less than a source's (5 ms, not 20): every checkpoint waits for its flush, and
#: a write still unacknowledged after a minute fails the checkpoint (nothing is committed) instead of stalling it.
WORKER_PRODUCER_CONFIG: Final = {"linger.ms": 5, "delivery.timeout.ms": 60_000}
#: the share of a worker's time its checkpoints may take. A checkpoint writes every touched symbol's whole state
#: (tens of kilobytes each), so at a fixed interval its cost grows with the number of active symbols until the worker
#: does nothing else; the next checkpoint is spaced so that this one's duration stays within this share. A crash
#: replays since the last checkpoint: at most max(interval, duration / share) of input, the same outputs again.
CHECKPOINT_SHARE: Final = 0.1

log = logging.getLogger(__name__)


def checkpoint_due_s(interval_s: float, took_s: float) -> float:
    """Seconds from a checkpoint's start to the next: the configured interval, or longer when the checkpoint took
    more than :data:`CHECKPOINT_SHARE` of it; an interval of 0 (a checkpoint after every batch) is kept as asked.

    >>> checkpoint_due_s(1.0, 0.05), checkpoint_due_s(1.0, 0.5), checkpoint_due_s(0.0, 0.5)
    (1.0, 5.0, 0.0)
    """
    return max(interval_s, took_s / CHECKPOINT_SHARE) if interval_s > 0 else 0.0


def app_id(settings: Settings) -> str:
    """Consumer group and changelog-topic prefix; the topic prefix isolates environments here too."""
    return settings.topic(APP_ID)


def changelog_topic(settings: Settings, table: str) -> str:
    return f"{app_id(settings)}-{table}-changelog"


def worker_consumer(settings: Settings, group: str) -> Consumer:
    """The worker's member of ``group``: commits by hand (after outputs and state are durable), and takes
    partition *p* of every source topic together."""
    return Consumer(
        consumer_config(
            settings,
            **{
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                # co-partitioning: partition p of every source topic to the same member
                "partition.assignment.strategy": "range",
                "session.timeout.ms": settings.stream.session_timeout_ms,
                "max.partition.fetch.bytes": MAX_PARTITION_FETCH_BYTES,
                "fetch.wait.max.ms": 50,
                "queued.min.messages": 20_000,
            },
        )
    )


class StreamApp:
    """The worker: stages, tables, one consumer and one producer; :meth:`run` until :meth:`stop`."""

    def __init__(
        self, settings: Settings | None = None, *, batch_max: int = BATCH_MAX, batch_within_s: float = BATCH_WITHIN_S
    ) -> None:
        self.settings = settings = settings or get_settings()
        self.batch_max = batch_max
        self.batch_within_s = batch_within_s
        self.group = app_id(settings)
        self.metrics = StreamMetrics()
        self.producer = KafkaProducer(settings, DLQ_STREAMS, **WORKER_PRODUCER_CONFIG)
        self.consumer = worker_consumer(settings, self.group)
        self.market_table = ChangelogTable(
            MARKET_STATE_TABLE, changelog_topic(settings, MARKET_STATE_TABLE), self.producer
        )
        self.detect_table = ChangelogTable(
            DETECT_STATE_TABLE, changelog_topic(settings, DETECT_STATE_TABLE), self.producer
        )
        self.news_table = ChangelogTable(NEWS_STATE_TABLE, changelog_topic(settings, NEWS_STATE_TABLE), self.producer)
        self.orders_table = ChangelogTable(
            ORDERS_STATE_TABLE, changelog_topic(settings, ORDERS_STATE_TABLE), self.producer
        )
        #: every tenant's accounts (ref.accounts, read whole: a global table)
        self.accounts = AccountTable()
        self.account_reader = AccountReader(settings, settings.topic(ACCOUNTS.name), self.accounts)
        self.orders = self._orders_stage()
        self.market = self._market_stage()
        self.news = self._news_stage()
        self.detect = self._detect_stage()
        stages: list[Stage] = [self.orders, self.market, self.news, self.detect]
        self.stages = tuple(stages)
        #: source topic → index of its stage in ``stages`` (stages are dataclasses: not hashable)
        self._stage_of: dict[str, int] = {}
        for index, each in enumerate(self.stages):
            self._stage_of.update(dict.fromkeys(each.sources, index))
        self._agent_of = {
            self.orders.orders_topic: (ORDERS_AGENT, "orders"),
            self.orders.firm_topic: (ORDERS_AGENT, "firm"),
            self.market.quotes_topic: (MARKET_AGENT, "quotes"),
            self.market.books_topic: (MARKET_AGENT, "books"),
            self.detect.features_topic: (DETECT_AGENT, "features"),
            self.detect.news_topic: (DETECT_AGENT, "news"),
            self.news.news_topic: (NEWS_AGENT, "news"),
        }
        self._stopping = False
        self._ready = False
        self._assigned: set[TopicPartition] = set()
        #: the partitions paused while a stage holds their next messages back
        self._paused: set[tuple[str, int]] = set()
        self.checkpoint_interval_s = settings.stream.checkpoint_interval_ms / 1000.0
        self._last_checkpoint = time.monotonic()
        self._checkpoint_due_s = self.checkpoint_interval_s  # from the last checkpoint's start
        #: (topic, partition) → next offset to read (applied, outputs and state not yet known durable)
        self._applied: dict[tuple[str, int], int] = {}
        #: (topic, partition) → next offset to commit (applied and durable, not yet committed)
        self._uncommitted: dict[tuple[str, int], int] = {}
        self._last_commit = time.monotonic()

    def _orders_stage(self) -> OrdersStage:
        settings = self.settings
        return OrdersStage(
            orders_topic=settings.topic(MARKET_BY_ORDER.name),
            firm_topic=settings.topic(FIRM_ORDERS.name),
            quotes_topic=settings.topic(QUOTES.name),
            books_topic=settings.topic(BOOKS.name),
            alerts_topic=settings.topic(ALERTS.name),
            io=StageIO(ORDERS_STAGE, ORDERS_AGENT, self.producer, self.metrics),
            table=self.orders_table,
            feeds=settings.venues.feeds(),
            reference=self.accounts.of,
        )

    def _market_stage(self) -> MarketStage:
        settings = self.settings
        return MarketStage(
            quotes_topic=settings.topic(QUOTES.name),
            books_topic=settings.topic(BOOKS.name),
            bars_topic=settings.topic(BARS.name),
            features_topic=settings.topic(FEATURES.name),
            indicators_topic=settings.topic(VENUE_INDICATORS.name),
            io=StageIO(MARKET_STAGE, MARKET_AGENT, self.producer, self.metrics),
            table=self.market_table,
            grace_ms=settings.stream.grace_ms,
            flow_config=FlowConfig.from_settings(settings),
            feeds=settings.venues.feeds(),
            max_skew_ms=settings.stream.max_skew_ms,
        )

    def _news_stage(self) -> NewsStage:
        settings = self.settings
        return NewsStage(
            news_topic=settings.topic(NEWS_ITEMS.name),
            signals_topic=settings.topic(NEWS_SIGNALS.name),
            features_topic=settings.topic(FEATURES.name),
            sentiment=SentimentModelSlot(ArtifactStore(settings.local.models_path)),
            indicator_params=NewsIndicatorParams.from_settings(settings.news),
            io=StageIO(NEWS_STAGE, NEWS_AGENT, self.producer, self.metrics),
            table=self.news_table,
        )

    def _detect_stage(self) -> DetectStage:
        settings = self.settings
        return DetectStage(
            features_topic=settings.topic(FEATURES.name),
            news_topic=settings.topic(NEWS_SIGNALS.name),
            scores_topic=settings.topic(SCORES.name),
            alerts_topic=settings.topic(ALERTS.name),
            actions_topic=settings.topic(ACTIONS.name),
            forecasts_topic=settings.topic(FORECASTS.name),
            forecasters=ForecastSlot(ArtifactStore(settings.local.models_path)),
            io=StageIO(DETECT_STAGE, DETECT_AGENT, self.producer, self.metrics),
            table=self.detect_table,
            models=ModelSlot(ArtifactStore(settings.local.models_path)),
            flow_config=FlowConfig.from_settings(settings),
            feeds=settings.venues.feeds(),
            kmeans_venues=settings.venues.kmeans_extra(),
            news_params=NewsContextParams.from_settings(settings.news),
        )

    @property
    def registry_topics(self) -> tuple[str, ...]:
        s = self.settings
        return tuple(
            s.topic(t.name)
            for t in (
                MARKET_BY_ORDER,
                FIRM_ORDERS,
                ACCOUNTS,
                QUOTES,
                BOOKS,
                BARS,
                FEATURES,
                SCORES,
                ALERTS,
                ACTIONS,
                FORECASTS,
                NEWS_ITEMS,
                NEWS_SIGNALS,
                DLQ_STREAMS,
            )
        )

    @property
    def changelog_topics(self) -> tuple[str, ...]:
        return tuple(table.topic for table in self.tables)

    @property
    def tables(self) -> tuple[ChangelogTable, ...]:
        return (self.orders_table, self.market_table, self.news_table, self.detect_table)

    @property
    def source_topics(self) -> tuple[str, ...]:
        return (*self.orders.sources, *self.market.sources, *self.news.sources, *self.detect.sources)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Finish the batch in progress, commit, leave the group (a signal handler)."""
        self._stopping = True

    def run(self) -> None:
        """Consume until :meth:`stop`; a failure leaves the batch uncommitted and raises."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.account_reader.load()  # every account before the first report is judged
        self.consumer.subscribe(
            list(self.source_topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info("stream worker %s joining; sources %s", self.group, ", ".join(self.source_topics))
        timers = {"models": time.monotonic(), "lag": time.monotonic(), "counters": time.monotonic()}
        try:
            while not self._stopping:
                messages = self.consumer.consume(num_messages=self.batch_max, timeout=self.batch_within_s)
                self.account_reader.refresh()
                if messages:
                    self._process(messages)
                if time.monotonic() - self._last_checkpoint >= self._checkpoint_due_s:
                    self._checkpoint(force_commit=False)
                self._timers(timers)
            self._checkpoint(force_commit=True)
            log.info("stream worker stopping: %s %s", MARKET_AGENT, asdict(self.market.counters))
        except Exception as exc:
            # Not a data problem (those go to the DLQ): Kafka refused a write, or a bug. Stop with everything
            # since the last checkpoint uncommitted, so a restart replays it.
            log.critical("stream worker failed; nothing since the last checkpoint is committed: %r", exc, exc_info=True)
            self.consumer.close()
            self.account_reader.close()
            raise
        self.consumer.close()
        self.account_reader.close()

    def _process(self, messages: Sequence[Message]) -> None:
        by_stage: dict[int, list[Message]] = defaultdict(list)
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if not error.retriable() and error.fatal():
                    raise KafkaException(error)
                log.warning("consumer: %s", error.str())
                continue
            topic = message.topic()
            assert topic is not None
            by_stage[self._stage_of[topic]].append(message)
        for index, batch in by_stage.items():
            self.stages[index].process(batch)
        for stage in self.stages:
            for source, offset in stage.processed().items():
                self._applied[source] = offset + 1
        self._hold_back()
        self.producer.poll()

    def _hold_back(self) -> None:
        """Pause the partitions a stage holds messages of (it has taken what it can), resume the others: the held
        messages are not applied, so no offset past them is committed, and a restart reads them again."""
        held = {source for stage in self.stages for source in stage.held()}
        if held - self._paused:
            self.consumer.pause([TopicPartition(t, p) for t, p in held - self._paused])
            log.debug("holding back %s: read ahead of what it waits for", sorted(held - self._paused))
        if self._paused - held:
            self.consumer.resume([TopicPartition(t, p) for t, p in self._paused - held])
            log.debug("reading %s again", sorted(self._paused - held))
        self._paused = held

    def _checkpoint(self, *, force_commit: bool) -> None:
        """Make what was applied since the last checkpoint durable, in the order that makes a crash replay:
        every output acknowledged, then the state that says they were produced, then the offsets."""
        self._last_checkpoint = started = time.monotonic()
        if not self._applied:
            self._commit(force=force_commit)
            return
        self.producer.flush()
        for stage in self.stages:
            stage.write_state()
        self.producer.flush()
        self._uncommitted.update(self._applied)
        self._applied.clear()
        self._commit(force=force_commit)
        self._checkpoint_due_s = checkpoint_due_s(self.checkpoint_interval_s, time.monotonic() - started)

    def _commit(self, *, force: bool) -> None:
        if not self._uncommitted:
            return
        interval = self.settings.stream.commit_interval_ms / 1000.0
        if not force and time.monotonic() - self._last_commit < interval:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._uncommitted.items()]
        try:
            if force:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            else:
                self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            # the outputs and state are durable: a lost commit only means a replay, which the state skips
            log.warning("offset commit failed (a restart will replay and skip): %s", exc)
        self._uncommitted.clear()
        self._last_commit = time.monotonic()

    # -- rebalances (called from inside consume()) -------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = set(partitions)
        self._paused = set()  # an assignment starts unpaused, at the committed offsets
        owned = {tp.partition for tp in partitions}
        for stage in self.stages:
            stage.forget()
        for table in self.tables:
            table.recover(self.settings, owned)
        log.info("assigned partitions %s of %s", sorted(owned), ", ".join(sorted({tp.topic for tp in partitions})))
        if not self._ready:
            self._ready = True
            log.info("Ready")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._checkpoint(force_commit=True)  # the next owner starts where this one stopped
        self._drop(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # no longer ours: the next owner replays from the last commit against the last written state
        self._applied.clear()
        self._uncommitted.clear()
        for stage in self.stages:
            stage.discard()
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        gone = {tp.partition for tp in partitions}
        self._assigned -= set(partitions)
        self._paused = {source for source in self._paused if source[1] not in gone}
        for stage in self.stages:
            stage.forget()
        for table in self.tables:
            table.drop(gone)
        for io in (self.orders.io, self.market.io, self.news.io, self.detect.io):
            for source in [s for s in io.done if s[1] in gone]:
                del io.done[source]
        log.info("revoked partitions %s", sorted(gone))

    # -- periodic work -----------------------------------------------------------------------------------
    def _timers(self, last: dict[str, float]) -> None:
        now = time.monotonic()
        if now - last["models"] >= MODEL_POLL_S:
            last["models"] = now
            self.detect.reload_models()
            self.news.sentiment.refresh()
        if now - last["lag"] >= LAG_INTERVAL_S:
            last["lag"] = now
            self._report_lag()
        if now - last["counters"] >= COUNTERS_INTERVAL_S:
            last["counters"] = now
            log.info("%s %s", ORDERS_AGENT, asdict(self.orders.counters))
            log.info("%s %s", MARKET_AGENT, asdict(self.market.counters))
            log.info("%s %s", NEWS_AGENT, asdict(self.news.counters))
            log.info("%s %s", DETECT_AGENT, asdict(self.detect.counters))
        self.producer.poll()

    def _report_lag(self) -> None:
        for tp in self._assigned:
            agent, kind = self._agent_of[tp.topic]
            _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                continue
            io = {ORDERS_AGENT: self.orders.io, MARKET_AGENT: self.market.io, NEWS_AGENT: self.news.io}.get(
                agent, self.detect.io
            )
            lag = max(0, high - (io.done.get((tp.topic, tp.partition), -1) + 1))
            self.metrics.consumer_lag.labels(agent, kind, str(tp.partition)).set(lag)


def create_app(
    settings: Settings | None = None, *, batch_max: int = BATCH_MAX, batch_within_s: float = BATCH_WITHIN_S
) -> StreamApp:
    return StreamApp(settings, batch_max=batch_max, batch_within_s=batch_within_s)
