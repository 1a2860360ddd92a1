"""Every package says what it holds and what it re-exports, and importing one stays cheap."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from tests.architecture import ROOT, modules

#: Alembic's migration scripts are packages only for Alembic
EXCLUDED = ("tapewatch.sinks.migrations",)
PACKAGES = sorted(name for name, path in modules() if path.name == "__init__.py" and not name.startswith(EXCLUDED))
#: what a package's ``__init__`` must not pull in: heavy, or a client a computation-only user does not have
HEAVY = ("torch", "pyspark", "sklearn", "gymnasium", "matplotlib", "confluent_kafka", "sqlalchemy", "elasticsearch")


def test_the_packages_are_found() -> None:
    assert {
        "tapewatch",
        "tapewatch.cli",
        "tapewatch.detectors.patterns",
        "tapewatch.signals.dqn",
        "tapewatch.training.dqn",
    } <= set(PACKAGES)
    assert not any(name.startswith("tapewatch.sinks.migrations") for name in PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_package_has_a_docstring_and_all(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__doc__ and package.__doc__.strip(), f"{name} has no docstring"
    exported = getattr(package, "__all__", None)
    assert isinstance(exported, list), f"{name} has no __all__ list"
    assert all(isinstance(n, str) for n in exported)
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(package, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def test_importing_every_package_stays_cheap() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {PACKAGES!r}: importlib.import_module(name)\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the packages imports {out.stdout.strip()}"
