"""`tapewatch train …`, `tapewatch detect …`, `tapewatch eval …`: offline training, look-back and evaluation.

``train_app`` is shared: this module registers ``train kmeans``; :mod:`tapewatch.cli.app` adds the other model
families' commands to it (``train dqn`` from :mod:`tapewatch.cli.dqn`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tapewatch.detectors.kmeans import KMeansModel, KMeansParams

if TYPE_CHECKING:
    import pandas as pd

    from tapewatch.artifacts import ArtifactStore
    from tapewatch.detectors.calibration import Calibration
    from tapewatch.detectors.hit_model import HitModel
    from tapewatch.detectors.kmeans import KMeansModel
    from tapewatch.evaluation.lookback import DetectionOutput, Input
    from tapewatch.evaluation.matrix import FeedResult
    from tapewatch.evaluation.venue_wash import Row as VenueWashRow
    from tapewatch.feeds import FeedProfile
    from tapewatch.records import Alert, NewsRef
from tapewatch.errors import TapewatchError
from tapewatch.extras import require
from tapewatch.settings import load_settings

train_app = typer.Typer(help="Train models from history; write versioned artifacts.", no_args_is_help=True)
detect_app = typer.Typer(help="Run the manipulation detectors offline (look-back).", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate detectors against labelled episodes.", no_args_is_help=True)
console = Console(stderr=True)

ModelVersion = Annotated[str, typer.Option("--model-version", help="K-means artifact version, or latest")]


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
    venue: Annotated[
        str | None, typer.Option(help="Venue of the input rows that name none (recorded as 'file' otherwise)")
    ] = None,
) -> None:
    """Train K-means (k by silhouette) on bar features and publish a new artifact version. The artifact records
    the venues of the training data and their feed shapes: the model scores only those venues."""
    from tapewatch.artifacts import ArtifactStore
    from tapewatch.detectors.kmeans import BASELINE_FEATURES, KMEANS_FEATURES, KMeansParams

    settings = load_settings()
    features = BASELINE_FEATURES if baseline else KMEANS_FEATURES
    params = KMeansParams(k_min=2 if baseline else k_min, k_max=2 if baseline else k_max, seed=seed)
    store = ArtifactStore(settings.local.models_path)
    if engine == "sklearn":
        if not inputs:
            raise TapewatchError("train kmeans: give bar or tick files (or --engine spark --source …)")
        from tapewatch.detectors.kmeans import train
        from tapewatch.evaluation.lookback import bar_features, bars_from_bar_file, read_input, split_ticks

        with console.status("reading and computing bar features…"):
            data = read_input(inputs)
            if data.kind == "ticks":
                from tapewatch.detectors.bars import bars_from_quotes

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
    _record_venues(model, venue)
    version = model.save(store, name)
    labels = ", ".join("abnormal" if a else "normal" for a in model.abnormal.tolist())
    console.print(f"{name} {version}: k={model.k} silhouette={model.silhouette:.3f} clusters [{labels}]")
    trained = model.trained_on.describe() if model.trained_on else "unknown venues"
    console.print(f"trained on {trained}: scores only these venues (TAPEWATCH_KMEANS_EXTRA_VENUES adds others)")
    if model.trained_on is not None and "file" in model.trained_on.venues:
        console.print("[yellow]the input names no venue for some rows, recorded as 'file': --venue names it[/]")
    typer.echo(version)


def _record_venues(model: KMeansModel, venue: str | None) -> None:
    """Record the venues the engine saw (rows without one are 'file', or ``venue`` when given) with the shape each
    venue's feed has in the settings, so a later change of that profile is noticed before scoring."""
    from tapewatch.detectors.model_venues import TrainedOn

    if model.trained_on is not None:
        names = [venue if venue is not None and v == "file" else v for v in model.trained_on.venues]
        model.trained_on = TrainedOn.from_venues(names, load_settings().venues.feeds())


