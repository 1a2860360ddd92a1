"""`detect file` is the offline twin of the stream: the same input gives the same alerts."""

from __future__ import annotations

import math
from datetime import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from tapewatch.detectors.bars import BarBuilder
from tapewatch.detectors.features import FeatureState
from tapewatch.detectors.flow import FlowConfig, FlowState
from tapewatch.detectors.kmeans import KMeansModel, KMeansParams, train
from tapewatch.detectors.news.context import NewsContext
from tapewatch.detectors.patterns import PatternParams, SymbolDetector
from tapewatch.evaluation.lookback import (
    Input,
    InputError,
    bar_features,
    detect_frames,
    flow_chunks,
    read_input,
    replay_flow,
)
from tapewatch.feeds import FeedProfiles
from tapewatch.generators.simulator import SimulationConfig, generate
from tapewatch.records import Alert, Book, Quote
from tapewatch.settings import Settings

LEVELS = [f"{side}{kind}{i}" for side in ("bid", "ask") for kind in ("", "sz") for i in range(1, 6)]


@pytest.fixture(scope="module")
def ticks() -> pd.DataFrame:
    # 40 minutes ending at 13:30 Taipei, so marking-the-close can be injected and detected
    sim = generate(SimulationConfig(symbols=3, seed=11, minutes=40, open_time=time(12, 50)))
    frame = sim.ticks_frame()
    frame["venue"] = "sim"
    return frame


@pytest.fixture(scope="module")
def model(ticks: pd.DataFrame) -> KMeansModel:
    from tapewatch.detectors.bars import bars_from_quotes
    from tapewatch.evaluation.lookback import split_ticks

    quotes, _ = split_ticks(ticks)
    feats = bar_features(bars_from_quotes(quotes[["symbol", "venue", "ts", "price", "size"]]))
    return train(feats, params=KMeansParams(k_max=3))


def _stream(ticks: pd.DataFrame, model: KMeansModel, cut_every: int, config: FlowConfig | None = None) -> list[Alert]:
    """The stream's per-symbol path, record by record, with state round trips through JSON."""
    alerts: list[Alert] = []
    config = config or FlowConfig()
    # as the stream worker: the detectors' windows follow the flow chunking, the calendar the venue's
    params = PatternParams().for_feed(config, FeedProfiles()("sim"))
    for symbol, rows in ticks.groupby("symbol", sort=True):
        bars, feats = BarBuilder(str(symbol), config.grace_ms), FeatureState()
        flow = FlowState(str(symbol), config)
        detector = SymbolDetector(str(symbol), "sim", model, params)
        news = NewsContext()  # the detect stage's, with no news: every alert says so
        for n, row in enumerate(rows.to_dict("records")):
            if isinstance(row["price"], float) and not math.isnan(row["price"]):
                side = row["side"] if row["side"] in ("B", "S") else None
                quote = Quote(
                    symbol=str(symbol), venue="sim", ts=int(row["ts"]), price=row["price"], size=row["size"], side=side
                )
                for bar in bars.on_quote(quote):
                    _, got = detector.on_bar(bar.end, feats.on_bar(bar))
                    alerts += map(news.annotate, got)
                chunks = flow.on_quote(quote)
            else:
                book = Book(
                    symbol=str(symbol),
                    venue="sim",
                    ts=int(row["ts"]),
                    bids=[(row[f"bid{i}"], row[f"bidsz{i}"]) for i in range(1, 6) if row[f"bid{i}"] == row[f"bid{i}"]],
                    asks=[(row[f"ask{i}"], row[f"asksz{i}"]) for i in range(1, 6) if row[f"ask{i}"] == row[f"ask{i}"]],
                )
                chunks = flow.on_book(book)
            for chunk in chunks:
                alerts += map(news.annotate, detector.on_chunk(chunk.ts, chunk.values))
            if n % cut_every == 0:
                detector = SymbolDetector.from_state(orjson.loads(orjson.dumps(detector.to_state())), model, params)
        for chunk in flow.flush():
            alerts += map(news.annotate, detector.on_chunk(chunk.ts, chunk.values))
    return alerts


def _key(alert: Alert) -> tuple[str, int, str]:
    return (alert.symbol, alert.ts, str(alert.kind))


def test_detect_file_equals_the_stream(ticks: pd.DataFrame, model: KMeansModel) -> None:
    batch = detect_frames(Input("ticks", ticks), model)
    streamed = _stream(ticks, model, cut_every=997)
    assert batch.alerts, "the session has injected episodes: some alert must fire"
    assert sorted(batch.alerts, key=_key) == sorted(streamed, key=_key)
    assert len(batch.scores) > 0
    assert all(0.0 <= s.score <= 1.0 for s in batch.scores)


