"""Writes the stored states of every older version, each by the code of the last commit that wrote it.

    .venv/bin/python tests/data/states/make.py [NAME ...]

Each commit's tree is exported from the repository's history (``git archive``) into a temporary folder, and this
file runs again there as a child (``--child``) with that tree first on the path: the child imports that commit's
``detectors`` (or ``tapewatch.detectors``), runs the first part of a tape of ``tests/state_tapes.py`` through it and
prints the state its ``to_state`` wrote. The JSON files here are that output, with the commit that wrote it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parents[2]
#: name → (the commit: the last one that wrote this version, what it writes)
STATES: Final = {
    "flow-v1": ("8026b7f^", "flow"),
    "flow-v2": ("c53bc66^", "flow"),
    "flow-v3": ("87a1d00^", "flow"),
    "flow-v4": ("b4c3b77^", "flow"),
    "flow-v5": ("b6fe511^", "flow"),
    "flow-v6": ("8d18d36^", "flow"),
    # version 7 before it kept what the records said of the feed's prints
    "flow-v7-first": ("b5b7b80^", "flow"),
    "flow-v7": ("8c5b4ef^", "flow"),
    "flow-v8": ("abdf3ad^", "flow"),
    "flow-v9": ("a48e923^", "flow"),
    "symbol-v1": ("81b3066^", "symbol"),
    "symbol-v2": ("8026b7f^", "symbol"),
    "symbol-v3": ("0e33f49^", "symbol"),
    "symbol-v4": ("5af8572^", "symbol"),
    "symbol-v5": ("eaac847^", "symbol"),
    # version 6 gained parts while its number stayed: its first writer and its last
    "symbol-v6-first": ("eaac847", "symbol"),
    "symbol-v6-middle": ("fab0dd7^", "symbol"),
    "symbol-v6": ("3ac677d^", "symbol"),
    # version 7 before the session records, and its last writer
    "symbol-v7-first": ("6ff109a^", "symbol"),
    "symbol-v7": ("f3b6b3a", "symbol"),
    # format 1 before it kept the forecasters' bar rows
    "detect-format-1-first": ("77d973b^", "detect"),
    "detect-format-1": ("3a16d3e^", "detect"),
    "detect-format-2": ("552c245^", "detect"),
    "market-format-3": ("ef27481", "market"),
    "market-format-4": ("925c075", "market"),
}


def _tapes() -> ModuleType:
    """``tests/state_tapes.py`` by its path (the older tree on the path has a ``tests`` package of its own)."""
    spec = importlib.util.spec_from_file_location("state_tapes", ROOT / "tests" / "state_tapes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _module(name: str) -> Any:
    """An older tree's module: ``detectors.x`` before the house, ``tapewatch.detectors.x`` after."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return importlib.import_module(f"tapewatch.{name}")


def _verb(component: Any, name: str, before: str) -> Any:
    """An older tree's method: ``name`` from the detector verbs on (``on_quote_values``), ``before`` until then."""
    found = getattr(component, name, None)
    return found if found is not None else getattr(component, before)


def flow_state() -> dict[str, Any]:
    tapes, flow = _tapes(), _module("detectors.flow")
    known = set(flow.FlowConfig.__dataclass_fields__)
    config = flow.FlowConfig(**{key: value for key, value in tapes.FLOW_CONFIG.items() if key in known})
    # a feed whose profile does not say what its prints are, where the code learns it from the records
    learns = "prints" in inspect.signature(flow.FlowState).parameters
    state = flow.FlowState("AAA", config, **({"prints": None} if learns else {}))
    on_quote = _verb(state, "on_quote_values", "update_quote_values")
    on_book = _verb(state, "on_book_values", "update_book_values")
    for kind, ts, *rest in tapes.flow_tape()[: tapes.FLOW_CUT]:
        if kind == "quote":
            on_quote(ts, *rest)
        else:
            on_book(ts, *rest)
    return dict(state.to_state())


def _symbol_detector() -> Any:
    tapes, patterns = _tapes(), _module("detectors.patterns")
    detector = patterns.SymbolDetector("AAA", "twse")
    on_chunk = _verb(detector, "on_chunk", "on_flow_features")
    for ts, values in tapes.pattern_tape()[: tapes.PATTERN_CUT]:
        on_chunk(ts, values)
    return detector


def symbol_state() -> dict[str, Any]:
    return dict(_symbol_detector().to_state())


