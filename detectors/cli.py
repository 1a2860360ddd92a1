"""`tapewatch train …`, `tapewatch detect …`, `tapewatch eval …`: offline training, look-back and evaluation.

``train_app`` is shared: this module registers ``train kmeans``; other model families add their own command to
the same app (``train_app.command("dqn")(...)``) from their module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from detectors.kmeans import KMeansModel, KMeansParams
from tapewatch.errors import TapewatchError
from tapewatch.settings import load_settings

train_app = typer.Typer(help="Train models from history; write versioned artifacts.", no_args_is_help=True)
detect_app = typer.Typer(help="Run the manipulation detectors offline (look-back).", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate detectors against labelled episodes.", no_args_is_help=True)
console = Console(stderr=True)

Inputs = Annotated[list[Path], typer.Argument(help="CSV or Parquet: ticks (symbol, ts, price, size, …) or 1m bars")]
ModelVersion = Annotated[str, typer.Option("--model-version", help="K-means artifact version, or latest")]


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the detectors' own errors into the CLI's one clear line."""
    from detectors.kmeans import FeatureError
    from detectors.lookback import InputError
    from detectors.models import ArtifactError

    try:
        yield
    except (ArtifactError, InputError, FeatureError) as exc:
        raise TapewatchError(str(exc)) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