def _train_spark(
    inputs: list[Path], source: str, master: str, table: str, features: tuple[str, ...], params: KMeansParams
) -> KMeansModel:
    require("spark", "tapewatch train kmeans --engine spark")
    from tapewatch.training import spark_kmeans

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
        spark = spark_kmeans.session(master, packages, driver_memory=settings.local.spark_driver_memory)
        try:
            if source == "parquet":
                bars = spark_kmeans.read_bars_parquet(spark, inputs)
            elif source == "postgres":
                from sqlalchemy.engine import make_url

                url = make_url(settings.postgres.url_plain)
                jdbc = f"jdbc:postgresql://{url.host}:{url.port or 5432}/{url.database}"
                bars = spark_kmeans.read_bars_jdbc(spark, jdbc, table, url.username, url.password)
            else:
                bars = spark_kmeans.read_bars_kafka(spark, settings.kafka.bootstrap, settings.topic("md.bars.1m"))
            model, report = spark_kmeans.train(bars, features, params)
        finally:
            spark.stop()
    console.print(f"spark: {report.rows:,} feature vectors in {report.seconds:.1f} s")
    return model


# --- detect -----------------------------------------------------------------------------------------------
@detect_app.command("file")
def detect_file(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="CSV or Parquet: ticks (symbol, ts, price, size, …) or 1m bars; with --orders, market-by-order files"
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Alerts, one JSON per line")] = Path("alerts.jsonl"),
    scores: Annotated[Path | None, typer.Option("--scores", help="Also write K-means scores (JSON lines)")] = None,
    model_version: ModelVersion = "latest",
    no_kmeans: Annotated[bool, typer.Option("--no-kmeans", help="Patterns only, no K-means model")] = False,
    model_name: Annotated[str, typer.Option(help="K-means artifact name")] = "kmeans",
    venue: Annotated[
        str,
        typer.Option(
            help="Venue of rows without one (of every record with --orders): names the feed profile (e.g. twse: 5 s "
            "snapshots, 13:30 close)"
        ),
    ] = "file",
    calibration: Annotated[
        str,
        typer.Option(help="Each venue's calibration (tapewatch calibrate): latest, a version, or none"),
    ] = "latest",
    news: Annotated[
        Path | None,
        typer.Option(help="News items (JSON Lines, as news.items carries them) to put beside the alerts", exists=True),
    ] = None,
    orders: Annotated[
        bool,
        typer.Option(
            "--orders",
            help="INPUTS are market-by-order files (Databento MBO CSV/DBN, LOBSTER), each in its feed's order",
        ),
    ] = False,
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="--orders: databento-csv, databento-dbn or lobster (default: from each name)"),
    ] = None,
    symbol: Annotated[
        str | None, typer.Option(help="--orders: the symbol, for files that do not name it (LOBSTER)")
    ] = None,
    day: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="--orders: the day of a LOBSTER file not named by it")
    ] = None,
    drop_copy: Annotated[
        list[Path] | None,
        typer.Option("--drop-copy", help="--orders: a firm's FIX drop copy (repeat for more), judged by account"),
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="--orders: the tenant whose drop copy it is")] = None,
    sample: Annotated[
        str | None,
        typer.Option(help="--orders over a shipped capture instead of INPUTS: bitstamp (30 minutes of BTC/USD)"),
    ] = None,
    indicators: Annotated[
        Path | None,
        typer.Option(
            "--indicators",
            help="Also write the venue-level wash indicator (Benford, round sizes) per symbol and day (JSON lines)",
        ),
    ] = None,
) -> None:
    """The stream's detectors over ticks or 1-minute bars; writes the alerts the stream would emit. A venue
    that no feed profile names is read with its prints learnt per symbol from the data, and no session close.
    With --orders (or --sample), the stream's market-by-order path: each symbol's book, its trades and books through
    the same detectors, the public feed's spoofing detector and, with --drop-copy, the firm's detectors by account."""
    from tapewatch.evaluation.lookback import read_input, write_jsonl

    settings = load_settings()
    tick_path = _TickPath(no_kmeans, model_name, model_version, calibration, news)
    if orders or sample is not None:
        result, order_alerts = _order_path(
            inputs or [], venue, file_format, symbol, day, drop_copy or [], tenant, sample, tick_path
        )
    elif drop_copy or tenant is not None:
        raise TapewatchError("--drop-copy and --tenant go with --orders (a drop copy is judged beside its feed)")
    else:
        if not inputs:
            raise TapewatchError("detect file: give tick or bar files (or --orders FILE…, or --sample bitstamp)")
        with console.status("reading input…"):
            data = read_input(inputs, venue)
        _report_rejected([(f"row {row}", why) for row, why in data.rejected], len(data.frame))
        result, order_alerts = tick_path.run(data, settings.venues.feeds()), []
        if indicators is not None:
            _write_indicators(indicators, data, settings.venues.feeds())
    alerts = [*result.alerts, *order_alerts]
    write_jsonl(out, alerts)
    if scores is not None:
        write_jsonl(scores, result.scores)
    kinds = Counter(str(alert.kind) for alert in alerts)
    summary = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
    _report_learnt(result.learnt_prints, result.venues)
    _report_not_run(result)
    console.print(f"{len(alerts)} alert(s) over {len(result.symbols)} symbol(s) ({summary}) → {out}")


