"""Evaluation of alerts against labelled episodes: per-kind precision/recall/F1, detection delay, false alerts
on clean symbols, ROC-AUC/PR-AUC of the K-means score, the seed baseline side by side, charts and a report.

**Matching rule.** Alerts are first collapsed by ``alert_id`` (an episode re-emitted on escalation is one
alert): its time is the *first* emission's ``ts``, its window the union of its versions' windows. An alert
*matches* an episode when both have the same symbol and kind and the alert's ``[window_start, window_end]``
overlaps the episode's ``[start - tolerance, end + tolerance]`` (default tolerance 30 s).

* **recall** = episodes matched by at least one alert / episodes;
* **precision** = alerts that match at least one episode / alerts;
* **delay** of a detected episode = ``max(0, first matching alert ts - episode start)``, in seconds; the
  median and the 90th percentile are reported;
* **false alerts per symbol-day** = alerts (any kind) on *clean* symbols (in the universe, without any
  episode) / (clean symbols × sessions);
* **score AUC** — every bar (a symbol's minute) is labelled positive when it overlaps an episode of any kind;
  ROC-AUC and PR-AUC (average precision) of a per-bar score.

The **seed baseline** (K-means k = 2 on ``price_change_pct`` and ``volume_change_pct``, the small far cluster
called abnormal) cannot tell kinds apart, so for each kind all of its alerts count as alerts of that kind.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd

from tapewatch.records import Alert, AlertKind

FloatArray = npt.NDArray[np.float64]

DEFAULT_TOLERANCE_MS: Final = 30_000
EVALUATED_KINDS: Final[tuple[AlertKind, ...]] = (
    AlertKind.PUMP_AND_DUMP,
    AlertKind.SPOOFING,
    AlertKind.WASH_TRADING,
    AlertKind.MARKING_THE_CLOSE,
    AlertKind.MOMENTUM_IGNITION,
)
TRUTH_COLUMNS: Final = ("symbol", "kind", "start", "end")
ALERT_COLUMNS: Final = ("alert_id", "symbol", "kind", "ts", "window_start", "window_end", "score", "severity")
KIND_COLOURS: Final = {
    "pump_and_dump": "tab:red",
    "spoofing": "tab:purple",
    "wash_trading": "tab:green",
    "marking_the_close": "tab:orange",
    "momentum_ignition": "tab:blue",
    "volume_burst": "tab:brown",
    "price_burst": "tab:pink",
    "kmeans_outlier": "tab:gray",
    "quote_stuffing": "tab:olive",
}


@dataclass(frozen=True, slots=True)
class KindMetrics:
    kind: str
    episodes: int
    detected: int
    alerts: int
    true_alerts: int
    precision: float
    recall: float
    f1: float
    delay_median_s: float
    delay_p90_s: float


@dataclass
class EvaluationResult:
    kinds: list[KindMetrics]
    baseline: list[KindMetrics] = field(default_factory=list)
    clean_symbols: int = 0
    sessions: int = 0
    false_alerts_per_symbol_day: float = math.nan
    false_alerts_per_symbol_day_evaluated_kinds: float = math.nan
    other_kinds: dict[str, dict[str, float]] = field(default_factory=dict)
    score_auc: dict[str, dict[str, float]] = field(default_factory=dict)
    baseline_false_alerts_per_symbol_day: float = math.nan
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


# --- inputs -----------------------------------------------------------------------------------------------
def read_truth(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read episodes ({exc})") from None
    missing = [c for c in TRUTH_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: episodes file lacks column(s) {', '.join(missing)}")
    empty = frame[list(TRUTH_COLUMNS)].isna()
    if empty.to_numpy().any():
        row, column = next((r, c) for r, c in zip(*empty.to_numpy().nonzero(), strict=True))
        raise ValueError(f"{path}: row {row + 1}: {TRUTH_COLUMNS[column]} is empty")
    return normalise_truth(frame)


def normalise_truth(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[list(TRUTH_COLUMNS)].copy()
    out["symbol"] = out["symbol"].astype(str)
    out["kind"] = out["kind"].astype(str)
    out["start"] = out["start"].astype("int64")
    out["end"] = out["end"].astype("int64")
    return out.reset_index(drop=True)


def read_alerts(path: Path) -> pd.DataFrame:
    """Alerts from a JSON-lines file (one :class:`Alert` per line), validated."""
    rows: list[Alert] = []
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        rows.append(Alert.from_json(line))
                    except ValueError as exc:
                        raise ValueError(f"{path}:{number}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read alerts ({exc.strerror})") from None
    return alerts_frame(rows)


def alerts_frame(alerts: Iterable[Alert]) -> pd.DataFrame:
    records = [
        (a.alert_id, a.symbol, str(a.kind), a.ts, a.window_start, a.window_end, a.score, str(a.severity))
        for a in alerts
    ]
    frame = pd.DataFrame(records, columns=list(ALERT_COLUMNS))
    for column in ("ts", "window_start", "window_end"):
        frame[column] = frame[column].astype("int64")
    frame["score"] = frame["score"].astype("float64")
    return frame


def collapse(alerts: pd.DataFrame) -> pd.DataFrame:
    """One row per alert_id: first ts, union window, best score."""
    if alerts.empty:
        return alerts.copy()
    grouped = alerts.groupby("alert_id", sort=False)
    return pd.DataFrame(
        {
            "symbol": grouped["symbol"].first(),
            "kind": grouped["kind"].first(),
            "ts": grouped["ts"].min(),
            "window_start": grouped["window_start"].min(),
            "window_end": grouped["window_end"].max(),
            "score": grouped["score"].max(),
        }
    ).reset_index()


# --- metrics ----------------------------------------------------------------------------------------------
def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def kind_metrics(
    truth: pd.DataFrame, alerts: pd.DataFrame, kind: str, tolerance_ms: int = DEFAULT_TOLERANCE_MS
) -> KindMetrics:
    """Metrics of one kind: ``alerts`` are collapsed alerts *of that kind* (their kind column is ignored)."""
    episodes = truth[truth["kind"] == kind]
    n_alerts = len(alerts)
    alert_hit = np.zeros(n_alerts, dtype=bool)
    delays: list[float] = []
    detected = 0
    by_symbol: dict[str, pd.DataFrame] = (
        {str(s): g for s, g in alerts.groupby("symbol", sort=False)} if n_alerts else {}
    )
    positions = {s: alerts.index.get_indexer(g.index) for s, g in by_symbol.items()}
    for symbol, start, end in _episode_rows(episodes):
        group = by_symbol.get(symbol)
        if group is None:
            continue
        lo, hi = start - tolerance_ms, end + tolerance_ms
        overlap = (group["window_end"].to_numpy() >= lo) & (group["window_start"].to_numpy() <= hi)
        if overlap.any():
            detected += 1
            alert_hit[positions[symbol][overlap]] = True
            first = int(group["ts"].to_numpy()[overlap].min())
            delays.append(max(0.0, (first - start) / 1000.0))
    recall = detected / len(episodes) if len(episodes) else math.nan
    true_alerts = int(alert_hit.sum())
    precision = true_alerts / n_alerts if n_alerts else (math.nan if len(episodes) == 0 else 0.0)
    f1 = _f1(precision, recall) if not (math.isnan(precision) or math.isnan(recall)) else math.nan
    return KindMetrics(
        kind=kind,
        episodes=len(episodes),
        detected=detected,
        alerts=n_alerts,
        true_alerts=true_alerts,
        precision=precision,
        recall=recall,
        f1=f1,
        delay_median_s=float(np.median(delays)) if delays else math.nan,
        delay_p90_s=float(np.percentile(delays, 90)) if delays else math.nan,
    )


def false_alert_rate(alerts: pd.DataFrame, clean_symbols: Sequence[str], sessions: int) -> float:
    if not clean_symbols or sessions <= 0:
        return math.nan
    on_clean = alerts["symbol"].isin(list(clean_symbols)).sum() if len(alerts) else 0
    return float(on_clean) / (len(clean_symbols) * sessions)


def score_auc(bar_scores: pd.DataFrame, truth: pd.DataFrame, score_column: str = "score") -> dict[str, float]:
    """ROC-AUC and PR-AUC of per-bar scores (columns symbol, start, end, ``score_column``) against episodes."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = bars_in_episodes(bar_scores, truth)
    scores = bar_scores[score_column].to_numpy(dtype=np.float64)
    keep = np.isfinite(scores)
    y, s = labels[keep], scores[keep]
    if y.all() or not y.any():
        return {"roc_auc": math.nan, "pr_auc": math.nan, "positives": float(y.sum()), "bars": float(len(y))}
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "positives": float(y.sum()),
        "bars": float(len(y)),
    }


