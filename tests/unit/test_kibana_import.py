"""`tapewatch kibana import URL` against a local aiohttp server standing in for Kibana's saved-objects API:
multipart upload of each NDJSON with kbn-xsrf and overwrite=true; failures are one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from typer.testing import CliRunner

from tapewatch.cli.app import cli
from tapewatch.errors import TapewatchError
from tapewatch.settings import Settings
from tapewatch.sinks.kibana import import_saved_objects, saved_object_files
from tests.http_server import serve


class FakeKibana:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_with: dict[str, Any] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        body = upload.file.read()
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "xsrf": request.headers.get("kbn-xsrf"),
                "filename": upload.filename,
                "body": body,
            }
        )
        if self.fail_with is not None:
            return web.json_response(self.fail_with)
        objects = [line for line in body.splitlines() if line.strip()][:-1]
        return web.json_response({"success": True, "successCount": len(objects)})


@pytest.fixture
def kibana() -> Iterator[tuple[str, FakeKibana]]:
    fake = FakeKibana()
    application = web.Application()
    application.router.add_post("/api/saved_objects/_import", fake.handle)
    application.router.add_post("/s/{space}/api/saved_objects/_import", fake.handle)
    with serve(application) as url:
        yield url, fake


def test_cli_imports_every_file_as_multipart(kibana: tuple[str, FakeKibana]) -> None:
    url, fake = kibana
    result = CliRunner().invoke(cli(), ["kibana", "import", url])
    assert result.exit_code == 0, result.output
    files = saved_object_files()
    assert [r["filename"] for r in fake.requests] == [f.name for f in files]
    for request, path in zip(fake.requests, files, strict=True):
        assert request["path"] == "/api/saved_objects/_import"
        assert request["query"] == {"overwrite": "true"} and request["xsrf"] == "true"
        assert request["body"] == path.read_bytes()
        objects = len(path.read_text().splitlines()) - 1
        assert f"imported {objects} object(s) from {path.name}" in result.output


def test_space_and_reported_errors(kibana: tuple[str, FakeKibana], tmp_path: Path) -> None:
    url, fake = kibana
    one = tmp_path / "one.ndjson"
    one.write_text('{"type":"index-pattern","id":"x","attributes":{},"references":[]}\n{"exportedCount":1}\n')
    (result,) = import_saved_objects(Settings(), url, [one], space="surveillance")
    assert fake.requests[-1]["path"] == "/s/surveillance/api/saved_objects/_import" and result.success_count == 1
    fake.fail_with = {
        "success": False,
        "errors": [{"type": "lens", "id": "y", "error": {"type": "missing_references"}}],
    }
    with pytest.raises(TapewatchError, match=r"1 error\(s\), first: lens y: .*missing_references"):
        import_saved_objects(Settings(), url, [one])


def test_unreachable_kibana_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(TapewatchError, match="kibana: cannot reach"):
        import_saved_objects(Settings(), "http://127.0.0.1:9", saved_object_files(), timeout_s=5)
