"""The calibrated hit model (:mod:`tapewatch.detectors.hit_model`): its training on labelled sessions and its
leave-one-generator-out report.

A **candidate** is one alert the rules raised (its first emission: what the analyst sees first), read as
:func:`tapewatch.detectors.hit_model.candidate_features`; its label is whether it overlaps a labelled episode of its
kind on its symbol (within the evaluation's tolerance). The model is scikit-learn's gradient boosting on those features,
exported to arrays, and an isotonic calibration fitted on out-of-fold predictions (so the probabilities are not the
training fit's optimism).

**Leave one generator out**: trained on every session of one generator, judged on the other's, against the rules
on the same alerts. The model keeps an alert when its probability is at least :data:`KEEP_AT` (more likely
manipulation than not); the rules keep every alert. Judged per kind by F1 (the episodes' recall and the alerts'
precision, :func:`tapewatch.evaluation.judge.kind_metrics`), by false alerts per clean symbol-day and by the legitimate
look-alikes alerted. A kind is kept for the model only where the model's F1 beat the rules' in both directions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from tapewatch.detectors.hit_model import MISSING, SCORED_KINDS, HitModel, Trees, candidate_features
from tapewatch.detectors.patterns.params import PatternParams
from tapewatch.evaluation import judge as ev
from tapewatch.evaluation import matrix as em
from tapewatch.evaluation.lookalikes import lookalike_alerts
from tapewatch.evaluation.lookback import detect_frames, tick_input
from tapewatch.records import Alert

#: the probability from which the model keeps an alert
KEEP_AT: Final = 0.5
#: true and false candidates a kind needs in the training sessions before the model scores it
MIN_EACH: Final = 5
SCORED_NAMES: Final = tuple(str(kind) for kind in SCORED_KINDS)
META = ("generator", "feed", "seed", "alert_id", "symbol", "kind", "ts", "window_start", "window_end", "score", "label")


@dataclass(frozen=True)
class LabelledSession:
    """One generated session as detection saw it: its alerts, labels, look-alikes and symbols."""

    generator: str
    feed: str
    seed: int
    alerts: Sequence[Alert]
    truth: pd.DataFrame
    lookalikes: pd.DataFrame
    symbols: Sequence[str]
    params: PatternParams

    @property
    def prefix(self) -> str:
        return f"{self.generator}/{self.feed}/{self.seed}/"

    def clean_symbols(self) -> list[str]:
        manipulated = set(self.truth["symbol"].astype(str))
        return [self.prefix + s for s in self.symbols if s not in manipulated]


def _labels(candidates: pd.DataFrame, truth: pd.DataFrame, tolerance_ms: int) -> npt.NDArray[np.bool_]:
    """Whether each candidate overlaps an episode of its kind on its symbol (windows ± the tolerance)."""
    if candidates.empty or truth.empty:
        return np.zeros(len(candidates), dtype=bool)
    pairs = candidates.reset_index().merge(truth[["symbol", "kind", "start", "end"]], on=["symbol", "kind"])
    hit = (pairs["window_end"] >= pairs["start"] - tolerance_ms) & (
        pairs["window_start"] <= pairs["end"] + tolerance_ms
    )
    matched = set(pairs.loc[hit, "index"])
    return np.array([i in matched for i in range(len(candidates))], dtype=bool)


def candidates(session: LabelledSession, tolerance_ms: int = ev.DEFAULT_TOLERANCE_MS) -> pd.DataFrame:
    """One row per alert of a scored kind: its first emission's features, its best score, its label; symbols
    prefixed by generator, feed and seed so that sessions pool."""
    first: dict[str, Alert] = {}
    best: dict[str, float] = {}
    window: dict[str, tuple[int, int]] = {}
    for alert in session.alerts:
        if alert.kind not in SCORED_KINDS:
            continue
        first.setdefault(alert.alert_id, alert)
        best[alert.alert_id] = max(best.get(alert.alert_id, 0.0), alert.score)
        lo, hi = window.get(alert.alert_id, (alert.window_start, alert.window_end))
        window[alert.alert_id] = (min(lo, alert.window_start), max(hi, alert.window_end))
    prints = session.params.tape.prints or "trades"
    rows = []
    for alert_id, alert in first.items():
        features = candidate_features(alert.kind, alert.evidence, alert.score, prints, session.params)
        meta = {
            "alert_id": session.prefix + alert_id,
            "symbol": alert.symbol,
            "kind": str(alert.kind),
            "ts": alert.ts,
            "window_start": window[alert_id][0],
            "window_end": window[alert_id][1],
            "score": best[alert_id],
        }
        rows.append({**features, **meta})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(META))
    frame["label"] = _labels(frame, session.truth, tolerance_ms)
    frame["symbol"] = session.prefix + frame["symbol"].astype(str)
    return frame.assign(generator=session.generator, feed=session.feed, seed=session.seed)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return sorted(c for c in frame.columns if c not in META)


def _trees(model: GradientBoostingClassifier, x0: npt.NDArray[np.float64]) -> Trees:
    """The fitted ensemble as arrays; the bias is the prior's log-odds (what the first row's decision leaves
    after its trees)."""
    rate = float(model.learning_rate)
    parts = [stage[0].tree_ for stage in model.estimators_]
    offsets = np.cumsum([0, *[tree.node_count for tree in parts[:-1]]])

    def child(links: npt.NDArray[np.int64], offset: int) -> npt.NDArray[np.int64]:
        out: npt.NDArray[np.int64] = np.where(links >= 0, links + offset, -1).astype(np.int64)
        return out

    trees = Trees(
        feature=np.concatenate([np.where(t.children_left >= 0, t.feature, -1) for t in parts]).astype(np.int64),
        threshold=np.concatenate([t.threshold for t in parts]).astype(np.float64),
        left=np.concatenate([child(t.children_left, int(o)) for t, o in zip(parts, offsets, strict=True)]),
        right=np.concatenate([child(t.children_right, int(o)) for t, o in zip(parts, offsets, strict=True)]),
        value=np.concatenate([t.value[:, 0, 0] * rate for t in parts]).astype(np.float64),
        roots=offsets.astype(np.int64),
        bias=0.0,
    )
    raw0 = float(model.decision_function(x0[None, :])[0])
    return replace(trees, bias=float(raw0 - trees.paths(x0)[0]))


def learnable(frame: pd.DataFrame, kinds: Sequence[str] = SCORED_NAMES) -> list[str]:
    """The kinds with at least :data:`MIN_EACH` true and as many false candidates: a kind the training sessions
    never show both ways cannot be learnt (a model would learn "this kind is always false" from a generator
    whose detectors never catch it)."""
    counts = label_counts(frame)
    return [k for k in kinds if min(counts.get(k, (0, 0))) >= MIN_EACH]


def fit(frame: pd.DataFrame, kinds: Sequence[str] = SCORED_NAMES, seed: int = 0) -> HitModel:
    """The calibrated model of a candidates frame (both labels must be present); it scores the ``kinds`` it can
    learn from the frame (:func:`learnable`)."""
    names = feature_columns(frame)
    x = frame[names].astype(float).fillna(MISSING).to_numpy()
    y = frame["label"].astype(bool).to_numpy()
    # two of each at least: the calibration's cross-validation trains on folds that must each hold both labels
    if min(int(y.sum()), int((~y).sum())) < 2:
        raise ValueError(
            f"training needs at least two true and two false alerts; these sessions raised {int(y.sum())} true and "
            f"{int((~y).sum())} false: give more symbols, minutes or seeds"
        )

    def booster() -> GradientBoostingClassifier:
        return GradientBoostingClassifier(
            n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8, min_samples_leaf=5, random_state=seed
        )

    folds = StratifiedKFold(n_splits=max(2, min(5, int(y.sum()), int((~y).sum()))), shuffle=True, random_state=seed)
    out_of_fold = cross_val_predict(booster(), x, y, cv=folds, method="decision_function")
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(out_of_fold, y)
    model = booster().fit(x, y)
    return HitModel(
        feature_names=tuple(names),
        trees=_trees(model, x[0]),
        calibration_x=np.asarray(iso.X_thresholds_, dtype=np.float64),
        calibration_y=np.asarray(iso.y_thresholds_, dtype=np.float64),
        kinds=frozenset(learnable(frame, kinds)),
    )


def probabilities(model: HitModel, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    names = [c for c in feature_columns(frame) if c in set(model.feature_names)]
    rows = frame[names].astype(float).to_dict("records")
    return np.array([model.probability({str(k): v for k, v in r.items() if not math.isnan(v)}) for r in rows])


@dataclass
class Judged:
    """One way of keeping alerts, judged on a generator's sessions."""

    f1: dict[str, float]
    precision: dict[str, float]
    recall: dict[str, float]
    false_alerts: float  # per clean symbol-day
    lookalikes: int
    lookalikes_alerted: int
    brier: float = math.nan


