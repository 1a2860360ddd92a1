"""K-means anomaly scoring of feature vectors: training (scikit-learn), labelling, calibration and scoring.

The seed system clustered per-minute ``price_change_pct`` and ``volume_change_pct`` and called the small, far
clusters abnormal. This module keeps that idea as one signal, on a richer vector (:data:`KMEANS_FEATURES`):

1. **Robust scaling** — ``z = (x - median) / IQR`` per feature (IQR 0 → the standard deviation, then 1), so a
   handful of extreme minutes does not set the scale. A missing value (warm-up ``None``/NaN) is imputed at the
   median (z = 0). Fitting sees ``z`` clipped to ±:attr:`KMeansParams.fit_clip` so centroids are not dragged
   by single outliers; scoring uses the unclipped ``z``.
2. **k by silhouette** — k-means++ for every k in ``k_min..k_max``; the k with the best silhouette (on a
   sample of at most ``silhouette_sample`` rows) wins; ties go to the smaller k.
3. **Labelling** — a cluster is *normal* when it holds at least ``min_mass`` of the rows, or when its centroid
   is within ``far_factor`` × (median member distance of the normal clusters) of a normal centroid; the
   largest cluster is always normal. The others are *abnormal*: small and far, as in the seed system.
4. **Score** — ``distance`` = Euclidean distance (scaled space) to the nearest *normal* centroid;
   ``score`` = its empirical CDF over the training rows (a quantile grid stored in the artifact), so
   ``score = 0.999`` means "farther than 99.9 % of the training minutes". Beyond the largest training distance
   ``d_max`` the score keeps rising as ``1 - (1 - p_last) · d_max / d`` so rankings stay strict.
5. **Venues** — the artifact records the venues of the training rows and their feed shapes
   (:mod:`tapewatch.detectors.model_venues`); a model scores only those venues (or ones the user lists for it).
6. **Explanation** — each feature's share of the squared distance to that centroid; the largest shares are the
   ``top_features`` of a :class:`tapewatch.records.Score`.

Two engines write the same artifact (:mod:`tapewatch.artifacts`): :func:`train` (scikit-learn, default) and
:mod:`tapewatch.training.spark_kmeans` (Spark MLlib), which shares :func:`finish_model` for labelling and calibration.
Batch scoring (:meth:`KMeansModel.score_matrix`) is vectorised numpy; :meth:`KMeansModel.score_values` scores
one wire ``Features.values`` mapping (the stream path) with the same arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from tapewatch.artifacts import Artifact, ArtifactError, ArtifactStore, data_hash
from tapewatch.detectors.features import FEATURE_SET_VERSION
from tapewatch.detectors.model_venues import MANIFEST_KEY as TRAINED_ON_KEY
from tapewatch.detectors.model_venues import TrainedOn
from tapewatch.errors import TapewatchError
from tapewatch.feeds import FeedProfile

FloatArray = npt.NDArray[np.float64]

MODEL_KIND: Final = "kmeans"
DEFAULT_MODEL_NAME: Final = "kmeans"
#: the default vector: returns over several horizons, volume surprise, volatility, VWAP and band position
KMEANS_FEATURES: Final[tuple[str, ...]] = (
    "ret_1",
    "ret_5",
    "price_change_pct",
    "volume_change_pct",
    "volume_z_30",
    "rvol_30",
    "vwap_dev",
    "boll_pctb_20",
    "mom_10",
)
#: the seed system's vector (the baseline to beat)
BASELINE_FEATURES: Final[tuple[str, ...]] = ("price_change_pct", "volume_change_pct")
#: calibration grid: dense in the upper tail, where alerts live
CALIBRATION_PROBS: Final = np.unique(
    np.concatenate([np.linspace(0.0, 0.99, 100), np.linspace(0.99, 0.999, 10), np.linspace(0.999, 1.0, 11)])
)
TOP_FEATURES: Final = 3


class FeatureError(TapewatchError, ValueError):
    """A feature vector that cannot be scored (an infinite value, a wrong shape)."""


@dataclass(frozen=True, slots=True)
class KMeansParams:
    k_min: int = 2
    k_max: int = 4
    min_mass: float = 0.05
    far_factor: float = 3.0
    fit_clip: float = 20.0
    silhouette_sample: int = 5_000
    seed: int = 0
    n_init: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.k_min <= self.k_max:
            raise ValueError("need 1 ≤ k_min ≤ k_max")


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """Scores of n vectors: nearest cluster, distance to the nearest normal centroid, calibrated score."""

    cluster: npt.NDArray[np.int64]
    distance: FloatArray
    score: FloatArray
    #: (n, d) each feature's share of the squared distance
    shares: FloatArray


@dataclass(frozen=True, slots=True)
class ScoredVector:
    cluster: int
    distance: float
    score: float
    top_features: list[tuple[str, float]]


@dataclass
class KMeansModel:
    """A trained scorer: the robust scaler, the centroids (scaled space), which clusters are abnormal and the
    calibration of distances into scores. :func:`train` (scikit-learn) and :mod:`tapewatch.training.spark_kmeans` make
    one through :func:`finish_model`; :meth:`save` / :meth:`load` keep it as a versioned artifact.

    Four hundred scaled training minutes: a large cluster at the origin and a small one far away, which is
    labelled abnormal. Scores measure the distance to the nearest *normal* centroid, as a quantile of the
    training minutes' distances:

    >>> rng = np.random.default_rng(0)
    >>> z = np.vstack([rng.normal(0.0, 1.0, (388, 2)), rng.normal(8.0, 0.5, (12, 2))])
    >>> model = finish_model(
    ...     ("ret_1", "volume_z_30"), center=np.zeros(2), scale=np.array([0.001, 1.0]),
    ...     centroids=np.array([[0.0, 0.0], [8.0, 8.0]]), masses=np.array([388, 12]) / 400,
    ...     sample_z=z, silhouette=0.8, params=KMeansParams(),
    ... )
    >>> model.abnormal.tolist()
    [False, True]
    >>> usual = model.score_values({"ret_1": 0.0005, "volume_z_30": 0.5})
    >>> usual.cluster, round(usual.distance, 3), round(usual.score, 2)
    (0, 0.707, 0.22)
    >>> surprise = model.score_values({"ret_1": 0.0, "volume_z_30": 4.0})  # the volume alone explains it
    >>> round(surprise.score, 3), surprise.top_features
    (0.969, [('volume_z_30', 1.0)])
    >>> like_the_far_cluster = model.score_values({"ret_1": 0.008, "volume_z_30": 8.0})
    >>> like_the_far_cluster.cluster, round(like_the_far_cluster.distance, 2), round(like_the_far_cluster.score, 3)
    (1, 11.31, 0.991)
    >>> model.score_values({"ret_1": 0.02, "volume_z_30": 20.0}).score > 0.999  # beyond every training minute
    True
    >>> model.score_values({"ret_1": None, "volume_z_30": 0.5}).distance  # a warm-up gap is imputed at the median
    0.5
    >>> model.score_values({"ret_1": float("inf"), "volume_z_30": 0.5})
    Traceback (most recent call last):
    ...
    tapewatch.detectors.kmeans.FeatureError: feature ret_1 is infinite
    """

    feature_names: tuple[str, ...]
    center: FloatArray
    scale: FloatArray
    centroids: FloatArray  # (k, d) in scaled space
    abnormal: npt.NDArray[np.bool_]  # (k,)
    masses: FloatArray  # (k,) fraction of training rows
    calib_distance: FloatArray  # distances at CALIBRATION_PROBS
    calib_prob: FloatArray
    silhouette: float
    version: str = "unsaved"
    info: dict[str, Any] = field(default_factory=dict)
    #: the artifact name (the key of ``TAPEWATCH_KMEANS_EXTRA_VENUES``)
    name: str = DEFAULT_MODEL_NAME
    #: venues and feed shapes of the training data; None = unknown (an artifact saved before they were
    #: recorded): such a model scores no venue unless one is listed for it (:mod:`tapewatch.detectors.model_venues`)
    trained_on: TrainedOn | None = None

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    # -- scoring -----------------------------------------------------------------------------------
    def scale_matrix(self, x: npt.ArrayLike) -> FloatArray:
        """Robust-scaled copy of ``x`` (n, d); NaN → 0 (the median); ±inf raises :class:`FeatureError`."""
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != len(self.feature_names):
            raise FeatureError(f"expected (n, {len(self.feature_names)}) feature matrix, got shape {arr.shape}")
        if np.isinf(arr).any():
            col = int(np.flatnonzero(np.isinf(arr).any(axis=0))[0])
            raise FeatureError(f"feature {self.feature_names[col]} is infinite")
        z = (arr - self.center) / self.scale
        return np.nan_to_num(z, nan=0.0)

    def calibrate(self, distance: FloatArray) -> FloatArray:
        """The training distances' CDF up to its last quantile below 1, then a tail ``1 - (1 - p) d_p / d``
        that starts where the CDF stops: continuous and monotone, so a farther vector never scores lower (the
        tail used to start from the maximum's distance with the previous quantile's probability, a drop)."""
        if len(self.calib_prob) < 2:
            return np.clip(np.interp(distance, self.calib_distance, self.calib_prob), 0.0, 1.0)
        d_tail, p_tail = float(self.calib_distance[-2]), float(self.calib_prob[-2])
        score = np.interp(distance, self.calib_distance[:-1], self.calib_prob[:-1])
        beyond = distance > d_tail
        if beyond.any() and d_tail > 0:
            score[beyond] = 1.0 - (1.0 - p_tail) * d_tail / distance[beyond]
        return np.clip(score, 0.0, 1.0)

    def score_matrix(self, x: npt.ArrayLike) -> ScoredBatch:
        z = self.scale_matrix(x)
        diff_all = z[:, None, :] - self.centroids[None, :, :]
        sq_all = np.einsum("nkd,nkd->nk", diff_all, diff_all)
        cluster = np.argmin(sq_all, axis=1).astype(np.int64)
        normal = np.flatnonzero(~self.abnormal)
        nearest_normal = normal[np.argmin(sq_all[:, normal], axis=1)]
        diff = z - self.centroids[nearest_normal]
        sq = diff * diff
        total = sq.sum(axis=1)
        distance = np.sqrt(total)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(total[:, None] > 0, sq / total[:, None], 0.0)
        return ScoredBatch(cluster, distance, self.calibrate(distance), shares)

    def matrix(self, values: Mapping[str, float | None]) -> FloatArray:
        """One wire ``Features.values`` mapping as a (1, d) row (missing/None → NaN)."""
        row = [values.get(name) for name in self.feature_names]
        return np.array([[np.nan if v is None else float(v) for v in row]], dtype=np.float64)

    def score_values(self, values: Mapping[str, float | None]) -> ScoredVector:
        batch = self.score_matrix(self.matrix(values))
        shares = batch.shares[0]
        order = np.argsort(-shares, kind="stable")[:TOP_FEATURES]
        top = [(self.feature_names[i], round(float(shares[i]), 6)) for i in order if shares[i] > 0]
        return ScoredVector(int(batch.cluster[0]), float(batch.distance[0]), float(batch.score[0]), top)

    def score_frame(self, features: pd.DataFrame) -> ScoredBatch:
        missing = [name for name in self.feature_names if name not in features.columns]
        if missing:
            raise FeatureError(f"feature frame lacks column(s) {', '.join(missing)}")
        return self.score_matrix(features[list(self.feature_names)].to_numpy(dtype=np.float64))

    # -- artifacts ---------------------------------------------------------------------------------
    def save(self, store: ArtifactStore, name: str = DEFAULT_MODEL_NAME, created: datetime | None = None) -> str:
        manifest = {
            "kind": MODEL_KIND,
            "feature_names": list(self.feature_names),
            "feature_set_version": FEATURE_SET_VERSION,
            "scaler": {"type": "robust", "center": self.center.tolist(), "scale": self.scale.tolist()},
            "k": self.k,
            "silhouette": self.silhouette,
            "cluster_labels": ["abnormal" if a else "normal" for a in self.abnormal.tolist()],
            "cluster_masses": self.masses.tolist(),
            "calibration": {"type": "ecdf", "points": len(self.calib_prob)},
            **{key: value for key, value in self.info.items() if key != "data_hash_full"},
        }
        if self.trained_on is not None:
            manifest[TRAINED_ON_KEY] = self.trained_on.to_json()
        weights = {
            "center": self.center,
            "scale": self.scale,
            "centroids": self.centroids,
            "abnormal": self.abnormal,
            "masses": self.masses,
            "calib_distance": self.calib_distance,
            "calib_prob": self.calib_prob,
        }
        hash_hex = str(self.info.get("data_hash_full") or data_hash(self.centroids))
        artifact = store.save(name, manifest, weights, hash_hex=hash_hex, created=created)
        self.version, self.name = artifact.version, name
        return artifact.version

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> KMeansModel:
        m, w = artifact.manifest, artifact.weights
        try:
            names = tuple(str(n) for n in m["feature_names"])
            model = cls(
                feature_names=names,
                center=np.asarray(w["center"], dtype=np.float64),
                scale=np.asarray(w["scale"], dtype=np.float64),
                centroids=np.asarray(w["centroids"], dtype=np.float64),
                abnormal=np.asarray(w["abnormal"], dtype=np.bool_),
                masses=np.asarray(w["masses"], dtype=np.float64),
                calib_distance=np.asarray(w["calib_distance"], dtype=np.float64),
                calib_prob=np.asarray(w["calib_prob"], dtype=np.float64),
                silhouette=float(m.get("silhouette", math.nan)),
                version=artifact.version,
                info={key: m[key] for key in ("training_range", "metrics", "engine") if key in m},
                name=str(m.get("name", DEFAULT_MODEL_NAME)),
                # absent in artifacts saved before models per venue: unknown, handled by the venue gate
                trained_on=_trained_on(artifact),
            )
        except KeyError as exc:
            raise ArtifactError(f"{artifact.path}: kmeans artifact lacks {exc.args[0]!r}") from None
        d = len(names)
        if model.center.shape != (d,) or model.scale.shape != (d,) or model.centroids.shape[1:] != (d,):
            raise ArtifactError(f"{artifact.path}: kmeans weights do not match its {d} feature names")
        if model.abnormal.all():
            raise ArtifactError(f"{artifact.path}: kmeans artifact has no normal cluster")
        return model

    @classmethod
    def load(cls, store: ArtifactStore, name: str = DEFAULT_MODEL_NAME, version: str = "latest") -> KMeansModel:
        return cls.from_artifact(store.load(name, version, kind=MODEL_KIND, feature_set_version=FEATURE_SET_VERSION))


def _trained_on(artifact: Artifact) -> TrainedOn | None:
    """The artifact's training venues; None (unknown) in artifacts saved before models recorded them."""
    raw = artifact.manifest.get(TRAINED_ON_KEY)
    if raw is None:
        return None
    try:
        return TrainedOn.from_json(raw)
    except ValueError as exc:
        raise ArtifactError(f"{artifact.path}: kmeans artifact has a malformed {TRAINED_ON_KEY}: {exc}") from None


