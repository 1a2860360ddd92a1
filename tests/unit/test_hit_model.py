"""The calibrated hit model: the exported trees score exactly as scikit-learn's ensemble, the contributions add up
to the log-odds, the probabilities are calibrated and monotone, the artifact round-trips, and candidates are
labelled by the evaluation's matching rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.ensemble import GradientBoostingClassifier

from tapewatch.artifacts import ArtifactError, ArtifactStore
from tapewatch.detectors.hit_model import MISSING, SCORED_KINDS, HitModel, candidate_features
from tapewatch.detectors.patterns.params import PatternParams
from tapewatch.records import Alert, AlertKind, Severity
from tapewatch.training import hit_model as hm
from tests.hit_models import stump


def _synthetic(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Candidates whose label depends on two features (and a missing value on a third of the rows)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    b[rng.random(n) < 0.3] = np.nan
    label = (a + np.nan_to_num(b) + rng.normal(scale=0.5, size=n)) > 0.5
    return pd.DataFrame({"margin:a": a, "b": b, "score": rng.random(n), "label": label, "kind": "spoofing"})


def test_exported_trees_give_the_ensembles_log_odds_and_contributions_add_up() -> None:
    frame = _synthetic()
    names = hm.feature_columns(frame)
    x = frame[names].astype(float).fillna(MISSING).to_numpy()
    booster = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=1).fit(x, frame["label"])
    trees = hm._trees(booster, x[0])
    expected = booster.decision_function(x)
    for row, want in zip(x[:50], expected[:50], strict=True):
        log_odds, contributions = trees.paths(row)
        assert log_odds == pytest.approx(want, abs=1e-9)
        # the bias plus every feature's share is the log-odds: nothing is left unattributed
        assert trees.bias + trees.value[trees.roots].sum() + contributions.sum() == pytest.approx(log_odds, abs=1e-9)


def test_probabilities_are_calibrated_and_rank_like_the_evidence() -> None:
    model = hm.fit(_synthetic(seed=2), kinds=("spoofing",), seed=0)
    unseen = _synthetic(n=2000, seed=3)
    p = hm.probabilities(model, unseen)
    y = unseen["label"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    # calibrated: on unseen rows the mean probability is the positive rate, and it beats the base rate's Brier score
    assert abs(p.mean() - y.mean()) < 0.05
    assert np.mean((p - y) ** 2) < 0.6 * np.mean((y.mean() - y) ** 2)
    strong = model.probability({"margin:a": 2.5, "b": 2.0, "score": 0.5})
    weak = model.probability({"margin:a": -2.5, "b": -2.0, "score": 0.5})
    assert strong > 0.9 and weak < 0.1
    top = model.contributions({"margin:a": 2.5, "b": 2.0, "score": 0.5})
    assert top[0][0] in {"margin:a", "b"} and top[0][1] > 0


@given(st.floats(-5, 5), st.floats(-5, 5))
def test_the_calibration_never_reverses_the_ensembles_order(a: float, delta: float) -> None:
    model = _MODEL
    low = model.probability({"margin:a": a, "b": 0.0, "score": 0.5})
    high = model.probability({"margin:a": a + abs(delta), "b": 0.0, "score": 0.5})
    # the isotonic map is non-decreasing; the trees are not monotone, so only compare through the log-odds
    log_low = model.trees.paths(model.row({"margin:a": a, "b": 0.0, "score": 0.5}))[0]
    log_high = model.trees.paths(model.row({"margin:a": a + abs(delta), "b": 0.0, "score": 0.5}))[0]
    if log_high >= log_low:
        assert high >= low
    else:
        assert high <= low


_MODEL = hm.fit(_synthetic(seed=4), kinds=("spoofing",), seed=0)


def test_artifact_round_trips_and_refuses_another_kind(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    assert HitModel.load(store) is None
    saved = _MODEL.save(store)
    loaded = HitModel.load(store)
    assert loaded is not None and loaded.version == saved.version and loaded.kinds == {"spoofing"}
    features = {"margin:a": 0.7, "b": -0.2, "score": 0.4}
    assert loaded.probability(features) == _MODEL.probability(features)
    assert loaded.scores(AlertKind.SPOOFING) and not loaded.scores(AlertKind.PUMP_AND_DUMP)
    with pytest.raises(ArtifactError, match="hit-model"):
        store.load("hit-model", kind="kmeans")


def test_candidate_features_read_the_rules_evidence_against_its_bars() -> None:
    evidence = {
        "wash_chunks": 3,
        "mirror_z_long": 9.0,
        "mirror_vol_share_long": 0.6,
        "mirror_trades_long": 6.0,
        "hits": 3,
    }
    features = candidate_features(AlertKind.WASH_TRADING, evidence, 0.8, "trades", PatternParams())
    assert features["kind:wash_trading"] == 1.0 and features["prints_trades"] == 1.0 and features["score"] == 0.8
    assert features["mirror_z_long"] == 9.0 and "hits" not in features
    assert features["rule:wash trading: mirror trades"] == 1.0
    bar = PatternParams().wash.mirror_z
    assert features["margin:mirror_z_long"] == pytest.approx(9.0 / bar)


def _alert(symbol: str, kind: AlertKind, start: int, end: int, score: float, alert_id: str) -> Alert:
    return Alert(
        alert_id=alert_id,
        symbol=symbol,
        venue="sim",
        ts=end,
        kind=kind,
        severity=Severity.MEDIUM,
        score=score,
        window_start=start,
        window_end=end,
        evidence={"layers": 3},
        model_version="patterns-test",
    )


def test_candidates_are_first_emissions_labelled_by_the_matching_rule() -> None:
    truth = pd.DataFrame({"symbol": ["A"], "kind": ["spoofing"], "start": [100_000], "end": [160_000]})
    alerts = [
        _alert("A", AlertKind.SPOOFING, 150_000, 170_000, 0.7, "a1"),
        _alert("A", AlertKind.SPOOFING, 150_000, 190_000, 0.9, "a1"),  # the same episode escalating
        _alert("A", AlertKind.SPOOFING, 400_000, 410_000, 0.8, "a2"),  # far from the episode
        _alert("B", AlertKind.SPOOFING, 150_000, 170_000, 0.8, "b1"),  # another symbol
        _alert("A", AlertKind.VOLUME_BURST, 150_000, 170_000, 0.8, "v1"),  # not a scored kind
    ]
    session = hm.LabelledSession("sim", "trades", 1, alerts, truth, truth.iloc[:0], ["A", "B", "C"], PatternParams())
    frame = hm.candidates(session)
    assert list(frame["alert_id"]) == ["sim/trades/1/a1", "sim/trades/1/a2", "sim/trades/1/b1"]
    assert list(frame["label"]) == [True, False, False]
    assert frame.loc[0, "score"] == 0.9 and frame.loc[0, "window_end"] == 190_000
    assert session.clean_symbols() == ["sim/trades/1/B", "sim/trades/1/C"]


def test_a_detector_with_a_hit_model_scores_its_kinds_by_the_calibrated_probability() -> None:
    from tapewatch.detectors.patterns.explain import explain
    from tapewatch.detectors.patterns.symbol import SymbolDetector

    params = PatternParams().with_values({"tape.close_time": None})
    model = stump("margin:mirror_z_long", 1.5, frozenset({"wash_trading"}))
    mirrors = {"mirror_z_long": 9.0, "mirror_vol_share_long": 0.6, "order_imbalance_long": 0.0,
               "mirror_trades_long": 6.0, "mirror_excess_share_long": 0.5}  # fmt: skip
    plain = SymbolDetector("2330", "sim", params=params)
    scored = SymbolDetector("2330", "sim", params=params, hit_model=model)
    rules = [a for ts in (5_000, 10_000, 15_000) for a in plain.on_chunk(ts, mirrors)]
    assert rules, "the rule fires on these mirror trades"
    # 9 σ is 1.29 times the rule's 7 σ bar: the model says 0.1, under the policy's minimum score, so no alert
    assert [a for ts in (5_000, 10_000, 15_000) for a in scored.on_chunk(ts, mirrors)] == []
    louder = {**mirrors, "mirror_z_long": 12.0}
    scored = SymbolDetector("2330", "sim", params=params, hit_model=model)
    [alert] = [a for ts in (5_000, 10_000, 15_000) for a in scored.on_chunk(ts, louder)][:1]
    assert alert.score == pytest.approx(0.9) and alert.severity is Severity.HIGH
    assert alert.evidence["p_manipulation"] == pytest.approx(0.9) and alert.evidence["score_model"] == "test"
    assert str(alert.evidence["score_drivers"]).startswith("margin:mirror_z_long +2.00")
    assert 0 < float(alert.evidence["rule_score"] or 0) < 1
    labels = {line.key: line.label for line in explain(alert.kind, alert.evidence, params)}
    assert labels["p_manipulation"] == "calibrated probability that this is manipulation"


def test_a_hit_model_leaves_other_kinds_and_the_rules_ceilings_alone() -> None:
    from tapewatch.detectors.alerting import MEDIUM_AT_MOST, Hit

    model = stump("score", 0.0, frozenset({"pump_and_dump"}))  # every hit above the split: p = 0.9
    params = PatternParams()
    spoof = Hit(AlertKind.SPOOFING, 1, 0, 1, 0.8, {"layers": 3}, "patterns-test")
    assert model.score(spoof, params) is spoof
    run_up = Hit(AlertKind.PUMP_AND_DUMP, 1, 0, 1, MEDIUM_AT_MOST, {"ret_bps": 80.0}, "patterns-test")
    assert model.score(run_up, params).score == MEDIUM_AT_MOST
    dumped = Hit(AlertKind.PUMP_AND_DUMP, 1, 0, 1, 0.6, {"ret_bps": 80.0}, "patterns-test")
    assert model.score(dumped, params).score == pytest.approx(0.9)


def test_the_stream_worker_loads_a_published_hit_model_and_a_newer_one(tmp_path: Path) -> None:
    from tapewatch.streams.detect import ModelSlot

    store = ArtifactStore(tmp_path)
    slot = ModelSlot(store)
    assert slot.hit_model is None
    first = stump("score", 0.5, frozenset({"spoofing"})).save(store, created=datetime(2026, 1, 2, tzinfo=UTC))
    slot.refresh()
    assert slot.hit_model is not None and slot.hit_model.version == first.version
    newer = stump("score", 0.7, frozenset({"spoofing", "wash_trading"})).save(store, {"note": "a newer version"})
    slot.refresh()
    assert slot.hit_model.version == newer.version and slot.hit_model.kinds == {"spoofing", "wash_trading"}


def test_only_kinds_seen_both_ways_in_training_are_scored() -> None:
    frame = pd.DataFrame(
        {
            "kind": ["spoofing"] * 12 + ["wash_trading"] * 12,
            "label": [True] * 6 + [False] * 6 + [True] * 12,  # wash trading: never a false one to learn from
            "score": np.linspace(0.5, 1.0, 24),
            "margin:a": np.r_[np.linspace(2, 3, 6), np.linspace(0, 1, 6), np.linspace(0, 3, 12)],
        }
    )
    assert hm.learnable(frame) == ["spoofing"]
    assert hm.fit(frame).kinds == {"spoofing"}


def _judged(f1: dict[str, float]) -> hm.Judged:
    return hm.Judged(f1=f1, precision=f1, recall=f1, false_alerts=0.0, lookalikes=0, lookalikes_alerted=0)


def test_a_kind_is_kept_only_where_the_model_beat_the_rules_in_every_direction() -> None:
    there = hm.Direction(
        "sim", "lob", 10, 8, _judged({"spoofing": 0.5, "pump_and_dump": 0.8}),
        _judged({"spoofing": 0.6, "pump_and_dump": 0.9}), ["spoofing", "pump_and_dump"],
    )  # fmt: skip
    back = hm.Direction(
        "lob", "sim", 10, 8, _judged({"spoofing": 0.5, "pump_and_dump": 0.8, "wash_trading": 0.4}),
        _judged({"spoofing": 0.7, "pump_and_dump": 0.7, "wash_trading": 0.9}), ["spoofing", "pump_and_dump"],
    )  # fmt: skip
    # pump-and-dump lost one way; wash trading "won" where the model never scored it (the rules' alerts judged)
    assert hm.kept_kinds([there, back]) == ["spoofing"]


def test_eval_hit_model_refuses_judging_on_its_training_seeds_before_any_work() -> None:
    from typer.testing import CliRunner

    from tapewatch.cli.app import cli

    result = CliRunner().invoke(cli(), ["eval", "hit-model", "--train-seeds", "300-301", "--test-seeds", "301"])
    assert result.exit_code != 0
    assert "the training and the judged seeds must differ" in str(result.output) + str(result.exception)


def test_publish_writes_a_model_only_for_the_kept_kinds(tmp_path: Path) -> None:
    from tapewatch.cli.hit_model import _publish

    empty = pd.DataFrame()
    pools = {
        (generator, "train"): hm.Pool(_synthetic(seed=seed), empty, empty, [])
        for generator, seed in (("sim", 5), ("lob", 6))
    }
    _publish(pools, [], tmp_path)
    assert HitModel.load(ArtifactStore(tmp_path)) is None  # the rules stay: nothing to load
    _publish(pools, ["spoofing"], tmp_path)
    published = HitModel.load(ArtifactStore(tmp_path))
    assert published is not None and published.kinds == {"spoofing"}


def test_detect_file_scores_a_published_models_kinds_and_leaves_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from tapewatch.cli.app import cli
    from tapewatch.generators.simulator import SimulationConfig, generate
    from tapewatch.settings import get_settings

    sim = generate(SimulationConfig(symbols=3, minutes=60, seed=8, clean_fraction=0.0, quiet_open_s=600.0))
    ticks = tmp_path / "ticks.parquet"
    sim.ticks_frame().to_parquet(ticks)
    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        args = ["detect", "file", str(ticks), "--venue", "sim", "--no-kmeans", "--out"]
        assert runner.invoke(cli(), [*args, str(tmp_path / "rules.jsonl")]).exit_code == 0
        rules = [Alert.from_json(line) for line in (tmp_path / "rules.jsonl").read_bytes().splitlines()]
        scored_kind = next(str(a.kind) for a in rules if a.kind in SCORED_KINDS)
        # every hit of that kind above the split: the model's probability 0.9 becomes its score
        stump("score", 0.0, frozenset({scored_kind})).save(ArtifactStore(tmp_path / "models"))
        assert runner.invoke(cli(), [*args, str(tmp_path / "model.jsonl")]).exit_code == 0
    finally:
        get_settings.cache_clear()
    scored = [Alert.from_json(line) for line in (tmp_path / "model.jsonl").read_bytes().splitlines()]
    mine = [a for a in scored if str(a.kind) == scored_kind]
    assert mine and all(a.evidence["p_manipulation"] == pytest.approx(0.9) for a in mine)
    assert all(a.score <= 0.9 + 1e-9 and a.evidence["score_model"] for a in mine)
    others = sorted((a.alert_id, a.score) for a in scored if str(a.kind) != scored_kind)
    assert others == sorted((a.alert_id, a.score) for a in rules if str(a.kind) != scored_kind)
    assert not any("p_manipulation" in a.evidence for a in scored if str(a.kind) != scored_kind)


@pytest.mark.parametrize(("true", "false"), [(5, 0), (0, 5), (5, 1), (1, 5)])
def test_too_few_of_a_label_is_one_clear_error_not_a_cross_validation_failure(true: int, false: int) -> None:
    """With one false alert, a fold of the calibration's cross-validation would train on true alerts alone."""
    frame = _synthetic(n=true + false, seed=3).assign(label=[True] * true + [False] * false)
    with pytest.raises(ValueError, match=f"at least two true and two false alerts; these sessions raised {true} true"):
        hm.fit(frame)
