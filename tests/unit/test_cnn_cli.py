"""`tapewatch train cnn`: publishes a model and prints its scores beside the majority class; bad input is one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tapewatch.artifacts import ArtifactStore
from tapewatch.errors import TapewatchError
from tests.unit.test_dqn_env import synthetic_daily


@pytest.fixture
def private_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI's settings with a private model directory (the commands' settings are cached per process)."""
    from tapewatch.settings import get_settings

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    yield tmp_path / "models"
    get_settings.cache_clear()


def _daily_file(path: Path, days: int = 500, flat_volume: bool = False) -> Path:
    frames = [synthetic_daily(days, i, "2004-01-01").assign(symbol=s) for i, s in enumerate(("AAA", "BBB"))]
    frame = pd.concat(frames, ignore_index=True)
    if flat_volume:
        frame["volume"] = 1e6
    frame.to_csv(path, index=False)
    return path


def _train(*args: str) -> tuple[int, str, BaseException | None]:
    from tapewatch.cli.app import cli

    result = CliRunner().invoke(cli(), ["train", "cnn", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output, result.exception


def test_train_cnn_publishes_a_model_and_prints_its_scores_beside_the_majority_class(
    tmp_path: Path, private_models: Path
) -> None:
    data = _daily_file(tmp_path / "daily.csv")
    code, output, _ = _train(
        "--data", str(data), "--train-start", "2004-01-01", "--val-start", "2005-06-01", "--val-end", "2006-01-01",
        "--window", "30", "--epochs", "1",
    )  # fmt: skip
    assert code == 0, output
    assert "balanced accuracy" in output and "majority class" in output and "F1 up" in output
    manifest = ArtifactStore(private_models).load("cnn").manifest
    assert manifest["kind"] == "cnn" and manifest["window"] == 30
    assert manifest["training"]["assets"] == ["AAA", "BBB"]
    assert manifest["training"]["train"] == ["2004-01-01", "2005-06-01"]
    assert manifest["metrics"]["epochs"] == 1 and 0 <= manifest["metrics"]["validation"]["balanced_accuracy"] <= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--assets", "NOPE"], "unknown packaged asset 'NOPE'"),
        (["--data", "{data}", "--assets", "ZZZ"], "no symbol ZZZ (it has AAA, BBB)"),
        (["--data", "{data}", "--features", "ret_1,not_a_feature"], "unknown feature(s) not_a_feature"),
        (["--data", "{data}", "--val-start", "2004-05-01"], "too little history"),
        (["--data", "{data}", "--val-end", "2005-06-05"], "no validation image"),
        (["--data", "{flat}"], "too few complete feature rows"),
        (["--data", "{data}", "--window", "3"], "window must be at least 5 bars"),
        (["--data", "{missing}"], "no such file"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, private_models: Path, args: list[str], message: str) -> None:
    paths = {
        "data": str(_daily_file(tmp_path / "daily.csv")),
        "flat": str(_daily_file(tmp_path / "flat.csv", flat_volume=True)),
        "missing": str(tmp_path / "missing.csv"),
    }
    dates = ["--train-start", "2004-01-01", "--val-start", "2005-06-01", "--val-end", "2006-01-01", "--epochs", "1"]
    code, output, exception = _train(*dates, *(a.format(**paths) for a in args))
    assert code != 0
    assert isinstance(exception, TapewatchError), output  # main() prints it as one line, no traceback
    assert message in str(exception) and "\n" not in str(exception)
    assert not (private_models / "cnn").exists()