# --- training ---------------------------------------------------------------------------------------------
def robust_scaler(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-column median and IQR (IQR 0 → std, std 0 → 1), ignoring NaN."""
    with np.errstate(all="ignore"):
        center = np.nan_to_num(np.nanmedian(x, axis=0), nan=0.0)
        q75, q25 = np.nanpercentile(x, [75, 25], axis=0)
        scale = np.nan_to_num(q75 - q25, nan=0.0)
        std = np.nan_to_num(np.nanstd(x, axis=0), nan=0.0)
    scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
    return center.astype(np.float64), scale.astype(np.float64)


def finish_model(
    feature_names: Sequence[str],
    center: FloatArray,
    scale: FloatArray,
    centroids: FloatArray,
    masses: FloatArray,
    sample_z: FloatArray,
    silhouette: float,
    params: KMeansParams,
) -> KMeansModel:
    """Label clusters and calibrate scores from a (sample of the) scaled training rows. Shared by both engines."""
    sq = ((sample_z[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    member = np.argmin(sq, axis=1)
    member_dist = np.sqrt(sq[np.arange(len(sample_z)), member])
    normal = masses >= params.min_mass
    normal[int(np.argmax(masses))] = True
    spread = float(np.median(member_dist[normal[member]])) if normal[member].any() else 1.0
    spread = spread if spread > 0 else 1.0
    for c in np.flatnonzero(~normal):
        gaps = np.sqrt(((centroids[normal] - centroids[c]) ** 2).sum(axis=1))
        if gaps.min() <= params.far_factor * spread:
            normal[c] = True
    model = KMeansModel(
        feature_names=tuple(feature_names),
        center=center,
        scale=scale,
        centroids=centroids,
        abnormal=~normal,
        masses=masses,
        calib_distance=np.zeros(1),
        calib_prob=np.zeros(1),
        silhouette=silhouette,
    )
    distances = np.sqrt(sq[:, np.flatnonzero(normal)].min(axis=1))
    model.calib_prob = CALIBRATION_PROBS.astype(np.float64)
    model.calib_distance = np.maximum.accumulate(np.quantile(distances, model.calib_prob))
    return model


def feature_matrix(features: pd.DataFrame, feature_names: Sequence[str]) -> FloatArray:
    missing = [name for name in feature_names if name not in features.columns]
    if missing:
        raise FeatureError(f"feature frame lacks column(s) {', '.join(missing)}")
    x = features[list(feature_names)].to_numpy(dtype=np.float64)
    if np.isinf(x).any():
        col = int(np.flatnonzero(np.isinf(x).any(axis=0))[0])
        raise FeatureError(f"feature {feature_names[col]} has infinite values")
    return x


def train(
    features: pd.DataFrame,
    feature_names: Sequence[str] = KMEANS_FEATURES,
    params: KMeansParams | None = None,
    time_column: str | None = "ts",
    *,
    feeds: Callable[[str], FeedProfile] | None = None,
) -> KMeansModel:
    """Fit scaler, k (by silhouette) and centroids with scikit-learn; label and calibrate. The venues of the
    rows used (``venue`` column, if any) and, given ``feeds``, their feed shapes become the model's
    ``trained_on``; without a ``venue`` column the model's venues are unknown and it scores no venue."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    params = params or KMeansParams()
    x = feature_matrix(features, feature_names)
    rows = ~np.isnan(x).all(axis=1)
    x = x[rows]
    if len(x) < max(10 * params.k_max, 20):
        raise FeatureError(f"too few feature vectors to train K-means: {len(x)} (need ≥ {max(10 * params.k_max, 20)})")
    center, scale = robust_scaler(x)
    z = np.nan_to_num((x - center) / scale, nan=0.0)
    zc = np.clip(z, -params.fit_clip, params.fit_clip)
    rng = np.random.default_rng(params.seed)
    sample_idx = rng.choice(len(zc), size=min(len(zc), params.silhouette_sample), replace=False)
    sample_idx.sort()
    best: tuple[float, Any] | None = None
    sil_by_k: dict[str, float] = {}
    for k in range(params.k_min, params.k_max + 1):
        km = KMeans(n_clusters=k, n_init=params.n_init, random_state=params.seed).fit(zc)
        labels = km.labels_[sample_idx]
        sil = float(silhouette_score(zc[sample_idx], labels)) if len(set(labels.tolist())) > 1 else -1.0
        sil_by_k[str(k)] = round(sil, 6)
        if best is None or sil > best[0] + 1e-12:
            best = (sil, km)
    assert best is not None
    silhouette, km = best
    counts = np.bincount(km.labels_, minlength=km.n_clusters).astype(np.float64)
    model = finish_model(
        feature_names,
        center,
        scale,
        km.cluster_centers_.astype(np.float64),
        counts / counts.sum(),
        z,
        silhouette,
        params,
    )
    model.info = {
        "engine": "sklearn",
        "training_range": training_range(features.iloc[np.flatnonzero(rows)], time_column),
        "metrics": {"silhouette_by_k": sil_by_k, "inertia": float(km.inertia_), "rows": len(x)},
        "params": params_info(params),
        "data_hash_full": data_hash(x),
    }
    model.trained_on = trained_on(features.iloc[np.flatnonzero(rows)], feeds)
    return model


def params_info(params: KMeansParams) -> dict[str, Any]:
    """The training parameters as the manifest records them."""
    return {
        "k_min": params.k_min,
        "k_max": params.k_max,
        "min_mass": params.min_mass,
        "far_factor": params.far_factor,
        "fit_clip": params.fit_clip,
        "seed": params.seed,
    }


def trained_on(frame: pd.DataFrame, feeds: Callable[[str], FeedProfile] | None = None) -> TrainedOn | None:
    """The venues of the training rows (None when the frame has no ``venue`` column or names none)."""
    if "venue" not in frame.columns:
        return None
    try:
        return TrainedOn.from_venues(frame["venue"].dropna().unique().tolist(), feeds)
    except ValueError:
        return None


def training_range(frame: pd.DataFrame | None, time_column: str | None) -> dict[str, Any]:
    if frame is None or time_column is None or time_column not in frame.columns or frame.empty:
        return {"rows": 0 if frame is None else len(frame)}
    ts = frame[time_column].to_numpy(dtype=np.int64)
    out: dict[str, Any] = {"start": int(ts.min()), "end": int(ts.max()), "rows": len(frame)}
    if "symbol" in frame.columns:
        out["symbols"] = int(frame["symbol"].nunique())
    return out