def bars_in_episodes(bars: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Whether each bar ``[start, end)`` overlaps an episode of its symbol."""
    labels = np.zeros(len(bars), dtype=bool)
    starts = bars["start"].to_numpy(dtype=np.int64)
    ends = bars["end"].to_numpy(dtype=np.int64)
    symbols = bars["symbol"].to_numpy()
    for symbol, start, end in _episode_rows(truth):
        labels |= (symbols == symbol) & (ends > start) & (starts <= end)
    return labels


def _episode_rows(episodes: pd.DataFrame) -> list[tuple[str, int, int]]:
    return list(
        zip(
            episodes["symbol"].astype(str).tolist(),
            episodes["start"].astype("int64").tolist(),
            episodes["end"].astype("int64").tolist(),
            strict=True,
        )
    )


def evaluate(
    truth: pd.DataFrame,
    alerts: pd.DataFrame,
    *,
    universe: Sequence[str] = (),
    sessions: int = 1,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
    baseline_alerts: pd.DataFrame | None = None,
    bar_scores: Mapping[str, pd.DataFrame] | None = None,
) -> EvaluationResult:
    """Everything in the module docstring; ``universe`` = every symbol of the input (clean ones included)."""
    collapsed = collapse(alerts)
    kinds = [
        kind_metrics(truth, collapsed[collapsed["kind"] == str(k)].reset_index(drop=True), str(k), tolerance_ms)
        for k in EVALUATED_KINDS
    ]
    result = EvaluationResult(kinds=kinds, sessions=sessions)
    clean = sorted(set(universe) - set(truth["symbol"]))
    result.clean_symbols = len(clean)
    result.false_alerts_per_symbol_day = false_alert_rate(collapsed, clean, sessions)
    evaluated = collapsed[collapsed["kind"].isin([str(k) for k in EVALUATED_KINDS])]
    result.false_alerts_per_symbol_day_evaluated_kinds = false_alert_rate(evaluated, clean, sessions)
    for kind in sorted(set(collapsed["kind"]) - {str(k) for k in EVALUATED_KINDS}):
        rows = collapsed[collapsed["kind"] == kind]
        any_kind = kind_metrics(truth.assign(kind=kind), rows.reset_index(drop=True), kind, tolerance_ms)
        result.other_kinds[kind] = {
            "alerts": float(len(rows)),
            "overlapping_an_episode": float(any_kind.true_alerts),
            "per_clean_symbol_day": false_alert_rate(rows, clean, sessions),
        }
    if baseline_alerts is not None:
        base = collapse(baseline_alerts)
        result.baseline = [kind_metrics(truth, base, str(k), tolerance_ms) for k in EVALUATED_KINDS]
        result.baseline_false_alerts_per_symbol_day = false_alert_rate(base, clean, sessions)
    for name, frame in (bar_scores or {}).items():
        result.score_auc[name] = score_auc(frame, truth)
    return result


def seed_baseline(feats: pd.DataFrame) -> tuple[pd.DataFrame, FloatArray]:
    """The seed 003 method as an alerting detector: K-means k = 2 on price and volume change, fitted
    in-sample; a bar in the small far cluster alerts (through the same alert policy as ours). Returns the
    alerts and the per-bar score."""
    from tapewatch.detectors.alerting import AlertPolicy, Hit
    from tapewatch.detectors.kmeans import BASELINE_FEATURES, KMeansParams, train

    baseline = train(feats, BASELINE_FEATURES, KMeansParams(k_min=2, k_max=2))
    scored = baseline.score_frame(feats)
    flagged = baseline.abnormal[scored.cluster]
    alerts: list[Alert] = []
    policies: dict[str, AlertPolicy] = {}
    symbols = feats["symbol"].astype(str).tolist()
    times = feats["ts"].astype("int64").tolist()
    for i in np.flatnonzero(flagged).tolist():
        symbol, ts = symbols[i], times[i]
        policy = policies.setdefault(symbol, AlertPolicy(symbol, "baseline"))
        hit = Hit(AlertKind.KMEANS_OUTLIER, ts, ts - 60_000, ts, max(0.5, float(scored.score[i])), {}, "baseline")
        alerts.extend(policy.on_hit(hit))
    return alerts_frame(alerts), np.asarray(scored.score, dtype=np.float64)


# --- report -----------------------------------------------------------------------------------------------
def fmt(value: float, digits: int = 3) -> str:
    """A metric for a table: ``–`` for NaN."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def markdown_report(result: EvaluationResult, title: str = "Detection evaluation", charts: Sequence[str] = ()) -> str:
    lines = [f"# {title}", ""]
    lines += [
        "Matching: an alert matches an episode of the same symbol and kind when its window overlaps the "
        "episode ± the tolerance; re-emissions of one alert_id count once (first ts for the delay).",
        "",
        "| kind | episodes | detected | alerts | precision | recall | F1 | median delay s | p90 delay s "
        "| baseline P | baseline R | baseline F1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = {m.kind: m for m in result.baseline}
    for m in result.kinds:
        b = base.get(m.kind)
        lines.append(
            f"| {m.kind} | {m.episodes} | {m.detected} | {m.alerts} | {fmt(m.precision)} | {fmt(m.recall)} "
            f"| {fmt(m.f1)} | {fmt(m.delay_median_s, 1)} | {fmt(m.delay_p90_s, 1)} "
            f"| {fmt(b.precision) if b else '–'} | {fmt(b.recall) if b else '–'} | {fmt(b.f1) if b else '–'} |"
        )
    lines += [
        "",
        f"Clean symbols: {result.clean_symbols}, sessions: {result.sessions}. False alerts per clean symbol-day: "
        f"{fmt(result.false_alerts_per_symbol_day, 3)} (all kinds), "
        f"{fmt(result.false_alerts_per_symbol_day_evaluated_kinds, 3)} (the five manipulation kinds); "
        f"baseline {fmt(result.baseline_false_alerts_per_symbol_day, 3)}.",
        "",
    ]
    if result.other_kinds:
        lines += ["| other kind | alerts | overlapping an episode | per clean symbol-day |", "|---|---|---|---|"]
        for kind, row in result.other_kinds.items():
            lines.append(
                f"| {kind} | {int(row['alerts'])} | {int(row['overlapping_an_episode'])} "
                f"| {fmt(row['per_clean_symbol_day'])} |"
            )
        lines.append("")
    if result.score_auc:
        lines += ["| per-bar score | ROC-AUC | PR-AUC | positive bars | bars |", "|---|---|---|---|---|"]
        for name, row in result.score_auc.items():
            lines.append(
                f"| {name} | {fmt(row['roc_auc'])} | {fmt(row['pr_auc'])} | {int(row['positives'])} "
                f"| {int(row['bars'])} |"
            )
        lines.append("")
    lines += [f"- {note}" for note in result.notes]
    lines += ["", *(f"![{Path(c).stem}]({Path(c).name})" for c in charts)]
    return "\n".join(lines) + "\n"


def plot_symbol(
    path: Path, symbol: str, prices: pd.DataFrame, truth: pd.DataFrame, alerts: pd.DataFrame, title: str = ""
) -> Path:
    """Price (``ts``, ``price``) with episodes shaded and alerts marked, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4))
    t0 = int(prices["ts"].min()) if len(prices) else 0
    minutes = (prices["ts"].to_numpy(dtype=np.int64) - t0) / 60_000
    ax.plot(minutes, prices["price"].to_numpy(dtype=np.float64), lw=0.7, color="black")
    mine = truth[truth["symbol"] == symbol]
    for kind, start, end in zip(mine["kind"].tolist(), mine["start"].tolist(), mine["end"].tolist(), strict=True):
        ax.axvspan((start - t0) / 60_000, (end - t0) / 60_000, color=KIND_COLOURS.get(kind, "gray"), alpha=0.2)
    seen: set[str] = set()
    flagged = alerts[alerts["symbol"] == symbol]
    for kind, ts in zip(flagged["kind"].tolist(), flagged["ts"].tolist(), strict=True):
        colour = KIND_COLOURS.get(kind, "gray")
        ax.axvline((ts - t0) / 60_000, color=colour, lw=1.2, ls="--", label=None if kind in seen else kind)
        seen.add(kind)
    ax.set_xlabel("minutes since first tick")
    ax.set_ylabel("price")
    ax.set_title(title or f"{symbol}: episodes shaded, alerts dashed")
    if seen:
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_f1(path: Path, result: EvaluationResult) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [m.kind for m in result.kinds]
    ours = [0.0 if math.isnan(m.f1) else m.f1 for m in result.kinds]
    base = [0.0 if math.isnan(m.f1) else m.f1 for m in result.baseline] if result.baseline else [0.0] * len(kinds)
    x = np.arange(len(kinds))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(x - 0.2, ours, 0.4, label="detectors")
    ax.bar(x + 0.2, base, 0.4, label="seed baseline (k=2)")
    ax.set_xticks(x, kinds, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
