"""Every step of every kept state's versions, tested on a state that version's own code stored.

``tests/data/states/`` holds, for each older version of the flow state, the symbol detector's state and the detect
and market stages' entries, the state the last commit writing that version stored after the first part of a tape of
:mod:`tests.state_tapes` (``tests/data/states/make.py`` writes them again). Each loads through the steps from its
version up to the current one, holds what each step says it adds, and goes on with the rest of the tape.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from tapewatch.detectors.feed_learning import PrintsLearner
from tapewatch.detectors.flow import (
    FLOW_FEATURE_NAMES,
    FLOW_FEATURE_SET_VERSION,
    FLOW_STATE_VERSION,
    FlowChunk,
    FlowConfig,
    FlowState,
)
from tapewatch.detectors.flow.chunk import CHUNK_FIELDS
from tapewatch.detectors.flow.versions import _V2_CHUNK_FIELDS, _V3_CHUNK, FLOW_STATE, upgraded
from tapewatch.detectors.patterns import STATE_VERSION, SymbolDetector
from tapewatch.detectors.patterns.versions import DETECTOR_STATE
from tapewatch.records import AlertKind, Book, Cadence, Features, Quote
from tapewatch.state_versions import StateVersionError, StateVersions
from tapewatch.streams.detect import STATE_FORMAT, DetectState
from tapewatch.streams.detect_versions import detect_state
from tapewatch.streams.market import MarketStage
from tapewatch.streams.market_versions import MARKET_STATE
from tapewatch.streams.metrics import StreamMetrics
from tapewatch.streams.stage import StageIO
from tapewatch.streams.state import ChangelogTable
from tests import state_tapes as tapes
from tests.detect_harness import CHANGELOG, FEATURES_TOPIC, DetectRun, FakeMessage, FakeProducer, partition_of

STATES = Path(__file__).resolve().parents[1] / "data" / "states"
FLOW = sorted(path.stem for path in STATES.glob("flow-*.json"))
SYMBOL = sorted(path.stem for path in STATES.glob("symbol-*.json"))
DETECT = sorted(path.stem for path in STATES.glob("detect-*.json"))
MARKET = sorted(path.stem for path in STATES.glob("market-*.json"))
CONFIG = FlowConfig(**tapes.FLOW_CONFIG)
FAST = Cadence.FAST
#: the layer tracker's state with nothing learnt
FRESH_TRACKER: list[Any] = [None, [], None, None, []]


def stored(name: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((STATES / f"{name}.json").read_text(encoding="utf-8"))["state"]
    return state


def test_every_older_version_has_a_stored_state() -> None:
    assert {stored(name)["v"] for name in FLOW} == set(range(1, FLOW_STATE_VERSION))
    assert {stored(name)["v"] for name in SYMBOL} == set(range(1, STATE_VERSION))
    assert {stored(name)["format"] for name in DETECT} == set(range(1, STATE_FORMAT))
    assert {stored(name)["format"] for name in MARKET} == set(range(MARKET_STATE.first, MARKET_STATE.current))


def test_the_current_versions_are_the_last_steps() -> None:
    assert FLOW_STATE.current == FLOW_STATE_VERSION and f"flow-v{FLOW_STATE_VERSION}" == FLOW_FEATURE_SET_VERSION
    assert DETECTOR_STATE.current == STATE_VERSION and detect_state("").current == STATE_FORMAT
    assert CHUNK_FIELDS == _V3_CHUNK  # a chunk with other fields needs a step of its own


@pytest.mark.parametrize(
    ("versions", "state"),
    [
        (FLOW_STATE, {"v": 0}),
        (FLOW_STATE, {"v": FLOW_STATE_VERSION + 1}),
        (FLOW_STATE, {}),
        (DETECTOR_STATE, {"v": "7"}),
        (DETECTOR_STATE, {"v": True}),
        (DETECTOR_STATE, {"v": STATE_VERSION + 1}),
        (detect_state("features.1m"), {"format": STATE_FORMAT + 1}),
    ],
)
def test_an_unknown_or_newer_version_is_refused_with_one_error(versions: StateVersions, state: dict[str, Any]) -> None:
    with pytest.raises(StateVersionError, match=r"state.* (version|format) .* is not supported \(this code reads"):
        versions.upgrade(state)


def test_a_flow_state_of_another_feature_set_is_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        upgraded({**stored("flow-v9"), "features": "flow-v8"})
    with pytest.raises(ValueError, match="not supported"):
        FlowState.from_state({**FlowState("AAA", CONFIG).to_state(), "v": 9}, CONFIG)


def _flow_tail(fs: FlowState) -> list[FlowChunk]:
    chunks: list[FlowChunk] = []
    for kind, ts, *rest in tapes.flow_tape()[tapes.FLOW_CUT :]:
        chunks += fs.on_quote_values(ts, *rest) if kind == "quote" else fs.on_book_values(ts, *rest)
    return chunks + fs.flush()


@pytest.mark.parametrize("name", FLOW)
def test_a_stored_flow_state_of_every_older_version_loads_and_goes_on(name: str) -> None:
    state = stored(name)
    version, before = state["v"], copy.deepcopy(state)
    current = upgraded(state)
    assert state == before  # the steps are pure
    assert (current["v"], current["features"]) == (FLOW_STATE_VERSION, FLOW_FEATURE_SET_VERSION)
    _holds_what_the_flow_steps_add(version, state, current)
    fs = FlowState.from_state(state, CONFIG, prints=None)  # a feed whose profile does not say: what was learnt
    assert FlowState.from_state(fs.to_state(), CONFIG, prints=None).to_state() == fs.to_state()
    if version == 1:  # it counted no mirror trades: it goes with any mirror_ms
        FlowState.from_state(state, dataclasses.replace(CONFIG, mirror_ms=1_000))
    learnt = state.get("prints")
    assert fs.prints_learner is not None and fs.prints_learner.to_state() == (learnt or PrintsLearner().to_state())
    chunks = _flow_tail(fs)
    assert len(chunks) > 15 and all(set(FLOW_FEATURE_NAMES) <= set(c.values) for c in chunks)
    # a baseline that carried over scores the first chunk at once; one that started empty warms up again
    assert (chunks[0].values["trades_z"] is not None) is (version >= 3)
    assert any(c.values["trades_z"] is not None for c in chunks)


def _holds_what_the_flow_steps_add(version: int, state: dict[str, Any], current: Mapping[str, Any]) -> None:
    last = current["last"]
    chunks = [*current["open"], *current["recent"]]
    assert [len(c) for c in chunks] == [len(_V3_CHUNK)] * len(chunks)
    assert last[9] == FRESH_TRACKER  # v10: an older tracker starts afresh …
    assert all(c[_V3_CHUNK.index("layers_gone")] == [] for c in chunks)  # … and its vanished layers are dropped
    assert current["prints"] == state.get("prints")  # v8: where a state has none, nothing learnt
    assert current["wm"] == state["wm"] and current["book"] == state["book"]
    if version >= 3:
        assert current["base"] == state["base"] and last[:9] == state["last"][:9]
        return
    assert current["base"] == [[]] * 12  # v2, v3: the baseline starts empty
    assert last[6:9] == [None, 0, None]  # v3: no price seen by the side inference, no mid
    if version == 1:
        assert current["cfg"] == [*state["cfg"], None]  # v2: mirror_ms goes with any
        last_closed = state["last"][0]
        assert last[:6] == [last_closed, last_closed + 1, *state["last"][2:4], 0, 0.0]
        assert all(c[_V3_CHUNK.index(field)] == start for c in chunks for field, start in _V2_CHUNK_FIELDS.items())


def _patterns_after(state: dict[str, Any]) -> dict[str, Any]:
    """What the steps bring a stored state's pattern parts to: each part it holds as it was, the others as they
    start (a pending ignition of four entries waits for its reversal alone)."""
    held = dict(state["patterns"])
    held.pop("close_late", None)
    if held.get("ignition") is not None and len(held["ignition"]) == 4:
        held["ignition"] = [*held["ignition"], 0.0, 0.0, True]
    start: dict[str, Any] = SymbolDetector("AAA", "twse").to_state()["patterns"]
    start |= {"materiality": {}, "records": {}, "spoof_layers": held.get("spoof", [[], None])}
    return start | held


@pytest.mark.parametrize("name", SYMBOL)
def test_a_stored_detector_state_of_every_version_loads_and_goes_on(name: str) -> None:
    state = stored(name)
    before = copy.deepcopy(state)
    current = DETECTOR_STATE.upgrade(state)
    assert state == before  # the steps are pure
    if state["v"] == STATE_VERSION:
        assert current is state  # the current version's state loads as it is
    else:
        assert current["v"] == STATE_VERSION and current["policy"] == state["policy"]
        assert current["patterns"] == _patterns_after(state)
        assert current["kmeans_records"] == {}  # v8: no K-means record yet (it starts empty)
    detector = SymbolDetector.from_state(state)
    assert SymbolDetector.from_state(detector.to_state()).to_state() == detector.to_state()
    _goes_on(detector, state["policy"]["episodes"])


def _goes_on(detector: SymbolDetector, episodes: dict[str, list[Any]]) -> None:
    """The rest of the tape: the wash trades after the cut continue the episode the stored state holds (one alert
    id, its severity rising), or start one where it holds none."""
    tail = tapes.pattern_tape()[tapes.PATTERN_CUT :]
    alerts = [alert for ts, values in tail for alert in detector.on_chunk(ts, values)]
    wash = [alert for alert in alerts if alert.kind is AlertKind.WASH_TRADING]
    assert wash
    held = episodes.get(str(AlertKind.WASH_TRADING))
    if held is None:
        assert wash[0].severity.value == "low"
    else:
        assert wash[0].window_start == held[0] and wash[0].severity.value != held[3]


@pytest.mark.parametrize("name", DETECT)
def test_a_stored_detect_entry_of_every_older_format_loads_and_goes_on(name: str, tmp_path: Path) -> None:
    entry = stored(name)
    before = copy.deepcopy(entry)
    current = detect_state(FEATURES_TOPIC).upgrade(entry)
    assert entry == before  # the steps are pure
    assert current["format"] == STATE_FORMAT and "offset" not in current
    assert current["offsets"] == {FEATURES_TOPIC: entry["offset"]}  # v3: format 2's one offset is the features'
    assert (current["news"], current["raised"]) == ({"v": 1, "items": []}, [])  # v3: no news, no alert kept
    assert current["newest"] == entry.get("newest", {})  # v2: none known
    nothing_kept = {"v": 1, "names": [], "capacity": 0, "rows": []}
    assert current["history"] == entry.get("history", nothing_kept)  # v2: no bar rows kept where it had none
    assert current["detector"] == entry["detector"]
    run = DetectRun(tmp_path)
    run.changelog = {partition_of("AAA"): {b"AAA": entry}}
    run.restart()
    records = [
        Features(symbol="AAA", venue="twse", ts=ts, values=dict(values), version=FLOW_FEATURE_SET_VERSION, cadence=FAST)
        for ts, values in tapes.pattern_tape()[tapes.PATTERN_CUT :]
    ]
    # the record at the stored offset was applied before the state was stored: sent again, it is skipped
    offset, partition = entry["offset"], entry["partition"]
    again = FakeMessage(FEATURES_TOPIC, partition, offset, b"AAA", records[0].to_json())
    after = [FakeMessage(FEATURES_TOPIC, partition, offset + i, b"AAA", r.to_json()) for i, r in enumerate(records, 1)]
    run.process([again, *after])
    state = run.stage._touched[b"AAA"]
    assert isinstance(state, DetectState) and run.stage.counters.replayed == 1
    assert state.offsets == {FEATURES_TOPIC: offset + len(records)} and state.newest == {"fast": records[-1].ts}
    assert orjson.loads(orjson.dumps(state.history.to_state())) == current["history"]
    assert state.position.to_state() == entry["position"]
    sent = [(topic, orjson.loads(value)) for topic, _, value in run.producer.sent if topic != CHANGELOG]
    assert not [topic for topic, _ in sent if topic == "dlq"]
    wash = [alert for topic, alert in sent if topic == "alerts" and alert["kind"] == AlertKind.WASH_TRADING]
    episode = entry["detector"]["policy"]["episodes"][AlertKind.WASH_TRADING]
    assert wash and wash[0]["window_start"] == episode[0] and wash[0]["severity"] != episode[3]


def _flow_layout(state: dict[str, Any]) -> tuple[Any, ...]:
    """What a flow state's format fixes, whatever the tape: its keys, the lengths of its lists, the layer
    tracker's and the chunks' layout, the baseline's columns."""
    last = state["last"]
    tracker = last[9] if len(last) > 9 else None
    chunks = [*state["open"], *state["recent"]]
    gone = {len(layer) for c in chunks if len(c) == len(_V3_CHUNK) for layer in c[_V3_CHUNK.index("layers_gone")]}
    followed = None if tracker is None else (len(tracker), {len(layer) for layer in tracker[1]})
    keys = sorted(state)
    return (
        keys,
        state["v"],
        state["features"],
        len(state["cfg"]),
        len(last),
        followed,
        {len(c) for c in chunks},
        gone,
        len(state["base"]),
    )


