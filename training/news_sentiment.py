"""The news sentiment classifier's training on the labelled headlines, and its held-out evaluation.

The labelled set (``training/data/news_sentiment/headlines.csv``, provenance in the README beside it) is split by
:func:`split_of`, a hash of each title, before anything is fitted. The classifier
(:class:`tapewatch.detectors.news.sentiment.Classifier`) is scikit-learn's logistic regression with its default
regularisation (``C`` = 1, not tuned) on :func:`tapewatch.detectors.news.sentiment.features` of the training split only.

Judged on the test split against two baselines, per language and overall, by accuracy and macro-F1:

* **majority**: every item gets the training split's more frequent label (ties: positive);
* **plain lexicon**: the sign of :meth:`SentimentModel.score` of the plain lexicon model; an item with no lexicon
  hit (score 0) gets the majority label, and the share of items with a hit is reported as its coverage;
* **trained**: the sign of the trained model's score.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from tapewatch.artifacts import Artifact, ArtifactStore
from tapewatch.detectors.news.lexicon import Lexicon, builtin_lexicon
from tapewatch.detectors.news.sentiment import DEFAULT_BUCKETS, DENSE_FEATURES, Classifier, SentimentModel, features
from tapewatch.errors import TapewatchError

LABELLED_SET: Final = Path(__file__).resolve().parent / "data" / "news_sentiment" / "headlines.csv"
LABELS: Final = {"positive": 1, "negative": -1}
#: of 10 hash classes, those in the test split (about 30 %)
TEST_SHARE: Final = 3
Split = Literal["train", "test"]


@dataclass(frozen=True, slots=True)
class Headline:
    language: str
    label: int  # +1 positive, −1 negative
    title: str
    summary: str


def split_of(title: str) -> Split:
    """``test`` when the first byte of the title's SHA-256, modulo 10, is below :data:`TEST_SHARE`."""
    return "test" if hashlib.sha256(title.encode("utf-8")).digest()[0] % 10 < TEST_SHARE else "train"


def load_headlines(path: Path = LABELLED_SET) -> list[Headline]:
    """The labelled set; a file that is not one is a :class:`TapewatchError` naming the first bad line."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TapewatchError(f"{path}: cannot read the labelled set ({exc})") from None
    items = []
    for line, row in enumerate(rows, start=2):
        label, title = row.get("label"), (row.get("title") or "").strip()
        if label not in LABELS or not title or not row.get("language"):
            raise TapewatchError(f"{path}:{line}: needs language, a title and a label positive or negative")
        items.append(Headline(str(row["language"]), LABELS[label], title, (row.get("summary") or "").strip()))
    if not items:
        raise TapewatchError(f"{path}: no labelled headline (columns: language,label,title,summary)")
    return items


def fit(train: Sequence[Headline], lexicon: Lexicon, buckets: int = DEFAULT_BUCKETS) -> SentimentModel:
    """The trained model on ``train`` (both labels needed)."""
    if len({h.label for h in train}) < 2:
        raise TapewatchError("train news: the training split needs positive and negative headlines")
    reader_model = SentimentModel(lexicon)
    x = np.zeros((len(train), len(DENSE_FEATURES) + buckets))
    for i, h in enumerate(train):
        for j, value in features(reader_model.read(h.title, h.summary, h.language), buckets).items():
            x[i, j] = value
    y = np.array([h.label for h in train])
    regression = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    sign = 1.0 if regression.classes_[1] == 1 else -1.0  # the coefficients are for classes_[1]
    classifier = Classifier(
        sign * regression.coef_[0].astype(np.float64), sign * float(regression.intercept_[0]), buckets
    )
    return SentimentModel(lexicon, classifier, version="unpublished")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a model on one language's test items (``all``: every test item)."""

    model: str
    language: str
    items: int
    positive: int
    accuracy: float
    macro_f1: float
    coverage: float  # share of items the model gave a non-zero score


def majority_label(train: Sequence[Headline]) -> int:
    positives = sum(h.label == 1 for h in train)
    return 1 if positives * 2 >= len(train) else -1


def evaluate(test: Sequence[Headline], scorers: dict[str, Callable[[Headline], float]], majority: int) -> list[Row]:
    """Each scorer's rows, per language (sorted) then ``all``."""
    languages = [*sorted({h.language for h in test}), "all"]
    rows = []
    for name, scorer in scorers.items():
        scores = np.array([scorer(h) for h in test])
        predicted = np.where(scores > 0, 1, np.where(scores < 0, -1, majority))
        for language in languages:
            mask = np.array([language in ("all", h.language) for h in test])
            truth = np.array([h.label for h in test])[mask]
            guess = predicted[mask]
            rows.append(
                Row(
                    name,
                    language,
                    int(mask.sum()),
                    int((truth == 1).sum()),
                    float(accuracy_score(truth, guess)),
                    float(f1_score(truth, guess, labels=[-1, 1], average="macro", zero_division=0)),
                    float((scores[mask] != 0).mean()),
                )
            )
    return rows


@dataclass(frozen=True, slots=True)
class Trained:
    model: SentimentModel
    rows: list[Row]
    train_items: int
    test_items: int
    artifact: Artifact | None


def train_news(
    store: ArtifactStore | None,
    path: Path = LABELLED_SET,
    buckets: int = DEFAULT_BUCKETS,
    created: datetime | None = None,
) -> Trained:
    """Split, fit on the training split, judge on the test split, and publish to ``store`` (``None``: do not)."""
    if not 16 <= buckets <= 1 << 20:
        raise TapewatchError(f"train news: --buckets must be in [16, 1048576], not {buckets}")
    items = load_headlines(path)
    train = [h for h in items if split_of(h.title) == "train"]
    test = [h for h in items if split_of(h.title) == "test"]
    if not test:
        raise TapewatchError(f"{path}: no headline falls in the test split; the set is too small")
    lexicon = builtin_lexicon()
    model, plain, majority = fit(train, lexicon, buckets), SentimentModel.plain(), majority_label(train)
    rows = evaluate(
        test,
        {
            "majority": lambda h: float(majority),
            "plain lexicon": lambda h: plain.score(h.title, h.summary, h.language),
            "trained": lambda h: model.score(h.title, h.summary, h.language),
        },
        majority,
    )
    artifact = None
    if store is not None:
        extra = {
            "labelled_set": path.name,
            "labelled_set_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "train_items": len(train),
            "test_items": len(test),
            "metrics": _metrics(rows),
        }
        artifact = model.save(store, extra, created)
        model = SentimentModel.from_artifact(artifact)
    return Trained(model, rows, len(train), len(test), artifact)


def _metrics(rows: Sequence[Row]) -> list[dict[str, object]]:
    return [
        {
            "model": r.model,
            "language": r.language,
            "items": r.items,
            "accuracy": round(r.accuracy, 4),
            "macro_f1": round(r.macro_f1, 4),
        }
        for r in rows
    ]
