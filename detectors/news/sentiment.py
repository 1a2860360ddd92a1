"""A news item's sentiment in [−1, 1]: the plain lexicon, or a small classifier trained on labelled headlines.

:class:`SentimentModel` is what the stream worker calls: ``score(title, summary, language)`` is deterministic, runs
in time linear in the text, reads no file and never raises on text. Get one with :meth:`SentimentModel.newest`
(the newest published artifact, else the plain lexicon), :func:`plain_lexicon` (= :meth:`SentimentModel.plain`) or
:meth:`SentimentModel.load`.

* **Plain lexicon** (no classifier): ``P`` and ``N`` are the positive and negative lexicon hits
  (:mod:`tapewatch.detectors.news.reading`, negation applied), the title's counted :data:`TITLE_WEIGHT` times, the
  summary's once, and the score is ``(P − N) / (P + N + 1)``: 0 without a hit, ±⅔ for one hit in the title, nearer ±1 as
  hits agree. The title weighs more because it is the sentence written to carry the news's direction; a summary adds
  background and hedges. Its version is ``lexicon-<digest[:12]>`` (:attr:`Lexicon.digest`).
* **Trained**: logistic regression over the lexicon counts and score plus the item's hashed tokens and token
  pairs (:func:`features`); the score is ``2p − 1`` for its probability ``p`` of positive news. Trained and
  judged offline (:mod:`tapewatch.training.news_sentiment`, ``tapewatch train news``).

The artifact (``news-sentiment``, :mod:`tapewatch.artifacts`) holds the weights and the lexicon's word lists, so a
trained model reads the words it was trained with whatever the installed lists say.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from tapewatch.artifacts import LATEST, Artifact, ArtifactError, ArtifactStore
from tapewatch.detectors.news.lexicon import Lexicon, builtin_lexicon
from tapewatch.detectors.news.reading import Reader, base_language, reader_for

ARTIFACT_NAME: Final = "news-sentiment"
ARTIFACT_KIND: Final = "news-sentiment"
#: bump when :func:`features` or the reading (tokens, negation) changes: an artifact of another set is refused
FEATURE_SET_VERSION: Final = "news-features-v1"
TITLE_WEIGHT: Final = 2.0
#: the dense features before the hashed tokens
DENSE_FEATURES: Final = ("title_positive", "title_negative", "summary_positive", "summary_negative", "lexicon", "zh")
DEFAULT_BUCKETS: Final = 4096
MAX_BUCKETS: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Reading:
    """What the lexicon saw in one item: the language read, the tokens and the hits of title and summary."""

    language: str
    title_tokens: list[str]
    summary_tokens: list[str]
    title: tuple[int, int]
    summary: tuple[int, int]

    @property
    def lexicon_score(self) -> float:
        positive = TITLE_WEIGHT * self.title[0] + self.summary[0]
        negative = TITLE_WEIGHT * self.title[1] + self.summary[1]
        return (positive - negative) / (positive + negative + 1.0)


def read(reader: Reader, title: str, summary: str, language: str) -> Reading:
    lang = base_language(language, title + summary)
    title_tokens, summary_tokens = reader.tokens(title, lang), reader.tokens(summary, lang)
    t, s = reader.hits(title_tokens, lang), reader.hits(summary_tokens, lang)
    return Reading(lang, title_tokens, summary_tokens, (t.positive, t.negative), (s.positive, s.negative))


def bucket(key: str, buckets: int) -> int:
    """A stable hash of a token key into ``[0, buckets)`` (BLAKE2b: the same in every process)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % buckets


def features(reading: Reading, buckets: int) -> dict[int, float]:
    """Sparse features of one item: index → value. The dense ones (:data:`DENSE_FEATURES`) first, then each
    token and each pair of neighbouring tokens of the title (weight :data:`TITLE_WEIGHT`) and the summary (1),
    keyed by language, hashed into ``buckets``."""
    dense = (*reading.title, *reading.summary, reading.lexicon_score, float(reading.language == "zh"))
    row: dict[int, float] = {i: float(v) for i, v in enumerate(dense) if v}
    offset = len(DENSE_FEATURES)
    for tokens, weight in ((reading.title_tokens, TITLE_WEIGHT), (reading.summary_tokens, 1.0)):
        keys = [f"{reading.language}:{t}" for t in tokens]
        keys += [f"{reading.language}:{a} {b}" for a, b in pairwise(tokens)]
        for key in keys:
            index = offset + bucket(key, buckets)
            row[index] = row.get(index, 0.0) + weight
    return row


@dataclass(frozen=True, slots=True, eq=False)  # holds an array: equal only to itself
class Classifier:
    """Logistic regression weights: ``coef`` over :func:`features` (length ``len(DENSE_FEATURES) + buckets``)."""

    coef: npt.NDArray[np.float64]
    intercept: float
    buckets: int

    def __post_init__(self) -> None:
        if not 1 <= self.buckets <= MAX_BUCKETS:
            raise ValueError(f"buckets must be in [1, {MAX_BUCKETS}], not {self.buckets}")
        if self.coef.shape != (len(DENSE_FEATURES) + self.buckets,):
            raise ValueError(f"{self.coef.shape[0]} weights for {len(DENSE_FEATURES) + self.buckets} features")
        if not (np.isfinite(self.coef).all() and math.isfinite(self.intercept)):
            raise ValueError("weights must be finite")

    def score(self, row: Mapping[int, float]) -> float:
        coef = self.coef
        logit = self.intercept + sum(coef[i] * v for i, v in row.items())
        return math.tanh(logit / 2.0)  # = 2p − 1 for p = sigmoid(logit)


