"""The real services: health, idempotent `up`, and one clear line when a service is unreachable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tapewatch.infra import manager
from tapewatch.infra.common import InfraError
from tapewatch.settings import Settings

pytestmark = pytest.mark.integration
TAPEWATCH = str(Path(sys.executable).with_name("tapewatch"))


def test_all_three_healthy_with_versions(services: Settings) -> None:
    statuses = {s.name: s for s in manager.status(services)}
    assert set(statuses) == {"kafka", "postgres", "elasticsearch"}
    for status in statuses.values():
        assert status.healthy, status
        assert status.version, status
    assert statuses["kafka"].version.startswith("4.")  # type: ignore[union-attr]
    assert statuses["elasticsearch"].version.startswith("8.")  # type: ignore[union-attr]


def test_second_up_is_a_quick_no_op(services: Settings) -> None:
    before = {s.name: s.pid for s in manager.status(services)}
    started = time.monotonic()
    manager.up(services)
    elapsed = time.monotonic() - started
    after = {s.name: s.pid for s in manager.status(services)}
    assert after == before, "up restarted a running service"
    assert elapsed < 15, f"second up took {elapsed:.1f} s"


def test_cli_status_prints_a_table(services: Settings) -> None:
    done = subprocess.run(
        [TAPEWATCH, "infra", "status"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    for name in ("kafka", "postgres", "elasticsearch", "4.3.1", "8.19"):
        assert name in done.stdout


@pytest.mark.parametrize(
    ("variable", "value", "service", "command"),
    [
        ("TAPEWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:1", "kafka", ["infra", "status"]),
        ("TAPEWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:1", "kafka", ["topics", "list"]),
        ("TAPEWATCH_POSTGRES_URL", "postgresql+psycopg2://u:topsecret@127.0.0.1:1/x", "postgres", ["infra", "status"]),
        ("TAPEWATCH_ES_URL", "http://127.0.0.1:1", "elasticsearch", ["infra", "status"]),
    ],
)
def test_unreachable_service_fails_fast_with_one_line(
    services: Settings, variable: str, value: str, service: str, command: list[str]
) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [TAPEWATCH, *command],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, variable: value},
    )
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert elapsed < 10, f"took {elapsed:.1f} s"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error:") and service in lines[0] and "unreachable" in lines[0]
    assert "topsecret" not in done.stderr + done.stdout


def test_external_service_is_never_started(services: Settings, tmp_path: Path) -> None:
    external = services.updated(
        local={"external_services": "elasticsearch", "var_dir": tmp_path}, es={"url": "http://127.0.0.1:1"}
    )
    with pytest.raises(InfraError, match="elasticsearch: external service"):
        manager.up(external)
    assert not (tmp_path / "elasticsearch").exists()


def test_two_ups_at_once_both_succeed(services: Settings) -> None:
    """Two `infra up` at the same moment (two terminals, two test processes) reconcile the running services one at
    a time: neither fails."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=3) as pool:
        for statuses in pool.map(lambda _: manager.up(services), range(3)):
            assert all(status.healthy for status in statuses), statuses
