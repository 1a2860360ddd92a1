"""The examples in the docstrings run and hold: a doc example that no longer works is a failing test."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tapewatch.compiled import active
from tests.architecture import modules

SOURCES = {name: path for name, path in modules() if ">>> " in path.read_text(encoding="utf-8")}
MODULES = sorted(SOURCES)


#: the modules of the classes a user works with: each keeps a runnable example (a removed one fails here)
DETECTORS = (
    "aggressor",
    "alerting",
    "bars",
    "evidence",
    "features",
    "feed_learning",
    "flow",
    "kmeans",
    "layers",
    "model_venues",
)
PATTERNS = (
    "bursts",
    "closing",
    "context",
    "explain",
    "flow_patterns",
    "ignition",
    "params",
    "pump_crowd",
    "pump_dump",
    "pump_onset",
    "pump_ramp",
    "pump_surge",
    "spoofing",
    "symbol",
    "wash",
)
DQN = ("agent", "backtest", "data", "env", "inference")
LSTM = ("config", "distributed", "forecaster", "model", "samples", "serving", "training")
CNN = ("config", "forecaster", "images", "model", "serving", "training")
EXECUTION = ("accounts", "decisions", "grid", "merge", "portfolio", "queue_model")


def test_the_packages_have_examples() -> None:
    expected = {
        *(f"tapewatch.detectors.{m}" for m in DETECTORS),
        *(f"tapewatch.detectors.patterns.{m}" for m in PATTERNS),
        *(f"tapewatch.signals.dqn.{m}" for m in DQN),
        *(f"tapewatch.signals.lstm.{m}" for m in LSTM),
        *(f"tapewatch.signals.cnn.{m}" for m in CNN),
        *(f"tapewatch.execution.{m}" for m in EXECUTION),
    }
    assert expected <= set(MODULES), f"no example in {sorted(expected - set(MODULES))}"


def _source_of(name: str, path: Path) -> ModuleType:
    """The module run from its source under another name: where a compiled module's docstrings are."""
    spec = importlib.util.spec_from_file_location(f"{name}.__source__", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # where dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module, flags = importlib.import_module(name), doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    if name not in active():
        result = doctest.testmod(module, optionflags=flags)
    else:  # compiled by mypyc (tapewatch.compiled), which keeps no docstring: its source's examples, run against it
        runner = doctest.DocTestRunner(optionflags=flags)
        for test in doctest.DocTestFinder().find(_source_of(name, SOURCES[name]), name, globs=vars(module)):
            runner.run(test)
        result = runner.summarize(verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