def judge(
    frame: pd.DataFrame,
    truth: pd.DataFrame,
    clean: Sequence[str],
    events: pd.DataFrame,
    keep: npt.NDArray[np.bool_],
) -> Judged:
    """Per-kind F1, false alerts on clean symbol-days, look-alikes alerted, for the candidates ``keep`` keeps."""
    kept = frame[keep].reset_index(drop=True)
    metrics = {kind: ev.kind_metrics(truth, kept[kept["kind"] == kind], kind) for kind in sorted(set(truth["kind"]))}
    rates = lookalike_alerts(truth, events, kept, ev.DEFAULT_TOLERANCE_MS) if len(events) else []
    return Judged(
        f1={k: m.f1 for k, m in metrics.items()},
        precision={k: m.precision for k, m in metrics.items()},
        recall={k: m.recall for k, m in metrics.items()},
        # each prefixed symbol is one symbol-day (one session)
        false_alerts=ev.false_alert_rate(kept, list(clean), 1),
        lookalikes=sum(r.events for r in rates),
        lookalikes_alerted=sum(r.alerted for r in rates),
    )


def collect(
    spec: em.MatrixSpec, seeds: Sequence[int], progress: Callable[[str], None] | None = None
) -> list[LabelledSession]:
    """Every (feed, seed) session of ``spec``'s generator, detected as ``detect file`` would."""
    sessions = []
    for seed in seeds:
        for feed in spec.feeds:
            if progress is not None:
                progress(f"{spec.generator} {feed} seed {seed}")
            ticks, truth, events = em.session(spec, feed, seed)
            detected = detect_frames(tick_input(ticks), None, flow_config=spec.flow, feeds=spec.profiles)
            params = PatternParams().for_feed(spec.flow, spec.profiles(em.FEED_VENUES[feed]))
            sessions.append(
                LabelledSession(spec.generator, feed, seed, detected.alerts, truth, events, detected.symbols, params)
            )
    return sessions


