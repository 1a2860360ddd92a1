"""The ``stream:detect`` stage: features.1m → scores.manipulation, alerts (and signals.actions, see
:mod:`streams.signals`).

Per symbol, one :class:`detectors.patterns.SymbolDetector` (flow patterns, K-means scoring, alert policy)
lives in a faust table with the offset of the last features record applied, exactly as the market stage keeps
its state (:mod:`streams.market`): outputs are acknowledged by Kafka before the state is written, and the state
before the events are acknowledged. A replay after a crash skips what the stored offset covers.

* cadence ``fast`` (order-flow chunks) → pattern alerts;
* cadence ``1m`` (bar features) → a K-means :class:`~tapewatch.records.Score` (when a model is loaded) and its
  alerts; then the Double-DQN action, if a policy is loaded (batched over the batch's bar closes).

Bad input never stops the worker: a payload that does not decode, whose key is not its symbol, whose
feature-set version is not the one the detectors were built for, or whose values the model refuses (an
infinite value) goes to ``dlq.streams`` with the reason.

Models hot-reload (:class:`ModelSlot`): a timer polls the artifact store; a new K-means version is swapped into
every live detector and used for every one loaded later. Scores and alerts carry the model version.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from faust.types import EventT, TableT, TopicT

from detectors.features import FEATURE_SET_VERSION
from detectors.flow import FLOW_FEATURE_SET_VERSION
from detectors.kmeans import DEFAULT_MODEL_NAME, FeatureError, KMeansModel
from detectors.models import ArtifactError, ArtifactStore
from detectors.patterns import SymbolDetector
from streams.stage import StageIO, write_state
from tapewatch.records import Cadence, Features, RecordError

STAGE: Final = "stream:detect"
AGENT: Final = "detect"
STATE_FORMAT: Final = 1
VERSIONS: Final = {Cadence.FAST: FLOW_FEATURE_SET_VERSION, Cadence.BAR_1M: FEATURE_SET_VERSION}

log = logging.getLogger(__name__)


class ModelSlot:
    """The current K-means model of a worker, reloaded when the store publishes a newer version."""

    def __init__(self, store: ArtifactStore, name: str = DEFAULT_MODEL_NAME) -> None:
        self.store = store
        self.name = name
        self.model: KMeansModel | None = None
        self.refresh()

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None

    def refresh(self) -> bool:
        """Load a newer version if there is one; True when the model changed. A broken artifact is logged
        and skipped (the worker keeps the model it has)."""
        newer = self.store.has_newer(self.name, self.version)
        if newer is None:
            return False
        try:
            self.model = KMeansModel.load(self.store, self.name, newer)
        except ArtifactError as exc:
            log.error("K-means model %s not loaded, keeping %s: %s", newer, self.version or "none", exc)
            return False
        log.info("K-means model %s loaded", newer)
        return True


@dataclass(slots=True)
class DetectState:
    detector: SymbolDetector
    partition: int
    offset: int  # of the last features record applied (-1: none)
    dirty: bool = False


@dataclass(slots=True)
class DetectCounters:
    events_in: int = 0
    scores_out: int = 0
    alerts_out: int = 0
    dead_letters: int = 0
    replayed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass
class DetectStage:
    scores: TopicT
    alerts: TopicT
    io: StageIO
    table: TableT[bytes, dict[str, Any]]
    models: ModelSlot
    counters: DetectCounters = field(default_factory=DetectCounters)
    stage: str = STAGE
    _live: dict[bytes, DetectState] = field(default_factory=dict, init=False, repr=False)

    def forget(self) -> None:
        self._live.clear()

    def reload_models(self) -> None:
        if self.models.refresh():
            for state in self._live.values():
                state.detector.set_model(self.models.model)

    async def process(self, events: Sequence[EventT[Any]]) -> None:
        started = time.perf_counter()
        io = self.io
        metrics = io.metrics
        touched: dict[bytes, DetectState] = {}
        pending: list[tuple[str, Awaitable[Any]]] = []
        emitted: list[tuple[str, int]] = []
        done: dict[tuple[str, int], int] = {}
        skipped = 0
        for event in events:
            message = event.message
            topic, partition, offset = message.topic, message.partition, message.offset
            if io.redelivered(topic, partition, offset):
                skipped += 1
                continue
            done[(topic, partition)] = max(offset, done.get((topic, partition), -1))
            self.counters.events_in += 1
            key: bytes | None = message.key
            try:
                record = _decode(message.value, key)
            except RecordError as exc:
                kind = "key" if exc.field == "symbol" else "invalid"
                pending.append(("dlq", await self._dead_letter(event, str(exc), exc.field, kind)))
                continue
            assert key is not None
            state = touched.get(key) or self._live.get(key)
            if state is None:
                state = self._load(record, key, partition)
            touched[key] = state
            if state.partition == partition and offset <= state.offset:
                skipped += 1
                continue
            detector = state.detector
            try:
                if record.cadence is Cadence.FAST:
                    alerts = detector.on_flow_features(record.ts, record.values)
                else:
                    score, alerts = detector.on_bar_features(record.ts, record.values)
                    if score is not None:
                        pending.append(
                            ("scores", await self.scores.send(key=key, value=score.to_json(), partition=partition))
                        )
                        self.counters.scores_out += 1
                        emitted.append(("scores", record.ts))
            except FeatureError as exc:
                pending.append(
                    (
                        "dlq",
                        await self._dead_letter(event, f"features refused by the model: {exc}", "values", "invalid"),
                    )
                )
                alerts = []
            for alert in alerts:
                pending.append(("alerts", await self.alerts.send(key=key, value=alert.to_json(), partition=partition)))
                self.counters.alerts_out += 1
                emitted.append(("alerts", record.ts))
            state.partition, state.offset, state.dirty = partition, offset, True

        if pending:
            await asyncio.gather(*(send for _, send in pending))
            for kind, count in Counter(kind for kind, _ in pending).items():
                metrics.records_out.labels(AGENT, kind).inc(count)
        metrics.records_in.labels(AGENT, "features").inc(len(events))
        now_ms = time.time() * 1000.0
        for kind, event_ms in emitted:
            metrics.event_to_emit.labels(AGENT, kind).observe(max(0.0, (now_ms - event_ms) / 1000.0))
        for key, state in touched.items():
            if state.dirty:
                entry = {
                    "format": STATE_FORMAT,
                    "detector": state.detector.to_state(),
                    "partition": state.partition,
                    "offset": state.offset,
                }
                write_state(self.table, state.partition, key, entry)
                state.dirty = False
            self._live[key] = state
        io.done.update(done)
        metrics.batch_seconds.labels(AGENT).observe(time.perf_counter() - started)
        if skipped:
            self.counters.replayed += skipped
            metrics.replayed.labels(AGENT).inc(skipped)
            log.info("replay: skipped %d features record(s) already applied", skipped)

    async def _dead_letter(self, event: EventT[Any], reason: str, field: str | None, kind: str) -> Awaitable[Any]:
        self.counters.dead_letters += 1
        return await self.io.dead_letter(event, reason, field, kind)

    def _load(self, record: Features, key: bytes, partition: int) -> DetectState:
        stored = self.table.get(key)
        model = self.models.model
        if stored is None:
            return DetectState(SymbolDetector(record.symbol, record.venue, model), partition, -1)
        if stored.get("format") != STATE_FORMAT:
            raise ValueError(f"detect state of {record.symbol!r} has unknown format {stored.get('format')!r}")
        detector = SymbolDetector.from_state(stored["detector"], model)
        return DetectState(detector, int(stored["partition"]), int(stored["offset"]))


def _decode(raw: bytes | None, key: bytes | None) -> Features:
    if not raw:
        raise RecordError("features", "empty payload")
    record = Features.from_json(raw)
    if key is None or key != record.key():
        raise RecordError("features", f"message key {key!r} is not the symbol", "symbol")
    expected = VERSIONS[record.cadence]
    if record.version != expected:
        raise RecordError(
            "features",
            f"feature-set version {record.version!r} is not {expected!r} (cadence {record.cadence})",
            "version",
        )
    return record
