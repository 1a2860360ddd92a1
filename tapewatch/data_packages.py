"""Data that ships inside source distributions we never build nor install: their pins, and where ``make deps`` keeps
them (``python -m tapewatch.infra.data_sdists``). Building one would run its ``setup.py`` (pyqstrat's compiles C++
and wants conda); the data is all we read, straight out of the archive."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["PYQSTRAT", "SDISTS", "Sdist", "cache_dir"]


@dataclass(frozen=True, slots=True)
class Sdist:
    """A pinned source distribution on the package index."""

    name: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.tar.gz"

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"

    def path(self, cache: Path | None = None) -> Path:
        return (cache or cache_dir()) / self.filename


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tapewatch/sdists`` (``~/.cache`` by default): kept across clones, as ``~/.m2`` keeps jars."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tapewatch" / "sdists"


#: pyqstrat (BSD-3-Clause) ships 19 sessions of real 1-minute bars of AAPL, IBM, MSFT and NVDA, January 2023
PYQSTRAT: Final = Sdist("pyqstrat", "1.0.2", "17032aac373649a9fe7ac2364227c761d658d2d188ea48695425891486790514")
SDISTS: Final = {sdist.pin: sdist for sdist in (PYQSTRAT,)}