@dataclass
class Pool:
    """Sessions pooled: their candidates, episodes, look-alikes and clean symbols, all prefixed."""

    candidates: pd.DataFrame
    truth: pd.DataFrame
    lookalikes: pd.DataFrame
    clean: list[str]

    @classmethod
    def of(cls, sessions: Sequence[LabelledSession]) -> Pool:
        def prefixed(frame: pd.DataFrame, s: LabelledSession) -> pd.DataFrame:
            return frame.assign(symbol=s.prefix + frame["symbol"].astype(str))

        return cls(
            candidates=pd.concat([candidates(s) for s in sessions], ignore_index=True),
            truth=pd.concat([prefixed(s.truth, s) for s in sessions], ignore_index=True),
            lookalikes=pd.concat([prefixed(s.lookalikes, s) for s in sessions], ignore_index=True),
            clean=[c for s in sessions for c in s.clean_symbols()],
        )

    def judge(self, keep: npt.NDArray[np.bool_]) -> Judged:
        return judge(self.candidates, self.truth, self.clean, self.lookalikes, keep)


@dataclass
class Direction:
    """The model trained on one generator, judged on another, beside the rules on the same alerts."""

    trained_on: str
    judged_on: str
    candidates: int
    true_candidates: int
    rules: Judged
    model: Judged
    #: the kinds the model could learn from its training sessions (the others kept the rules' score)
    scored: list[str] = field(default_factory=list)
    #: kind → (true, false) alerts in the training sessions
    training: dict[str, tuple[int, int]] = field(default_factory=dict)

    def beats(self, kind: str) -> bool:
        ours, theirs = self.model.f1.get(kind, math.nan), self.rules.f1.get(kind, math.nan)
        return kind in self.scored and not math.isnan(ours) and not math.isnan(theirs) and ours > theirs


def one_direction(train: Pool, test: Pool, trained_on: str, judged_on: str, seed: int = 0) -> Direction:
    """The model fitted on ``train``, judged on ``test``: the kinds it scores by its probability (kept from
    :data:`KEEP_AT`), the others by the rules, as a detector with it would."""
    model = fit(train.candidates, seed=seed)
    frame = test.candidates
    rule_score = frame["score"].to_numpy(dtype=float)
    scored = frame["kind"].isin(sorted(model.kinds)).to_numpy() if len(frame) else np.zeros(0, dtype=bool)
    p = np.where(scored, probabilities(model, frame), rule_score) if len(frame) else np.zeros(0)
    y = frame["label"].to_numpy(dtype=float)
    rules = test.judge(np.ones(len(frame), dtype=bool))
    rules.brier = float(np.mean((rule_score - y) ** 2)) if len(frame) else math.nan
    ours = test.judge(~scored | (p >= KEEP_AT))
    ours.brier = float(np.mean((p - y) ** 2)) if len(frame) else math.nan
    return Direction(
        trained_on,
        judged_on,
        len(frame),
        int(y.sum()),
        rules,
        ours,
        sorted(model.kinds),
        label_counts(train.candidates),
    )


def label_counts(frame: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """kind → (true, false) candidates."""
    counts = frame.groupby(["kind", "label"]).size() if len(frame) else pd.Series(dtype=int)
    kinds = sorted(set(frame["kind"])) if len(frame) else []
    return {k: (int(counts.get((k, True), 0)), int(counts.get((k, False), 0))) for k in kinds}


def kept_kinds(directions: Sequence[Direction]) -> list[str]:
    """The kinds where the model beat the rules in every direction that judged them."""
    kinds = sorted({k for d in directions for k in d.rules.f1})
    return [k for k in kinds if all(d.beats(k) for d in directions if k in d.rules.f1)]
