"""Who holds a port: our own process (its command line names our directory) or a stranger. `infra status`
and `infra down` decide on this, never on a pid file alone."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tapewatch.infra.common import listening_pids, port_holder

LISTEN = (
    "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
    "print(s.getsockname()[1], flush=True); time.sleep(60)"
)


@contextmanager
def listener(*argv: str) -> Iterator[tuple[int, int]]:
    """A child process listening on a free port, with ``argv`` on its command line: (pid, port)."""
    child = subprocess.Popen([sys.executable, "-c", LISTEN, *argv], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        yield child.pid, port
    finally:
        child.kill()
        child.wait()


def test_a_listener_whose_command_line_names_our_directory_is_ours() -> None:
    marker = f"/tmp/tapewatch-var-{uuid.uuid4().hex}/kafka"
    with listener(marker) as (pid, port):
        assert listening_pids(port) == [pid]
        holder = port_holder(port, marker)
        assert holder.ours and holder.pid == pid and not holder.stranger


def test_any_other_listener_is_a_stranger() -> None:
    with listener("/somebody/else") as (pid, port):
        holder = port_holder(port, f"/tmp/tapewatch-var-{uuid.uuid4().hex}")
        assert holder.stranger and holder.pid == pid and not holder.ours


def test_a_silent_port_has_no_holder() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])  # bound, not listening
        assert listening_pids(port) == []
        assert port_holder(port, "anything").pid is None


def test_a_closed_listener_is_gone_at_once() -> None:
    with listener("x") as (_, port):
        assert listening_pids(port)
    deadline = time.monotonic() + 5
    while listening_pids(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening_pids(port) == []
