"""The package map, read from the code: which top-level package imports which (every ``import``, also the ones
inside functions). README's architecture picture is :func:`mermaid` of it, checked by
``tests/unit/test_architecture.py``; after a change that moves an edge, print the new picture with
``.venv/bin/python -m tests.architecture`` and paste it into README.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
#: The first-party packages, in the order the picture lists them. ``tapewatch.commands`` (with ``tapewatch.cli``)
#: is its own node: the commands wire every package, the rest of ``tapewatch`` is what every package shares.
PACKAGES: Final = (
    "tapewatch.commands",
    "ops",
    "bench",
    "console",
    "offline",
    "producers",
    "streams",
    "sinks",
    "execution",
    "signals",
    "detectors",
    "infra",
    "tapewatch",
)
COMMANDS: Final = "tapewatch.commands"

Graph = dict[str, set[str]]


def node(module: str) -> str | None:
    """The picture's node of a dotted module name, or None for a third-party one.

    >>> node("tapewatch.cli"), node("tapewatch.records"), node("detectors.flow"), node("numpy")
    ('tapewatch.commands', 'tapewatch', 'detectors', None)
    """
    if module == "tapewatch.cli" or module.startswith(COMMANDS):
        return COMMANDS
    top = module.split(".", maxsplit=1)[0]
    return top if top in PACKAGES else None


def _modules() -> Iterator[tuple[str, Path]]:
    for package in {p.split(".")[0] for p in PACKAGES}:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield ".".join(path.relative_to(ROOT).with_suffix("").parts), path


def imported(path: Path) -> Iterator[str]:
    """Every absolute module name a file imports, at any depth (lazy imports in functions count)."""
    for statement in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(statement, ast.Import):
            yield from (alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom) and statement.module and statement.level == 0:
            yield statement.module


def package_graph() -> Graph:
    graph: Graph = {p: set() for p in PACKAGES}
    for module, path in _modules():
        source = node(module)
        assert source is not None
        for name in imported(path):
            target = node(name)
            if target is not None and target != source:
                graph[source].add(target)
    return graph


def third_party(package: str) -> set[str]:
    """The top-level third-party modules a package imports."""
    out: set[str] = set()
    for module, path in _modules():
        if node(module) == package:
            out |= {name.split(".")[0] for name in imported(path) if node(name) is None}
    return out


def mermaid(graph: Graph) -> str:
    """The graph as a Mermaid flowchart: one node per folder, one arrow per importing package."""
    ids = {p: p.replace(".", "_") for p in PACKAGES}
    lines = ["```mermaid", "flowchart TD"]
    lines += [f'    {ids[p]}["{p.replace(".", "/")}/"]' for p in PACKAGES]
    for source in PACKAGES:
        lines += [f"    {ids[source]} --> {ids[target]}" for target in PACKAGES if target in graph[source]]
    return "\n".join([*lines, "```"])


if __name__ == "__main__":
    print(mermaid(package_graph()))
