"""`tapewatch run` (what `make demo` calls): services, models, simulator, stream worker and sinks as supervised
processes, the live dashboard, a clean stop after --duration, a summary with data that flowed end to end (into
PostgreSQL and Elasticsearch too) and a report folder."""

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
    assert count(summary, "signals.actions") == count(summary, "md.bars.1m")
    assert count(summary, "features.1m") > count(summary, "md.bars.1m")
    persisted = re.search(
        r"alerts on Kafka: ([\d,]+) · in PostgreSQL: ([\d,]+) · in Elasticsearch: ([\d,]+)", done.stdout
    )
    assert persisted, done.stdout[-3000:]
    assert persisted.group(1) == persisted.group(2) == persisted.group(3)
    report = re.search(r"report: (\S+)/report.md", done.stdout)
    assert report and (Path(report.group(1)) / "report.md").is_file() and list(Path(report.group(1)).glob("*.png"))
    assert "newest alerts" in done.stdout and "newest actions" in done.stdout
    logs = settings.var_dir / "run"
    assert (logs / "stream-worker.log").exists() and (logs / "source.log").exists()
    leftovers = [pid for pid in pids_with_env(f"TAPEWATCH_TOPIC_PREFIX={settings.topic_prefix}") if pid != os.getpid()]
    assert leftovers == [], f"stage processes still running after the summary: {leftovers}"


def pids_with_env(entry: str) -> list[int]:
    """Processes whose environment holds ``entry`` (this run's stages, not other tests' processes)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if entry.encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:  # gone, or not ours to read
            continue
    return found