def _write_indicators(path: Path, data: Input, feeds: Callable[[str], FeedProfile]) -> None:
    """The venue-level wash indicator of each symbol's trades (:mod:`tapewatch.evaluation.venue_wash`)."""
    from tapewatch.evaluation.venue_wash import indicators, write_indicators

    if data.kind != "ticks":
        raise TapewatchError("--indicators: the wash tests read trades (tick files), not 1-minute bars")
    records = indicators(data.frame, feeds=feeds)
    write_indicators(path, records)
    verdicts = Counter("undetermined" if r.consistent is None else "consistent" if r.consistent else "inconsistent"
                       for r in records)  # fmt: skip
    summary = ", ".join(f"{k} {n}" for k, n in sorted(verdicts.items())) or "no trades"
    console.print(f"{len(records)} venue indicator(s) ({summary}) → {path}")


@dataclass(frozen=True)
class _TickPath:
    """The tick path's options: the stream's detectors over trades and books (``detect_frames``)."""

    no_kmeans: bool
    model_name: str
    model_version: str
    calibration: str
    news: Path | None

    def run(self, data: Input, feeds: Callable[[str], FeedProfile]) -> DetectionOutput:
        from tapewatch.artifacts import ArtifactStore
        from tapewatch.detectors.flow import FlowConfig
        from tapewatch.detectors.news.context import NewsContextParams
        from tapewatch.evaluation.lookback import detect_frames

        settings = load_settings()
        store = ArtifactStore(settings.local.models_path)
        model = None if self.no_kmeans else _kmeans(store, self.model_name, self.model_version)
        calibrations = _calibrations(store, data.frame, self.calibration)
        hit_model = _hit_model(store)
        news_refs = None if self.news is None else _news(self.news, store)
        with _progress() as progress:
            task = progress.add_task("detecting", total=data.frame["symbol"].nunique())
            return detect_frames(
                data,
                model,
                progress=lambda _: progress.advance(task),
                flow_config=FlowConfig.from_settings(settings),
                grace_ms=settings.stream.grace_ms,
                feeds=feeds,
                calibrations=calibrations,
                hit_model=hit_model,
                news=news_refs,
                news_params=NewsContextParams.from_settings(settings.news),
            )


