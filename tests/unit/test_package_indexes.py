"""The package indexes (the docstrings of ``tapewatch.detectors``, ``tapewatch.signals`` and ``tapewatch.cli`` that list
their modules) name every module the package has, and nothing it does not."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest


@pytest.mark.parametrize("package", ["tapewatch.detectors", "tapewatch.signals", "tapewatch.cli"])
def test_a_package_index_names_exactly_its_modules(package: str) -> None:
    module = importlib.import_module(package)
    listed = set(re.findall(rf":mod:`~?{re.escape(package)}\.(\w+)", module.__doc__ or ""))
    present = {info.name for info in pkgutil.iter_modules(module.__path__)}
    missing, stale = sorted(present - listed), sorted(listed - present)
    assert listed == present, f"index of {package}: missing {missing}, stale {stale}"
