"""The package map, read from the code: which room imports which (every ``import``, also the ones inside
functions). Every room is a top-level folder of the repository, imported under the one root ``tapewatch``
(``tapewatch/<room>`` links to ``<room>/``): ``producers/replay.py`` is ``tapewatch.producers.replay``; the modules
directly in ``tapewatch/`` are the ground floor. README's architecture picture is :func:`mermaid` of the map,
checked by ``tests/unit/test_architecture.py``; after a change that moves an edge, print the new picture with
``.venv/bin/python -m tests.architecture`` and paste it into README.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
GROUND: Final = "tapewatch"
#: The floors, top first. A room imports rooms on floors below its own, and on its own floor only where
#: ``tests/unit/test_architecture.py`` names the edge; nothing imports a room above it.
FLOORS: Final = (
    ("cli", "ops", "bench"),  # the command line and the supervisors: may import anything, imported by nothing
    ("evaluation", "training"),  # work on history and generated sessions
    ("producers", "streams", "sinks", "console", "infra"),  # the I/O rooms
    ("generators",),  # the labelled markets: a live source (producers) as much as an offline one
    ("execution", "signals", "detectors"),  # pure computation
    (GROUND,),  # records, settings, topics, Kafka clients, errors
)
#: Every room, in the order the picture lists them.
PACKAGES: Final = tuple(room for floor in FLOORS for room in floor)
ROOMS: Final = tuple(room for room in PACKAGES if room != GROUND)

Graph = dict[str, set[str]]


def floor(package: str) -> int:
    """How high a room sits: 0 for the ground floor.

    >>> floor("tapewatch"), floor("detectors"), floor("cli")
    (0, 1, 5)
    """
    return next(len(FLOORS) - 1 - i for i, rooms in enumerate(FLOORS) if package in rooms)


def node(module: str) -> str | None:
    """The picture's node of a dotted module name, or None for a third-party one.

    >>> node("tapewatch.cli.app"), node("tapewatch.records"), node("tapewatch.detectors.flow"), node("numpy")
    ('cli', 'tapewatch', 'detectors', None)
    """
    parts = module.split(".")
    if parts[0] != GROUND:
        return None
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else GROUND


def modules() -> Iterator[tuple[str, Path]]:
    """Every first-party module by the name it is imported as, with its file in the repository."""
    for path in sorted((ROOT / GROUND).glob("*.py")):
        yield ".".join((GROUND, path.stem)).removesuffix(".__init__"), path
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            yield ".".join((GROUND, *path.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__"), path


def imported(path: Path) -> Iterator[str]:
    """Every absolute module name a file imports, at any depth (lazy imports in functions count)."""
    for statement in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(statement, ast.Import):
            yield from (alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom) and statement.module and statement.level == 0:
            yield statement.module


def package_graph() -> Graph:
    graph: Graph = {p: set() for p in PACKAGES}
    for module, path in modules():
        source = node(module)
        assert source is not None
        for name in imported(path):
            target = node(name)
            if target is not None and target != source:
                graph[source].add(target)
    return graph


def third_party(package: str) -> set[str]:
    """The top-level third-party modules a room imports."""
    out: set[str] = set()
    for module, path in modules():
        if node(module) == package:
            out |= {name.split(".")[0] for name in imported(path) if node(name) is None}
    return out


def mermaid(graph: Graph) -> str:
    """The graph as a Mermaid flowchart: one node per folder, one arrow per importing room."""
    lines = ["```mermaid", "flowchart TD"]
    lines += [f'    {p}["{p}/"]' for p in PACKAGES]
    for source in PACKAGES:
        lines += [f"    {source} --> {target}" for target in PACKAGES if target in graph[source]]
    return "\n".join([*lines, "```"])


if __name__ == "__main__":
    print(mermaid(package_graph()))