def _current_flow_state() -> dict[str, Any]:
    """What this code stores after the same part of the tape."""
    fs = FlowState("AAA", CONFIG)
    for kind, ts, *rest in tapes.flow_tape()[: tapes.FLOW_CUT]:
        _ = fs.on_quote_values(ts, *rest) if kind == "quote" else fs.on_book_values(ts, *rest)
    state: dict[str, Any] = orjson.loads(orjson.dumps(fs.to_state()))
    return state


#: the first stored state of each flow version after the stored one of the version before
NEXT_FLOW = {6: "flow-v7-first"}


@pytest.mark.parametrize("name", FLOW)
def test_each_flow_step_lays_a_stored_state_out_as_the_next_version_stores_it(name: str) -> None:
    state = stored(name)
    version = state["v"]
    after = {**FLOW_STATE.steps[version - 1](state), "v": version + 1}
    following = (
        _current_flow_state()
        if version + 1 == FLOW_STATE_VERSION
        else stored(NEXT_FLOW.get(version, f"flow-v{version + 1}"))
    )
    got, expected = _flow_layout(after), _flow_layout(following)
    # the tracker's layers and the vanished layers a step drops are none, of any layout
    assert got[:5] + got[6:7] + got[8:] == expected[:5] + expected[6:7] + expected[8:]
    assert (got[5] is None) is (expected[5] is None)
    if got[5] is not None:
        assert got[5][0] == expected[5][0] and got[5][1] <= expected[5][1]
    assert got[7] <= expected[7]


