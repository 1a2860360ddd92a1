"""The stream worker starts a venue's new symbols from its calibration (`tapewatch calibrate`'s artifact in the model
directory): every pattern alert says it is calibrated, and a kind whose cut-off the calibration closed raises none.
Through Kafka, with the worker as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from detectors.alert_budget import BUDGETED_KINDS
from detectors.calibration import Calibration
from detectors.patterns.materiality import SERIES
from tapewatch.artifacts import ArtifactStore
from tapewatch.settings import PROJECT_ROOT, Settings
from tapewatch.topics import ALERTS
from tests.pipeline_session import SESSION, sim_args
from tests.stream_runs import drop_worker_state, outputs, private_topics, wait_consumed
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration

WAIT_S = 300.0
#: the session raises pump, ignition, spoofing and price-burst alerts uncalibrated; the calibration closes pumps
#: for the session's symbols' liquidity tier (the venue's own cut-offs leave them open)
CLOSED = "pump_and_dump"


def test_new_symbols_start_from_their_venues_calibration(services: Settings, tmp_path: Path) -> None:
    models = tmp_path / "models"
    venue_cutoffs = {str(kind): 0.5 for kind in BUDGETED_KINDS}
    tier_cutoffs = {**venue_cutoffs, CLOSED: 1.01}
    calibration = Calibration(
        SESSION.venue, "trades", 30, SERIES, 2, {}, min_score=venue_cutoffs, budget=0.5,
        tiers=dict.fromkeys(SESSION.symbol_names, "thin"), tier_min_score={"thin": tier_cutoffs},
    )  # fmt: skip
    calibration.save(ArtifactStore(models))
    env = {"TAPEWATCH_MODEL_DIR": str(models)}
    with private_topics(services) as settings:
        worker = Worker(settings, tmp_path / "worker.log", env=env)
        try:
            produced = subprocess.run(
                [str(Path(sys.executable).with_name("tapewatch")), "produce", "simulate", *sim_args(SESSION),
                 "--no-progress"],
                cwd=PROJECT_ROOT,
                env={**os.environ, **env, "TAPEWATCH_TOPIC_PREFIX": settings.topic_prefix},
                capture_output=True,
                timeout=WAIT_S,
                check=False,
            )  # fmt: skip
            assert produced.returncode == 0, produced.stderr[-2000:]
            wait_consumed(settings, WAIT_S, worker.tail)
            alerts = [orjson.loads(value) for _, value in outputs(settings)[ALERTS.name]]
        finally:
            worker.stop()
            drop_worker_state(settings)
    assert alerts, worker.tail()
    assert all(alert["evidence"]["calibrated"] is True for alert in alerts)
    assert CLOSED not in {alert["kind"] for alert in alerts}
    assert f"of {SESSION.venue} loaded" in worker.tail()
