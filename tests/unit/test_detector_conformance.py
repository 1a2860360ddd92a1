"""Every pattern detector against one contract, in the spirit of River's ``check_estimator``: the same checks run
over each, so a new detector that breaks the contract fails here whatever its own tests say.

The contract (:class:`detectors.patterns.base.PatternDetector`): hits only on evidence (quiet flow, on a trade feed
and on a snapshot feed, raises none); every hit's evidence is declared by one of the detector's own rules, and every
bar it needed holds; the state is JSON under keys of the detector's own, restoring it anywhere resumes exactly, and
it stays bounded however long the tape (O(1) per chunk)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.alerting import Hit
from detectors.patterns import FlowPatterns, PatternParams
from detectors.patterns.base import PatternDetector
from detectors.patterns.context import TapeContext
from detectors.patterns.explain import explain, rule_of
from tests.unit.test_patterns import QUIET, SNAPSHOT_QUIET, T0, chunk, rules

Build = Callable[[PatternParams], PatternDetector]
#: each detector of the flow, by its class name, built from its parameters
DETECTORS: dict[str, Build] = {type(d).__name__: type(d) for d in FlowPatterns(rules()).detectors}
SNAPSHOTS = rules(prints="snapshots")
CHUNK_MS = 5_000


def _run(build: Build, params: PatternParams, chunks: Sequence[dict[str, float]]) -> list[Hit]:
    tape, detector = TapeContext(params), build(params)
    return [hit for i, v in enumerate(chunks) for hit in detector.on_chunk(tape.on_chunk(T0 + i * CHUNK_MS, v), v)]


def test_every_detector_of_the_flow_is_checked() -> None:
    assert len(DETECTORS) == len(FlowPatterns().detectors) >= 9


@pytest.mark.parametrize("name", DETECTORS)
def test_quiet_flow_raises_nothing(name: str) -> None:
    """Two hours of ordinary flow, through the close, on a trade feed and on a snapshot feed."""
    hours = 2 * 3600_000 // CHUNK_MS
    assert _run(DETECTORS[name], rules(), [QUIET] * hours) == []
    assert _run(DETECTORS[name], SNAPSHOTS, [SNAPSHOT_QUIET] * hours) == []


@pytest.mark.parametrize("name", DETECTORS)
def test_state_keys_are_the_detectors_own(name: str) -> None:
    keys = set(DETECTORS[name](rules()).to_state())  # a stateless detector keeps none
    others = {key for other, build in DETECTORS.items() if other != name for key in build(rules()).to_state()}
    assert not keys & others, f"{name} shares state keys {keys & others}"
    assert not keys & set(TapeContext(rules()).to_state())


@pytest.mark.parametrize("name", DETECTORS)
@given(steps=st.lists(chunk, min_size=1, max_size=70), cut=st.integers(0, 70))
@settings(max_examples=25, deadline=None)
def test_restoring_the_state_anywhere_resumes_exactly(name: str, steps: list[dict[str, float]], cut: int) -> None:
    """The detector's and the tape's state through JSON at any chunk: the same hits after as without the cut, and
    every hit's evidence declared by the detector's rules with every needed bar holding."""
    build, params = DETECTORS[name], rules()
    expected = _run(build, params, steps)
    tape, detector = TapeContext(params), build(params)
    got: list[Hit] = []
    for i, v in enumerate(steps):
        if i == cut:
            state = orjson.loads(orjson.dumps({**tape.to_state(), **detector.to_state()}))
            tape, detector = TapeContext(params), build(params)
            tape.load(state)
            detector.load(state)
        got += detector.on_chunk(tape.on_chunk(T0 + i * CHUNK_MS, v), v)
    assert got == expected
    for hit in got:
        rule = rule_of(hit.kind, hit.evidence)
        assert rule is not None and rule in type(detector).EVIDENCE, (name, hit.kind, sorted(hit.evidence))
        assert rule.others is not None or set(hit.evidence) <= set(rule.keys), set(hit.evidence) - set(rule.keys)
        for line in explain(hit.kind, hit.evidence, params):
            if line.threshold is None or line.value is None:
                continue
            assert line.passed is True if line.unless is None else line.passed is not None, (name, line)


@pytest.mark.parametrize("name", DETECTORS)
def test_the_state_stays_bounded_however_long_the_tape(name: str) -> None:
    """A day of busy random flow: the state after it is no larger than after its first hour (rings, not lists)."""
    import random

    noise = random.Random(3)
    values = [
        dict(QUIET, ret_bps=noise.choice((-40.0, 0.0, 40.0)), trades_z=noise.choice((0.0, 6.0))) for _ in range(64)
    ]
    params, build = rules(), DETECTORS[name]
    tape, detector = TapeContext(params), build(params)
    sizes = []
    for i in range(6 * 3600_000 // CHUNK_MS):
        v = values[noise.randrange(len(values))]
        detector.on_chunk(tape.on_chunk(T0 + i * CHUNK_MS, v), v)
        if i in (3600_000 // CHUNK_MS, 6 * 3600_000 // CHUNK_MS - 1):
            sizes.append(len(orjson.dumps(detector.to_state())))
    assert sizes[1] <= 2 * sizes[0] + 200, sizes
