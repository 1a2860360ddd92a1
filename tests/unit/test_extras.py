"""A desk that wants only the detectors installs only what they need: the heavy libraries are extras
(``pyproject.toml``), the surveillance computation imports none of them, and without an extra the live code runs
what it can and a command that needs it says so in one line (:mod:`tapewatch.extras`)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tapewatch import extras

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
#: what only some users need: never a core dependency, never imported by the detectors
HEAVY_DISTRIBUTIONS = ("torch", "pyspark", "gymnasium", "fastapi", "uvicorn")
HEAVY_MODULES = ("torch", "pyspark", "gymnasium", "fastapi")
#: the modules :data:`tapewatch.extras.EXTRAS` looks for → the distribution that installs each
DISTRIBUTION_OF = {
    "torch": "torch",
    "gymnasium": "gymnasium",
    "pyspark": "pyspark",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "multipart": "python-multipart",
    "jinja2": "jinja2",
    "argon2": "argon2-cffi",
}
#: run before the code under test: every extra's modules unimportable, as on a bare ``pip install tapewatch``
WITHOUT_EXTRAS = (
    "import sys\n"
    f"for name in {(*(m for ms in extras.EXTRAS.values() for m in ms), 'starlette')!r}:\n"
    "    sys.modules[name] = None\n"
)


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (``Jinja2>=3.1,<4`` → ``jinja2``)."""
    match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_core_dependencies_hold_no_heavy_library() -> None:
    core = {_name(r) for r in PROJECT["dependencies"]}
    assert not core & set(HEAVY_DISTRIBUTIONS)


def test_the_extras_are_declared_and_all_covers_every_one() -> None:
    declared = PROJECT["optional-dependencies"]
    assert set(extras.EXTRAS) | {"all", "dev"} == set(declared)
    for extra, modules in extras.EXTRAS.items():
        assert {DISTRIBUTION_OF[m] for m in modules} <= {_name(r) for r in declared[extra]}, extra
    covered = {_name(r) for r in declared["all"] if not r.startswith("tapewatch")} | {
        _name(r)
        for reference in declared["all"]
        if reference.startswith("tapewatch[")
        for extra in reference.removeprefix("tapewatch[").removesuffix("]").split(",")
        for r in declared[extra.strip()]
    }
    every = {_name(r) for extra in extras.EXTRAS for r in declared[extra]}
    assert every <= covered


def test_importing_the_detectors_loads_no_heavy_library() -> None:
    code = (
        "import importlib, pkgutil, sys, tapewatch.detectors as detectors\n"
        "for info in pkgutil.walk_packages(detectors.__path__, 'tapewatch.detectors.'):\n"
        "    importlib.import_module(info.name)\n"
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing detectors imports {out.stdout.strip()}"


def test_require_names_the_extra_and_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    assert extras.missing("signals")[:1] == ["torch"] and not extras.available("signals")
    with pytest.raises(extras.MissingExtraError, match=re.escape("pip install 'tapewatch[signals]'")) as caught:
        extras.require("signals", "tapewatch train dqn")
    assert str(caught.value).startswith("tapewatch train dqn needs the 'signals' extra (torch")


def test_without_the_extras_the_commands_say_which_one_they_need() -> None:
    code = (
        WITHOUT_EXTRAS + "from tapewatch.cli import app as cli\n"
        "for args in (['train', 'dqn', '--help'], ['train', 'dqn'], ['train', 'lstm'], ['console', 'serve']):\n"
        "    sys.argv = ['tapewatch', *args]\n"
        "    try:\n"
        "        cli.main()\n"
        "    except SystemExit as stop:\n"
        "        print('exit', stop.code, file=sys.stderr)\n"
    )
    out = _python(code)
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert "Usage: tapewatch train dqn" in out.stdout  # help needs no extra
    assert errors == [
        "error: tapewatch train dqn needs the 'signals' extra (torch, gymnasium not installed): "
        "pip install 'tapewatch[signals]'",
        "error: tapewatch train lstm needs the 'signals' extra (torch, gymnasium not installed): "
        "pip install 'tapewatch[signals]'",
        "error: tapewatch console serve needs the 'console' extra (fastapi, uvicorn, multipart, jinja2, argon2 "
        "not installed): pip install 'tapewatch[console]'",
    ]
    assert [line for line in out.stderr.splitlines() if line.startswith("exit")] == ["exit 0", *["exit 1"] * 3]


def test_without_the_signals_extra_the_stream_worker_detects_and_says_once_that_signals_are_off(
    tmp_path: Path,
) -> None:
    code = (
        WITHOUT_EXTRAS + "import logging, numpy as np\n"
        "from pathlib import Path\n"
        "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s', stream=sys.stdout)\n"
        "from tapewatch.streams.detect import DetectState, ModelSlot\n"
        "from tapewatch.streams.forecasting import ForecastSlot\n"
        "from tapewatch.artifacts import ArtifactStore\n"
        f"store = ArtifactStore(Path({str(tmp_path)!r}))\n"
        "store.save('dqn', {'kind': 'dqn'}, {'w': np.zeros(1)}, hash_hex='0' * 64)  # published, not loadable here\n"
        "slot, forecasters = ModelSlot(store), ForecastSlot(store)\n"
        "slot.refresh()\n"
        "print('policy', slot.policy, 'forecasters', forecasters.loaders, forecasters.models)\n"
        "print('position', DetectState.__dataclass_fields__['position'].default_factory().to_state())\n"
        "print('loaded', ','.join(m for m in ('torch', 'gymnasium') if sys.modules.get(m) is not None))\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line for line in lines if "signals" in line] == [
        "WARNING trading signals are off: the 'signals' extra is not installed (pip install 'tapewatch[signals]')"
    ]
    assert "policy None forecasters {} {}" in lines
    assert "position {'v': 1, 'position': 0, 'model_version': None, 'last_ts': None}" in lines
    assert "loaded " in lines
