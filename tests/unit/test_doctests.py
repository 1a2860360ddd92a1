"""The examples in the docstrings run and hold: a doc example that no longer works is a failing test."""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.architecture import modules

MODULES = sorted(name for name, path in modules() if ">>> " in path.read_text(encoding="utf-8"))


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


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
