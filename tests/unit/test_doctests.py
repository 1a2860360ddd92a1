"""The examples in the docstrings run and hold: a doc example that no longer works is a failing test."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("detectors", "tapewatch", "streams", "sinks", "producers", "infra", "offline", "bench", "ops")
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for package in PACKAGES
    for path in (ROOT / package).rglob("*.py")
    if ">>> " in path.read_text(encoding="utf-8")
)


def test_the_packages_have_examples() -> None:
    assert "detectors.layers" in MODULES
    detectors = ("spoofing", "wash", "pump_onset", "pump_crowd", "pump_surge", "pump_ramp", "pump_dump")
    assert {f"detectors.patterns.{m}" for m in detectors} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
