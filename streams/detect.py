"""The ``stream:detect`` stage: features.1m and signals.news → scores.manipulation, alerts (with the news around their
onset), signals.actions and signals.forecasts.

Per symbol, one :class:`tapewatch.detectors.patterns.SymbolDetector` (flow patterns, K-means scoring, alert policy) and
the symbol's recent news (:class:`tapewatch.detectors.news.context.NewsContext`, with the alerts it raised lately, as
raised, to annotate again when news about their onset arrives after them) live in a changelog-backed table with the
offset of the last record applied from each source topic, exactly as the market stage keeps its state
(:mod:`tapewatch.streams.market`): outputs are acknowledged by Kafka before the state is written, and the state before
the offsets are committed. A replay after a crash skips what the stored offset covers.

Applying is idempotent by event identity too: the entry keeps, per cadence, the event time of the newest
features record applied, and a record at or before it is skipped (counted as replayed) at whatever offset it
arrives. The market stage writes each symbol's records of one cadence in strictly increasing event time, so
such a record is one it sent again after its own crash or a rebalance (at new offsets), or a producer's retry:
applying it twice would feed a chunk to the patterns twice and a bar to the forecasters' history twice.

* cadence ``fast`` (order-flow chunks) → pattern alerts;
* cadence ``1m`` (bar features) → a K-means :class:`~tapewatch.records.Score` (when a model is loaded and may
  score the record's venue: :mod:`tapewatch.detectors.model_venues`) and its alerts; then the Double-DQN
  :class:`~tapewatch.records.Action` at that bar close, when a policy is loaded.
  Decisions are batched: one forward pass for every symbol whose bar closed in the batch (a symbol with two
  bar closes in one batch is decided in two rounds, so its second decision sees the position of its first).
  The position lives in the same table entry as the detector. A bar whose features are still warming up (a
  feature the policy needs is null) gets ``HOLD`` with empty Q-values and the position unchanged: every bar
  has an action, and an empty ``q_values`` says the agent could not decide yet (expected, not bad input).
  At the same bar close every loaded forecaster (:mod:`tapewatch.streams.forecasting`: LSTM, CNN) publishes its
  :class:`~tapewatch.records.Forecast` on ``signals.forecasts``, batched per model, from the symbol's last bars
  kept in the same table entry (:class:`~tapewatch.signals.forecast.history.FeatureHistory`); a symbol whose window is
  not full yet gets no forecast (counted as ``forecasts_warming``), values a model refuses are dead-lettered.

Bad input never stops the worker: a payload that does not decode, whose key is not its symbol, whose
feature-set version is not the one the detectors were built for, or whose values the model refuses (an
infinite value) goes to ``dlq.streams`` with the reason.

Models hot-reload (:class:`ModelSlot`): the worker polls the artifact store; a new K-means version is swapped into
every live detector and used for every one loaded later, a new DQN version takes the next decisions. Scores,
alerts and actions carry the model version. A model that cannot be loaded (corrupt, or made for another
feature set) is logged and the worker keeps the one it has.

Models per venue: a K-means model scores only the venues it was trained on (or ones listed for it in
``TAPEWATCH_KMEANS_EXTRA_VENUES``). The symbols of any other venue get patterns only — no score, no K-means
alert; the refusal is logged once per model version and venue, and counted (``kmeans_refused`` in the
counters, ``tapewatch_stream_kmeans_refused_total{agent,venue}``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import orjson
from confluent_kafka import Message

from tapewatch import extras
from tapewatch.artifacts import ArtifactError, ArtifactStore
from tapewatch.detectors.calibration import Calibration, CalibrationError
from tapewatch.detectors.calibration import artifact_name as calibration_artifact
from tapewatch.detectors.features import FEATURE_NAMES, FEATURE_SET_VERSION
from tapewatch.detectors.flow import FLOW_FEATURE_SET_VERSION, FlowConfig
from tapewatch.detectors.hit_model import ARTIFACT_NAME as HIT_MODEL_NAME
from tapewatch.detectors.hit_model import HitModel
from tapewatch.detectors.kmeans import DEFAULT_MODEL_NAME, FeatureError, KMeansModel
from tapewatch.detectors.model_venues import ExtraVenues, VenueGate
from tapewatch.detectors.news.context import NewsContext, NewsContextParams
from tapewatch.detectors.patterns import FlowPatterns, PatternParams, SymbolDetector
from tapewatch.feeds import FeedProfile, FeedProfiles, Prints
from tapewatch.records import Action, Alert, Cadence, Features, NewsRef, NewsSignal, RecordError, Score
from tapewatch.signals.dqn.decisions import MODEL_NAME as DQN_MODEL_NAME
from tapewatch.signals.dqn.decisions import DecisionRequest, PositionState
from tapewatch.signals.forecast.contract import Rejected
from tapewatch.signals.forecast.history import FeatureHistory
from tapewatch.streams.detect_versions import detect_state
from tapewatch.streams.forecasting import ForecastSlot, PendingForecast, forecast_batch
from tapewatch.streams.news import NEWS_FEATURE_SET_VERSION
from tapewatch.streams.stage import StageBase, decode_keyed

if TYPE_CHECKING:  # the policy needs torch (the signals extra); the worker loads it only when that is installed
    from tapewatch.signals.dqn.inference import DqnPolicy

STAGE: Final = "stream:detect"
AGENT: Final = "detect"
#: the format of a symbol's entry: the last its steps reach (:mod:`tapewatch.streams.detect_versions`)
STATE_FORMAT: Final = detect_state("").current
VERSIONS: Final = {
    Cadence.FAST: FLOW_FEATURE_SET_VERSION,
    Cadence.BAR_1M: FEATURE_SET_VERSION,
    Cadence.NEWS: NEWS_FEATURE_SET_VERSION,
}
#: the alerts a symbol keeps to annotate again when late news arrives
RAISED_MAX: Final = 32

log = logging.getLogger(__name__)


class ModelSlot:
    """A worker's current K-means model and DQN policy, reloaded when the store publishes newer versions."""

    def __init__(self, store: ArtifactStore, kmeans_name: str = DEFAULT_MODEL_NAME) -> None:
        self.store = store
        self.kmeans_name = kmeans_name
        self.model: KMeansModel | None = None
        self.policy: DqnPolicy | None = None
        #: the calibrated score of the kinds it was kept for (:mod:`tapewatch.detectors.hit_model`); ``None``: the
        #: rules'
        self.hit_model: HitModel | None = None
        self._tried: dict[str, str] = {}  # name → version that failed to load (not retried)
        #: venue → (the version first asked for, its calibration; ``None``: it has none, or it was refused)
        self._calibrations: dict[str, tuple[str | None, Calibration | None]] = {}
        #: whether the trading signals can run here (torch and gymnasium: the ``signals`` extra); without them the
        #: worker detects, and says so once
        self.signals = extras.available("signals")
        if not self.signals:
            log.warning("trading signals are off: the 'signals' extra is not installed (%s)", extras.hint("signals"))
        self.refresh()

    def calibration(self, venue: str, prints: Prints | None, params: PatternParams) -> Calibration | None:
        """The venue's calibration new symbols start from, loaded on first use; one that does not fit the venue's
        feed (or cannot be read) is logged once and the venue runs uncalibrated."""
        if venue not in self._calibrations:
            version: str | None = None
            found: Calibration | None = None
            try:
                version = self.store.latest_version(calibration_artifact(venue))
                found = None if version is None else Calibration.load(self.store, venue, version)
                if found is not None:
                    found.check(venue, prints, params)
                    log.info("calibration %s of %s loaded (%d symbols)", version, venue, len(found.symbols))
            except (ArtifactError, CalibrationError, OSError) as exc:
                log.error("%s runs uncalibrated: %s", venue, exc)
                found = None
            self._calibrations[venue] = (version, found)
        return self._calibrations[venue][1]

    def _drop_stale_calibrations(self) -> None:
        """Forgets each venue calibrated anew since: its next new symbol reads the new version."""
        for venue, (version, _) in list(self._calibrations.items()):
            if self.store.latest_version(calibration_artifact(venue)) != version:
                del self._calibrations[venue]

    def refresh(self) -> bool:
        """Load newer versions if there are; True when the K-means model changed. A broken artifact is
        logged once and skipped (the worker keeps what it has)."""
        changed = False
        self._drop_stale_calibrations()
        newer = self._newer(self.kmeans_name, self.model.version if self.model else None)
        if newer is not None:
            try:
                self.model = KMeansModel.load(self.store, self.kmeans_name, newer)
                changed = True
                log.info("K-means model %s loaded", newer)
            except ArtifactError as exc:
                self._failed(self.kmeans_name, newer, exc)
        newer = self._newer(HIT_MODEL_NAME, self.hit_model.version if self.hit_model else None)
        if newer is not None:
            try:
                self.hit_model = HitModel.load(self.store, newer)
                log.info("hit model %s loaded", newer)
            except ArtifactError as exc:
                self._failed(HIT_MODEL_NAME, newer, exc)
        newer = self._newer(DQN_MODEL_NAME, self.policy.version if self.policy else None) if self.signals else None
        if newer is not None:
            from tapewatch.signals.dqn.inference import DqnPolicy

            try:
                policy = DqnPolicy.load(self.store.root, newer)
                policy.check_features(FEATURE_SET_VERSION, FEATURE_NAMES)
                self.policy = policy
                log.info("DQN policy %s loaded", newer)
            except ArtifactError as exc:
                self._failed(DQN_MODEL_NAME, newer, exc)
        return changed

    def _newer(self, name: str, current: str | None) -> str | None:
        newer = self.store.has_newer(name, current)
        return None if newer is None or self._tried.get(name) == newer else newer

    def _failed(self, name: str, version: str, exc: Exception) -> None:
        self._tried[name] = version
        log.error("%s model %s not loaded, keeping the current one: %s", name, version, exc)


