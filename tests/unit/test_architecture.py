"""The folders say what they hold: who may import whom, what the pure packages may not touch, how long a
function may run, and README's picture drawn from the code (:mod:`tests.architecture`)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.architecture import (
    FLOORS,
    GROUND,
    PACKAGES,
    ROOMS,
    ROOT,
    floor,
    imported,
    mermaid,
    modules,
    package_graph,
    third_party,
)

#: Who may import whom, room by room; every edge runs down a floor (:data:`tests.architecture.FLOORS`) or is one of
#: :data:`PEERS`. The command line wires everything. The generators know nothing of the detectors they are judged
#: against. The live rooms meet only in the ground floor's contracts (and the stream runs the detectors, the trading
#: signals and the paper executor). ``signals`` builds on ``detectors`` (the bar features), never the other way: the
#: surveillance computation does not need the signal models.
ALLOWED: dict[str, set[str]] = {
    "cli": set(PACKAGES) - {"cli"},
    "bench": set(PACKAGES) - {"cli", "bench"},
    "ops": set(PACKAGES) - {"cli", "bench", "ops"},
    "evaluation": {"generators", "detectors", GROUND},
    "training": {"evaluation", "generators", "signals", "detectors", GROUND},
    "producers": {"generators", GROUND},
    "streams": {"execution", "signals", "detectors", GROUND},
    "sinks": {GROUND},
    "console": {"sinks", "detectors", GROUND},
    "infra": {GROUND},
    "generators": {GROUND},
    "execution": {"signals", "detectors", GROUND},
    "signals": {"detectors", GROUND},
    "detectors": {GROUND},
    GROUND: set(),
}
#: The edges between rooms of one floor, each one way: the benchmarks drive the supervisor; training labels its
#: sessions with the evaluation; the console reads the sinks' tables; the pure rooms build on each other.
PEERS = {
    ("cli", "ops"),
    ("cli", "bench"),
    ("bench", "ops"),
    ("training", "evaluation"),
    ("console", "sinks"),
    ("signals", "detectors"),
    ("execution", "signals"),
    ("execution", "detectors"),
}
#: What pure computation never imports: servers, networks, command lines, Spark.
IO_LIBRARIES = {
    "confluent_kafka",
    "sqlalchemy",
    "psycopg2",
    "alembic",
    "elasticsearch",
    "aiohttp",
    "typer",
    "rich",
    "pyspark",
    "socket",
    "subprocess",
    "urllib",
    "requests",
}
#: What the surveillance computation never imports: the signal models' libraries (they are the ``signals`` extra,
#: which a desk that runs only the detectors does not install).
SIGNAL_LIBRARIES = {"torch", "gymnasium", "pyspark"}
#: Functions of the live packages fit on a screen.
MAX_FUNCTION_LINES = 60
CORE = (GROUND, "producers", "streams", "execution", "signals", "detectors", "sinks", "infra", "console", "generators")


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).glob("*.py")) if package == GROUND else sorted((ROOT / package).rglob("*.py"))


def test_every_import_edge_is_allowed() -> None:
    graph = package_graph()
    unexpected = {f"{source} -> {target}" for source, targets in graph.items() for target in targets - ALLOWED[source]}
    assert not unexpected


def test_no_allowed_edge_runs_back_up_a_floor() -> None:
    upward = {
        f"{source} -> {target}"
        for source, targets in ALLOWED.items()
        for target in targets
        if floor(target) > floor(source) or (floor(target) == floor(source) and (source, target) not in PEERS)
    }
    assert not upward
    assert {room for rooms in FLOORS for room in rooms} == set(ALLOWED)


def test_every_room_is_linked_under_the_one_import_root() -> None:
    """``tapewatch/<room>`` links to the top-level folder, so every module has one name: ``tapewatch.<room>…``."""
    for room in ROOMS:
        link = ROOT / GROUND / room
        assert link.is_symlink(), room
        assert link.resolve() == (ROOT / room).resolve(), room


def test_nothing_imports_a_room_by_its_folder_name() -> None:
    """``import detectors`` works from the repository's root only; installed, the rooms are ``tapewatch.<room>``."""
    bare = [
        f"{path.relative_to(ROOT)}: {name}"
        for _, path in modules()
        for name in imported(path)
        if name.split(".")[0] in ROOMS
    ]
    for path in sorted((ROOT / "tests").rglob("*.py")):
        bare += [f"{path.relative_to(ROOT)}: {name}" for name in imported(path) if name.split(".")[0] in ROOMS]
    assert not bare


def test_detectors_signals_and_the_paper_executor_are_pure_computation() -> None:
    assert not third_party("detectors") & IO_LIBRARIES
    assert not third_party("signals") & IO_LIBRARIES
    assert not third_party("execution") & IO_LIBRARIES


def test_the_detectors_need_neither_torch_nor_spark_nor_the_signal_models() -> None:
    assert not third_party("detectors") & SIGNAL_LIBRARIES
    assert "signals" not in package_graph()["detectors"]


def test_readme_shows_the_package_graph_of_the_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert mermaid(package_graph()) in readme, "README's picture is stale: python -m tests.architecture"


def test_no_function_in_the_core_runs_over_a_screen() -> None:
    long = []
    for package in CORE:
        for path in _files(package):
            if "migrations" in path.parts:
                continue  # Alembic revisions are one declarative upgrade each
            for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (fn.end_lineno or fn.lineno) - fn.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} ({lines} lines)")
    assert not long


def test_every_consumer_fetches_with_the_tuned_back_off() -> None:
    """librdkafka's default ``fetch.queue.backoff.ms`` (1,000 ms) starves a consumer that drains its prefetch queue
    faster than that; every consumer of ours is built on :func:`tapewatch.kafka.consumer_config`."""
    untuned = []
    for package in PACKAGES:
        for path in _files(package):
            for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Consumer":
                    config = call.args[0] if call.args else None
                    builder = ast.unparse(config.func) if isinstance(config, ast.Call) else None
                    if builder != "consumer_config":
                        untuned.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert not untuned