def _order_path(
    inputs: list[Path],
    venue: str,
    file_format: str | None,
    symbol: str | None,
    day: datetime | None,
    drop_copies: list[Path],
    tenant: str | None,
    sample: str | None,
    tick_path: _TickPath,
) -> tuple[DetectionOutput, list[Alert]]:
    """The market-by-order path over files or a sample: the tick path's output over the derived trades and books, and
    the public feed's and the firm's alerts. What could not be read or would be dead-lettered is named."""
    from tapewatch.cli import detect_orders as files
    from tapewatch.evaluation.lookback import DetectionOutput
    from tapewatch.evaluation.order_lookback import derived_ticks, order_feeds, run_orders

    if sample is not None and inputs:
        raise TapewatchError("--sample runs a shipped capture: give it or INPUTS, not both")
    if sample is None and not inputs:
        raise TapewatchError("--orders: give market-by-order files (or --sample bitstamp)")
    with console.status("reading market-by-order input…"):
        if sample is not None:
            read = files.read_sample(sample)
        else:
            read = files.read_order_files(
                inputs, venue, file_format, symbol, day.date() if day else None, drop_copies, tenant
            )
    feeds = order_feeds(load_settings().venues.feeds())
    with console.status(f"building the books of {len(read.events):,} events, {len(read.reports):,} reports…"):
        path = run_orders(read.events, read.reports, feeds)
        ticks, dropped = derived_ticks(path.derived, feeds)
    _report_rejected([*read.unreadable, *path.rejected, *dropped], len(read.events) + len(read.reports))
    trades = int(ticks.frame["price"].notna().sum())
    anomalies = ", ".join(f"{why} {n:,}" for why, n in sorted(path.anomalies.items())) or "none"
    console.print(
        f"market-by-order: {len(read.events):,} events, {len(read.reports):,} reports over {len(path.venues)} "
        f"symbol(s); derived {trades:,} trades and {len(ticks.frame) - trades:,} books; applied with an anomaly: "
        f"{anomalies}; public and firm alerts: {files.by_kind_and_severity(path.alerts)}"
    )
    if ticks.frame.empty:
        return DetectionOutput(symbols=sorted(path.venues), venues=path.venues), path.alerts
    result = tick_path.run(ticks, feeds)
    console.print(f"trades and books path: {files.by_kind_and_severity(result.alerts)}")
    return result, path.alerts


def _kmeans(store: ArtifactStore, name: str, version: str) -> KMeansModel | None:
    """The K-means model to score with; ``None`` (patterns only, said once) when ``latest`` is asked and none exists."""
    from tapewatch.detectors.kmeans import KMeansModel

    if version == "latest" and store.latest_version(name) is None:
        console.print(f"[yellow]no {name} model in {store.root}: patterns only[/]")
        return None
    return KMeansModel.load(store, name, version)


def _news(path: Path, store: ArtifactStore) -> dict[str, list[NewsRef]]:
    """The file's news items scored by the model the stream worker would use (the newest published, else the plain
    lexicon), by symbol."""
    from tapewatch.detectors.news.sentiment import SentimentModel
    from tapewatch.evaluation.news_refs import news_by_symbol, read_news_items

    model = SentimentModel.newest(store)
    items = read_news_items(path)
    refs = news_by_symbol(items, model)
    console.print(f"{len(items)} news item(s) on {len(refs)} symbol(s), sentiment by {model.version}")
    return refs


def _hit_model(store: ArtifactStore) -> HitModel | None:
    """The published calibrated hit model (``tapewatch eval hit-model --publish``), saying which kinds it scores."""
    from tapewatch.detectors.hit_model import HitModel

    model = HitModel.load(store)
    if model is not None:
        console.print(f"hit model {model.version} scores {', '.join(sorted(model.kinds))}")
    return model


def _calibrations(store: ArtifactStore, frame: pd.DataFrame, version: str) -> dict[str, Calibration]:
    """Each venue of the input's calibration (``none``: no venue's), saying which venues run without one."""
    from tapewatch.detectors.calibration import Calibration

    if version == "none":
        return {}
    found: dict[str, Calibration] = {}
    for venue in sorted(set(frame["venue"].astype(str))):
        loaded = Calibration.load(store, venue, version)
        if loaded is None:
            console.print(f"[yellow]{venue}: no calibration (tapewatch calibrate): baselines start from nothing[/]")
        else:
            found[venue] = loaded
    return found