@dataclass(slots=True)
class DetectState:
    detector: SymbolDetector
    partition: int
    #: source topic → offset of the last record applied from it
    offsets: dict[str, int]
    position: PositionState = field(default_factory=PositionState)
    #: the bar feature rows the loaded forecasters' windows need (empty when none is loaded)
    history: FeatureHistory = field(default_factory=lambda: FeatureHistory((), 0))
    #: cadence → event time of the newest features record applied: the identity of what the state holds
    newest: dict[str, int] = field(default_factory=dict)
    #: the symbol's recent news, beside every alert it raises
    news: NewsContext = field(default_factory=NewsContext)
    #: alert id → the alert's newest emission as the rules raised it (before the news context), to annotate again
    #: when news about its onset arrives after it
    raised: dict[str, Alert] = field(default_factory=dict)
    dirty: bool = False

    def applied(self, topic: str, partition: int, offset: int) -> bool:
        return partition == self.partition and offset <= self.offsets.get(topic, -1)

    def holds(self, record: Features) -> bool:
        """Whether a features record of this event time and cadence was applied already."""
        newest = self.newest.get(record.cadence.value)
        return newest is not None and record.ts <= newest

    def mark_applied(self, topic: str, partition: int, offset: int) -> None:
        self.partition, self.dirty = partition, True
        self.offsets[topic] = offset

    def remember(self, alert: Alert, keep_ms: int) -> None:
        """Keeps ``alert`` (as raised) while news about its onset may still arrive: :data:`RAISED_MAX` at most."""
        self.raised.pop(alert.alert_id, None)
        self.raised[alert.alert_id] = alert
        horizon = alert.ts - keep_ms
        for alert_id in [a.alert_id for a in self.raised.values() if a.ts < horizon]:
            del self.raised[alert_id]
        while len(self.raised) > RAISED_MAX:
            del self.raised[next(iter(self.raised))]


