"""`tapewatch run` (what `make demo` calls): services, simulator and stream worker as supervised processes,
the live dashboard, a clean stop after --duration and a summary with data that flowed end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tapewatch.settings import Settings

pytestmark = pytest.mark.integration
TAPEWATCH = str(Path(sys.executable).with_name("tapewatch"))


def count(summary: str, topic: str) -> int:
    match = re.search(rf"│ {re.escape(topic)}\s+│\s+([\d,]+)", summary)
    assert match, f"{topic} missing from the summary"
    return int(match.group(1).replace(",", ""))


def test_run_pipeline_for_a_while(settings: Settings) -> None:
    env = {**os.environ, "TAPEWATCH_TOPIC_PREFIX": settings.topic_prefix, "COLUMNS": "160"}
    done = subprocess.run(
        [TAPEWATCH, "run", "--duration", "45", "--symbols", "4", "--speed", "120", "--seed", "3"],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "restarted" not in done.stderr, done.stderr[-2000:]
    summary = done.stdout.split("summary", 1)[1]
    assert count(summary, "md.quotes") > 1000
    assert count(summary, "md.books") > 1000
    assert count(summary, "md.bars.1m") > 4 * 30  # 45 s at 120× ≈ 90 simulated minutes per symbol
    assert count(summary, "dlq.streams") == 0
    logs = settings.var_dir / "run"
    assert (logs / "stream-worker.log").exists() and (logs / "source.log").exists()
    for stage in ("produce simulate --symbols 4 --speed 120.0 --seed 3", "stream worker"):
        leftover = subprocess.run(["pgrep", "-f", stage], check=False, capture_output=True, text=True)
        assert leftover.stdout.strip() == "", f"still running after the summary: {stage}"
