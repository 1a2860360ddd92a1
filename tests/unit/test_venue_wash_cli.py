"""``tapewatch detect file --indicators``: the venue-level wash indicator of each symbol and day of a tick file."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tapewatch.records import VenueIndicator, WashTest

START = 1_700_006_400_000  # a UTC midnight


pytestmark = pytest.mark.usefixtures("private_models")


def test_detect_file_writes_each_symbol_s_days(tmp_path: Path) -> None:
    from tapewatch.cli.app import cli

    rng = random.Random(3)
    rows = [
        {"symbol": symbol, "ts": START + i * 60_000, "price": 100.0, "size": round(10 ** rng.uniform(-4, 1), 8)}
        for i in range(2_000)  # a day and a third
        for symbol in ("BTCUSD", "ETHUSD")
    ]
    ticks = tmp_path / "ticks.csv"
    pd.DataFrame(rows).to_csv(ticks, index=False)
    out = tmp_path / "indicators.jsonl"
    args = ["detect", "file", str(ticks), "--venue", "binance", "--no-kmeans", "--calibration", "none"]
    result = CliRunner().invoke(cli(), [*args, "--out", str(tmp_path / "alerts.jsonl"), "--indicators", str(out)])
    assert result.exit_code == 0, result.output
    written = [VenueIndicator.from_json(line) for line in out.read_bytes().splitlines()]
    assert [(i.symbol, i.window_start, i.complete, i.trades) for i in written] == [
        (symbol, START + day * 86_400_000, day == 0, 1_440 if day == 0 else 560)
        for symbol in ("BTCUSD", "ETHUSD")
        for day in (0, 1)
    ]
    assert written[0].benford is WashTest.CONFORMS and written[1].benford is WashTest.NOT_ENOUGH_TRADES
    assert "4 venue indicator(s)" in " ".join(result.output.split())
