"""Every pattern detector against one contract, in the spirit of River's ``check_estimator``: the same checks run
over each, so a new detector that breaks the contract fails here whatever its own tests say.

The contract (:class:`tapewatch.detectors.patterns.base.PatternDetector`): hits only on evidence (quiet flow, on a trade
feed and on a snapshot feed, raises none); every hit's evidence is declared by one of the detector's own rules, and
every bar it needed holds; the state is JSON under keys of the detector's own, restoring it anywhere resumes exactly,
and it stays bounded however long the tape (O(1) per chunk); every stateful part of the detectors restores one way,
``Part.from_state(state, ...)``. Its parameters are its own record, composed into
:class:`PatternParams` under its group, refusing an out-of-range value with a line naming it; every parameter its
evidence cites is its own or the tape's."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import FrozenInstanceError, fields, is_dataclass
from types import ClassMethodDescriptorType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.detectors.alerting import Hit
from tapewatch.detectors.evidence import Bound
from tapewatch.detectors.patterns import FlowPatterns, PatternParams, TapeParams
from tapewatch.detectors.patterns.base import PatternDetector
from tapewatch.detectors.patterns.context import TapeContext
from tapewatch.detectors.patterns.explain import explain, rule_of
from tests.architecture import ROOT
from tests.unit.test_patterns import QUIET, SNAPSHOT_QUIET, T0, chunk, rules

Build = Callable[[PatternParams], PatternDetector]
Restore = Callable[[dict[str, Any], PatternParams], PatternDetector]
#: each detector class of the flow, by its name
CLASSES: dict[str, type[PatternDetector]] = {type(d).__name__: type(d) for d in FlowPatterns(rules()).detectors}


def _builder(cls: type[PatternDetector]) -> Build:
    """The detector built as the flow builds it: from the tape's parameters and its own."""
    return lambda params: cls(params.tape, params.value(cls.PARAMS.GROUP))  # type: ignore[call-arg]


def _restorer(cls: type[PatternDetector]) -> Restore:
    """The detector restored as the flow restores it: from the state, the tape's parameters and its own."""
    return lambda state, params: cls.from_state(state, params.tape, params.value(cls.PARAMS.GROUP))


#: each detector of the flow, by its class name, built from its parameters
DETECTORS: dict[str, Build] = {name: _builder(cls) for name, cls in CLASSES.items()}
#: each detector of the flow, by its class name, restored from a state and its parameters
RESTORERS: dict[str, Restore] = {name: _restorer(cls) for name, cls in CLASSES.items()}
SNAPSHOTS = rules({"tape.prints": "snapshots"})
CHUNK_MS = 5_000


def _run(build: Build, params: PatternParams, chunks: Sequence[dict[str, float]]) -> list[Hit]:
    tape, detector = TapeContext(params.tape), build(params)
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
    assert not keys & set(TapeContext(rules().tape).to_state())


@pytest.mark.parametrize("name", DETECTORS)
@given(steps=st.lists(chunk, min_size=1, max_size=70), cut=st.integers(0, 70))
@settings(max_examples=25, deadline=None)
def test_restoring_the_state_anywhere_resumes_exactly(name: str, steps: list[dict[str, float]], cut: int) -> None:
    """The detector's and the tape's state through JSON at any chunk: the same hits after as without the cut, and
    every hit's evidence declared by the detector's rules with every needed bar holding."""
    build, params = DETECTORS[name], rules()
    expected = _run(build, params, steps)
    tape, detector = TapeContext(params.tape), build(params)
    got: list[Hit] = []
    for i, v in enumerate(steps):
        if i == cut:
            state = orjson.loads(orjson.dumps({**tape.to_state(), **detector.to_state()}))
            tape, detector = TapeContext.from_state(state, params.tape), RESTORERS[name](state, params)
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