#: a bar close awaiting its DQN decision: the message, its key, the symbol's state and the features record
_BarClose = tuple[Message, bytes, DetectState, Features]


@dataclass(slots=True)
class DetectCounters:
    events_in: int = 0
    scores_out: int = 0
    alerts_out: int = 0
    actions_out: int = 0
    warming: int = 0
    forecasts_out: int = 0
    #: bar closes a forecaster could not answer yet (window not full, features still warming up)
    forecasts_warming: int = 0
    dead_letters: int = 0
    replayed: int = 0
    #: bar features records of a venue the K-means model may not score (patterns only for them)
    kmeans_refused: int = 0
    #: news items read from signals.news
    news_in: int = 0
    #: alerts sent again because news about their onset arrived after them
    alerts_annotated: int = 0


@dataclass
class DetectStage(StageBase[DetectState, Features | NewsSignal]):
    features_topic: str
    news_topic: str
    scores_topic: str
    alerts_topic: str
    actions_topic: str
    models: ModelSlot
    forecasts_topic: str
    forecasters: ForecastSlot
    #: the flow features' chunking and each venue's feed profile set every symbol's pattern parameters
    flow_config: FlowConfig = field(default_factory=FlowConfig)
    feeds: Callable[[str], FeedProfile] = field(default_factory=FeedProfiles)
    #: model name → venues the user asserts are like its training venues (``TAPEWATCH_KMEANS_EXTRA_VENUES``)
    kmeans_venues: ExtraVenues = field(default_factory=dict)
    #: which news is news at an alert's onset, and what it does to a run-up's score
    news_params: NewsContextParams = field(default_factory=NewsContextParams)
    counters: DetectCounters = field(default_factory=DetectCounters, kw_only=True)
    stage: str = STAGE
    sources: tuple[str, ...] = field(init=False)
    #: the batch's bar closes, decided together once every message is applied
    _bar_closes: list[_BarClose] = field(default_factory=list, init=False, repr=False)
    #: the batch's bar closes awaiting forecasts (``ref`` indexes ``_bar_closes``)
    _pending: list[PendingForecast] = field(default_factory=list, init=False, repr=False)
    #: which venues the current model may score; each refusal logged once per model version and venue
    _gate: VenueGate = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.sources = (self.features_topic, self.news_topic)
        self._announced: set[str] = set()  # the venues whose detectors not run were logged
        self._gate = VenueGate(self.feeds, self.kmeans_venues, lambda line: log.warning("%s: %s", self.stage, line))

    def reload_models(self) -> None:
        self.forecasters.refresh()
        kmeans_changed = self.models.refresh()
        for state in self._live.values():
            if kmeans_changed:
                state.detector.set_model(self._gate.model_for(self.models.model, state.detector.venue))
            state.detector.hit_model = self.models.hit_model

    def _decode(self, message: Message) -> Features | NewsSignal:
        if message.topic() == self.news_topic:
            return decode_keyed(NewsSignal, message.value(), message.key())
        record = decode_keyed(Features, message.value(), message.key())
        expected = VERSIONS[record.cadence]
        if record.version != expected:
            raise RecordError(
                "features",
                f"feature-set version {record.version!r} is not {expected!r} (cadence {record.cadence})",
                "version",
            )
        return record

    def _seen(self, record: Features | NewsSignal, state: DetectState) -> bool:
        return isinstance(record, Features) and state.holds(record)

    def _apply(self, message: Message, record: Features | NewsSignal, key: bytes, state: DetectState) -> None:
        partition = message.partition()
        assert partition is not None  # checked when the message was received
        if isinstance(record, NewsSignal):
            self._apply_news(record, key, state)
            return
        if record.cadence is Cadence.NEWS:
            return  # the news stage's indicator, for the features' readers: this stage reads signals.news itself
        state.newest[record.cadence.value] = record.ts  # applied or dead-lettered: a re-send is skipped either way
        try:
            score, alerts = _detect(state.detector, record)
        except FeatureError as exc:
            self._dead_letter(message, f"features refused by the model: {exc}", "values", "invalid")
            score, alerts = None, []
        except Exception as exc:  # isolate the record, whatever went wrong
            log.exception("%s %s: features could not be applied, dead-lettered", self.stage, record.symbol)
            state.detector = self._rebuilt_detector(record, key, partition)
            self._dead_letter(message, f"could not be applied: {type(exc).__name__}: {exc}", None, "error")
            return
        self._journal.setdefault(key, []).append(record)
        if record.cadence is not Cadence.FAST:
            self._remember(message, record, state)
            self._bar_closes.append((message, key, state, record))
            self._count_refused(record.venue)
        if score is not None:
            self._send("scores", self.scores_topic, key, score.to_json(), partition, record.ts)
            self.counters.scores_out += 1
        for alert in alerts:
            state.remember(alert, self.news_params.keep_ms)
            self._send_alert(state.news.annotate(alert), key, partition, record.ts)

    def _apply_news(self, signal: NewsSignal, key: bytes, state: DetectState) -> None:
        """Keeps the item beside the symbol's alerts; an alert raised before it arrived whose onset it concerns is
        sent again, annotated (the stores keep the emission that knows more news: :attr:`Alert.emission`)."""
        ref = NewsRef(
            item_id=signal.item_id,
            ts=signal.ts,
            source=signal.source,
            title=signal.title,
            url=signal.url,
            sentiment=signal.sentiment,
        )
        self.counters.news_in += 1
        if not state.news.observe(ref):
            return
        for alert in state.raised.values():
            if state.news.touches(ref, alert.window_start):
                self._send_alert(state.news.annotate(alert), key, state.partition, None)
                self.counters.alerts_annotated += 1

    def _send_alert(self, alert: Alert, key: bytes, partition: int, event_ms: int | None) -> None:
        self._send("alerts", self.alerts_topic, key, alert.to_json(), partition, event_ms)
        self.counters.alerts_out += 1

    def _after_batch(self, messages: Sequence[Message]) -> None:
        bar_closes, self._bar_closes = self._bar_closes, []
        pending, self._pending = self._pending, []
        self._forecast(bar_closes, pending)
        self._act(bar_closes)
        news = sum(1 for message in messages if message.topic() == self.news_topic)
        for kind, count in (("features", len(messages) - news), ("news", news)):
            if count:
                self.io.metrics.records_in.labels(AGENT, kind).inc(count)

    def _store(self, key: bytes, state: DetectState) -> None:
        entry = {
            "format": STATE_FORMAT,
            "detector": state.detector.to_state(),
            "position": state.position.to_state(),
            "history": state.history.to_state(),
            "newest": dict(state.newest),  # a copy: the table keeps the entry, the state goes on
            "news": state.news.to_state(),
            "raised": [orjson.loads(alert.to_json()) for alert in state.raised.values()],
            "partition": state.partition,
            "offsets": dict(state.offsets),
        }
        self.table.write(state.partition, key, entry)

    def _remember(self, message: Message, record: Features, state: DetectState) -> None:
        """Keep the bar's features for the forecasters' windows and queue the bar close for their forecasts."""
        names, capacity = self.forecasters.history_shape()
        state.history = state.history.resized(names, capacity)
        if not capacity:
            return
        absent = [name for name in names if name not in record.values]
        if absent:  # a null is a feature warming up; a feature that is not there at all is a broken record
            reason = f"forecasters: the record lacks feature(s) {', '.join(absent)}"
            self._dead_letter(message, reason, "values", "invalid")
        state.history.append(record.values)
        self._pending.append(PendingForecast(len(self._bar_closes), record.symbol, state.history.snapshot()))

    def _forecast(self, bar_closes: list[_BarClose], pending: list[PendingForecast]) -> None:
        """Every loaded forecaster's forecast for the batch's bar closes: one batched call per model."""
        if not pending:
            return
        outcomes = forecast_batch(self.forecasters.models, pending)
        self.counters.forecasts_warming += outcomes.warming
        for ref, reason in outcomes.rejected:
            self._dead_letter(bar_closes[ref][0], reason, "values", "invalid")
        for ref, forecast in outcomes.forecasts:
            _, key, state, record = bar_closes[ref]
            value = forecast.to_record(record.ts, record.venue).to_json()
            self._send("forecasts", self.forecasts_topic, key, value, state.partition, None)
            self.counters.forecasts_out += 1

    def _act(self, bar_closes: list[_BarClose]) -> None:
        """DQN actions for the batch's bar closes, in rounds of at most one bar close per symbol: a symbol's
        decisions see the position of its previous one, and its actions go out in bar order whatever the batch
        (a bar still warming up gets its ``HOLD`` in its place, not ahead of an earlier bar's decision)."""
        policy = self.models.policy
        if policy is None:
            return
        while bar_closes:
            round_, bar_closes = _first_per_symbol(bar_closes)
            ready = [item for item in round_ if all(item[3].values.get(n) is not None for n in policy.feature_names)]
            requests = [
                DecisionRequest(record.symbol, record.values, state.position.position, bar_end_ms=record.ts)
                for _, _, state, record in ready
            ]
            decided = dict(zip(map(id, ready), policy.decide(requests) if requests else (), strict=True))
            for item in round_:
                outcome = decided.get(id(item))
                if outcome is None:
                    self._hold(item, policy.version)
                elif isinstance(outcome, Rejected):
                    self._dead_letter(item[0], f"DQN: {outcome.reason}", "values", "invalid")
                else:
                    _, key, state, record = item
                    action = outcome.to_action(record.ts, record.venue)
                    self._send("actions", self.actions_topic, key, action.to_json(), state.partition, None)
                    state.position = state.position.after(outcome, record.ts)
                    self.counters.actions_out += 1

    def _hold(self, bar_close: _BarClose, version: str) -> None:
        """A bar whose features still warm up: HOLD, position unchanged, no Q-values (the agent has not decided)."""
        _, key, state, record = bar_close
        self.counters.warming += 1
        action = Action(
            symbol=record.symbol,
            venue=record.venue,
            ts=record.ts,
            action="HOLD",
            q_values={},
            position=state.position.position,
            model_version=version,
        )
        self._send("actions", self.actions_topic, key, action.to_json(), state.partition, None)
        self.counters.actions_out += 1

    def _count_refused(self, venue: str) -> None:
        """A bar of a venue the loaded model may not score went through patterns only: count it (the reason
        was logged once, when the gate first refused the venue)."""
        model = self.models.model
        if model is not None and self._gate.refusal(model, venue) is not None:
            self.counters.kmeans_refused += 1
            self.io.metrics.kmeans_refused.labels(AGENT, venue).inc()

    def _say_what_runs(self, venue: str, params: PatternParams) -> None:
        """Once per venue: the detectors its feed cannot feed (a quiet venue is then not mistaken for a clean one)."""
        if venue in self._announced:
            return
        self._announced.add(venue)
        for name, needs in FlowPatterns(params).ran().items():
            if needs:
                log.info(
                    "%s: venue %s: %s does not run (needs %s)", self.stage, venue, name, " and ".join(sorted(needs))
                )

    def _rebuilt_detector(self, record: Features, key: bytes, partition: int) -> SymbolDetector:
        """The symbol's detector as it was before the record that failed: its stored state, then the features
        applied since (their outputs were sent already)."""
        detector = self._load(record, key, partition).detector
        for applied in self._journal.get(key, []):
            if isinstance(applied, Features):
                with contextlib.suppress(FeatureError):
                    _detect(detector, applied)
        return detector

    def _load(self, record: Features | NewsSignal, key: bytes, partition: int) -> DetectState:
        stored = self.table.get(key, partition)
        model = self._gate.model_for(self.models.model, record.venue)
        params = PatternParams().for_feed(self.flow_config, self.feeds(record.venue))
        calibration = self.models.calibration(record.venue, self.feeds(record.venue).prints, params)
        policy = None if calibration is None else calibration.policy(symbol=record.symbol)
        self._say_what_runs(record.venue, params)
        if stored is None:
            detector = SymbolDetector(record.symbol, record.venue, model, params, policy, self.models.hit_model)
            if calibration is not None:
                calibration.seed(detector)
            return DetectState(detector, partition, {}, news=NewsContext(self.news_params))
        entry = detect_state(self.features_topic).upgrade(stored, of=record.symbol)
        detector = SymbolDetector.from_state(entry["detector"], model, params, policy, self.models.hit_model)
        position = PositionState.from_state(entry["position"])
        history = FeatureHistory.from_state(entry["history"])
        newest = {str(cadence): int(ts) for cadence, ts in entry["newest"].items()}
        offsets = {str(topic): int(offset) for topic, offset in entry["offsets"].items()}
        news = NewsContext.from_state(entry["news"], self.news_params)
        raised = [Alert.from_dict(raw) for raw in entry["raised"]]
        return DetectState(
            detector,
            int(entry["partition"]),
            offsets,
            position,
            history,
            newest,
            news,
            {alert.alert_id: alert for alert in raised},
        )


def _first_per_symbol(bar_closes: list[_BarClose]) -> tuple[list[_BarClose], list[_BarClose]]:
    """(each symbol's first bar close, the rest), both in their order."""
    seen: set[bytes] = set()
    first: list[_BarClose] = []
    later: list[_BarClose] = []
    for item in bar_closes:
        (later if item[1] in seen else first).append(item)
        seen.add(item[1])
    return first, later


def _detect(detector: SymbolDetector, record: Features) -> tuple[Score | None, list[Alert]]:
    """One features record through the symbol's detector: (K-means score, alerts)."""
    if record.cadence is Cadence.FAST:
        return None, detector.on_chunk(record.ts, record.values)
    return detector.on_bar(record.ts, record.values)
