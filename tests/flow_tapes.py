"""One symbol's tape through :class:`~tapewatch.detectors.flow.FlowState`, as bytes: what the compiled flow core and
its pure-Python source must agree on (``tests/unit/test_compiled_flow.py``).

A tape is JSON: the config, the feed's profile, the records (``["q", ts, price, size, side, bid, ask]`` or
``["b", ts, bids, asks]``) and where the state is saved and restored midway. :func:`run_tape` returns every
record's outcome (its closed chunks, or ``late``), the state at the restore point, the flushed chunks and the final
state, serialised with the changelog's writer (orjson: floats round-trip exactly).

``python -m tests.flow_tapes`` answers tapes one per line on stdin with their bytes on stdout (hex): the reference
process, started with ``TAPEWATCH_PURE=1``.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

from tapewatch.compiled import active
from tapewatch.detectors.flow import FlowChunk, FlowConfig, FlowState, LateRecordError


def _chunks(chunks: list[FlowChunk]) -> list[Any]:
    return [[c.symbol, c.start, c.end, c.values] for c in chunks]


def run_tape(tape: dict[str, Any]) -> bytes:
    """``tape``'s outcomes and states (see the module's docstring), as bytes."""
    config = FlowConfig(**tape["config"])
    profile = {"books": tape["books"], "prints": tape["prints"]}
    state = FlowState("T", config, **profile)
    out: list[Any] = []
    for i, record in enumerate(tape["records"]):
        if i == tape["restore_at"]:
            saved = orjson.dumps(state.to_state())
            out.append(["state", saved.decode()])
            state = FlowState.from_state(orjson.loads(saved), config, **profile)
        try:
            if record[0] == "q":
                closed = state.on_quote_values(*record[1:])
            else:
                closed = state.on_book_values(record[1], [tuple(x) for x in record[2]], [tuple(x) for x in record[3]])
        except LateRecordError as late:
            out.append(["late", str(late)])
        else:
            out.append(_chunks(closed))
    out.append(_chunks(state.flush()))
    out.append(["state", orjson.dumps(state.to_state()).decode()])
    return orjson.dumps(out)


def main() -> None:
    """Answer tapes from stdin, one JSON per line, with their bytes as hex, one line each; first, the compiled
    modules this process runs (none when ``TAPEWATCH_PURE=1``)."""
    print(orjson.dumps(list(active())).decode(), flush=True)
    for line in sys.stdin:
        print(run_tape(orjson.loads(line)).hex(), flush=True)


if __name__ == "__main__":
    main()