def test_every_stateful_part_restores_with_from_state() -> None:
    """One restore convention in the detectors: a class that has ``to_state`` has a classmethod ``from_state`` that
    builds a new, restored instance, and no ``load`` that restores one in place."""
    for cls in CLASSES.values():
        # a class method written in Python, or compiled by mypyc (tapewatch.compiled)
        restore = vars(cls).get("from_state")
        assert isinstance(restore, classmethod | ClassMethodDescriptorType) and not hasattr(cls, "load"), cls
    mixed = []
    for path in sorted([*(ROOT / "detectors").rglob("*.py"), *(ROOT / "signals").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            methods = {fn.name: fn for fn in node.body if isinstance(fn, ast.FunctionDef)}
            if "to_state" not in methods:
                continue
            restore = methods.get("from_state")
            decorators = [] if restore is None else [ast.unparse(d) for d in restore.decorator_list]
            if "classmethod" not in decorators or "load" in methods:
                mixed.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not mixed


@pytest.mark.parametrize("name", DETECTORS)
def test_the_state_stays_bounded_however_long_the_tape(name: str) -> None:
    """A day of busy random flow: the state after it is no larger than after its first hour (rings, not lists)."""
    import random

    noise = random.Random(3)
    values = [
        dict(QUIET, ret_bps=noise.choice((-40.0, 0.0, 40.0)), trades_z=noise.choice((0.0, 6.0))) for _ in range(64)
    ]
    params, build = rules(), DETECTORS[name]
    tape, detector = TapeContext(params.tape), build(params)
    sizes = []
    for i in range(6 * 3600_000 // CHUNK_MS):
        v = values[noise.randrange(len(values))]
        detector.on_chunk(tape.on_chunk(T0 + i * CHUNK_MS, v), v)
        if i in (3600_000 // CHUNK_MS, 6 * 3600_000 // CHUNK_MS - 1):
            sizes.append(len(orjson.dumps(detector.to_state())))
    assert sizes[1] <= 2 * sizes[0] + 200, sizes


# --- parameters --------------------------------------------------------------------------------------------------
#: each detector's minimum that must fit its window: (group, minimum, window)
WITHIN: tuple[tuple[str, str, str], ...] = (
    ("pump_onset", "min_ms", "window_ms"),
    ("pump_crowd", "min_ms", "window_ms"),
    ("pump_surge", "min_ms", "window_ms"),
    ("pump_ramp", "min_ms", "window_ms"),
    ("closing", "min_ms", "push_window_ms"),
    ("ignition", "follow_ms", "reversal_ms"),
    ("tape", "drift_ms", "ramp_ms"),
    ("tape", "ramp_ms", "slow_ramp_ms"),
    ("tape", "sweep_followers_ms", "sweep_memory_ms"),
)
#: a qualified parameter name as evidence texts write it (``spoofing.layer_rel``)
QUALIFIED = re.compile(r"\b([a-z_]+)\.([a-z_0-9]+)\b")


def _records() -> dict[str, type[Any]]:
    """Every detector's own record and the tape's, by group."""
    return {"tape": TapeParams, **{cls.PARAMS.GROUP: cls.PARAMS for cls in CLASSES.values()}}


def _bad_values(name: str, value: object) -> list[object]:
    """Values out of a field's range, by what it is: every number refuses NaN (so every field is in some check of its
    record); windows a negative duration; bars an imbalance or share must reach a negative one, bars it must stay
    under one above 1."""
    if name == "carries":  # what a feed carries: 1-minute bars carry nothing, a name it does not know is refused
        return [("ticks",), ("books", 1)]
    if isinstance(value, tuple):
        return [(), (-1,)]
    if not isinstance(value, int | float) or isinstance(value, bool):
        return []
    bad: list[object] = [math.nan]
    if name.endswith("_ms"):
        bad.append(-1)
    if ("imbalance" in name and not name.endswith("_z")) or name.endswith("share"):
        bad.append(-0.1)
    if name.endswith(("_balance", "_consumed")):
        bad.append(1.5)
    return bad


def _refusals() -> list[tuple[str, str, object]]:
    out = []
    for group, record in _records().items():
        for f in fields(record()):
            out += [(group, f.name, bad) for bad in _bad_values(f.name, getattr(record(), f.name))]
    return out


def test_every_detector_owns_a_record_composed_under_its_group() -> None:
    composed = PatternParams()
    for name, cls in CLASSES.items():
        record = cls.PARAMS
        assert record.__name__ == f"{name}Params", record
        own = composed.value(record.GROUP)
        assert is_dataclass(record) and isinstance(own, record) and not hasattr(own, "__dict__"), record  # slotted
        with pytest.raises(FrozenInstanceError):
            setattr(own, fields(own)[0].name, None)
    groups = [f.name for f in fields(PatternParams)]
    assert len(groups) == len(set(groups))
    assert {"tape", "materiality", "kmeans", *(cls.PARAMS.GROUP for cls in CLASSES.values())} == set(groups)


@pytest.mark.parametrize(("group", "field", "bad"), _refusals(), ids=str)
def test_an_out_of_range_parameter_is_refused_with_a_line_naming_it(group: str, field: str, bad: object) -> None:
    record = _records()[group]
    with pytest.raises(ValueError, match=re.escape(f"{group}.{field}")) as refused:
        record(**{field: bad})
    assert "\n" not in str(refused.value)
    # the same refusal through the composition, by qualified name
    with pytest.raises(ValueError, match=re.escape(f"{group}.{field}")):
        PatternParams().with_values({f"{group}.{field}": bad})


@pytest.mark.parametrize(("group", "low", "high"), WITHIN)
def test_a_minimum_longer_than_its_window_is_refused(group: str, low: str, high: str) -> None:
    record = _records()[group]
    window = getattr(record(), high)
    with pytest.raises(ValueError, match=re.escape(f"{group}.{low}")):
        record(**{low: window + 1})
    assert getattr(record(**{low: window}), low) == window  # as long as its window is fine


@pytest.mark.parametrize("name", CLASSES)
def test_every_parameter_the_evidence_cites_is_the_detectors_own_or_the_tapes(name: str) -> None:
    cls = CLASSES[name]
    own: dict[str, Any] = {"tape": TapeParams(), cls.PARAMS.GROUP: cls.PARAMS()}
    for rule in cls.EVIDENCE:
        keys = [*rule.keys.values(), *(k for k in (rule.others, rule.score) if k is not None)]
        for params in (rules(), SNAPSHOTS, rules({"tape.prints": None})):
            for key in keys:
                found = key.bound_for(params)
                if found is None:
                    continue
                assert isinstance(found, Bound)
                texts = [found.formula, found.unless or "", *([found.param] if found.param else [])]
                for group, field in (m.groups() for text in texts for m in QUALIFIED.finditer(text)):
                    assert group in own, (rule.name, found)
                    assert field in {f.name for f in fields(own[group])}, (rule.name, found)
                if found.param is not None:
                    assert found.param in found.formula, (rule.name, found)
                    params.value(found.param)  # resolves
