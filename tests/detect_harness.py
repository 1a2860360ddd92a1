"""The detect stage offline: features.1m messages in, its outputs out, no broker (unit and property tests).

A :class:`DetectRun` drives a real :class:`tapewatch.streams.detect.DetectStage` with fake messages, a producer that
keeps what was sent, and small deterministic stand-ins for the DQN policy and a forecaster (no torch: the
stage's bookkeeping is under test, the models' own invariance is tested in ``test_batch_invariance``).
:meth:`DetectRun.restart` is a ``kill -9`` of the worker after its last checkpoint: a new stage on the
changelog's entries, fed again from the last committed message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from tapewatch.artifacts import ArtifactStore
from tapewatch.bench.orders_stage import Message as FakeMessage

__all__ = ["FakeMessage", "FakeProducer"]
from tapewatch.deadletter import DeadLetter
from tapewatch.detectors.news.context import NewsContextParams
from tapewatch.records import Features, NewsSignal
from tapewatch.signals.dqn.inference import Decision, DecisionRequest
from tapewatch.signals.forecast.contract import ForecastRequest, ForecastResult, Rejected
from tapewatch.streams.detect import DetectStage, ModelSlot
from tapewatch.streams.forecasting import ForecastSlot
from tapewatch.streams.metrics import StreamMetrics
from tapewatch.streams.stage import StageIO
from tapewatch.streams.state import ChangelogTable

FEATURES_TOPIC = "features.1m"
NEWS_TOPIC = "signals.news"
OUTPUT_TOPICS = ("scores", "alerts", "actions", "forecasts")
CHANGELOG = "detect-changelog"


@dataclass
class FakeProducer:
    """Keeps every output, dead letter and changelog write, in order."""

    sent: list[tuple[str, bytes, bytes]] = field(default_factory=list)

    def produce(self, topic: str, key: bytes, value: bytes, partition: int) -> None:
        self.sent.append((topic, key, value))

    def dead_letter(self, raw: bytes, letter: DeadLetter, key: bytes | None, partition: int) -> None:
        self.sent.append(("dlq", key or b"", raw))


class FakePolicy:
    """A DQN stand-in: Q-values from the bar's ``ret_1`` and the position, BUY above 0, SELL below."""

    version = "dqn-test"
    feature_names = ("ret_1",)

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision | Rejected]:
        out: list[Decision | Rejected] = []
        for r in requests:
            ret = float(r.features["ret_1"] or 0.0)
            q = {"HOLD": r.position / 10, "BUY": ret, "SELL": -ret}
            chosen = max(q, key=q.__getitem__)
            position = 1 if chosen == "BUY" else 0 if chosen == "SELL" else r.position
            action = "HOLD" if position == r.position else chosen
            out.append(Decision(r.symbol, action, chosen, q, position, self.version))
        return out


class FakeForecaster:
    """A forecaster stand-in: the sum of the window's ``ret_1`` (window 3)."""

    model = "fake"
    version = "fake-test"
    window = 3
    horizon = 1
    feature_names = ("ret_1",)

    def forecast(self, requests: Sequence[ForecastRequest]) -> list[ForecastResult | Rejected]:
        return [
            ForecastResult(
                r.symbol, self.model, self.version, self.horizon, "return", float(np.nansum(_array(r.rows))), 0.5
            )
            for r in requests
        ]


def _array(rows: object) -> npt.NDArray[np.float64]:
    return np.asarray(rows, dtype=np.float64)


def partition_of(symbol: str) -> int:
    return sum(symbol.encode()) % 2


def messages(records: Sequence[Features | NewsSignal]) -> list[FakeMessage]:
    """``records`` as messages of features.1m (news signals: of signals.news), each at the next offset of its topic
    and its symbol's partition."""
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    out = []
    for record in records:
        where = (NEWS_TOPIC if isinstance(record, NewsSignal) else FEATURES_TOPIC, partition_of(record.symbol))
        out.append(FakeMessage(*where, offsets[where], record.key(), record.to_json()))
        offsets[where] += 1
    return out


class DetectRun:
    """One worker's detect stage over fake messages; ``outputs()`` is what it sent, per topic and symbol."""

    def __init__(self, store: Path, news_params: NewsContextParams | None = None) -> None:
        self.store = store
        self.news_params = news_params or NewsContextParams()
        self.producer = FakeProducer()
        self.changelog: dict[int, dict[bytes, dict[str, Any]]] = {}
        self.stage = self._stage()
        self.committed = 0  # messages before this index are committed (their effects are durable)

    def _stage(self) -> DetectStage:
        models = ModelSlot(ArtifactStore(self.store))
        models.policy = FakePolicy()  # type: ignore[assignment]
        forecasters = ForecastSlot(ArtifactStore(self.store), loaders={})
        forecasters.models = {"fake": FakeForecaster()}  # type: ignore[dict-item]
        table = ChangelogTable("detect", CHANGELOG, self.producer)  # type: ignore[arg-type]
        table._entries = {p: dict(entries) for p, entries in self.changelog.items()}
        io = StageIO("stream:detect", "detect", self.producer, StreamMetrics())  # type: ignore[arg-type]
        return DetectStage(
            features_topic=FEATURES_TOPIC,
            news_topic=NEWS_TOPIC,
            scores_topic="scores",
            alerts_topic="alerts",
            actions_topic="actions",
            models=models,
            forecasts_topic="forecasts",
            forecasters=forecasters,
            io=io,
            table=table,
            news_params=self.news_params,
        )

    def process(self, batch: Sequence[FakeMessage]) -> None:
        self.stage.process(batch)  # type: ignore[arg-type]

    def checkpoint(self, upto: int) -> None:
        """Outputs durable, states written to the changelog, then messages before ``upto`` committed."""
        self.stage.write_state()
        # what a recovery reads back: the entries as they were serialised on the wire at this checkpoint
        self.changelog = {
            p: {k: orjson.loads(orjson.dumps(v)) for k, v in entries.items()}
            for p, entries in self.stage.table._entries.items()
        }
        self.committed = upto

    def restart(self) -> None:
        """``kill -9``: what was applied since the last checkpoint is lost; a new stage recovers the changelog."""
        self.stage = self._stage()

    def outputs(self) -> dict[tuple[str, bytes], list[bytes]]:
        """Topic and symbol → the distinct values sent, in the order first sent (a replay re-sends the same)."""
        out: dict[tuple[str, bytes], dict[bytes, None]] = defaultdict(dict)
        for topic, key, value in self.producer.sent:
            if topic != CHANGELOG:
                out[(topic, key)].setdefault(value, None)
        return {where: list(values) for where, values in out.items()}

    def sent_count(self) -> int:
        return sum(1 for topic, _, _ in self.producer.sent if topic != CHANGELOG)