# --- train ------------------------------------------------------------------------------------------------
@train_app.command("kmeans")
def train_kmeans(
    inputs: Annotated[list[Path] | None, typer.Argument(help="Bars or ticks files (CSV/Parquet)")] = None,
    engine: Annotated[str, typer.Option(help="sklearn (default) or spark")] = "sklearn",
    source: Annotated[str, typer.Option(help="spark only: parquet, postgres or kafka")] = "parquet",
    master: Annotated[str, typer.Option(help="Spark master (local[*] here, a cluster URL elsewhere)")] = "local[*]",
    table: Annotated[str, typer.Option(help="spark --source postgres: table of 1-minute bars")] = "bars",
    name: Annotated[str, typer.Option(help="Artifact name")] = "kmeans",
    baseline: Annotated[bool, typer.Option(help="The seed baseline: k = 2 on price/volume change only")] = False,
    k_min: Annotated[int, typer.Option(help="Smallest k")] = 2,
    k_max: Annotated[int, typer.Option(help="Largest k")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
) -> None:
    """Train K-means (k by silhouette) on bar features and publish a new artifact version."""
    from detectors.kmeans import BASELINE_FEATURES, KMEANS_FEATURES, KMeansParams
    from detectors.models import ArtifactStore

    settings = load_settings()
    features = BASELINE_FEATURES if baseline else KMEANS_FEATURES
    params = KMeansParams(k_min=2 if baseline else k_min, k_max=2 if baseline else k_max, seed=seed)
    store = ArtifactStore(settings.models_path)
    with user_errors():
        if engine == "sklearn":
            if not inputs:
                raise TapewatchError("train kmeans: give bar or tick files (or --engine spark --source …)")
            from detectors.kmeans import train
            from detectors.lookback import bar_features, bars_from_bar_file, read_input, split_ticks

            with console.status("reading and computing bar features…"):
                data = read_input(inputs)
                if data.kind == "ticks":
                    from detectors.bars import bars_from_quotes

                    quotes, _ = split_ticks(data.frame)
                    bars = bars_from_quotes(quotes[["symbol", "venue", "ts", "price", "size"]])
                else:
                    bars = bars_from_bar_file(data.frame)
                feats = bar_features(bars)
            with console.status(f"fitting K-means k={params.k_min}..{params.k_max} on {len(feats):,} vectors…"):
                model = train(feats, features, params)
        elif engine == "spark":
            model = _train_spark(inputs or [], source, master, table, features, params)
        else:
            raise TapewatchError(f"train kmeans: unknown engine {engine!r}; choose sklearn or spark")
        version = model.save(store, name)
    labels = ", ".join("abnormal" if a else "normal" for a in model.abnormal.tolist())
    console.print(f"{name} {version}: k={model.k} silhouette={model.silhouette:.3f} clusters [{labels}]")
    typer.echo(version)


def _train_spark(
    inputs: list[Path], source: str, master: str, table: str, features: tuple[str, ...], params: KMeansParams
) -> KMeansModel:
    from detectors import spark_kmeans

    settings = load_settings()
    packages: list[str] = []
    if source == "postgres":
        packages.append(spark_kmeans.POSTGRES_PACKAGE)
    elif source == "kafka":
        import pyspark

        packages.append(spark_kmeans.kafka_package(pyspark.__version__))
    elif source != "parquet":
        raise TapewatchError(f"train kmeans: unknown source {source!r}; choose parquet, postgres or kafka")
    if source == "parquet" and not inputs:
        raise TapewatchError("train kmeans --engine spark --source parquet: give Parquet bar files")
    with console.status(f"Spark ({master}): training K-means…"):
        spark = spark_kmeans.session(master, packages, driver_memory=settings.spark_driver_memory)
        try:
            if source == "parquet":
                bars = spark_kmeans.read_bars_parquet(spark, inputs)
            elif source == "postgres":
                from sqlalchemy.engine import make_url

                url = make_url(settings.postgres_url_plain)
                jdbc = f"jdbc:postgresql://{url.host}:{url.port or 5432}/{url.database}"
                bars = spark_kmeans.read_bars_jdbc(spark, jdbc, table, url.username, url.password)
            else:
                bars = spark_kmeans.read_bars_kafka(spark, settings.kafka_bootstrap, settings.topic("md.bars.1m"))
            model, report = spark_kmeans.train(bars, features, params)
        finally:
            spark.stop()
    console.print(f"spark: {report.rows:,} feature vectors in {report.seconds:.1f} s")
    return model


# --- detect -----------------------------------------------------------------------------------------------
@detect_app.command("file")
def detect_file(
    inputs: Inputs,
    out: Annotated[Path, typer.Option("--out", help="Alerts, one JSON per line")] = Path("alerts.jsonl"),
    scores: Annotated[Path | None, typer.Option("--scores", help="Also write K-means scores (JSON lines)")] = None,
    model_version: ModelVersion = "latest",
    no_kmeans: Annotated[bool, typer.Option("--no-kmeans", help="Patterns only, no K-means model")] = False,
    model_name: Annotated[str, typer.Option(help="K-means artifact name")] = "kmeans",
) -> None:
    """The stream's detectors over ticks or 1-minute bars; writes the alerts the stream would emit."""
    from detectors.kmeans import KMeansModel
    from detectors.lookback import detect_frames, read_input, write_jsonl
    from detectors.models import ArtifactStore

    settings = load_settings()
    with user_errors():
        model = None
        if not no_kmeans:
            store = ArtifactStore(settings.models_path)
            if model_version == "latest" and store.latest_version(model_name) is None:
                console.print(f"[yellow]no {model_name} model in {store.root}: patterns only[/]")
            else:
                model = KMeansModel.load(store, model_name, model_version)
        with console.status("reading input…"):
            data = read_input(inputs)
        _report_rejected(data.rejected)
        with _progress() as progress:
            symbols = data.frame["symbol"].nunique()
            task = progress.add_task("detecting", total=symbols)
            result = detect_frames(
                data,
                model,
                progress=lambda _: progress.advance(task),
                flow_config=settings.flow_config(),
                grace_ms=settings.stream_grace_ms,
                feeds=settings.feeds(),
            )
    write_jsonl(out, result.alerts)
    if scores is not None:
        write_jsonl(scores, result.scores)
    kinds: dict[str, int] = {}
    for alert in result.alerts:
        kinds[str(alert.kind)] = kinds.get(str(alert.kind), 0) + 1
    summary = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
    console.print(f"{len(result.alerts)} alert(s) over {len(result.symbols)} symbol(s) ({summary}) → {out}")


def _report_rejected(rejected: list[tuple[int, str]], shown: int = 10) -> None:
    """Name the input rows that were refused (never blanked silently)."""
    if not rejected:
        return
    console.print(f"[yellow]{len(rejected):,} input row(s) rejected:[/]")
    for row, reason in rejected[:shown]:
        console.print(f"  row {row}: {reason}")
    if len(rejected) > shown:
        console.print(f"  … and {len(rejected) - shown:,} more")


# --- eval -------------------------------------------------------------------------------------------------
@eval_app.command("detect")
def eval_detect(
    truth: Annotated[Path, typer.Option("--truth", help="episodes.csv: symbol, kind, start, end (epoch ms)")],
    alerts: Annotated[Path, typer.Option("--alerts", help="alerts.jsonl from `detect file`")],
    inputs: Annotated[
        list[Path] | None, typer.Option("--input", help="The ticks the alerts came from: universe, charts, AUC")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Directory for report.md, metrics.json, PNGs")] = None,
    tolerance_s: Annotated[float, typer.Option(help="Matching tolerance around an episode")] = 30.0,
    model_version: ModelVersion = "latest",
    charts: Annotated[int, typer.Option(help="Price charts of this many manipulated symbols")] = 4,
) -> None:
    """Per-kind precision/recall/F1, delays, false alerts on clean symbols, K-means AUC, seed baseline."""
    from detectors import evaluation as ev

    with user_errors():
        try:
            truth_frame = ev.read_truth(truth)
            alert_frame = ev.read_alerts(alerts)
        except ValueError as exc:
            raise TapewatchError(str(exc)) from None
        extras = _eval_extras(inputs or [], truth_frame, model_version)
        result = ev.evaluate(
            truth_frame,
            alert_frame,
            universe=extras.universe or sorted(set(truth_frame["symbol"]) | set(alert_frame["symbol"])),
            sessions=extras.sessions,
            tolerance_ms=int(tolerance_s * 1000),
            baseline_alerts=extras.baseline_alerts,
            bar_scores=extras.bar_scores,
        )
        result.notes += extras.notes
    table = Table("kind", "episodes", "P", "R", "F1", "median delay s", "p90 s", "baseline F1")
    base = {m.kind: m for m in result.baseline}
    for m in result.kinds:
        b = base.get(m.kind)
        table.add_row(
            m.kind,
            str(m.episodes),
            f"{m.precision:.3f}",
            f"{m.recall:.3f}",
            f"{m.f1:.3f}",
            f"{m.delay_median_s:.1f}",
            f"{m.delay_p90_s:.1f}",
            f"{b.f1:.3f}" if b else "–",
        )
    Console().print(table)
    console.print(f"false alerts per clean symbol-day: {result.false_alerts_per_symbol_day:.3f}")
    for name, auc in result.score_auc.items():
        console.print(f"{name}: ROC-AUC {auc['roc_auc']:.3f}, PR-AUC {auc['pr_auc']:.3f}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_bytes(result.to_json())
        pngs = [ev.plot_f1(out / "f1.png", result)]
        if extras.prices is not None:
            collapsed = ev.collapse(alert_frame)
            for symbol in sorted(set(truth_frame["symbol"]))[:charts]:
                prices = extras.prices[extras.prices["symbol"] == symbol]
                pngs.append(ev.plot_symbol(out / f"price_{symbol}.png", symbol, prices, truth_frame, collapsed))
        (out / "report.md").write_text(ev.markdown_report(result, charts=[p.name for p in pngs]))
        console.print(f"wrote {out / 'report.md'}, metrics.json and {len(pngs)} chart(s)")


class _Extras:
    def __init__(self) -> None:
        import pandas as pd

        self.universe: list[str] = []
        self.sessions = 1
        self.baseline_alerts: pd.DataFrame | None = None
        self.bar_scores: dict[str, pd.DataFrame] = {}
        self.prices: pd.DataFrame | None = None
        self.notes: list[str] = []


def _eval_extras(inputs: list[Path], truth: object, model_version: str) -> _Extras:
    """From the input ticks: the symbol universe, sessions, prices, the seed baseline and per-bar scores."""
    import numpy as np
    import pandas as pd

    from detectors import evaluation as ev
    from detectors.alerting import AlertPolicy, Hit
    from detectors.kmeans import BASELINE_FEATURES, KMeansModel, KMeansParams, train
    from detectors.lookback import bar_features, bars_from_bar_file, read_input, split_ticks
    from detectors.models import ArtifactStore
    from tapewatch.records import AlertKind

    extras = _Extras()
    if not inputs:
        extras.notes.append("no --input: universe = symbols in truth or alerts; no baseline, no AUC, no charts")
        return extras
    data = read_input(inputs)
    frame = data.frame
    extras.universe = sorted(frame["symbol"].unique().tolist())
    if data.kind == "ticks":
        from detectors.bars import bars_from_quotes

        quotes, _ = split_ticks(frame)
        bars = bars_from_quotes(quotes[["symbol", "venue", "ts", "price", "size"]])
        extras.prices = quotes[["symbol", "ts", "price"]]
    else:
        bars = bars_from_bar_file(frame)
        extras.prices = bars.assign(ts=bars["end"], price=bars["close"])[["symbol", "ts", "price"]]
    days = pd.to_datetime(bars["start"], unit="ms").dt.date
    extras.sessions = max(
        1, int(pd.Series(list(zip(bars["symbol"], days, strict=True))).nunique() // max(1, len(extras.universe)))
    )
    feats = bar_features(bars)
    # the seed baseline: k = 2 on price/volume change, abnormal bars alert (through the same alert policy)
    baseline = train(feats, BASELINE_FEATURES, KMeansParams(k_min=2, k_max=2))
    scored = baseline.score_frame(feats)
    flagged = baseline.abnormal[scored.cluster]
    extras.notes.append(
        f"seed baseline: K-means k=2 on {', '.join(BASELINE_FEATURES)} fitted in-sample; "
        f"{int(flagged.sum())} abnormal bars"
    )
    base_alerts = []
    policies: dict[str, AlertPolicy] = {}
    symbols_col = feats["symbol"].astype(str).tolist()
    ts_col = feats["ts"].astype("int64").tolist()
    for i in np.flatnonzero(flagged).tolist():
        symbol, ts = symbols_col[i], ts_col[i]
        policy = policies.setdefault(symbol, AlertPolicy(symbol, "baseline"))
        hit = Hit(AlertKind.KMEANS_OUTLIER, ts, ts - 60_000, ts, max(0.5, float(scored.score[i])), {}, "baseline")
        base_alerts.extend(policy.on_hit(hit))
    extras.baseline_alerts = ev.alerts_frame(base_alerts)
    bar_frame = feats[["symbol", "start", "ts"]].rename(columns={"ts": "end"})
    extras.bar_scores["seed baseline k=2"] = bar_frame.assign(score=scored.score)
    store = ArtifactStore(load_settings().models_path)
    if model_version != "latest" or store.latest_version("kmeans") is not None:
        model = KMeansModel.load(store, "kmeans", model_version)
        extras.bar_scores[f"kmeans {model.version}"] = bar_frame.assign(score=model.score_frame(feats).score)
    else:
        extras.notes.append("no kmeans artifact: K-means AUC not computed (train one with `tapewatch train kmeans`)")
    return extras


@eval_app.command("simulate")
def eval_simulate(
    out: Annotated[Path, typer.Option("--out", help="Directory for ticks.parquet and episodes.csv")],
    seed: Annotated[int, typer.Option(help="Simulator seed")] = 100,
    symbols: Annotated[int, typer.Option(help="Symbols")] = 20,
    minutes: Annotated[float, typer.Option(help="Session minutes (ends at 13:30 Taipei)")] = 270.0,
) -> None:
    """Write a labelled simulated session (ticks + episodes) for `detect file` and `eval detect`."""
    from datetime import datetime, time, timedelta

    from detectors.simulator import SimulationConfig, generate

    open_at = (datetime.combine(datetime(2024, 1, 2), time(13, 30)) - timedelta(minutes=minutes)).time()
    with console.status("simulating…"):
        sim = generate(SimulationConfig(symbols=symbols, seed=seed, minutes=minutes, open_time=open_at))
        out.mkdir(parents=True, exist_ok=True)
        ticks = sim.ticks_frame()
        ticks.to_parquet(out / "ticks.parquet", index=False)
        sim.episodes_frame().to_csv(out / "episodes.csv", index=False)
    console.print(
        f"{len(ticks):,} tick rows, {len(sim.episodes)} episodes, clean symbols {', '.join(sim.clean_symbols)} → {out}"
    )
