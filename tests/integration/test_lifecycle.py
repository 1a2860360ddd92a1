"""`down` stops every process `up` started (and nothing else); `up` brings them back with their data."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from tapewatch.infra import manager
from tapewatch.infra.common import cmdline, processes_with
from tapewatch.settings import Settings
from tapewatch.sinks import db

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]


def our_processes(var_dir: Path) -> list[str]:
    return [f"{pid}: {cmdline(pid)[:160]}" for pid in processes_with(str(var_dir)) if "pytest" not in cmdline(pid)]


def test_down_leaves_nothing_running_and_up_restores(services: Settings) -> None:
    db.upgrade(services)
    marker = uuid.uuid4().hex
    engine = db.make_engine(services)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS lifecycle_probe (marker text)"))
        conn.execute(text("INSERT INTO lifecycle_probe VALUES (:m)"), {"m": marker})
    engine.dispose()

    assert our_processes(services.local.var_dir), "expected the services to be running"
    manager.down(services)
    assert our_processes(services.local.var_dir) == []
    assert not any(s.healthy for s in manager.status(services))
    manager.down(services)  # nothing left to stop: still fine

    statuses = manager.up(services)
    assert all(s.healthy for s in statuses), statuses
    engine = db.make_engine(services)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM lifecycle_probe WHERE marker = :m"), {"m": marker}).scalar() == 1
    engine.dispose()
