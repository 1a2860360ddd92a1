"""What `tapewatch run` adds around the pipeline: default models on first use, and the run's summary and report.

* :func:`ensure_models` trains, side by side, the default K-means model (on a simulated training session, another
  seed than the demo's), a default intraday Double DQN and the forecasters when the model directory has none, with
  the same CLI commands a user would run; later runs reuse them (artifacts are versioned directories, see
  :mod:`tapewatch.artifacts`).
  A K-means model that may not score the simulator's venue (saved before models recorded their venues, or
  trained on another venue) is not reused: the demo would run without K-means. A new one is trained.
* :func:`ensure_demo_user` gives the console (started beside the pipeline) a ``demo`` supervisor whose
  password is written to a file only its owner can read — printed as a path, never as a secret; its tenant
  (:func:`ensure_demo_tenant`) is also the order-book market's firm.
* :func:`summarise` compares the alerts seen on Kafka with the episodes the simulator injected (the truth
  topic: an episode is published when it ends), counts what reached PostgreSQL and Elasticsearch, and writes a
  report folder: markdown, a per-kind F1 chart and price charts with episodes shaded and alerts marked.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tapewatch import extras
from tapewatch.errors import TapewatchError
from tapewatch.ops.run import PipelineView
from tapewatch.secrets import write_secret
from tapewatch.settings import Settings

if TYPE_CHECKING:
    from tapewatch.artifacts import ArtifactStore

TAPEWATCH = str(Path(sys.executable).with_name("tapewatch"))
TRAINING_SEED = 1001  # never the demo's seed: the model must not have seen the session it scores
DEMO_VENUE = "sim"  # the simulator's venue: the training file names none, the demo's records do
KMEANS_TRAINING = ("--symbols", "10", "--minutes", "120", "--seed", str(TRAINING_SEED))
#: one network, not the default ensemble of five: the demo trains on first use and must start within a minute or two
DQN_TRAINING = ("--mode", "intraday", "--steps", "5000", "--sim-days", "8", "--sim-symbols", "4", "--ensemble", "1")
#: the demo's forecasters see a window of 10 bars of features that warm up within 10 bars, so a two-minute demo
#: shows forecasts (the defaults' 50- and 56-bar windows over slower features need an hour and a half of bars)
FORECAST_TRAINING = ("--features", "ret_1,ret_3,ret_5,kd_k,vwap_dev,bias_6", "--window", "10", "--epochs", "3")
FORECASTERS = {"lstm": ("LSTM", (*FORECAST_TRAINING, "--units", "32")), "cnn": ("Inception CNN", FORECAST_TRAINING)}
#: trainings run at once on first use: one per core
TRAINING_JOBS = max(1, os.cpu_count() or 1)


def _cli(settings: Settings, *args: str) -> None:
    done = subprocess.run(
        [TAPEWATCH, *args],
        capture_output=True,
        text=True,
        check=False,
        # one thread each: the trainings run side by side, one per core (small networks gain nothing from more)
        env={"OMP_NUM_THREADS": "1", **os.environ, "TAPEWATCH_MODEL_DIR": str(settings.local.models_path)},
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise TapewatchError(f"`tapewatch {' '.join(args[:2])}` failed: {last}")


def _refuses_demo_venue(settings: Settings) -> bool:
    """True when the latest K-means model loads but may not score the demo's venue."""
    from tapewatch.artifacts import ArtifactError, ArtifactStore
    from tapewatch.detectors.kmeans import KMeansModel
    from tapewatch.detectors.model_venues import refusal

    try:
        model = KMeansModel.load(ArtifactStore(settings.local.models_path))
    except ArtifactError:
        return False  # as before: reused, and the worker says why it cannot load it
    extra = settings.venues.kmeans_extra().get(model.name, ())
    label = f"{model.name} {model.version}"
    return refusal(model.trained_on, label, DEMO_VENUE, settings.venues.feeds()(DEMO_VENUE), extra) is not None


