"""Models per venue: the artifact records what it was trained on, and a model scores only the venues it may."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from tapewatch.artifacts import MANIFEST_FILE, ArtifactError, ArtifactStore
from tapewatch.detectors.kmeans import KMeansModel, KMeansParams, train
from tapewatch.detectors.model_venues import FeedShape, TrainedOn, VenueGate, refusal
from tapewatch.evaluation.lookback import Input, detect_frames
from tapewatch.feeds import BUILT_IN, FeedProfile, FeedProfiles
from tapewatch.records import AlertKind
from tapewatch.settings import LocalSettings, Settings, VenueSettings, parse_extra_venues

NAMES = ("a", "b", "c")
TWSE, TPEX, BINANCE = BUILT_IN["twse"], BUILT_IN["tpex"], BUILT_IN["binance"]


def _frame(venues: tuple[str, ...] = ("twse",), n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0.0, 1.0, size=(n, 3)), rng.normal(12.0, 0.5, size=(n // 50, 3))])
    frame = pd.DataFrame(x, columns=list(NAMES))
    frame["ts"] = np.arange(len(frame), dtype=np.int64) * 60_000
    frame["symbol"] = "S"
    frame["venue"] = [venues[i % len(venues)] for i in range(len(frame))]
    return frame


@pytest.fixture(scope="module")
def model() -> KMeansModel:
    return train(_frame(), NAMES, KMeansParams(seed=1, k_max=3), feeds=FeedProfiles())


# --- what the artifact records ------------------------------------------------------------------------------
def test_training_records_the_venues_and_their_feed_shapes(model: KMeansModel) -> None:
    assert model.trained_on == TrainedOn(("twse",), {"twse": FeedShape(books=True, sides=False, prints="snapshots")})
    both = train(_frame(("twse", "tpex")), NAMES, KMeansParams(seed=1, k_max=3))
    assert both.trained_on is not None and both.trained_on.venues == ("tpex", "twse")
    assert both.trained_on.feeds == {}, "without feed profiles only the names are recorded"
    assert train(_frame().drop(columns=["venue"]), NAMES, KMeansParams(seed=1, k_max=3)).trained_on is None


def test_metadata_round_trips_through_the_artifact(model: KMeansModel, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    version = model.save(store, "kmeans-tw")
    manifest = orjson.loads((tmp_path / "kmeans-tw" / version / MANIFEST_FILE).read_bytes())
    assert manifest["trained_on"] == {
        "venues": ["twse"],
        "feeds": {"twse": {"books": True, "sides": False, "prints": "snapshots"}},
    }
    loaded = KMeansModel.load(store, "kmeans-tw")
    assert (loaded.name, loaded.version, loaded.trained_on) == ("kmeans-tw", version, model.trained_on)


def _rewrite_manifest(path: Path, change: dict[str, object], drop: str | None = None) -> None:
    manifest = orjson.loads(path.read_bytes())
    manifest.update(change)
    if drop is not None:
        del manifest[drop]
    path.write_bytes(orjson.dumps(manifest))


def test_an_old_artifact_loads_with_unknown_venues_and_scores_only_listed_venues(
    model: KMeansModel, tmp_path: Path
) -> None:
    store = ArtifactStore(tmp_path)
    version = model.save(store)
    _rewrite_manifest(tmp_path / "kmeans" / version / MANIFEST_FILE, {}, drop="trained_on")  # as saved before
    old = KMeansModel.load(store)
    assert old.trained_on is None
    assert old.score_values({"a": 0.0, "b": 0.0, "c": 0.0}).score < 0.5, "still a working model"
    lines: list[str] = []
    gate = VenueGate(FeedProfiles(), {"kmeans": ["sim"]}, lines.append)
    assert gate.model_for(old, "twse") is None, "unknown training venues: not even its own venue can be shown"
    assert gate.model_for(old, "sim") is old, "the user listed sim for it"
    assert lines == [
        f"K-means not applied to venue twse: model kmeans {version} was trained on unknown venues (saved before "
        "models recorded them); patterns only; if twse is like the training data, list it for the model in "
        "TAPEWATCH_KMEANS_EXTRA_VENUES, or retrain it"
    ]


def test_a_malformed_trained_on_is_an_artifact_error(model: KMeansModel, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    version = model.save(store)
    _rewrite_manifest(tmp_path / "kmeans" / version / MANIFEST_FILE, {"trained_on": {"venues": []}})
    with pytest.raises(ArtifactError, match=r"malformed trained_on: trained_on\.venues must be a non-empty list"):
        KMeansModel.load(store)


# --- the decision -------------------------------------------------------------------------------------------
TRAINED = TrainedOn(("twse",), {"twse": FeedShape.of(TWSE)})


def test_own_venue_is_scored_and_another_is_refused_even_with_the_same_feed_shape() -> None:
    assert refusal(TRAINED, "kmeans v1", "twse", TWSE) is None
    assert FeedShape.of(TPEX) == FeedShape.of(TWSE)
    why = refusal(TRAINED, "kmeans v1", "tpex", TPEX)
    assert why is not None
    assert why.startswith(
        "K-means not applied to venue tpex: model kmeans v1 was trained on twse (books, no sides, snapshots)"
    )
    assert refusal(TRAINED, "kmeans v1", "binance", BINANCE) is not None


def test_listed_venues_are_scored_on_the_users_assertion() -> None:
    assert refusal(TRAINED, "kmeans v1", "tpex", TPEX, ("tpex",)) is None
    assert refusal(None, "kmeans v1", "tpex", TPEX, ("tpex",)) is None
    assert refusal(TRAINED, "kmeans v1", "binance", BINANCE, ("tpex",)) is not None


def test_a_changed_feed_profile_of_the_own_venue_is_refused() -> None:
    now = FeedProfile(books=True, sides=True, prints="trades")
    why = refusal(TRAINED, "kmeans v1", "twse", now)
    assert why is not None and "its feed is now books, sides, trades" in why
    assert "trained on it as books, no sides, snapshots" in why
    # names only (a trainer without the profiles): the name decides
    assert refusal(TrainedOn(("twse",)), "kmeans v1", "twse", now) is None


def test_the_gate_decides_and_reports_once_per_model_version_and_venue(model: KMeansModel) -> None:
    lines: list[str] = []
    gate = VenueGate(FeedProfiles(), {}, lines.append)
    for _ in range(3):
        assert gate.model_for(model, "twse") is model
        assert gate.model_for(model, "binance") is None
        assert gate.model_for(None, "twse") is None
    assert len(lines) == 1 and "venue binance" in lines[0]
    assert set(gate.refused()) == {"binance"}
    other_model = dataclasses.replace(model, version="v2")
    assert gate.model_for(other_model, "binance") is None
    assert len(lines) == 2, "a new model version is decided (and reported) afresh"


def test_extra_venues_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_extra_venues("") == {}
    assert parse_extra_venues('{"kmeans": ["tpex", "otc"]}') == {"kmeans": ("tpex", "otc")}
    for bad in ('["tpex"]', '{"kmeans": "tpex"}', '{"kmeans": [""]}', "{not json"):
        with pytest.raises(ValueError, match="kmeans extra venues"):
            parse_extra_venues(bad)
    monkeypatch.setenv("TAPEWATCH_KMEANS_EXTRA_VENUES", '{"kmeans": ["tpex"]}')
    assert Settings().venues.kmeans_extra() == {"kmeans": ("tpex",)}
    monkeypatch.setenv("TAPEWATCH_KMEANS_EXTRA_VENUES", '{"kmeans": "tpex"}')
    with pytest.raises(ValueError, match="kmeans_extra_venues"):
        Settings()


# --- detect file --------------------------------------------------------------------------------------------
def _bars(symbol: str, venue: str, n: int = 90, spike: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(sum(map(ord, symbol)))
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    volume = rng.integers(1_000, 5_000, n).astype(float)
    start = np.arange(n) * 60_000
    if spike:
        volume[70] = 1e9  # an absurd minute: a K-means outlier wherever it is scored …
        start[n // 2 :] += 86_400_000  # … on the symbol's second session (a distance is rare against a past one)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "venue": venue,
            "start": start,
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": volume,
        }
    )


@pytest.fixture(scope="module")
def bar_model() -> KMeansModel:
    from tapewatch.detectors.kmeans import KMEANS_FEATURES
    from tapewatch.evaluation.lookback import bar_features, bars_from_bar_file

    training = pd.concat([_bars(f"T{i}", "twse", 200, spike=False) for i in range(3)], ignore_index=True)
    feats = bar_features(bars_from_bar_file(training))
    return train(feats, KMEANS_FEATURES, KMeansParams(k_max=3), feeds=FeedProfiles())


def test_detect_frames_scores_only_the_models_venues_and_says_so_once(
    bar_model: KMeansModel, caplog: pytest.LogCaptureFixture
) -> None:
    assert bar_model.trained_on is not None and bar_model.trained_on.venues == ("twse",)
    frame = pd.concat([_bars("OWN", "twse"), _bars("FOREIGN1", "binance"), _bars("FOREIGN2", "binance")])
    with caplog.at_level(logging.WARNING, logger="tapewatch.evaluation.lookback"):
        out = detect_frames(Input("bars", frame.reset_index(drop=True)), bar_model, extra_venues={})
    assert {s.symbol for s in out.scores} == {"OWN"}
    kmeans = {a.symbol for a in out.alerts if a.kind is AlertKind.KMEANS_OUTLIER}
    assert kmeans == {"OWN"}, "the absurd minute is a K-means alert on the own venue only (the patterns run on all)"
    assert set(out.kmeans_refused) == {"binance"}
    refused = [r.getMessage() for r in caplog.records if "K-means not applied" in r.getMessage()]
    assert len(refused) == 1 and "venue binance" in refused[0] and "trained on twse" in refused[0]
    listed = detect_frames(Input("bars", frame.reset_index(drop=True)), bar_model, extra_venues={"kmeans": ["binance"]})
    assert {s.symbol for s in listed.scores} == {"OWN", "FOREIGN1", "FOREIGN2"}


@pytest.fixture
def private_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI's settings with a private model directory (the commands' settings are cached per process)."""
    from tapewatch.settings import get_settings

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("TAPEWATCH_KMEANS_EXTRA_VENUES", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "models"
    get_settings.cache_clear()


def test_cli_train_records_venues_and_detect_file_refuses_a_foreign_venue(tmp_path: Path, private_models: Path) -> None:
    from typer.testing import CliRunner

    from tapewatch.cli.app import cli

    training = pd.concat([_bars(f"T{i}", "twse", 200, spike=False) for i in range(3)], ignore_index=True)
    training.drop(columns=["venue"]).to_csv(tmp_path / "training.csv", index=False)
    runner = CliRunner()
    trained = runner.invoke(
        cli(), ["train", "kmeans", str(tmp_path / "training.csv"), "--k-max", "3", "--venue", "twse"]
    )
    assert trained.exit_code == 0, trained.output
    assert "trained on twse (books, no sides, snapshots)" in trained.output
    store = ArtifactStore(private_models)
    assert store.load("kmeans").manifest["trained_on"]["venues"] == ["twse"]

    _bars("X", "binance").to_csv(tmp_path / "foreign.csv", index=False)
    scores = tmp_path / "scores.jsonl"
    args = [
        "detect",
        "file",
        str(tmp_path / "foreign.csv"),
        "--out",
        str(tmp_path / "a.jsonl"),
        "--scores",
        str(scores),
    ]
    result = runner.invoke(cli(), args)
    assert result.exit_code == 0, result.output
    assert scores.read_bytes() == b""
    lines = [line for line in result.output.splitlines() if "K-means not applied" in line]
    assert len(lines) == 1 and "venue binance" in lines[0] and "was trained on twse" in lines[0], result.output


def test_the_demo_retrains_a_model_that_may_not_score_the_simulators_venue(model: KMeansModel, tmp_path: Path) -> None:
    from tapewatch.ops.demo import _refuses_demo_venue

    settings = Settings(local=LocalSettings(model_dir=tmp_path), venues=VenueSettings(kmeans_extra_venues=""))
    store = ArtifactStore(tmp_path)
    model.save(store)  # trained on twse
    assert _refuses_demo_venue(settings)
    sim = dataclasses.replace(model, trained_on=TrainedOn(("sim",), {"sim": FeedShape.of(BUILT_IN["sim"])}))
    version = sim.save(store, created=pd.Timestamp("2100-01-01", tz="UTC").to_pydatetime())
    assert store.latest_version("kmeans") == version
    assert not _refuses_demo_venue(settings)
    _rewrite_manifest(tmp_path / "kmeans" / version / MANIFEST_FILE, {}, drop="trained_on")  # saved before
    assert _refuses_demo_venue(settings)