@dataclass(frozen=True, slots=True)
class SentimentModel:
    """An item's sentiment in [−1, 1] (see the module's docstring)."""

    lexicon: Lexicon
    classifier: Classifier | None = None
    version: str = ""
    _reader: Reader = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.version:
            object.__setattr__(self, "version", f"lexicon-{self.lexicon.digest[:12]}")
        object.__setattr__(self, "_reader", reader_for(self.lexicon))

    @classmethod
    def plain(cls) -> SentimentModel:
        """The plain lexicon model on the built-in word lists: no artifact needed."""
        return cls(builtin_lexicon())

    def read(self, title: str, summary: str, language: str) -> Reading:
        return read(self._reader, title, summary, language)

    def score(self, title: str, summary: str, language: str) -> float:
        """The item's sentiment in [−1, 1]: positive is good news for the stock."""
        reading = self.read(title, summary, language)
        if self.classifier is None:
            value = reading.lexicon_score
        else:
            value = self.classifier.score(features(reading, self.classifier.buckets))
        return min(1.0, max(-1.0, value)) if math.isfinite(value) else 0.0

    # -- artifact ---------------------------------------------------------------------------------------------
    def save(
        self, store: ArtifactStore, extra: Mapping[str, Any] | None = None, created: datetime | None = None
    ) -> Artifact:
        """Publish this trained model as a new version of :data:`ARTIFACT_NAME`."""
        if self.classifier is None:
            raise ValueError("the plain lexicon model has nothing to publish: it is built in")
        c = self.classifier
        lists = self.lexicon.lists()
        weights: dict[str, npt.NDArray[Any]] = {
            "coef": c.coef,
            "intercept": np.array([c.intercept]),
            **{f"lexicon_{name}": np.array(words, dtype=np.str_) for name, words in lists.items()},
        }
        manifest = {
            "kind": ARTIFACT_KIND,
            "feature_set_version": FEATURE_SET_VERSION,
            "feature_names": [*DENSE_FEATURES, f"hashed tokens × {c.buckets}"],
            "buckets": c.buckets,
            "title_weight": TITLE_WEIGHT,
            "lexicon_digest": self.lexicon.digest,
            **(extra or {}),
        }
        hash_hex = hashlib.sha256(c.coef.tobytes() + self.lexicon.digest.encode()).hexdigest()
        return store.save(ARTIFACT_NAME, manifest, weights, hash_hex=hash_hex, created=created)

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> SentimentModel:
        """Validate and build; anything that does not fit is an :class:`ArtifactError`."""
        m, w, name = artifact.manifest, artifact.weights, f"{ARTIFACT_NAME} {artifact.version}"
        try:
            lexicon = Lexicon.of(
                {key.removeprefix("lexicon_"): w[key].tolist() for key in w if key.startswith("lexicon_")}
            )
            if lexicon.digest != m.get("lexicon_digest"):
                raise ValueError("its word lists do not match their recorded digest")
            if m.get("title_weight") != TITLE_WEIGHT:
                raise ValueError(f"title weight {m.get('title_weight')!r}, this code reads {TITLE_WEIGHT}")
            buckets = m.get("buckets")
            if not isinstance(buckets, int) or isinstance(buckets, bool):
                raise ValueError(f"buckets {buckets!r} is not a number of buckets")
            intercept = w["intercept"]
            if intercept.shape != (1,):
                raise ValueError("the intercept must be one number")
            classifier = Classifier(w["coef"].astype(np.float64), float(intercept[0]), buckets)
        except (KeyError, ValueError, TypeError) as exc:
            raise ArtifactError(f"{name}: not a usable news sentiment model ({exc})") from None
        return cls(lexicon, classifier, artifact.version)

    @classmethod
    def load(cls, store: ArtifactStore, version: str = LATEST) -> SentimentModel:
        """A published version (``latest`` by default); :class:`ArtifactError` when there is none or it is unusable."""
        artifact = store.load(ARTIFACT_NAME, version, kind=ARTIFACT_KIND, feature_set_version=FEATURE_SET_VERSION)
        return cls.from_artifact(artifact)

    @classmethod
    def newest(cls, store: ArtifactStore) -> SentimentModel:
        """The newest published model, else the plain lexicon (what the stream worker runs). A published but
        unusable newest version raises :class:`ArtifactError` rather than silently scoring with the lexicon."""
        if store.latest_version(ARTIFACT_NAME) is None:
            return cls.plain()
        return cls.load(store)


def plain_lexicon() -> SentimentModel:
    """The plain lexicon model on the built-in word lists (:meth:`SentimentModel.plain`): no artifact needed."""
    return SentimentModel.plain()