def _report_not_run(result: DetectionOutput) -> None:
    """One line per detector the input could not feed, and one of what ran: a quiet input is then not mistaken for
    a clean one."""
    from tapewatch.evaluation.lookback import coverage

    if not result.detectors:
        return
    ran, missing = coverage(result)
    for name, needs in missing.items():
        console.print(
            f"[yellow]not run:[/] {name} (needs {' and '.join(sorted(needs))}, which the input does not carry)"
        )
    model = any(detector.model is not None for detector in result.detectors.values())
    kmeans = "K-means" if model else "no K-means (no model, or it refused the venue)"
    console.print(f"ran: {', '.join(ran) or 'no pattern detector'}; {kmeans}")


def _report_learnt(learnt: Mapping[str, str | None], venues: Mapping[str, str]) -> None:
    """Say, per venue no feed profile names, what its symbols' records were learnt to be, and what that
    leaves out: the user may know better and can say so."""
    by_venue: dict[str, Counter[str]] = {}
    for symbol, prints in learnt.items():
        by_venue.setdefault(venues[symbol], Counter())[prints or "undecided (too few records)"] += 1
    for name, counts in sorted(by_venue.items()):
        shapes = ", ".join(f"{shape} {n}" for shape, n in sorted(counts.items()))
        console.print(
            f"[yellow]venue {name!r} has no feed profile:[/] each symbol's prints learnt from its records "
            f"({shapes}); no session close, so marking the close is not checked. Name the venue with --venue "
            "or describe it in TAPEWATCH_FEED_PROFILES."
        )


def _report_rejected(rejected: Sequence[tuple[str, str]], usable: int, shown: int = 10) -> None:
    """Name the input rows or records that were refused, each by its place (never blanked silently); with none left
    to read, that is an error."""
    if not rejected:
        return
    if not usable:
        place, reason = rejected[0]
        raise TapewatchError(f"no usable input row: {len(rejected):,} rejected, the first: {place}: {reason}")
    console.print(f"[yellow]{len(rejected):,} input row(s) rejected:[/]")
    for place, reason in rejected[:shown]:
        console.print(f"  {place}: {reason}")
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
    from tapewatch.evaluation import judge as ev

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
        self.universe: list[str] = []
        self.sessions = 1
        self.baseline_alerts: pd.DataFrame | None = None
        self.bar_scores: dict[str, pd.DataFrame] = {}
        self.prices: pd.DataFrame | None = None
        self.notes: list[str] = []


