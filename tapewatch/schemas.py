"""JSON Schema export of the wire records, for consumers that do not use Python."""

from __future__ import annotations

from pathlib import Path

import orjson

from tapewatch.errors import TapewatchError
from tapewatch.records import WIRE_RECORDS


def export_schemas(directory: Path) -> list[Path]:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TapewatchError(f"schema export: cannot make the directory {directory}: {exc.strerror}") from None
    written: list[Path] = []
    for record in WIRE_RECORDS:
        schema = record.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"tapewatch/{record.record_name}.schema.json"
        path = directory / f"{record.record_name}.schema.json"
        path.write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        written.append(path)
    return written
