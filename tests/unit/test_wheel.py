"""What ``pip install tapewatch`` puts into site-packages: one import root, every module of every room under it,
and the data files the code reads at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

from tests.architecture import ROOT, modules

#: the files a room reads from its own package at run time
DATA_FILES = (
    "tapewatch/console/templates/base.html",
    "tapewatch/detectors/news/lexicons",
    "tapewatch/training/data/news_sentiment/headlines.csv",
    "tapewatch/infra/pom.xml",
    "tapewatch/sinks/migrations/versions/0001_bars.py",
)
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "dist", "site", "reports", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


def test_the_wheel_installs_one_name_holding_every_module(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=SKIP)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("tapewatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"tapewatch", f"tapewatch-{version('tapewatch')}.dist-info"}
    packaged = {
        name.removesuffix(".py").replace("/", ".").removesuffix(".__init__") for name in names if name.endswith(".py")
    }
    assert {name for name, _ in modules()} <= packaged
    assert all(any(name.startswith(data) for name in names) for data in DATA_FILES)