def _eval_extras(inputs: list[Path], truth: object, model_version: str) -> _Extras:
    """From the input ticks: the symbol universe, sessions, prices, the seed baseline and per-bar scores."""
    import pandas as pd

    from tapewatch.artifacts import ArtifactStore
    from tapewatch.detectors.kmeans import BASELINE_FEATURES, KMeansModel
    from tapewatch.evaluation import judge as ev
    from tapewatch.evaluation.lookback import bar_features, bars_from_bar_file, read_input, split_ticks

    extras = _Extras()
    if not inputs:
        extras.notes.append("no --input: universe = symbols in truth or alerts; no baseline, no AUC, no charts")
        return extras
    data = read_input(inputs)
    frame = data.frame
    extras.universe = sorted(frame["symbol"].unique().tolist())
    if data.kind == "ticks":
        from tapewatch.detectors.bars import bars_from_quotes

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
    extras.baseline_alerts, baseline_score = ev.seed_baseline(feats)
    extras.notes.append(
        f"seed baseline: K-means k=2 on {', '.join(BASELINE_FEATURES)} fitted in-sample; "
        f"{extras.baseline_alerts['alert_id'].nunique()} abnormal-bar alerts"
    )
    bar_frame = feats[["symbol", "start", "ts"]].rename(columns={"ts": "end"})
    extras.bar_scores["seed baseline k=2"] = bar_frame.assign(score=baseline_score)
    store = ArtifactStore(load_settings().local.models_path)
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
    feed: Annotated[str, typer.Option(help="Feed profile: trades, twse-mis or snapshot-1s")] = "trades",
    book_churn: Annotated[float, typer.Option(help="0..1: chance per book step a level 2-5 queue is re-drawn")] = 0.0,
    regimes: Annotated[str, typer.Option(help="Per-symbol draws: twse or wide")] = "twse",
    variants: Annotated[bool, typer.Option("--variants", help="Draw an episode variant per episode")] = False,
    lookalikes: Annotated[
        bool,
        typer.Option(
            "--lookalikes/--no-lookalikes", help="Legitimate look-alikes on every symbol, labelled in lookalikes.csv"
        ),
    ] = False,
) -> None:
    """Write a labelled simulated session (ticks + episodes, look-alikes, news) for `detect file` and `eval detect`."""
    from datetime import datetime, time, timedelta

    from tapewatch.evaluation.matrix import FEED_VENUES
    from tapewatch.generators.simulator import SimulationConfig, generate
    from tapewatch.producers.simulate import write_news

    open_at = (datetime.combine(datetime(2024, 1, 2), time(13, 30)) - timedelta(minutes=minutes)).time()
    try:
        config = SimulationConfig(
            symbols=symbols,
            seed=seed,
            minutes=minutes,
            open_time=open_at,
            feed=feed,
            book_churn=book_churn,
            regimes=regimes,
            variants=variants,
            venue=FEED_VENUES.get(feed, "sim"),
            lookalikes=lookalikes,
        )
    except ValueError as exc:
        raise TapewatchError(f"eval simulate: {exc}") from None
    with console.status("simulating…"):
        sim = generate(config)
        out.mkdir(parents=True, exist_ok=True)
        # the venue names the feed profile, so `detect file` knows what the records carry
        ticks = sim.ticks_frame().assign(venue=config.venue)
        ticks.to_parquet(out / "ticks.parquet", index=False)
        sim.episodes_frame().to_csv(out / "episodes.csv", index=False)
        if lookalikes:
            sim.lookalikes_frame().to_csv(out / "lookalikes.csv", index=False)
        write_news(sim.news, sim.news_frame(), out)
    console.print(
        f"{len(ticks):,} tick rows, {len(sim.episodes)} episodes"
        + (f", {len(sim.lookalikes)} look-alikes" if lookalikes else "")
        + f", {len(sim.news)} news items"
        + f", clean symbols {', '.join(sim.clean_symbols)} → {out}"
    )


