"""A topic prefix whose topics nobody created (as the configuration page suggests, to keep environments apart) stops
each long-running command at once with one line naming `tapewatch topics create`, on the real Kafka; a private
prefix that was created works."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tapewatch.settings import Settings

pytestmark = pytest.mark.integration
TAPEWATCH = str(Path(sys.executable).with_name("tapewatch"))


@pytest.mark.parametrize(
    "command",
    [
        ["produce", "simulate", "--symbols", "1", "--minutes", "5", "--no-progress"],
        ["sink", "postgres", "--exit-when-idle", "1"],
        ["trade", "paper", "--until-idle", "5"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_uncreated_topics_are_one_line_naming_the_command(
    services: Settings, tmp_path: Path, command: list[str]
) -> None:
    prefix = f"nowhere-{uuid.uuid4().hex[:8]}."
    env = {**os.environ, "TAPEWATCH_TOPIC_PREFIX": prefix, "TAPEWATCH_VAR_DIR": str(tmp_path)}
    started = time.monotonic()
    done = subprocess.run([TAPEWATCH, *command], capture_output=True, text=True, timeout=120, env=env, check=False)
    elapsed = time.monotonic() - started
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert prefix in lines[0] and "missing" in lines[0] and "tapewatch topics create" in lines[0], lines[0]
    assert elapsed < 30, f"took {elapsed:.1f} s"


def test_created_private_topics_take_the_simulator(settings: Settings, tmp_path: Path) -> None:
    env = {**os.environ, "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix, "TAPEWATCH_VAR_DIR": str(tmp_path)}
    command = [TAPEWATCH, "produce", "simulate", "--symbols", "1", "--minutes", "5", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "ground truth" in done.stdout + done.stderr


def test_created_topics_are_in_the_metadata_when_creation_returns(services: Settings) -> None:
    """A topic reaches the broker's metadata a moment after the controller made it: creation waits for that, so a
    producer started right after `topics create` finds its topics (before the wait, with one core busy, 13 of 15
    fresh prefixes had a topic missing from the metadata read at once; on a quiet machine the lag rarely shows)."""
    from tapewatch.infra.kafka import ensure_topics
    from tapewatch.kafka import admin_client, cluster_metadata

    for _ in range(5):
        isolated = services.updated(kafka={"topic_prefix": f"fresh-{uuid.uuid4().hex[:8]}."})
        created = ensure_topics(isolated)
        try:
            listed = cluster_metadata(isolated).topics
            assert created and all(name in listed and listed[name].partitions for name in created)
        finally:
            admin = admin_client(isolated)  # alive until the futures resolve
            for future in admin.delete_topics(created, operation_timeout=30).values():
                future.result()
