"""The stream worker starts a venue's new symbols from its calibration (`tapewatch calibrate`'s artifact in the model
directory): every pattern alert says it is calibrated, and a kind whose cut-off the calibration closed raises none.
Through Kafka, with the worker as a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapewatch.artifacts import ArtifactStore
from tapewatch.detectors.alert_budget import BUDGETED_KINDS
from tapewatch.detectors.calibration import Calibration
from tapewatch.detectors.patterns.materiality import SERIES
from tapewatch.settings import Settings
from tests.pipeline_session import SESSION
from tests.stream_runs import session_alerts

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
    alerts, tail = session_alerts(services, tmp_path / "worker.log", {"TAPEWATCH_MODEL_DIR": str(models)}, WAIT_S)
    assert alerts, tail
    assert all(alert["evidence"]["calibrated"] is True for alert in alerts)
    assert CLOSED not in {alert["kind"] for alert in alerts}
    assert f"of {SESSION.venue} loaded" in tail
