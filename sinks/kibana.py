"""Kibana saved objects (infra/kibana/*.ndjson): import over Kibana's HTTP API, and the structure they must keep.

The import is ``POST /api/saved_objects/_import?overwrite=true`` with the NDJSON as a multipart file and the
``kbn-xsrf`` header; stable object ids make re-importing an update, never a copy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tapewatch.errors import TapewatchError
from tapewatch.settings import Settings

KIBANA_DIR = Path(__file__).resolve().parent.parent / "infra" / "kibana"


def saved_object_files(directory: Path = KIBANA_DIR) -> list[Path]:
    return sorted(directory.glob("*.ndjson"))


@dataclass(frozen=True, slots=True)
class ImportResult:
    file: Path
    success_count: int


def import_url(base_url: str, space: str | None = None) -> str:
    prefix = base_url.rstrip("/") + (f"/s/{space}" if space else "")
    return f"{prefix}/api/saved_objects/_import?overwrite=true"


def _auth_headers(settings: Settings) -> dict[str, str]:
    # Kibana accepts the Elasticsearch credentials.
    if settings.es.api_key:
        return {"Authorization": f"ApiKey {settings.es.api_key.get_secret_value()}"}
    if settings.es.username and settings.es.password:
        token = aiohttp.BasicAuth(settings.es.username, settings.es.password.get_secret_value()).encode()
        return {"Authorization": token}
    return {}


async def _import(
    settings: Settings, base_url: str, files: list[Path], space: str | None, timeout_s: float
) -> list[ImportResult]:
    results = []
    headers = {"kbn-xsrf": "true", **_auth_headers(settings)}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        for path in files:
            form = aiohttp.FormData()
            form.add_field("file", path.read_bytes(), filename=path.name, content_type="application/ndjson")
            try:
                async with session.post(import_url(base_url, space), data=form, headers=headers) as response:
                    body = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TapewatchError(f"kibana: cannot reach {base_url}: {exc or type(exc).__name__}") from None
            try:
                answer: Any = orjson.loads(body)
            except orjson.JSONDecodeError:
                answer = None
            if response.status != 200 or not isinstance(answer, dict):
                raise TapewatchError(f"kibana: import of {path.name} failed: HTTP {response.status} {body[:200]!r}")
            if not answer.get("success"):
                errors = answer.get("errors") or []
                first = errors[0] if errors else {}
                raise TapewatchError(
                    f"kibana: import of {path.name} reported {len(errors)} error(s), first: "
                    f"{first.get('type')} {first.get('id')}: {orjson.dumps(first.get('error')).decode()}"
                )
            results.append(ImportResult(path, int(answer.get("successCount", 0))))
    return results


def import_saved_objects(
    settings: Settings,
    base_url: str,
    files: list[Path] | None = None,
    space: str | None = None,
    timeout_s: float = 60.0,
) -> list[ImportResult]:
    """Import every NDJSON file (default: infra/kibana/*.ndjson) into Kibana at ``base_url``."""
    chosen = files if files is not None else saved_object_files()
    if not chosen:
        raise TapewatchError(f"kibana: no saved-object files in {KIBANA_DIR}")
    return asyncio.run(_import(settings, base_url, chosen, space, timeout_s))
