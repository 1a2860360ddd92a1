"""`tapewatch run` (what `make demo` calls): services, models, simulator, stream worker and sinks as supervised
processes, the live dashboard, a clean stop after --duration, a summary with data that flowed end to end (into
PostgreSQL and Elasticsearch too) and a report folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tapewatch.settings import Settings
from tests.browser import free_port

pytestmark = pytest.mark.integration
TAPEWATCH = str(Path(sys.executable).with_name("tapewatch"))


def count(summary: str, topic: str) -> int:
    match = re.search(rf"│ {re.escape(topic)}\s+│\s+([\d,]+)", summary)
    assert match, f"{topic} missing from the summary"
    return int(match.group(1).replace(",", ""))


def console_login_page(port: int, run: subprocess.Popen[str], timeout_s: float) -> int:
    """The status of the demo console's login page, asked until it answers or the run ends."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and run.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                status: int = response.status
                return status
        except OSError:
            time.sleep(0.5)
    return 0


def test_run_pipeline_for_a_while(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "COLUMNS": "160",
        "TAPEWATCH_CONSOLE_PORT": str(port),
        # the stream worker's metrics on a port of its own, not the default another test's worker may hold
        "TAPEWATCH_STREAM_METRICS_PORT": str(free_port()),
    }
    argv = [TAPEWATCH, "run", "--duration", "45", "--symbols", "4", "--speed", "120", "--seed", "3"]
    # files, not pipes: the dashboard writes more than a pipe holds while the test asks the console
    with (tmp_path / "out").open("w+") as out, (tmp_path / "err").open("w+") as err:
        run = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env)
        console_status = console_login_page(port, run, timeout_s=200)
        returncode = run.wait(timeout=240)
        done = subprocess.CompletedProcess(
            argv, returncode, (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_status == 200  # the console served beside the pipeline
    password_file = re.search(r"user demo, password in (\S+)", done.stdout)
    assert password_file and Path(password_file.group(1)).stat().st_mode & 0o777 == 0o600
    assert "restarted" not in done.stderr, done.stderr[-2000:]
    summary = done.stdout.split("summary", 1)[1]
    assert count(summary, "md.quotes") > 1000
    assert count(summary, "md.books") > 1000
    assert count(summary, "md.bars.1m") > 4 * 30  # 45 s at 120× ≈ 90 simulated minutes per symbol
    assert count(summary, "dlq.streams") == 0
    assert count(summary, "signals.actions") == count(summary, "md.bars.1m")
    assert count(summary, "features.1m") > count(summary, "md.bars.1m")
    assert count(summary, "signals.forecasts") > 0  # the demo's forecasters fill their windows within minutes
    assert count(summary, "orders") > 0 and count(summary, "portfolio") > 0  # the paper accounts follow them
    persisted = re.search(
        r"alerts on Kafka: ([\d,]+) · in PostgreSQL: ([\d,]+) · in Elasticsearch: ([\d,]+)", done.stdout
    )
    assert persisted, done.stdout[-3000:]
    assert persisted.group(1) == persisted.group(2) == persisted.group(3)
    report = re.search(r"report: (\S+)/report.md", done.stdout)
    assert report and (Path(report.group(1)) / "report.md").is_file() and list(Path(report.group(1)).glob("*.png"))
    assert "newest alerts" in done.stdout and "newest actions" in done.stdout and "newest forecasts" in done.stdout
    assert "paper accounts" in done.stdout
    logs = settings.local.var_dir / "run"
    assert (logs / "stream-worker.log").exists() and (logs / "source.log").exists()
    assert (logs / "paper-trader.log").exists()
    leftovers = [
        pid for pid in pids_with_env(f"TAPEWATCH_TOPIC_PREFIX={settings.kafka.topic_prefix}") if pid != os.getpid()
    ]
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
