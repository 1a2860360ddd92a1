"""The hot per-record modules compiled with mypyc (the order-flow core and the market-by-order path), and the guard
that never runs a stale build.

``make compiled`` (which every make target that runs tapewatch's code runs first) runs ``python -m
tapewatch.mypyc_build``, which compiles :data:`MODULES` into
``build/mypyc/`` of the checkout (git-ignored) when a file the build reads changed, and does nothing otherwise.
Nothing compiled sits beside the sources (where the import system would prefer it to an edited ``.py``): importing
``tapewatch`` (:func:`install`) puts a finder in front of the import system that serves the compiled form of
:data:`MODULES` only while every file the build read — the modules, the first-party modules they import at any depth
(mypyc reads their types and constants), ``pyproject.toml`` (the type checker's settings) — is byte for byte what it
was, and only on the Python it was built for. A file changed since the build makes all of them pure Python again
(they call each other natively: never a mix), with a warning to run ``make compiled``; ``TAPEWATCH_PURE=1`` runs
pure Python without one. The pure-Python source is the reference, and both forms send the same bytes:
``tests/unit/test_compiled_flow.py`` runs random tapes through the flow core in both and compares every chunk and
state byte for byte, and ``tests/unit/test_compiled.py`` runs the orders benchmark under each and compares digests.

A wheel (``pip install .``) carries no build, and runs pure Python.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any, Final

#: compiled together (one group: they call each other natively): the market-by-order book, its level-2 feed, the
#: public feed's detectors and what applies a record to a symbol's parts; the order-flow core (a symbol's quote and
#: book state, its chunks, windows and baseline, the aggressor inference, the layers, the prints learner)
MODULES: Final = (
    "tapewatch.detectors.orders.book",
    "tapewatch.detectors.orders.level2",
    "tapewatch.detectors.orders.usual_size",
    "tapewatch.detectors.orders.public_spoofing",
    "tapewatch.detectors.orders.public_wash",
    "tapewatch.detectors.orders.symbol_orders",
    "tapewatch.detectors.aggressor",
    "tapewatch.detectors.layers",
    "tapewatch.detectors.feed_learning",
    "tapewatch.detectors.flow.chunk",
    "tapewatch.detectors.flow.values",
    "tapewatch.detectors.flow.baseline",
    "tapewatch.detectors.flow.state",
)
#: the group's shared library, which each compiled module's own extension loads
GROUP: Final = "tapewatch._hot"
PURE_ENV: Final = "TAPEWATCH_PURE"
#: the checkout (an editable install's; a wheel's site-packages has no ``build/mypyc``)
ROOT: Final = Path(__file__).resolve().parent.parent
BUILD: Final = ROOT / "build" / "mypyc"
MANIFEST: Final = "manifest.json"
#: what the build reads besides the modules' Python files
SETTINGS: Final = ("pyproject.toml",)

_active: tuple[str, ...] = ()


def active() -> tuple[str, ...]:
    """The modules this process imports compiled (empty: pure Python)."""
    return _active


class CompiledFinder:
    """Serves the built extension of each module named in ``files`` (module → its extension), before the path."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        return importlib.util.spec_from_file_location(fullname, file, loader=ExtensionFileLoader(fullname, str(file)))


def install(build: Path = BUILD) -> tuple[str, ...]:
    """Serve the compiled modules if ``build`` holds a build of the sources as they are now, for this Python; else
    leave the import system alone (with a warning when the build is stale). Returns the modules served."""
    global _active  # noqa: PLW0603 - one finder a process, installed on the package's import
    if os.environ.get(PURE_ENV) or any(isinstance(finder, CompiledFinder) for finder in sys.meta_path):
        return _active
    manifest = read_manifest(build)
    if manifest is None:
        return ()
    changed = stale(manifest)
    if changed:
        warnings.warn(
            f"tapewatch: {changed} changed since the hot modules were compiled: running them as pure Python "
            f"(`make compiled` compiles them again; {PURE_ENV}=1 runs pure Python without this warning)",
            RuntimeWarning,
            stacklevel=2,
        )
        return ()
    files = {name: build / file for name, file in manifest["extensions"].items()}
    sys.meta_path.insert(0, CompiledFinder(files))
    _active = tuple(name for name in manifest["extensions"] if name in MODULES)
    return _active


def read_manifest(build: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((build / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest


def stale(manifest: dict[str, Any]) -> str | None:
    """What makes ``manifest``'s build unusable here (a file it read that changed, another Python, another module
    list); None if nothing does. A file whose size and modification time are the recorded ones is not read again."""
    if manifest.get("python") != python_tag() or tuple(manifest.get("modules", ())) != MODULES:
        return "the Python or the list of compiled modules"
    recorded: dict[str, list[Any]] = manifest["sources"]
    for name, (size, mtime_ns, sha256) in recorded.items():
        try:
            status = (ROOT / name).stat()
        except OSError:
            return name
        if (status.st_size, status.st_mtime_ns) != (size, mtime_ns) and digest(ROOT / name) != sha256:
            return name
    return None


def python_tag() -> str:
    """This interpreter, as a build is recorded for."""
    return f"{sys.implementation.cache_tag} {EXTENSION_SUFFIXES[0]} {sys.version.split()[0]}"


def digest(path: Path) -> str:
    import hashlib  # only when a file's size or time changed: not on every start

    return hashlib.sha256(path.read_bytes()).hexdigest()
