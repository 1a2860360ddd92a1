from __future__ import annotations

from pathlib import Path

import jsonschema
import orjson
import pytest

from tapewatch.records import WIRE_RECORDS
from tapewatch.schemas import export_schemas
from tests.unit.test_records import EXAMPLES


def test_one_schema_per_record(tmp_path: Path) -> None:
    written = export_schemas(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{r.record_name}.schema.json" for r in WIRE_RECORDS)


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda r: type(r).__name__)
def test_wire_json_validates_against_exported_schema(tmp_path: Path, record: object) -> None:
    export_schemas(tmp_path)
    schema = orjson.loads((tmp_path / f"{record.record_name}.schema.json").read_bytes())  # type: ignore[attr-defined]
    jsonschema.validate(orjson.loads(record.to_json()), schema)  # type: ignore[attr-defined]


def test_schema_rejects_what_the_decoder_rejects(tmp_path: Path) -> None:
    export_schemas(tmp_path)
    schema = orjson.loads((tmp_path / "quote.schema.json").read_bytes())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"symbol": "A", "venue": "v"}, schema)  # ts missing
