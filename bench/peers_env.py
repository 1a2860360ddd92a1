"""The peers' virtualenv for `tapewatch bench peers`: Quix Streams and faust-streaming, apart from the main venv.

They cannot join ``.venv``: their pins would downgrade confluent-kafka (2.16.1 → 2.12.2), pydantic and click there.
So the benchmark builds ``.venv-peers/`` at the repository root on first use, with the main venv's uv exactly as
the Makefile's ``UV_PIP`` (``--system-certs``, ``--compile-bytecode``, ``$PIP_FIND_LINKS`` when set), and leaves a
stamp named after the pinned requirements: a second run finds the stamp and installs nothing; a change of the pins
changes the stamp's name, and the next run installs again. The peers' scripts (:mod:`tapewatch.bench.peer_scripts`)
run on this venv's python and never import tapewatch.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from tapewatch.errors import TapewatchError
from tapewatch.settings import PROJECT_ROOT

#: what the peers' scripts need, pinned; their own dependencies are resolved by uv. faust reads Kafka with aiokafka,
#: which decompresses lz4 (what tapewatch's producer writes) only with its ``lz4`` extra's cramjam.
PEER_REQUIREMENTS: Final = ("quixstreams==3.28.1", "faust-streaming==0.15.3", "cramjam==2.14.0")
PEERS_VENV: Final = PROJECT_ROOT / ".venv-peers"
STAMP_PREFIX: Final = ".peers-"


def stamp_name(requirements: Sequence[str]) -> str:
    """The stamp file's name for ``requirements`` (order does not matter).

    >>> stamp_name(["b==2", "a==1"]) == stamp_name(["a==1", "b==2"])
    True
    >>> stamp_name(["a==1"]) != stamp_name(["a==2"]), stamp_name(["a==1"]).startswith(".peers-")
    (True, True)
    """
    digest = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:16]
    return STAMP_PREFIX + digest


def is_current(venv: Path, requirements: Sequence[str]) -> bool:
    """Whether ``venv`` holds ``requirements`` as installed by :func:`ensure_peers_venv` (its stamp, its python)."""
    return (venv / stamp_name(requirements)).is_file() and (venv / "bin" / "python").exists()


def uv_pip_install(uv: Path, python: Path, env: Mapping[str, str]) -> list[str]:
    """The Makefile's ``UV_PIP`` for ``python``: ``uv pip install -q --system-certs --compile-bytecode`` and
    ``--find-links $PIP_FIND_LINKS`` when that is set.

    >>> uv_pip_install(Path("/v/bin/uv"), Path("/p/bin/python"), {"PIP_FIND_LINKS": "/w"})[-2:]
    ['--find-links', '/w']
    >>> "--find-links" in uv_pip_install(Path("/v/bin/uv"), Path("/p/bin/python"), {})
    False
    """
    command = [str(uv), "pip", "install", "--python", str(python), "-q", "--system-certs", "--compile-bytecode"]
    links = env.get("PIP_FIND_LINKS")
    if links:
        command += ["--find-links", links]
    return command


def ensure_peers_venv(
    venv: Path = PEERS_VENV, requirements: Sequence[str] = PEER_REQUIREMENTS, *, report: bool = True
) -> Path:
    """The peers' python, the venv built (or brought to ``requirements``) first when its stamp is missing."""
    python = venv / "bin" / "python"
    if is_current(venv, requirements):
        return python
    main_bin = Path(sys.executable).parent
    if report:
        print(f"building {venv} ({' '.join(requirements)}); later runs reuse it", file=sys.stderr)
    if not python.exists():
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    _run([*uv_pip_install(main_bin / "uv", python, os.environ), *requirements])
    for old in venv.glob(STAMP_PREFIX + "*"):
        old.unlink()
    (venv / stamp_name(requirements)).write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return python


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TapewatchError(f"building the peers' venv failed ({' '.join(argv[:3])} …): {done.stderr.strip()}")