def ensure_models(settings: Settings) -> list[str]:
    """Train what is missing, the trainings side by side (:data:`TRAINING_JOBS` at once: each is one process of
    one thread's work, and a first demo waits for the slowest); one line per model, in a fixed order (trained now,
    or the version reused)."""
    from tapewatch.artifacts import ArtifactStore
    from tapewatch.detectors.kmeans import DEFAULT_MODEL_NAME

    store = ArtifactStore(settings.local.models_path)
    entries: list[str | Callable[[], str]] = []
    kmeans = store.latest_version(DEFAULT_MODEL_NAME)
    if kmeans is None or _refuses_demo_venue(settings):
        entries.append(lambda: _train_kmeans(settings, store))
    else:
        entries.append(f"K-means: {kmeans}")
    if not extras.available("signals"):
        entries.append(f"trading signals: off, the 'signals' extra is not installed ({extras.hint('signals')})")
    else:
        for name, (title, args) in {"dqn": ("Double DQN", DQN_TRAINING), **FORECASTERS}.items():
            version = store.latest_version(name)
            entries.append(
                f"{title}: {version}" if version else functools.partial(_train, settings, store, name, title, args)
            )
    with ThreadPoolExecutor(max_workers=TRAINING_JOBS) as pool:
        running = [entry if isinstance(entry, str) else pool.submit(entry) for entry in entries]
        return [line if isinstance(line, str) else line.result() for line in running]


def _train_kmeans(settings: Settings, store: ArtifactStore) -> str:
    from tapewatch.detectors.kmeans import DEFAULT_MODEL_NAME

    with tempfile.TemporaryDirectory() as tmp:
        _cli(settings, "produce", "simulate", *KMEANS_TRAINING, "--out-dir", tmp, "--no-progress")
        _cli(settings, "train", "kmeans", str(Path(tmp) / "ticks.parquet"), "--venue", DEMO_VENUE)
    return f"K-means: trained {store.latest_version(DEFAULT_MODEL_NAME)} (simulated session, seed {TRAINING_SEED})"


def _train(settings: Settings, store: ArtifactStore, name: str, title: str, args: tuple[str, ...]) -> str:
    _cli(settings, "train", name, *args)
    source = "intraday, simulated sessions" if name == "dqn" else "daily packaged assets, 10-bar windows"
    return f"{title}: trained {store.latest_version(name)} ({source})"


@dataclass
class KindLine:
    kind: str
    episodes: int
    detected: int
    alerts: int
    median_delay_s: float | None


@dataclass
class Summary:
    kinds: list[KindLine] = field(default_factory=list)
    alerts: int = 0
    in_postgres: int | None = None
    in_elasticsearch: int | None = None
    report: Path | None = None
    notes: list[str] = field(default_factory=list)


DEMO_USER = "demo"
DEMO_TENANT = "demo"  # the demo's one tenant: its cases are made from every venue's alerts


def ensure_demo_user(settings: Settings) -> Path:
    """The console's demo login: user ``demo`` (supervisor of tenant ``demo``, whose cases come from every
    venue) with a fresh random password, written to ``<var>/console/demo-password`` (mode 0600) at every run;
    returns that file's path."""
    import secrets

    from tapewatch.console import users
    from tapewatch.sinks import db

    password = secrets.token_urlsafe(15)
    ensure_demo_tenant(settings)
    engine = db.make_engine(settings)
    try:
        with engine.begin() as conn:
            if DEMO_USER in {name for name, *_ in users.list_users(conn)}:
                users.set_password(conn, DEMO_USER, password, "demo")
                users.set_disabled(conn, DEMO_USER, False, "demo")
            else:
                users.add_user(conn, DEMO_USER, password, "supervisor", DEMO_TENANT, "demo")
    finally:
        engine.dispose()
    path = settings.local.var_dir / "console" / "demo-password"
    write_secret(path, password)
    return path


def ensure_demo_tenant(settings: Settings) -> None:
    """The demo's tenant ``demo`` (its cases come from every venue), added if missing: the demo user's, and the
    order-book market's firm (its accounts are kept in the tenant's table)."""
    from tapewatch.console import users
    from tapewatch.sinks import db

    engine = db.make_engine(settings)
    try:
        with engine.begin() as conn:
            if DEMO_TENANT not in users.tenant_names(conn):
                users.add_tenant(conn, DEMO_TENANT, ["*"], "demo")
    finally:
        engine.dispose()


