"""Real 1-minute bars of four US large caps out of pyqstrat's source archive (tapewatch.producers.us_stock_bars), and
the fetch of a pinned data archive (tapewatch.infra.data_sdists)."""

from __future__ import annotations

import hashlib
import io
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tapewatch.data_packages import PYQSTRAT, Sdist
from tapewatch.errors import TapewatchError
from tapewatch.infra import data_sdists
from tapewatch.producers.us_stock_bars import SYMBOLS, VENUE, read_bars


def test_the_archive_holds_19_sessions_of_four_stocks_in_new_york_hours() -> None:
    tape = read_bars()
    bars = tape.bars
    assert tape.sessions == 19 and set(bars["symbol"]) == set(SYMBOLS) and set(bars["venue"]) == {VENUE}
    local = pd.to_datetime(bars["start"], unit="ms", utc=True).dt.tz_convert("America/New_York")
    minutes = local.dt.hour * 60 + local.dt.minute
    assert minutes.min() == 9 * 60 + 30 and minutes.max() == 15 * 60 + 59  # bars stamped by their start
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars[["open", "close"]].max(axis=1) <= bars["high"]).all()
    assert (bars.groupby("symbol")["start"].is_monotonic_increasing).all()
    first_close = bars[(bars["symbol"] == "MSFT") & (minutes == 15 * 60 + 59)]["close"].iloc[0]
    assert first_close == pytest.approx(239.58)  # 2023-01-03's close, with its 32-bit float noise rounded away


def test_a_missing_archive_says_how_to_fetch_it(tmp_path: Path) -> None:
    with pytest.raises(TapewatchError, match="make deps"):
        read_bars(tmp_path / "none.tar.gz")


class _Served(io.BytesIO):
    def __enter__(self) -> _Served:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def test_the_fetch_checks_the_pin_and_keeps_what_it_has(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = b"not really an archive"
    pinned = Sdist("thing", "1.0", hashlib.sha256(body).hexdigest())
    page = f'<a href="../../files/{pinned.filename}#sha256={pinned.sha256}">{pinned.filename}</a>'.encode()
    asked: list[str] = []

    def serve(url: str, timeout: float) -> _Served:
        asked.append(url)
        return _Served(page if url.endswith("/thing/") else body)

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    path = data_sdists.fetch(pinned, tmp_path)
    assert path.read_bytes() == body and asked == [
        "https://pypi.org/simple/thing/",
        f"https://pypi.org/files/{pinned.filename}",
    ]
    asked.clear()
    assert data_sdists.fetch(pinned, tmp_path) == path and asked == []  # cached and as pinned: no network
    wrong = Sdist("thing", "1.0", "0" * 64)
    path.unlink()
    with pytest.raises(TapewatchError, match="sha256"):
        data_sdists.fetch(wrong, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-fetched is kept
    assert PYQSTRAT.pin == "pyqstrat==1.0.2" and len(PYQSTRAT.sha256) == 64