#: the first stored state of each detector version after the stored one of the version before
NEXT_SYMBOL = {1: "symbol-v2", 2: "symbol-v3", 3: "symbol-v4", 4: "symbol-v5", 5: "symbol-v6-first", 6: "symbol-v7"}


@pytest.mark.parametrize("name", [name for name in SYMBOL if stored(name)["v"] < STATE_VERSION])
def test_each_detector_step_lays_a_stored_state_out_as_the_next_version_stores_it(name: str) -> None:
    state = stored(name)
    version = state["v"]
    after = DETECTOR_STATE.steps[version - 1](state)
    following = stored(NEXT_SYMBOL[version]) if version in NEXT_SYMBOL else SymbolDetector("AAA", "twse").to_state()
    assert sorted(after) == sorted(following) and sorted(after["patterns"]) == sorted(following["patterns"])
    runs = {key for key, value in following["patterns"].items() if isinstance(value, list) and len(value) == 2}
    assert all(len(after["patterns"][key]) == 2 for key in runs)  # a ring is its flags and its first start


def test_each_detect_step_lays_a_stored_entry_out_as_the_next_format_stores_it() -> None:
    steps = detect_state(FEATURES_TOPIC).steps
    assert sorted(steps[0](stored("detect-format-1"))) == sorted(stored("detect-format-2"))
    assert sorted(steps[0](stored("detect-format-1-first"))) == sorted(stored("detect-format-2"))
    current = {"format", "detector", "position", "history", "newest", "news", "raised", "partition", "offsets"}
    assert set(steps[1](stored("detect-format-2"))) == current