def _alerts_frame(view: PipelineView) -> pd.DataFrame:
    from tapewatch.evaluation.judge import alerts_frame

    return alerts_frame(view.alerts.values())


def _truth_frame(view: PipelineView) -> pd.DataFrame:
    rows = [{"symbol": e.symbol, "kind": e.kind.value, "start": e.start, "end": e.end} for e in view.episodes]
    return pd.DataFrame(rows, columns=["symbol", "kind", "start", "end"])


def persisted(settings: Settings, alert_ids: list[str]) -> tuple[int | None, int | None, list[str]]:
    """How many of ``alert_ids`` PostgreSQL and Elasticsearch hold (None: could not ask)."""
    notes: list[str] = []
    in_pg = in_es = None
    if not alert_ids:
        return 0, 0, notes
    try:
        from sqlalchemy import func, select

        from tapewatch.sinks.db import alerts, make_engine

        engine = make_engine(settings)
        with engine.connect() as conn:
            in_pg = int(conn.execute(select(func.count()).where(alerts.c.alert_id.in_(alert_ids))).scalar_one())
        engine.dispose()
    except Exception as exc:  # the summary reports it; the run itself is over
        notes.append(f"PostgreSQL not queried: {exc}")
    try:
        from tapewatch.sinks.elastic import TENANT_ALERTS, index_pattern
        from tapewatch.sinks.search import es_client

        es = es_client(settings)
        # the public alerts and the tenants' own (a firm's drop copy raises those)
        pattern = f"{index_pattern(settings, 'alerts')},{index_pattern(settings, TENANT_ALERTS)}"
        es.indices.refresh(index=pattern, ignore_unavailable=True, allow_no_indices=True)
        found = es.count(index=pattern, query={"ids": {"values": alert_ids}}, ignore_unavailable=True)
        in_es = int(found["count"])
        es.close()
    except Exception as exc:
        notes.append(f"Elasticsearch not queried: {exc}")
    return in_pg, in_es, notes


def summarise(settings: Settings, view: PipelineView, out: Path) -> Summary:
    """Alerts against the injected truth, what was persisted, and the report folder."""
    from tapewatch.evaluation.judge import evaluate, markdown_report, plot_f1, plot_symbol

    summary = Summary(alerts=len(view.alerts))
    alerts = _alerts_frame(view)
    truth = _truth_frame(view)
    symbols = sorted({b.symbol for b in view.bars} | set(truth["symbol"]))
    result = evaluate(truth, alerts, universe=symbols)
    for k in result.kinds:
        summary.kinds.append(
            KindLine(
                k.kind, k.episodes, k.detected, k.alerts, None if math.isnan(k.delay_median_s) else k.delay_median_s
            )
        )
    summary.in_postgres, summary.in_elasticsearch, summary.notes = persisted(settings, list(view.alerts))

    out.mkdir(parents=True, exist_ok=True)
    charts = [plot_f1(out / "f1_by_kind.png", result).name]
    prices = pd.DataFrame([(b.symbol, b.end, b.close) for b in view.bars], columns=["symbol", "ts", "price"])
    flagged = sorted(set(truth["symbol"]) | set(alerts["symbol"]) if len(alerts) else set(truth["symbol"]))
    for symbol in flagged[:6]:
        mine = prices[prices["symbol"] == symbol].sort_values("ts")
        if len(mine):
            charts.append(plot_symbol(out / f"price_{symbol}.png", symbol, mine, truth, alerts).name)
    (out / "report.md").write_text(
        markdown_report(result, title="tapewatch run: alerts against the injected episodes", charts=charts)
    )
    alerts.to_csv(out / "alerts.csv", index=False)
    truth.to_csv(out / "episodes.csv", index=False)
    summary.report = out
    return summary


def kinds_rows(summary: Summary) -> list[tuple[Any, ...]]:
    return [
        (
            k.kind,
            k.episodes,
            k.detected,
            k.alerts,
            "-" if k.median_delay_s is None else f"{k.median_delay_s:,.0f} s",
        )
        for k in summary.kinds
    ]