def _seed_list(text: str) -> tuple[int, ...]:
    """``300-304`` or ``300,302,310``."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            return tuple(range(low, high + 1))
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise TapewatchError(f"eval matrix: seeds {text!r}: give 300-304 or 300,302") from None


@eval_app.command("matrix")
def eval_matrix(
    out: Annotated[Path | None, typer.Option("--out", help="Directory for matrix.json and matrix_f1.png")] = None,
    feeds: Annotated[str, typer.Option(help="Feed profiles, comma-separated")] = "trades,twse-mis,snapshot-1s",
    seeds: Annotated[str, typer.Option(help="Evaluated seeds: 300-304 or 300,302")] = "300-304",
    train_seed: Annotated[int, typer.Option(help="Seed of the session K-means is trained on (never evaluated)")] = 1,
    symbols: Annotated[int, typer.Option(help="Symbols per session")] = 20,
    minutes: Annotated[float, typer.Option(help="Session minutes (ends at 13:30 Taipei)")] = 270.0,
    variants: Annotated[bool, typer.Option(help="Episode variants (slow pumps, long spoofing, …)")] = True,
    regimes: Annotated[str, typer.Option(help="Per-symbol draws: twse or wide")] = "twse",
    lookalikes: Annotated[
        bool,
        typer.Option(
            "--lookalikes/--no-lookalikes",
            help="Legitimate look-alikes in every session (news, meta-orders, large orders, quote pulls), the alerts "
            "on them counted",
        ),
    ] = True,
    book_churn: Annotated[
        float | None, typer.Option(help="Level 2-5 churn per book step (default per feed: 0.2, 1.0, 0.5)")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Cells simulated and detected in parallel")] = 1,
    generator: Annotated[
        str, typer.Option(help="sim (the labelled simulator) or lob (the order-book market, never tuned on)")
    ] = "sim",
) -> None:
    """Simulate → detect → score over feed profiles × seeds: P, R, F1, delays per kind and feed, false alerts per
    clean symbol-day, K-means AUC, beside the seed baseline; a PNG of F1 by kind and feed and a JSON."""
    from tapewatch.detectors.flow import FlowConfig
    from tapewatch.evaluation import matrix as em

    settings = load_settings()
    try:
        spec = em.MatrixSpec(
            feeds=tuple(f.strip() for f in feeds.split(",") if f.strip()),
            seeds=_seed_list(seeds),
            train_seed=train_seed,
            symbols=symbols,
            minutes=minutes,
            variants=variants,
            regimes=regimes,
            lookalikes=lookalikes,
            book_churn=book_churn,
            flow=FlowConfig.from_settings(settings),
            profiles=settings.venues.feeds(),
            generator=generator,
        )
        spec.simulation(spec.feeds[0], spec.seeds[0])  # refuses bad session parameters before any work
    except ValueError as exc:
        raise TapewatchError(f"eval matrix: {exc}") from None
    with console.status("running the matrix…") as status:
        results = em.run_matrix(spec, jobs=jobs, progress=status.update)
    _print_matrix(results)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "matrix.json").write_bytes(em.to_json(spec, results))
        em.plot_matrix(out / "matrix_f1.png", results)
        console.print(f"wrote {out / 'matrix.json'} and {out / 'matrix_f1.png'}")


def _print_matrix(results: list[FeedResult]) -> None:
    from tapewatch.evaluation.judge import fmt
    from tapewatch.evaluation.matrix import meets_bars

    table = Table("feed", "kind", "episodes", "P", "R", "F1", "median delay s", "p90 s", "baseline F1", "bar")
    for feed in results:
        bars = meets_bars(feed)
        base = {m.kind: m for m in feed.result.baseline}
        for m in feed.result.kinds:
            passed = bars.get(m.kind)
            table.add_row(
                feed.feed, m.kind, str(m.episodes), fmt(m.precision), fmt(m.recall), fmt(m.f1),
                fmt(m.delay_median_s, 1), fmt(m.delay_p90_s, 1), fmt(base[m.kind].f1) if m.kind in base else "–",
                "–" if passed is None else ("met" if passed else "[red]not met[/]"),
            )  # fmt: skip
    wide = Console(width=max(150, Console().width))
    wide.print(table)
    for feed in results:
        auc = feed.result.score_auc.get("kmeans", {}).get("roc_auc", float("nan"))
        five_kinds = feed.result.false_alerts_per_symbol_day_evaluated_kinds
        wide.print(
            f"{feed.feed}: false alerts per clean symbol-day {fmt(five_kinds)} "
            f"(five kinds), {fmt(feed.result.false_alerts_per_symbol_day)} (all kinds); K-means ROC-AUC {fmt(auc)}; "
            f"cells {min(feed.seconds):.0f}–{max(feed.seconds):.0f} s"
        )
    _print_lookalikes(wide, results)


def _print_lookalikes(wide: Console, results: list[FeedResult]) -> None:
    """Legitimate look-alikes that drew a manipulation alert no real episode explains (generators that label them)."""
    from tapewatch.evaluation.judge import fmt

    if not any(feed.lookalikes for feed in results):
        return
    table = Table("feed", "look-alike", "events", "alerted", "share", "by alert kind")
    for feed in results:
        for rate in feed.lookalikes:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(rate.by_alert_kind.items())) or "–"
            table.add_row(feed.feed, rate.kind, str(rate.events), str(rate.alerted), fmt(rate.share), kinds)
    wide.print(table)


@eval_app.command("real-tapes")
def eval_real_tapes(
    tapes: Annotated[
        str, typer.Option(help="Comma-separated real tapes")
    ] = "es-futures,bitstamp-btcusd,bitstamp-btcusd-2013,us-stocks-1m",
    calibrate_days: Annotated[
        int, typer.Option(help="Calibrate on each tape's first N days and score the days after them", min=0)
    ] = 0,
) -> None:
    """The detectors over real tapes of liquid instruments shipped in packages, where every manipulation alert
    is false: alerts per session by kind and severity, against the bar (≤ 1 a session, none high or critical)."""
    from tapewatch.detectors.flow import FlowConfig
    from tapewatch.evaluation import real_tapes
    from tapewatch.producers.real_tapes import TAPES, load_tape

    settings = load_settings()
    names = [t.strip() for t in tapes.split(",") if t.strip()]
    unknown = [n for n in names if n not in TAPES]
    if unknown:
        raise TapewatchError(f"eval real-tapes: no tape {', '.join(unknown)}; choose {', '.join(TAPES)}")
    table = Table("tape", "prints", "sessions", "alerts", "per session", "high+critical", "by kind", "bar")
    for name in names:
        with console.status(f"detecting over {name}…"):
            ticks, sessions = load_tape(name)
            if calibrate_days >= sessions:
                console.print(f"{name}: {sessions} session(s), none left after {calibrate_days} calibrated; skipped")
                continue
            result = real_tapes.run_tape(
                name,
                ticks,
                sessions,
                flow_config=FlowConfig.from_settings(settings),
                feeds=settings.venues.feeds(),
                calibrate_days=calibrate_days,
            )
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(result.by_kind.items())) or "–"
        table.add_row(
            name, f"{result.prints:,}", str(result.sessions), str(result.alerts), f"{result.per_session:.1f}",
            str(result.serious), kinds, "met" if result.meets_bar else "[red]not met[/]",
        )  # fmt: skip
    Console(width=max(150, Console().width)).print(table)


@eval_app.command("venue-wash")
def eval_venue_wash(
    tapes: Annotated[
        str, typer.Option(help="Comma-separated real tapes ('' for none)")
    ] = "es-futures,bitstamp-btcusd,bitstamp-btcusd-2013,us-stocks-1m",
    seeds: Annotated[str, typer.Option(help="Generator seeds (e.g. 11,12), '' for none")] = "11",
    inject: Annotated[
        str, typer.Option(help="A real tape to add fabricated trades to ('' for none)")
    ] = "bitstamp-btcusd-2013",
    shares: Annotated[str, typer.Option(help="Shares of fabricated trades, comma-separated")] = "0,0.1,0.3,0.5,0.7",
) -> None:
    """The venue-level wash indicator (Benford's first digit, round-size clustering) on the generators' clean and
    wash sessions, on real tapes shipped in packages, and on a real tape with a wash bot's trades added."""
    from tapewatch.evaluation import venue_wash
    from tapewatch.producers.real_tapes import load_tape

    names = [t.strip() for t in tapes.split(",") if t.strip()]
    rows = venue_wash.real({name: load_tape(name)[0] for name in names})
    if seeds.strip():
        with console.status("generating…"):
            rows += venue_wash.generated(_seed_list(seeds))
    if inject.strip():
        levels = tuple(float(s) for s in shares.split(",") if s.strip())
        ticks = load_tape(inject.strip())[0]
        for style in venue_wash.BOT_STYLES:
            rows += venue_wash.injected(inject.strip(), ticks, levels, style)
    _print_venue_wash(rows)


def _print_venue_wash(rows: Sequence[VenueWashRow]) -> None:
    from datetime import UTC

    def num(value: float | None, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    table = Table("tape", "kind", "symbol", "day", "trades", "lot", "decades", "Benford", "MAD", "band",
                  "round", "at/near", "ratio", "share", "p", "tail α")  # fmt: skip
    for row in rows:
        i = row.indicator
        day = datetime.fromtimestamp(i.window_start / 1000, UTC).strftime("%Y-%m-%d") + ("" if i.complete else "*")
        table.add_row(
            row.tape, row.kind, i.symbol, day, f"{i.trades:,}", num(i.lot, "g"), str(i.decades), i.benford.value,
            num(i.benford_mad, ".4f"), i.benford_band or "–", i.rounding.value, f"{i.round_at}/{i.round_near}",
            num(i.round_ratio, ".1f"), num(i.round_share, ".3f"), num(i.round_p, ".2g"), num(i.tail_alpha, ".2f"),
        )  # fmt: skip
    Console(width=max(170, Console().width)).print(table)
