"""`tapewatch train lstm`: trains and publishes on a small daily file; bad input is one clear line, not a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from tapewatch.artifacts import ArtifactStore
from tapewatch.cli.lstm import train_lstm
from tapewatch.errors import TapewatchError
from tests.unit.test_dqn_env import synthetic_daily

torch.set_num_threads(1)
SMALL = ["--window", "10", "--units", "4", "--epochs", "1", "--features", "ret_1,bias_6"]
DATES = ["--train-start", "2010-01-01", "--val-start", "2010-10-01", "--val-end", "2011-03-01"]


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from tapewatch.settings import get_settings

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    yield tmp_path / "models"
    get_settings.cache_clear()


def daily_file(path: Path, flat_volume: bool = False) -> Path:
    frames = [synthetic_daily(300, seed, "2010-01-01").assign(symbol=symbol) for seed, symbol in ((1, "AA"), (2, "BB"))]
    frame = pd.concat(frames, ignore_index=True)
    if flat_volume:
        frame["volume"] = 1_000.0
    frame.to_csv(path, index=False)
    return path


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    app = typer.Typer()
    app.command("lstm")(train_lstm)
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output, result.exception


def test_train_lstm_publishes_a_model_and_compares_it_with_the_naive_forecast(tmp_path: Path, models: Path) -> None:
    code, output, exception = invoke("--data", str(daily_file(tmp_path / "daily.csv")), *SMALL, *DATES)
    assert code == 0 and exception is None, output
    assert "naive (tomorrow = today)" in output and "direction accuracy" in output
    assert "beats the naive forecast" in output or "does not beat the naive forecast" in output
    manifest = ArtifactStore(models).load("lstm", kind="lstm").manifest
    assert manifest["training"]["assets"] == ["AA", "BB"]
    assert manifest["training"]["validation"] == ["2010-10-01", "2011-03-01"]
    assert manifest["metrics"]["validation"]["n"] > 0


@pytest.mark.parametrize(
    ("extra", "flat", "message"),
    [
        (["--assets", "AA,ZZ"], False, "unknown asset(s) ZZ in"),
        (["--train-start", "2010-01-20", "--val-start", "2010-02-01"], False, "too little history: no 10-bar window"),
        (["--features", "ret_1,volume_z_30"], True, "feature(s) volume_z_30 have no finite value"),
        (["--features", "ret_1,price"], False, "unknown feature(s) price"),
        (["--window", "0"], False, "must be ≥ 1"),
        (["--workers", "0"], False, "--workers must be at least 1"),
        (["--costs", "free"], False, "free"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, models: Path, extra: list[str], flat: bool, message: str) -> None:
    data = daily_file(tmp_path / "daily.csv", flat_volume=flat)
    code, _, exception = invoke("--data", str(data), *SMALL, *DATES, *extra)
    assert code != 0
    assert isinstance(exception, TapewatchError), exception  # tapewatch.cli.app.main prints it as one red line
    assert message in str(exception) and "\n" not in str(exception)
    assert not models.exists() or not list(models.rglob("manifest.json"))  # nothing published


def test_unknown_packaged_asset_is_refused_before_any_work(models: Path) -> None:
    code, _, exception = invoke("--assets", "NOPE")
    assert code != 0 and isinstance(exception, TapewatchError)
    assert "unknown packaged asset 'NOPE'" in str(exception)
