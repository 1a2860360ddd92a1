"""A calibrated probability that a rule's alert is manipulation: P(manipulation | evidence, context).

The pattern rules are the candidate generators: each alert they raise carries its evidence (what fired, against
which bound). :class:`HitModel` reads that evidence as a feature vector (:func:`candidate_features`: the kind, the
rule that fired, the rule's strength, the feed's prints, and every evidence number of the kind's rules, with its
margin over the rule's bound where there is one) and returns a calibrated probability, plus the features that moved
it most (:meth:`HitModel.contributions`).

The model is a boosted ensemble of regression trees on the log-odds, stored as plain arrays (no pickled code:
:mod:`tapewatch.artifacts`), then an isotonic map from log-odds to probability fitted on out-of-fold predictions.
Contributions are the trees' path attributions (Saabas): each split's change of the node value is credited to its
feature, so the bias and the contributions add up to the log-odds exactly.

Training and the leave-one-generator-out report are offline (:mod:`tapewatch.training.hit_model`); this module only
scores. It is kept only for the kinds where it beat the rules on a generator it was not trained on
(:attr:`HitModel.kinds`): the others keep the rules' score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from tapewatch.artifacts import Artifact, ArtifactStore, data_hash
from tapewatch.detectors.alerting import MEDIUM_AT_MOST, Hit
from tapewatch.detectors.evidence import EvidenceValue
from tapewatch.detectors.patterns.explain import RULES, explain, rule_of
from tapewatch.detectors.patterns.params import PatternParams
from tapewatch.feeds import Prints
from tapewatch.records import AlertKind

ARTIFACT_KIND: Final = "hit-model"
ARTIFACT_NAME: Final = "hit-model"
#: bump when :func:`candidate_features` changes: an artifact of another feature set is refused
FEATURE_SET_VERSION: Final = "hit-features-v1"
#: the manipulation kinds a model may score (bursts and K-means outliers keep their rules)
SCORED_KINDS: Final[tuple[AlertKind, ...]] = (
    AlertKind.PUMP_AND_DUMP,
    AlertKind.SPOOFING,
    AlertKind.WASH_TRADING,
    AlertKind.MARKING_THE_CLOSE,
    AlertKind.MOMENTUM_IGNITION,
)
#: what stands for a missing number in the trees' inputs (below any real evidence value)
MISSING: Final = -1e12


def _number(value: EvidenceValue) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return float(value)
    return None


def candidate_features(
    kind: AlertKind | str, evidence: Mapping[str, EvidenceValue], score: float, prints: Prints, params: PatternParams
) -> dict[str, float]:
    """The named numbers the model reads for one alert: ``kind:<k>`` and ``rule:<name>`` indicators, the rule's
    ``score``, ``prints_trades`` (1 on a trade feed), each evidence number, and ``margin:<key>`` = value ÷ bound for
    every evidence value its rule compared with a non-zero bound (how far past its bound the rule fired)."""
    features: dict[str, float] = {
        f"kind:{kind}": 1.0,
        "score": float(score),
        "prints_trades": float(prints == "trades"),
    }
    rule = rule_of(kind, evidence)
    if rule is not None:
        features[f"rule:{rule.name}"] = 1.0
    for line in explain(kind, evidence, params):
        value = _number(line.value)
        if value is None or line.key == "hits":
            continue
        features[line.key] = value
        if line.threshold is not None and line.threshold != 0:
            features[f"margin:{line.key}"] = value / abs(line.threshold)
    return features


def feature_vocabulary() -> list[str]:
    """Every feature name :func:`candidate_features` can write for the scored kinds, sorted."""
    names = {"score", "prints_trades"} | {f"kind:{kind}" for kind in SCORED_KINDS}
    for rule in RULES:
        if rule.kind not in SCORED_KINDS:
            continue
        names.add(f"rule:{rule.name}")
        for key, declared in rule.keys.items():
            names.add(key)
            if declared.bound is not None:
                names.add(f"margin:{key}")
    return sorted(names)


@dataclass(frozen=True, slots=True)
class Trees:
    """A boosted ensemble as arrays, all trees' nodes concatenated: node ``i`` splits on ``feature[i]`` at
    ``threshold[i]`` (``x ≤ threshold`` goes ``left``), or is a leaf (``feature`` −1); ``value`` is every node's
    contribution to the log-odds (the learning rate applied); ``roots`` index each tree's first node."""

    feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float64]
    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    roots: npt.NDArray[np.int64]
    bias: float

    def paths(self, x: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        """(log-odds, per-feature contributions) of one input row."""
        contributions = np.zeros(len(x))
        total = self.bias
        feature, threshold, left, right, value = self.feature, self.threshold, self.left, self.right, self.value
        for root in self.roots.tolist():
            node = root
            total += value[node]
            while feature[node] >= 0:
                f = int(feature[node])
                child = int(left[node] if x[f] <= threshold[node] else right[node])
                contributions[f] += value[child] - value[node]
                node = child
            total += value[node] - value[root]
        return total, contributions


@dataclass(frozen=True, slots=True)
class HitModel:
    """The calibrated scorer of one artifact."""

    feature_names: tuple[str, ...]
    trees: Trees
    #: isotonic map from log-odds to probability: increasing knots
    calibration_x: npt.NDArray[np.float64]
    calibration_y: npt.NDArray[np.float64]
    #: the kinds it scores (where it beat the rules on the generator it was not trained on)
    kinds: frozenset[str]
    version: str = ""
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.calibration_x) == 0 or len(self.calibration_x) != len(self.calibration_y):
            raise ValueError("a hit model needs a non-empty calibration map of matching knots")
        object.__setattr__(self, "_index", {name: i for i, name in enumerate(self.feature_names)})

    def scores(self, kind: AlertKind | str) -> bool:
        return str(kind) in self.kinds

    def score(self, hit: Hit, params: PatternParams) -> Hit:
        """The hit scored by its calibrated probability (a kind this model does not score: unchanged), with the
        rule's own strength, the probability and its drivers added to the evidence. A rule's severity ceiling
        holds (a pump's run-up, an outlier of size alone, are medium at most): the model ranks within it."""
        if not self.scores(hit.kind):
            return hit
        features = candidate_features(hit.kind, hit.evidence, hit.score, params.tape.prints or "trades", params)
        p = self.probability(features)
        drivers = "; ".join(f"{name} {share:+.2f}" for name, share in self.contributions(features))
        ceiling = MEDIUM_AT_MOST if math.isclose(hit.score, MEDIUM_AT_MOST) else 1.0
        evidence = {
            **hit.evidence,
            "rule_score": hit.score,
            "p_manipulation": p,
            "score_drivers": drivers,
            "score_model": self.version,
        }
        return replace(hit, score=min(p, ceiling), evidence=evidence)

    def row(self, features: Mapping[str, float]) -> npt.NDArray[np.float64]:
        index = self._index
        x = np.full(len(self.feature_names), MISSING)
        for name, value in features.items():
            i = index.get(name)
            if i is not None:
                x[i] = value
        return x

    def probability(self, features: Mapping[str, float]) -> float:
        log_odds, _ = self.trees.paths(self.row(features))
        return float(np.interp(log_odds, self.calibration_x, self.calibration_y))

    def contributions(self, features: Mapping[str, float], top: int = 3) -> list[tuple[str, float]]:
        """The ``top`` features that moved the log-odds most, with their signed share of it."""
        _, contributions = self.trees.paths(self.row(features))
        order = np.argsort(-np.abs(contributions), kind="stable")[:top]
        return [(self.feature_names[i], round(float(contributions[i]), 3)) for i in order if contributions[i] != 0]

    # -- artifact ---------------------------------------------------------------------------------------------
    def to_artifact(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        manifest = {
            "kind": ARTIFACT_KIND,
            "feature_set_version": FEATURE_SET_VERSION,
            "feature_names": list(self.feature_names),
            "kinds": sorted(self.kinds),
            "bias": float(self.trees.bias),
        }
        t = self.trees
        weights: dict[str, npt.NDArray[Any]] = {
            "feature": t.feature,
            "threshold": t.threshold,
            "left": t.left,
            "right": t.right,
            "value": t.value,
            "roots": t.roots,
            "calibration_x": self.calibration_x,
            "calibration_y": self.calibration_y,
        }
        return manifest, weights

    def save(
        self, store: ArtifactStore, extra: Mapping[str, Any] | None = None, created: datetime | None = None
    ) -> Artifact:
        manifest, weights = self.to_artifact()
        hash_hex = data_hash(*weights.values())
        return store.save(ARTIFACT_NAME, {**manifest, **(extra or {})}, weights, hash_hex=hash_hex, created=created)

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> HitModel:
        m, w = artifact.manifest, artifact.weights
        trees = Trees(
            feature=w["feature"].astype(np.int64),
            threshold=w["threshold"].astype(np.float64),
            left=w["left"].astype(np.int64),
            right=w["right"].astype(np.int64),
            value=w["value"].astype(np.float64),
            roots=w["roots"].astype(np.int64),
            bias=float(m["bias"]),
        )
        return cls(
            feature_names=tuple(str(n) for n in m["feature_names"]),
            trees=trees,
            calibration_x=w["calibration_x"].astype(np.float64),
            calibration_y=w["calibration_y"].astype(np.float64),
            kinds=frozenset(str(k) for k in m["kinds"]),
            version=artifact.version,
        )

    @classmethod
    def load(cls, store: ArtifactStore, version: str = "latest") -> HitModel | None:
        """The published model (``None``: none published and ``version`` is ``latest``)."""
        if version == "latest" and store.latest_version(ARTIFACT_NAME) is None:
            return None
        artifact = store.load(ARTIFACT_NAME, version, kind=ARTIFACT_KIND, feature_set_version=FEATURE_SET_VERSION)
        return cls.from_artifact(artifact)