def test_replaying_the_stored_chunks_gives_the_alerts_of_the_ticks(ticks: pd.DataFrame) -> None:
    """What ``calibrate --from-db`` relies on: the flow chunks the stream publishes (and the sink stores), replayed
    through the pattern detectors, raise the alerts ``detect file`` raises from the ticks themselves."""
    source = Input("ticks", ticks)
    from_ticks = detect_frames(source, None)
    chunks = flow_chunks(source)
    assert len(chunks) and {"symbol", "ts"} <= set(chunks.columns)
    from_chunks = replay_flow(chunks, dict.fromkeys(sorted(set(ticks["symbol"])), "sim"))
    assert from_ticks.alerts  # the session holds episodes: the comparison is not of two empty lists
    assert from_chunks.alerts == from_ticks.alerts
    assert {s: d.to_state() for s, d in from_chunks.detectors.items()} == {
        s: d.to_state() for s, d in from_ticks.detectors.items()
    }


def test_detect_file_takes_the_stream_settings(
    ticks: pd.DataFrame, model: KMeansModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the worker's chunking, windows and grace come from the settings: the offline twin must use the same
    for name, value in {
        "FLOW_CHUNK_MS": "2500",
        "FLOW_LONG_CHUNKS": "8",
        "FLOW_BASELINE_CHUNKS": "400",
        "FLOW_BASELINE_MIN_CHUNKS": "30",
        "FLOW_RUSH_MIN_TRADES": "2",
        "FLOW_MIRROR_MS": "2000",
        "STREAM_GRACE_MS": "1000",
    }.items():
        monkeypatch.setenv(f"TAPEWATCH_{name}", value)
    settings = Settings()
    config = FlowConfig.from_settings(settings)
    assert config != FlowConfig()
    assert (config.chunk_ms, config.mirror_ms, config.grace_ms) == (2500, 2000, 1000)
    batch = detect_frames(Input("ticks", ticks), model, flow_config=config, grace_ms=settings.stream.grace_ms)
    streamed = _stream(ticks, model, cut_every=997, config=config)
    assert batch.alerts
    assert sorted(batch.alerts, key=_key) == sorted(streamed, key=_key)
    default = detect_frames(Input("ticks", ticks), model)
    assert sorted(default.alerts, key=_key) != sorted(batch.alerts, key=_key), "the settings changed nothing"


def test_cli_detect_file_and_eval(ticks: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tapewatch.cli.app import cli

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    ticks.drop(columns=["venue"]).to_csv(tmp_path / "ticks.csv", index=False)
    runner = CliRunner()
    trained = runner.invoke(cli(), ["train", "kmeans", str(tmp_path / "ticks.csv"), "--k-max", "3"])
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "alerts.jsonl"
    result = runner.invoke(cli(), ["detect", "file", str(tmp_path / "ticks.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_bytes().splitlines()
    assert lines
    assert all(Alert.from_json(line).model_version for line in lines)
    again = tmp_path / "again.jsonl"
    assert runner.invoke(cli(), ["detect", "file", str(tmp_path / "ticks.csv"), "--out", str(again)]).exit_code == 0
    assert again.read_bytes() == out.read_bytes()
    sim = generate(SimulationConfig(symbols=3, seed=11, minutes=40, open_time=time(12, 50)))
    sim.episodes_frame().to_csv(tmp_path / "episodes.csv", index=False)
    evaluated = runner.invoke(
        cli(),
        [
            "eval",
            "detect",
            "--truth",
            str(tmp_path / "episodes.csv"),
            "--alerts",
            str(out),
            "--input",
            str(tmp_path / "ticks.csv"),
            "--out",
            str(tmp_path / "report"),
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "| pump_and_dump |" in (tmp_path / "report" / "report.md").read_text()
    assert list((tmp_path / "report").glob("*.png"))


def test_bad_inputs_are_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("symbol,ts,price\nA,1,10\n")
    with pytest.raises(InputError, match="missing column"):
        read_input([tmp_path / "bad.csv"])
    with pytest.raises(InputError, match="cannot read"):
        read_input([tmp_path / "absent.parquet"])


def test_tick_rows_are_read_as_the_replay_reads_them_and_refused_rows_are_named(tmp_path: Path) -> None:
    (tmp_path / "ticks.csv").write_text(
        "symbol,ts,price,size,side\n"
        "A,1000,10,5,buy\n"
        "A,2000,10.5,5, SELL\n"
        "A,3000,inf,5,B\n"
        "A,4000,ten,5,S\n"
        "A,5000,11,5,sideways\n"
        "A,6000,11,5,s\n"
    )
    data = read_input([tmp_path / "ticks.csv"])
    assert data.frame["side"].tolist() == ["B", "S", "S"]
    assert data.frame["ts"].tolist() == [1000, 2000, 6000]
    assert [row for row, _ in data.rejected] == [3, 4, 5]
    assert "price" in data.rejected[0][1] and "side" in data.rejected[2][1]


def test_bars_input_is_scored_by_kmeans_beside_the_patterns(model: KMeansModel) -> None:
    rng = np.random.default_rng(0)
    n = 120
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    bars = pd.DataFrame(
        {
            "symbol": "B",
            "start": np.arange(n) * 60_000,
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": rng.integers(1_000, 5_000, n).astype(float),
        }
    )
    bars.loc[100, "volume"] = 1e9  # an absurd minute
    # the model's own venue (its training ticks are the simulator's): other venues are refused
    out = detect_frames(Input("bars", bars.assign(venue="sim")), model)
    assert len(out.scores) == n
    assert max(out.scores, key=lambda s: s.score).ts == 101 * 60_000
