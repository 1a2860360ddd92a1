"""The faust app of the stream workers, built from :mod:`tapewatch.settings`.

Registry topics (md.quotes, md.bars.1m, dlq.streams, …) are created by ``tapewatch topics create`` with their
retention and partition count; faust never declares them (``topic_allow_declare=False``). The app's own
internal topics (table changelogs) are created by :func:`streams.admin.prepare_topics` before the worker
starts, with the same partition count, so faust needs no permission to create topics either.

Everything is raw bytes on the wire (``value_serializer="raw"``): decoding goes through the record contracts
in :mod:`tapewatch.records`, and bad payloads reach the DLQ unchanged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

import faust
from faust.types import TP, StreamT, TableT, TopicT

from detectors.flow import FlowConfig
from detectors.models import ArtifactStore
from streams import faust_compat
from streams.detect import AGENT as DETECT_AGENT
from streams.detect import STAGE as DETECT_STAGE
from streams.detect import DetectStage, ModelSlot
from streams.limits import BATCH_MAX, BATCH_WITHIN_S
from streams.market import AGENT as MARKET_AGENT
from streams.market import STAGE as MARKET_STAGE
from streams.market import MarketStage
from streams.metrics import StreamMetrics
from streams.stage import StageIO, run_stage
from tapewatch.settings import Settings, get_settings
from tapewatch.topics import ACTIONS, ALERTS, BARS, BOOKS, DLQ_STREAMS, FEATURES, QUOTES, SCORES, Topic

APP_ID: Final = "tapewatch-streams"
MARKET_STATE_TABLE: Final = "market-state"
DETECT_STATE_TABLE: Final = "detect-state"
#: how often a worker looks for a newer model version (a directory listing)
MODEL_POLL_S: Final = 10.0
LAG_INTERVAL_S: Final = 5.0
CONSUMER_MAX_FETCH_BYTES: Final = 64 * 1024
DEFAULT_WEB_PORT: Final = 6066
#: faust reads its settings from environment variables too, and they override what the app passes; the
#: prefix confines that to ``TAPEWATCH_FAUST_<SETTING>`` (e.g. TAPEWATCH_FAUST_BROKER_SESSION_TIMEOUT=10),
#: so a stray ``BROKER``, ``STORE`` or ``WEB_PORT`` in the environment cannot reconfigure the worker.
FAUST_ENV_PREFIX: Final = "TAPEWATCH_FAUST_"


def app_id(settings: Settings) -> str:
    """Consumer group and changelog-topic prefix; the topic prefix isolates environments here too."""
    return settings.topic(APP_ID)


@dataclass(frozen=True)
class StreamApp:
    """The faust app and what the CLI needs to know about it."""

    app: faust.App
    settings: Settings
    market: MarketStage
    detect: DetectStage
    metrics: StreamMetrics
    #: registry topics the app reads or writes (must exist beforehand)
    registry_topics: tuple[str, ...]

    @property
    def changelog_topics(self) -> tuple[str, ...]:
        """Internal topics faust would otherwise create: one changelog per table."""
        return tuple(table.changelog_topic.get_topic_name() for table in self.app.tables.values())


def flow_config(settings: Settings) -> FlowConfig:
    """The fast order-flow chunking and windows from the settings (the grace is shared with the bars)."""
    return FlowConfig(
        chunk_ms=settings.flow_chunk_ms,
        long_chunks=settings.flow_long_chunks,
        baseline_chunks=settings.flow_baseline_chunks,
        baseline_min_chunks=settings.flow_baseline_min_chunks,
        grace_ms=settings.stream_grace_ms,
        idle_ms=settings.flow_idle_ms,
        rush_min_trades=settings.flow_rush_min_trades,
    )


def create_app(
    settings: Settings | None = None,
    *,
    web_port: int | None = None,
    batch_max: int = BATCH_MAX,
    batch_within_s: float = BATCH_WITHIN_S,
) -> StreamApp:
    """Build the app. ``web_port=None`` disables faust's web server (stats, table views)."""
    settings = settings or get_settings()
    faust_compat.apply()
    partitions = settings.topic_partitions
    app = faust.App(
        app_id(settings),
        env_prefix=FAUST_ENV_PREFIX,
        **settings.faust_broker_options(),
        store="memory://",
        topic_partitions=partitions,
        # Never create or alter topics: the registry is created by `tapewatch topics create`, changelogs by
        # streams.admin.prepare_topics. No leader topic either (nothing here runs on the leader only).
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=web_port is not None,
        web_port=web_port or DEFAULT_WEB_PORT,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        datadir=str(settings.var_dir / "streams" / app_id(settings)),
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        # Small fetches per partition keep md.quotes and md.books close in event time during a catch-up: the
        # order-flow watermark is the slower stream's, and every chunk the faster one opens ahead is state
        # carried (and written to the changelog) until the slower one arrives.
        consumer_max_fetch_size=CONSUMER_MAX_FETCH_BYTES,
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="raw",
    )

    def registry_topic(*topics: Topic) -> TopicT:
        return app.topic(
            *(settings.topic(topic.name) for topic in topics),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
            internal=False,
        )

    quotes = registry_topic(QUOTES)
    books = registry_topic(BOOKS)
    # the market agent reads both: co-partitioned, so one worker holds partition p of each (faust assigns
    # co-subscribed topics with equal partition counts together)
    market_source = registry_topic(QUOTES, BOOKS)
    bars_topic = registry_topic(BARS)
    features_topic = registry_topic(FEATURES)
    dlq = registry_topic(DLQ_STREAMS)
    # Per-symbol market state; the changelog (compacted) lets a restarted or rebalanced worker resume.
    # Keys are the UTF-8 symbol (raw, as on every topic), values JSON objects.
    market_state: TableT[bytes, dict[str, Any]] = app.Table(
        MARKET_STATE_TABLE,
        default=None,
        partitions=partitions,
        key_type=bytes,
        help="Per-symbol bar builder, bar-feature and order-flow state, and the last applied source offsets",
    )
    metrics = StreamMetrics()

    def highwater(topic: str, partition: int) -> int | None:
        try:
            return app.consumer.highwater(TP(topic, partition))
        except AssertionError:  # aiokafka asserts the partition is assigned: it was just revoked
            return None

    stage = MarketStage(
        quotes_topic=quotes.get_topic_name(),
        books_topic=books.get_topic_name(),
        bars=bars_topic,
        features=features_topic,
        io=StageIO(MARKET_STAGE, MARKET_AGENT, dlq, metrics),
        table=market_state,
        grace_ms=settings.stream_grace_ms,
        flow_config=flow_config(settings),
        highwater=highwater,
    )

    async def market_agent(stream: StreamT[Any]) -> None:
        await run_stage(stage, stream, batch_max=batch_max, batch_within_s=batch_within_s, crash=app.crash)

    app.agent(market_source, name=MARKET_AGENT, concurrency=1)(market_agent)

    async def forget_live_state(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # partitions moved: the live caches may be stale, the recovered tables are not
        stage.forget()
        detect.forget()

    app.on_partitions_revoked.connect(forget_live_state)
    app.on_partitions_assigned.connect(forget_live_state)

    scores_topic = registry_topic(SCORES)
    alerts_topic = registry_topic(ALERTS)
    actions_topic = registry_topic(ACTIONS)
    detect_state: TableT[bytes, dict[str, Any]] = app.Table(
        DETECT_STATE_TABLE,
        default=None,
        partitions=partitions,
        key_type=bytes,
        help="Per-symbol detector state (patterns, alert policy) and the last applied features.1m offset",
    )
    detect = DetectStage(
        scores=scores_topic,
        alerts=alerts_topic,
        actions=actions_topic,
        io=StageIO(DETECT_STAGE, DETECT_AGENT, dlq, metrics),
        table=detect_state,
        models=ModelSlot(ArtifactStore(settings.models_path)),
    )

    async def detect_agent(stream: StreamT[Any]) -> None:
        await run_stage(detect, stream, batch_max=batch_max, batch_within_s=batch_within_s, crash=app.crash)

    app.agent(features_topic, name=DETECT_AGENT, concurrency=1)(detect_agent)

    async def reload_models() -> None:
        await asyncio.to_thread(detect.reload_models)

    app.timer(MODEL_POLL_S, name="model-reload")(reload_models)

    async def report() -> None:
        app.log.info("%s %s", MARKET_AGENT, stage.counters.as_dict())
        app.log.info("%s %s", DETECT_AGENT, detect.counters.as_dict())

    app.timer(60.0, name="stream-counters")(report)

    async def consumer_lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic in sources:
                agent, kind, done = MARKET_AGENT, sources[tp.topic], stage.io.done
            elif tp.topic in detect_sources:
                agent, kind, done = DETECT_AGENT, detect_sources[tp.topic], detect.io.done
            else:
                continue
            last = highwater(tp.topic, tp.partition)
            if last is None:
                continue
            lag = max(0, last - (done.get((tp.topic, tp.partition), -1) + 1))
            metrics.consumer_lag.labels(agent, kind, str(tp.partition)).set(lag)

    sources = {quotes.get_topic_name(): "quotes", books.get_topic_name(): "books"}
    detect_sources = {features_topic.get_topic_name(): "features"}
    app.timer(LAG_INTERVAL_S, name="consumer-lag")(consumer_lag)

    registry = tuple(
        t.get_topic_name()
        for t in (quotes, books, bars_topic, features_topic, scores_topic, alerts_topic, actions_topic, dlq)
    )
    return StreamApp(app=app, settings=settings, market=stage, detect=detect, metrics=metrics, registry_topics=registry)