def _market_stage(entries: dict[bytes, dict[str, Any]]) -> tuple[MarketStage, FakeProducer]:
    producer = FakeProducer()
    table = ChangelogTable("market", "market-changelog", producer)  # type: ignore[arg-type]
    table._entries = {0: entries}
    io = StageIO("stream:market", "market", producer, StreamMetrics())  # type: ignore[arg-type]
    stage = MarketStage(
        quotes_topic="md.quotes", books_topic="md.books", bars_topic="bars", features_topic="features", io=io,
        table=table,
    )  # fmt: skip
    return stage, producer


def _market_messages(records: list[Any], first: dict[str, int]) -> list[FakeMessage]:
    offsets = dict(first)
    out = []
    for record in records:
        topic = "md.books" if isinstance(record, Book) else "md.quotes"
        out.append(FakeMessage(topic, 0, offsets.setdefault(topic, 0), b"AAA", record.to_json()))
        offsets[topic] += 1
    return out


def test_a_stored_market_entry_of_format_4_starts_the_wash_tests_afresh() -> None:
    entry = stored("market-format-4")
    assert MARKET_STATE.upgrade(entry) == {**entry, "format": MARKET_STATE.current, "wash": None}


def test_a_stored_market_entry_of_format_3_loads_and_goes_on() -> None:
    entry = stored("market-format-3")
    before = copy.deepcopy(entry)
    current = MARKET_STATE.upgrade(entry)
    assert entry == before and current == {**entry, "format": MARKET_STATE.current, "derived": {}, "wash": None}
    records = [Book(**fields) if kind == "book" else Quote(**fields) for kind, fields in tapes.market_tape()]
    cut = tapes.FLOW_CUT
    straight, straight_sent = _market_stage({})
    straight.process(_market_messages(records, {}))  # type: ignore[arg-type]
    resumed, resumed_sent = _market_stage({b"AAA": entry})
    first = {topic: offset + 1 for topic, (_, offset) in entry["offsets"].items()}
    resumed.process(_market_messages(records[cut:], first))  # type: ignore[arg-type]
    later = [(t, v) for t, _, v in straight_sent.sent if t in ("bars", "features")]
    got = [(t, v) for t, _, v in resumed_sent.sent if t in ("bars", "features")]
    assert got and later[-len(got) :] == got
