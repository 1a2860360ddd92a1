"""`tapewatch stream worker` as a subprocess for integration tests (conftest's ``stream_settings`` cleans up)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tapewatch.settings import PROJECT_ROOT, Settings


def start_sink(name: str, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`tapewatch sink <name>` as a subprocess with ``env`` added, its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("tapewatch")), "sink", name],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def worker_argv() -> list[str]:
    return [str(Path(sys.executable).with_name("tapewatch")), "stream", "worker"]


class Worker:
    """`tapewatch stream worker` as a subprocess, its output in a log file."""

    def __init__(
        self,
        settings: Settings,
        log: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``args`` are extra CLI options. A killed member keeps its partitions for the session timeout: 10 s
        here (the default is 45 s), unless ``env`` says otherwise."""
        env = {
            **os.environ,
            "TAPEWATCH_STREAM_SESSION_TIMEOUT_MS": "10000",
            **(env or {}),
            "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
            "TAPEWATCH_LOG_LEVEL": "INFO",
        }
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [*worker_argv(), "--batch-within", "0.1", *(args or ("--metrics-port", "0"))],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def stop(self, timeout_s: float = 30.0, sig: signal.Signals = signal.SIGTERM) -> int:
        """SIGTERM (a graceful stop; SIGKILL if that takes too long) or ``sig``; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()
        return self.proc.returncode

    def assigned(self) -> set[int]:
        """The partitions the worker holds now, from its log (the newest assignment unless revoked since)."""
        held: set[int] = set()
        for line in self.log.read_text(errors="replace").splitlines():
            found = re.search(r"(assigned|revoked) partitions \[([0-9, ]*)\]", line)
            if found:
                numbers = {int(n) for n in found.group(2).split(",") if n.strip()}
                held = numbers if found.group(1) == "assigned" else held - numbers
        return held

    def tail(self, lines: int = 40) -> str:
        state = "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"
        return f"worker {state}; last lines of {self.log}:\n" + "\n".join(
            self.log.read_text(errors="replace").splitlines()[-lines:]
        )