def detect_state() -> dict[str, Any]:
    """What the detect stage's ``_store`` wrote for a symbol (run on a stand-in for the stage: only its table)."""
    tapes, stage = _tapes(), importlib.import_module("streams.detect")
    written: list[dict[str, Any]] = []

    class Table:
        def write(self, partition: int, key: bytes, entry: dict[str, Any]) -> None:
            written.append(entry)

    class Stage:
        table = Table()

    fields = stage.DetectState.__dataclass_fields__
    extra: dict[str, Any] = {}
    if "history" in fields:
        extra["history"] = stage.FeatureHistory(("ret_1", "volume_z"), 3)
        for minute in range(4):
            extra["history"].append({"ret_1": 0.001 * minute, "volume_z": None if minute == 1 else 0.5})
    if "newest" in fields:
        extra["newest"] = {"fast": tapes.pattern_tape()[tapes.PATTERN_CUT - 1][0]}
    position = stage.PositionState(1, "20261125T000000Z-abcd", tapes.T0)
    state = stage.DetectState(_symbol_detector(), 1, 41, position, **extra)
    stage.DetectStage._store(Stage(), b"AAA", state)
    return written[0]


def market_records() -> list[Any]:
    """The market tape's first part as md.quotes and md.books records."""
    tapes, records = _tapes(), _module("records")
    kinds = {"quote": records.Quote, "book": records.Book}
    return [kinds[kind](**fields) for kind, fields in tapes.market_tape()[: tapes.FLOW_CUT]]


def market_state() -> dict[str, Any]:
    """What the market stage's ``_store`` wrote for a symbol after the tape's first part (its own table and a
    producer that keeps nothing stand in for Kafka)."""
    market, stage_io, metrics = _module("streams.market"), _module("streams.stage"), _module("streams.metrics")
    written: list[dict[str, Any]] = []

    class Table:
        def get(self, key: bytes, partition: int) -> None:
            return None

        def write(self, partition: int, key: bytes, entry: dict[str, Any]) -> None:
            written.append(entry)

    class Producer:
        def produce(self, *args: Any) -> None:
            pass

    class Message:
        def __init__(self, topic: str, offset: int, record: Any) -> None:
            self._topic, self._offset, self._record = topic, offset, record

        def topic(self) -> str:
            return self._topic

        def partition(self) -> int:
            return 0

        def offset(self) -> int:
            return self._offset

        def key(self) -> bytes:
            return b"AAA"

        def value(self) -> bytes:
            return bytes(self._record.to_json())

    io = stage_io.StageIO("stream:market", "market", Producer(), metrics.StreamMetrics())
    stage = market.MarketStage(
        quotes_topic="md.quotes", books_topic="md.books", bars_topic="bars", features_topic="features", io=io,
        table=Table(),
    )  # fmt: skip
    messages: list[Message] = []
    offsets = {"md.quotes": 0, "md.books": 0}
    for record in market_records():
        topic = "md.books" if type(record).__name__ == "Book" else "md.quotes"
        messages.append(Message(topic, offsets[topic], record))
        offsets[topic] += 1
    stage.process(messages)
    stage.write_state()
    return written[0]


def _child(kind: str) -> None:
    made = {"flow": flow_state, "symbol": symbol_state, "detect": detect_state, "market": market_state}[kind]()
    print(json.dumps(made))


def _make(name: str) -> None:
    revision, kind = STATES[name]
    commit = subprocess.run(["git", "rev-parse", revision], cwd=ROOT, check=True, capture_output=True, text=True)
    sha = commit.stdout.strip()
    with tempfile.TemporaryDirectory() as tree:
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        env = {**os.environ, "PYTHONPATH": tree}
        child = [sys.executable, str(Path(__file__).resolve()), "--child", kind]
        out = subprocess.run(child, cwd=tree, env=env, check=True, capture_output=True, text=True)
    state = json.loads(out.stdout.splitlines()[-1])
    (HERE / f"{name}.json").write_text(_dumped(name, sha, state), encoding="utf-8")
    print(f"{name}: {sha[:7]}")


def _dumped(name: str, commit: str, state: dict[str, Any]) -> str:
    """The file: the state a line per key (the detector's parts a line each), as short as it is readable."""

    def lines(value: dict[str, Any], indent: str) -> str:
        rows = [f"{indent}{json.dumps(key)}: {json.dumps(item)}" for key, item in value.items()]
        return "{\n" + ",\n".join(rows) + "\n" + indent[:-1] + "}"

    parts = {
        key: lines(item, "   ") if key in ("patterns", "detector") else json.dumps(item) for key, item in state.items()
    }
    if "detector" in state:
        detector = state["detector"]
        parts["detector"] = (
            "{"
            + ", ".join(
                f"{json.dumps(key)}: {lines(item, '    ') if key == 'patterns' else json.dumps(item)}"
                for key, item in detector.items()
            )
            + "}"
        )
    body = ",\n".join(f"  {json.dumps(key)}: {text}" for key, text in parts.items())
    return f'{{\n "name": "{name}",\n "commit": "{commit}",\n "state": {{\n{body}\n }}\n}}\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", help=f"of {', '.join(STATES)} (default: all)")
    parser.add_argument("--child", choices=("flow", "symbol", "detect", "market"))
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    for name in args.names or STATES:
        _make(name)


if __name__ == "__main__":
    main()
