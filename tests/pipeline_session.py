"""A labelled simulated session prepared for the pipeline tests: default-like models trained on another
session, the session as files, and what the offline twin (`tapewatch detect file`) says about it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from tapewatch.detectors.bars import bars_from_quotes
from tapewatch.generators.simulator import SimulationConfig, generate
from tapewatch.settings import PROJECT_ROOT

SESSION = SimulationConfig(symbols=6, minutes=20, seed=5)
TRAINING = SimulationConfig(symbols=6, minutes=30, seed=6)
#: the stream never flushes: outputs of the session's last two minutes may still be open when the data stops
TAIL_MS = 120_000


def tapewatch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("tapewatch")), *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def sim_args(config: SimulationConfig) -> list[str]:
    """The session's arguments, without its news: an alert whose news reaches the worker after it is sent again with
    it, so which emissions the alerts topic carries would depend on timing (the stores' final alerts do not). These
    sessions test the rest of the pipeline by comparing emissions; news has its own tests (test_news_pipeline)."""
    return [
        *("--symbols", str(config.symbols), "--minutes", str(config.minutes), "--seed", str(config.seed)),
        "--no-news",
    ]


def comparable(alert: dict[str, Any]) -> tuple[Any, ...]:
    """An alert without its venue (the offline input file carries none)."""
    return tuple(sorted((k, orjson.dumps(v)) for k, v in alert.items() if k != "venue"))


@dataclass(frozen=True)
class PreparedSession:
    """Shared by every test that streams the session (the ``prepared_session`` fixture): read it, never change it;
    each test adds its own topics and stores to :attr:`env` (:meth:`env_with`)."""

    env: dict[str, str]  # TAPEWATCH_MODEL_DIR and the models' venues
    end: int  # last event time of the session
    cutoff: int  # outputs up to here are complete in the stream
    offline_alerts: list[dict[str, Any]]  # every emission of `detect file`, ts ≤ cutoff
    offline_scores: list[dict[str, Any]]  # ts ≤ cutoff
    bars: pd.DataFrame  # closed bars with end ≤ cutoff (one action each)

    def env_with(self, env: dict[str, str]) -> dict[str, str]:
        """The models' environment with a test's own settings (its topic prefix, schema, index prefix)."""
        return {**self.env, **env}

    def produce(self, env: dict[str, str], *extra: str) -> None:
        """The session into md.quotes / md.books / truth, with the test's settings ``env``."""
        tapewatch("produce", "simulate", *sim_args(SESSION), "--no-progress", *extra, env=self.env_with(env))


#: forecasters small enough for the session: windows of 5 bars (the CNN's largest kernel) over features that
#: warm up within its 20 bars
FORECASTER_FEATURES = "ret_1,ret_5,kd_k,vwap_dev"
FORECASTER_ARGS = ("--assets", "AAPL,MSFT", "--features", FORECASTER_FEATURES, "--window", "5", "--epochs", "1")


def prepare_models(tmp_path: Path, env: dict[str, str], *, forecasters: bool = False) -> dict[str, str]:
    """K-means, a tiny DQN and (``forecasters``) an LSTM and a CNN under ``tmp_path``; the environment that
    serves them."""
    # the model is trained on the simulator's venue; the offline twin reads the session file, which names no
    # venue ('file') but is the same simulator's data: asserted alike, so both sides score with the model
    env = {
        **env,
        "TAPEWATCH_MODEL_DIR": str(tmp_path / "models"),
        "TAPEWATCH_KMEANS_EXTRA_VENUES": orjson.dumps({"kmeans": ["file"]}).decode(),
    }
    training = str(tmp_path / "training")
    tapewatch("produce", "simulate", *sim_args(TRAINING), "--out-dir", training, "--no-progress", env=env)
    tapewatch("train", "kmeans", str(Path(training) / "ticks.parquet"), "--venue", SESSION.venue, env=env)
    # a tiny DQN on features that warm up within the session's 20 bars
    dqn = ["--mode", "intraday", "--steps", "300", "--sim-days", "2", "--sim-symbols", "2"]
    tapewatch("train", "dqn", *dqn, "--features", "ret_1,ret_5,ret_10,rsi_14,kd_k,vwap_dev", env=env)
    if forecasters:
        tapewatch("train", "lstm", *FORECASTER_ARGS, "--units", "8", env=env)
        tapewatch("train", "cnn", *FORECASTER_ARGS, env=env)
    return env


def prepare_session(tmp_path: Path, env: dict[str, str], *, forecasters: bool = False) -> PreparedSession:
    env = prepare_models(tmp_path, env, forecasters=forecasters)
    session = str(tmp_path / "session")
    tapewatch("produce", "simulate", *sim_args(SESSION), "--out-dir", session, "--no-progress", env=env)
    alerts, scores = tmp_path / "offline.jsonl", tmp_path / "scores.jsonl"
    ticks = str(Path(session) / "ticks.parquet")
    tapewatch("detect", "file", ticks, "--out", str(alerts), "--scores", str(scores), env=env)
    quotes = generate(SESSION).quotes_frame().assign(venue=SESSION.venue)
    end = int(quotes["ts"].max())
    cutoff = end - TAIL_MS
    bars = bars_from_quotes(quotes)
    return PreparedSession(
        env=env,
        end=end,
        cutoff=cutoff,
        offline_alerts=[a for line in alerts.read_text().splitlines() if (a := orjson.loads(line))["ts"] <= cutoff],
        offline_scores=[s for line in scores.read_text().splitlines() if (s := orjson.loads(line))["ts"] <= cutoff],
        bars=bars[bars["end"] <= cutoff].reset_index(drop=True),
    )
