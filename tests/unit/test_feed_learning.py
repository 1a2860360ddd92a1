"""Prints learnt from the data where a venue's profile does not say: one record per trade, or one per snapshot."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tapewatch.detectors.feed_learning import LEARN_RECORDS, PrintsLearner, classify_prints
from tapewatch.detectors.flow import PRINT_LEVEL_FEATURE_NAMES, FlowChunk, FlowConfig, FlowState
from tapewatch.detectors.model_venues import LEARNT, FeedShape
from tapewatch.detectors.patterns import PatternParams
from tapewatch.evaluation.lookback import detect_frames, read_input
from tapewatch.feeds import UNKNOWN, FeedProfiles

TRIALS = 300


def _learn(gaps: Iterator[int]) -> str | None:
    learner, ts, decided = PrintsLearner(), 0, None
    for _ in range(LEARN_RECORDS):
        ts += next(gaps)
        decided = learner.observe(ts)
    return decided


def _prints(rng: random.Random, mean_ms: float) -> Iterator[int]:
    """Gaps of prints arriving at random (ms timestamps)."""
    t, prev = 0.0, 0
    while True:
        t += rng.expovariate(1 / mean_ms)
        yield int(t) - prev
        prev = int(t)


def _snapshots(rng: random.Random, interval_ms: int, printed: float, jitter_ms: int) -> Iterator[int]:
    """Gaps of a snapshot clock's records for a symbol that printed in ``printed`` of the snapshots."""
    k, prev = 0, 0
    while True:
        k += 1
        if rng.random() < printed:
            t = k * interval_ms + rng.randint(-jitter_ms, jitter_ms)
            yield t - prev
            prev = t


@pytest.mark.parametrize("mean_ms", [20, 250, 1_000, 4_000, 20_000, 60_000])
def test_prints_arriving_at_random_are_never_taken_for_snapshots(mean_ms: int) -> None:
    rng = random.Random(mean_ms)
    assert {_learn(_prints(rng, mean_ms)) for _ in range(TRIALS)} == {"trades"}


@pytest.mark.parametrize("interval_ms", [1_000, 5_000])
@pytest.mark.parametrize("printed", [1.0, 0.5, 0.2])
@pytest.mark.parametrize("jitter_ms", [0, 100])
def test_a_snapshot_clock_is_recognised_even_where_a_symbol_rarely_prints(
    interval_ms: int, printed: float, jitter_ms: int
) -> None:
    rng = random.Random(interval_ms + jitter_ms)
    decided = [_learn(_snapshots(rng, interval_ms, printed, jitter_ms)) for _ in range(TRIALS)]
    assert set(decided) == {"snapshots"}


def test_same_millisecond_fills_and_fast_clocks_are_prints() -> None:
    assert classify_prints([0] * 5 + [5_000] * 26) == "trades"
    assert classify_prints([250] * 31) == "trades"  # faster than any snapshot feed we know
    assert classify_prints([]) == "trades"


def test_the_learner_decides_once_and_keeps_its_state() -> None:
    learner = PrintsLearner()
    for i in range(LEARN_RECORDS - 1):
        assert learner.observe(5_000 * i) is None
    restored = PrintsLearner.from_state(learner.to_state())
    assert restored.observe(5_000 * LEARN_RECORDS) == learner.observe(5_000 * LEARN_RECORDS) == "snapshots"
    assert learner.observe(5_000 * LEARN_RECORDS + 1) == "snapshots"  # decided: later records change nothing
    with pytest.raises(ValueError, match="neither"):
        PrintsLearner.from_state(["ticks", None, []])


def _snapshot_feed(fs: FlowState, start: int, n: int, interval: int = 5_000) -> list[FlowChunk]:
    out: list[FlowChunk] = []
    for ts in range(start, start + n * interval, interval):
        k = ts // interval
        out += fs.on_quote_values(ts, 100.0 + (k % 3) * 0.5, 1_000.0 + k)
    return out


def test_a_flow_of_an_unknown_venue_learns_its_prints_and_nulls_what_it_cannot_tell() -> None:
    config = FlowConfig()
    fs = FlowState("X", config, books=False, prints=None)
    chunks = _snapshot_feed(fs, 0, 3 * LEARN_RECORDS)
    assert fs.prints == "snapshots"
    assert chunks and all(c.values[name] is None for c in chunks for name in PRINT_LEVEL_FEATURE_NAMES)

    sided = FlowState("Y", config, books=False, prints=None)
    seen: list[FlowChunk] = []
    for i in range(3 * LEARN_RECORDS):  # fills of one order print together: prints
        seen += sided.on_quote_values(1_000 * (i // 2) + 7 * (i % 5), 50.0, 10.0, "B" if i % 2 else "S")
    assert sided.prints == "trades"
    learning, learnt = seen[0], seen[-1]
    assert learning.values["rush_max"] is None  # not known yet: null, not a calm zero
    assert learnt.values["rush_max"] is not None


def test_learning_survives_a_restore_and_a_declared_profile_wins() -> None:
    whole = FlowState("X", books=False, prints=None)
    uninterrupted = _snapshot_feed(whole, 0, 2 * LEARN_RECORDS)
    first = FlowState("X", books=False, prints=None)
    head = _snapshot_feed(first, 0, LEARN_RECORDS // 2)
    resumed = FlowState.from_state(first.to_state(), books=False, prints=None)
    tail = _snapshot_feed(resumed, LEARN_RECORDS // 2 * 5_000, 2 * LEARN_RECORDS - LEARN_RECORDS // 2)
    assert len(uninterrupted) > LEARN_RECORDS
    assert [c.values for c in head + tail] == [c.values for c in uninterrupted]
    assert resumed.prints == "snapshots"
    declared = FlowState.from_state(resumed.to_state(), prints="trades")
    assert declared.prints == "trades" and declared.prints_learner is None


def test_an_unknown_venue_is_learnt_and_a_named_one_is_not() -> None:
    assert UNKNOWN.prints is None and FeedShape.of(UNKNOWN).prints == LEARNT
    assert FeedShape.from_json(FeedShape.of(UNKNOWN).to_json()) == FeedShape.of(UNKNOWN)
    assert PatternParams().for_feed(FlowConfig(), UNKNOWN).tape.prints is None
    assert FeedProfiles.from_json('{"xtai": {"prints": null}}')("xtai").prints is None


def test_detect_file_learns_the_prints_of_a_file_without_a_venue(tmp_path: Path) -> None:
    rows = [
        {"symbol": sym, "ts": 1_700_000_000_000 + 5_000 * i, "price": 100.0 + i % 4, "size": 1_000.0 + i}
        for sym in ("A", "B")
        for i in range(2 * LEARN_RECORDS)
    ]
    path = tmp_path / "ticks.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    unknown = detect_frames(read_input([path]), feeds=FeedProfiles())
    assert unknown.learnt_prints == {"A": "snapshots", "B": "snapshots"}
    assert unknown.venues == {"A": "file", "B": "file"}
    named = detect_frames(read_input([path], venue="twse"), feeds=FeedProfiles())
    assert named.learnt_prints == {} and named.venues == {"A": "twse", "B": "twse"}
