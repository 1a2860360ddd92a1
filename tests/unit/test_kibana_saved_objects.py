"""Structure of infra/kibana/*.ndjson (no Kibana here): every line parses, ids are unique and stable, every
reference resolves, Lens layer ids and column ids agree, and every field a panel uses is mapped by the
Elasticsearch index template of the data view's family."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tapewatch.settings import ElasticsearchSettings, Settings
from tapewatch.sinks.elastic import COMMON_PROPERTIES, FAMILY_PROPERTIES, index_pattern
from tapewatch.sinks.kibana import saved_object_files

FILES = saved_object_files()


def load(path: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    parsed = [orjson.loads(line) for line in lines]
    assert all(isinstance(item, dict) for item in parsed)
    *objects, summary = parsed
    return objects, summary


def mapped_fields(properties: dict[str, Any], prefix: str = "") -> set[str]:
    fields: set[str] = set()
    for name, spec in properties.items():
        if "properties" in spec:
            fields |= mapped_fields(spec["properties"], f"{prefix}{name}.")
        elif spec.get("enabled", True):
            fields.add(f"{prefix}{name}")
    return fields


def test_there_is_a_dashboard_file() -> None:
    assert FILES, "infra/kibana has no *.ndjson"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_saved_objects_are_consistent(path: Any) -> None:
    objects, summary = load(path)
    assert "exportedCount" in summary and summary["exportedCount"] == len(objects)
    assert summary["missingRefCount"] == 0
    by_key = {(o["type"], o["id"]): o for o in objects}
    assert len(by_key) == len(objects), "duplicate ids"
    for obj in objects:
        assert {"type", "id", "attributes", "references"} <= set(obj)
        names = [ref["name"] for ref in obj["references"]]
        assert len(names) == len(set(names)), f"{obj['id']}: duplicate reference names"
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in by_key, f"{obj['id']}: unresolved reference {ref}"

    families = {
        index_pattern(Settings(es=ElasticsearchSettings(index_prefix="tapewatch")), family): family
        for family in FAMILY_PROPERTIES
    }
    data_views = {o["id"]: o for o in objects if o["type"] == "index-pattern"}
    for view in data_views.values():
        assert view["attributes"]["title"] in families, view["attributes"]["title"]
        assert view["attributes"]["timeFieldName"] == "@timestamp"

    lenses = [o for o in objects if o["type"] == "lens"]
    assert lenses
    for obj in lenses:
        state = obj["attributes"]["state"]
        layers = state["datasourceStates"]["formBased"]["layers"]
        refs = {ref["name"]: ref for ref in obj["references"]}
        for layer_id, layer in layers.items():
            assert sorted(layer["columnOrder"]) == sorted(layer["columns"]), f"{obj['id']}: columnOrder"
            ref = refs[f"indexpattern-datasource-layer-{layer_id}"]
            family = families[data_views[ref["id"]]["attributes"]["title"]]
            fields = mapped_fields({**COMMON_PROPERTIES, **FAMILY_PROPERTIES[family]})
            for column_id, column in layer["columns"].items():
                source = column.get("sourceField")
                assert source == "___records___" or source in fields, f"{obj['id']}.{column_id}: {source} unmapped"
                order = column.get("params", {}).get("orderBy", {})
                if order.get("type") == "column":
                    assert order["columnId"] in layer["columns"]
        visualization = state["visualization"]
        vis_layers = visualization.get("layers", [visualization])
        assert {layer["layerId"] for layer in vis_layers} == set(layers), f"{obj['id']}: layer ids differ"
        for vis_layer in vis_layers:
            columns = layers[vis_layer["layerId"]]["columns"]
            used = [vis_layer.get("xAccessor"), vis_layer.get("splitAccessor"), *vis_layer.get("accessors", [])]
            used += [c["columnId"] for c in vis_layer.get("columns", [])]
            assert {u for u in used if u} <= set(columns), f"{obj['id']}: accessor without a column"
            assert {u for u in used if u} == set(columns), f"{obj['id']}: a column no accessor shows"

    dashboards = [o for o in objects if o["type"] == "dashboard"]
    assert dashboards
    for board in dashboards:
        panels_json = board["attributes"]["panelsJSON"]
        assert isinstance(panels_json, str), "panelsJSON must be a JSON string"
        panels = orjson.loads(panels_json)
        refs = {ref["name"]: ref for ref in board["references"]}
        indices = [panel["panelIndex"] for panel in panels]
        assert len(indices) == len(set(indices))
        for panel in panels:
            ref = refs[f"{panel['panelIndex']}:{panel['panelRefName']}"]
            assert ref["type"] == panel["type"] and (ref["type"], ref["id"]) in by_key
            grid = panel["gridData"]
            assert grid["i"] == panel["panelIndex"] and grid["x"] + grid["w"] <= 48
        assert len(panels) == len(board["references"])
        titles = {by_key[("lens", refs[f"{p['panelIndex']}:{p['panelRefName']}"]["id"])]["attributes"]["title"]
                  for p in panels}  # fmt: skip
        assert len(titles) == 4  # alerts over time by kind, top symbols, severity table, score over time
