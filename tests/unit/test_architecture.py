"""The folders say what they hold: who may import whom, what the pure packages may not touch, how long a
function may run, and README's picture drawn from the code (:mod:`tests.architecture`)."""

from __future__ import annotations

import ast

from tests.architecture import COMMANDS, PACKAGES, ROOT, mermaid, package_graph, third_party

#: Who may import whom. The commands wire everything; the offline work, the supervisor and the benchmarks drive the
#: live packages; the live packages meet only in the shared contracts of ``tapewatch`` (and the stream runs the
#: detectors, the trading signals and the paper executor). ``signals`` builds on ``detectors`` (the bar features),
#: never the other way: the surveillance computation does not need the signal models. ``tapewatch`` → ``detectors``:
#: the settings map themselves onto the detectors' config types.
ALLOWED: dict[str, set[str]] = {
    COMMANDS: set(PACKAGES) - {COMMANDS},
    "bench": {
        "ops",
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
    },
    "ops": {
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
    },
    "console": {"sinks", "detectors", "tapewatch"},
    "offline": {"signals", "detectors", "tapewatch"},
    "producers": {"offline", "tapewatch"},
    "streams": {"execution", "signals", "detectors", "tapewatch"},
    "sinks": {"tapewatch"},
    "execution": {"signals", "detectors", "tapewatch"},
    "signals": {"detectors", "tapewatch"},
    "detectors": {"tapewatch"},
    "infra": {"tapewatch"},
    "tapewatch": {"detectors"},
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
CORE = ("tapewatch", "producers", "streams", "execution", "signals", "detectors", "sinks", "infra", "console")


def test_every_import_edge_is_allowed() -> None:
    graph = package_graph()
    unexpected = {f"{source} -> {target}" for source, targets in graph.items() for target in targets - ALLOWED[source]}
    assert not unexpected


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
        for path in sorted((ROOT / package).rglob("*.py")):
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
    for package in (*CORE, "ops", "bench", "offline"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Consumer":
                    config = call.args[0] if call.args else None
                    builder = ast.unparse(config.func) if isinstance(config, ast.Call) else None
                    if builder != "consumer_config":
                        untuned.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert not untuned
