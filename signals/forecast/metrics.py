"""How good a forecast is, always beside the forecast that needs no model.

* Regression (a return forecast ``p`` of the true return ``r`` from close ``c``): RMSE and MAE of the return,
  and of the price ``c · (1 + p)`` against the true ``c · (1 + r)``, each beside the **naive forecast**
  tomorrow = today (return 0, price ``c``); the ratio model / naive < 1 only when the model beats it. Direction
  accuracy counts bars whose true return is not zero.
* Classification: balanced accuracy and per-class F1 beside the **majority class** of the same labels (always
  predicting it: balanced accuracy ``1 / classes``).

>>> s = regression_scores(np.array([0.01, -0.01, 0.0]), np.array([0.02, -0.01, 0.01]), np.array([10.0, 20.0, 10.0]))
>>> round(s.rmse_return, 6), round(s.rmse_return_naive, 6), round(s.rmse_return_ratio, 3), s.direction_accuracy
(0.008165, 0.014142, 0.577, 0.666667)
>>> round(s.rmse_price, 6), round(s.rmse_price_naive, 6), round(s.mae_price, 6)
(0.08165, 0.173205, 0.066667)
>>> c = class_scores(np.array([0, 1, 2, 2, 2, 1]), np.array([0, 1, 2, 1, 2, 2]))
>>> round(c.balanced_accuracy, 3), c.majority_class, round(c.majority_balanced_accuracy, 3), c.f1["up"]
(0.722, 'up', 0.333, 0.666667)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import balanced_accuracy_score, f1_score

from tapewatch.signals.forecast.contract import CLASS_NAMES

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RegressionScores:
    n: int
    rmse_return: float
    mae_return: float
    rmse_return_naive: float
    mae_return_naive: float
    rmse_price: float
    mae_price: float
    rmse_price_naive: float
    mae_price_naive: float
    direction_accuracy: float

    @property
    def rmse_return_ratio(self) -> float:
        return _ratio(self.rmse_return, self.rmse_return_naive)

    @property
    def rmse_price_ratio(self) -> float:
        return _ratio(self.rmse_price, self.rmse_price_naive)

    def as_dict(self) -> dict[str, float]:
        out = {k: float(v) for k, v in asdict(self).items()}
        out["rmse_return_ratio"] = self.rmse_return_ratio
        out["rmse_price_ratio"] = self.rmse_price_ratio
        return out


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _rmse(errors: FloatArray) -> float:
    return float(np.sqrt(np.mean(errors**2))) if len(errors) else math.nan


def _mae(errors: FloatArray) -> float:
    return float(np.mean(np.abs(errors))) if len(errors) else math.nan


def regression_scores(prediction: npt.ArrayLike, actual: npt.ArrayLike, close: npt.ArrayLike) -> RegressionScores:
    """Scores over the bars where both the forecast and the true return are known."""
    p, r, c = (np.asarray(a, dtype=np.float64) for a in (prediction, actual, close))
    keep = np.isfinite(p) & np.isfinite(r) & np.isfinite(c)
    p, r, c = p[keep], r[keep], c[keep]
    moved = r != 0
    direction = float(np.mean(np.sign(p[moved]) == np.sign(r[moved]))) if moved.any() else math.nan
    return RegressionScores(
        n=len(p),
        rmse_return=_rmse(p - r),
        mae_return=_mae(p - r),
        rmse_return_naive=_rmse(r),
        mae_return_naive=_mae(r),
        rmse_price=_rmse(c * (p - r)),
        mae_price=_mae(c * (p - r)),
        rmse_price_naive=_rmse(c * r),
        mae_price_naive=_mae(c * r),
        direction_accuracy=round(direction, 6),
    )


@dataclass(frozen=True)
class ClassScores:
    n: int
    accuracy: float
    balanced_accuracy: float
    f1: dict[str, float]
    majority_class: str
    majority_accuracy: float
    majority_balanced_accuracy: float
    majority_f1: dict[str, float]


def class_scores(actual: npt.ArrayLike, predicted: npt.ArrayLike, names: tuple[str, ...] = CLASS_NAMES) -> ClassScores:
    """Scores of class indices ``0 … len(names) - 1`` and of always predicting the most frequent true class."""
    y, yhat = np.asarray(actual, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    labels = list(range(len(names)))
    counts = np.bincount(y, minlength=len(names))
    majority = int(counts.argmax())
    always = np.full(len(y), majority)

    def f1(guess: npt.NDArray[np.int64]) -> dict[str, float]:
        values = f1_score(y, guess, labels=labels, average=None, zero_division=0.0)
        return {name: round(float(v), 6) for name, v in zip(names, values, strict=True)}

    return ClassScores(
        n=len(y),
        accuracy=float(np.mean(y == yhat)) if len(y) else math.nan,
        balanced_accuracy=_balanced(y, yhat),
        f1=f1(yhat),
        majority_class=names[majority],
        majority_accuracy=float(np.mean(y == majority)) if len(y) else math.nan,
        majority_balanced_accuracy=_balanced(y, always),
        majority_f1=f1(always),
    )


def _balanced(y: npt.NDArray[np.int64], guess: npt.NDArray[np.int64]) -> float:
    """Mean recall over the classes present in ``y`` (scikit-learn's definition)."""
    return float(balanced_accuracy_score(y, guess)) if len(y) else math.nan
