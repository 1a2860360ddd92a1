"""The compiled hot modules (:mod:`tapewatch.compiled`): both forms send the same bytes, and a
build is never served once a file it was built from changed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tapewatch import compiled

BENCH = """
from tapewatch.compiled import active
from tapewatch.bench.orders_stage import main
print("active", len(active()))
main(["--symbols", "2", "--minutes", "8", "--batch", "1000", "--checkpoint", "3", "--repeat", "1"])
"""
DIGESTS = re.compile(r"sha256 outputs (\w{16}), changelog (\w{16})")


def _bench(pure: bool) -> tuple[int, tuple[str, ...]]:
    env = {key: value for key, value in os.environ.items() if key != compiled.PURE_ENV}
    if pure:
        env[compiled.PURE_ENV] = "1"
    out = subprocess.run(
        [sys.executable, "-c", BENCH],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    served = re.search(r"^active (\d+)$", out, re.MULTILINE)
    digests = DIGESTS.search(out)
    assert served is not None and digests is not None, out
    return int(served.group(1)), digests.groups()


def test_the_compiled_modules_send_the_bytes_pure_python_sends() -> None:
    manifest = compiled.read_manifest(compiled.BUILD)
    if manifest is None or compiled.stale(manifest) is not None:
        pytest.skip("the hot modules are not compiled from these sources here (`make compiled` compiles them)")
    served, from_compiled = _bench(pure=False)
    assert served == len(compiled.MODULES)
    assert _bench(pure=True) == (0, from_compiled)


def _manifest(source: Path) -> dict[str, object]:
    status = source.stat()
    return {
        "python": compiled.python_tag(),
        "modules": list(compiled.MODULES),
        "extensions": {},
        "sources": {str(source): [status.st_size, status.st_mtime_ns, compiled.digest(source)]},
    }


def test_a_build_is_stale_once_a_file_it_read_changed(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text("x = 1\n")
    manifest = _manifest(source)
    assert compiled.stale(manifest) is None
    os.utime(source, ns=(0, 0))  # touched, the same bytes: still fresh (read again, not trusted by its time)
    assert compiled.stale(manifest) is None
    source.write_text("x = 2\n")
    assert compiled.stale(manifest) == str(source)
    assert compiled.stale({**_manifest(source), "python": "another"}) is not None
    assert compiled.stale({**_manifest(source), "modules": ["tapewatch.records"]}) is not None
    source.unlink()
    assert compiled.stale(manifest) == str(source)


def test_a_stale_build_is_not_served_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "module.py"
    source.write_text("x = 1\n")
    manifest = _manifest(source)
    source.write_text("x = 2\n")
    (tmp_path / compiled.MANIFEST).write_text(json.dumps(manifest))
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    finders = list(sys.meta_path)
    monkeypatch.setattr(sys, "meta_path", [f for f in finders if not isinstance(f, compiled.CompiledFinder)])
    with pytest.warns(RuntimeWarning, match="make compiled"):
        assert compiled.install(tmp_path) == ()
    assert not any(isinstance(finder, compiled.CompiledFinder) for finder in sys.meta_path)
    monkeypatch.setenv(compiled.PURE_ENV, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled.install(tmp_path)  # asked for pure Python: no warning
