"""The stream worker scores alerts with a published hit model (`tapewatch eval hit-model --publish`'s artifact in the
model directory): every alert of a kind the model scores carries its calibrated probability as its score, with the
rule's own score and the model's drivers in the evidence; kinds it does not score keep the rules' scores. Through
Kafka, with the worker as a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapewatch.artifacts import ArtifactStore
from tapewatch.detectors.alerting import MEDIUM_AT_MOST
from tapewatch.detectors.hit_model import SCORED_KINDS
from tapewatch.settings import Settings
from tests.hit_models import stump
from tests.stream_runs import session_alerts

pytestmark = pytest.mark.integration

WAIT_S = 300.0
#: the model scores every manipulation kind except this one, which keeps the rules' score
UNSCORED = "momentum_ignition"


def test_a_published_hit_model_scores_its_kinds_in_the_stream(services: Settings, tmp_path: Path) -> None:
    models = tmp_path / "models"
    kinds = frozenset(str(kind) for kind in SCORED_KINDS) - {UNSCORED}
    # every rule's strength is above 0: the model says 0.9 of every alert of its kinds
    published = stump("score", 0.0, kinds).save(ArtifactStore(models))
    alerts, tail = session_alerts(services, tmp_path / "worker.log", {"TAPEWATCH_MODEL_DIR": str(models)}, WAIT_S)
    assert f"hit model {published.version} loaded" in tail
    scored = [alert for alert in alerts if alert["kind"] in kinds]
    others = [alert for alert in alerts if alert["kind"] not in kinds]
    assert scored, f"the session raises alerts of the model's kinds\n{tail}"
    for alert in scored:
        evidence = alert["evidence"]
        assert evidence["score_model"] == published.version
        assert evidence["p_manipulation"] == pytest.approx(0.9)
        assert str(evidence["score_drivers"]).startswith("score +2.00")
        # a rule's medium ceiling (a pump's run-up) holds: the model ranks within it
        ceiling = MEDIUM_AT_MOST if evidence["rule_score"] == pytest.approx(MEDIUM_AT_MOST) else 1.0
        assert alert["score"] == pytest.approx(min(0.9, ceiling))
    assert others, "the session raises alerts the model does not score (ignitions, bursts)"
    assert all("p_manipulation" not in alert["evidence"] for alert in others)
