"""Models per venue: what a K-means model was trained on, and which venues it may score.

A K-means model learns what a *normal* minute looks like on the data it saw. A minute of another market (other
tick sizes, other trading hours, snapshots instead of prints) is far from those clusters for reasons that have
nothing to do with manipulation, so scoring it would raise confident, wrong alerts. The artifact therefore
records what it was trained on (manifest key ``trained_on``)::

    "trained_on": {"venues": ["twse"],
                   "feeds": {"twse": {"books": true, "sides": false, "prints": "snapshots"}}}

``venues`` are the distinct values of the training data's ``venue`` column; ``feeds`` the shape of each
venue's feed (:class:`tapewatch.feeds.FeedProfile`) when the trainer knew the profiles (``train kmeans`` does).

The decision (:func:`refusal`) is conservative and explicit:

* a venue the user listed for the model in ``TAPEWATCH_KMEANS_EXTRA_VENUES`` is scored: the user asserts its
  data is like the training data (e.g. a model trained on ``twse`` scoring ``tpex``);
* otherwise the venue must be one the model was trained on, by **name**: two venues whose feed profiles look
  alike may still differ in everything the profile does not describe (prices, liquidity, hours);
* and when the artifact recorded that venue's feed shape, the venue's current profile must still have it
  (a changed ``TAPEWATCH_FEED_PROFILES`` changes what its bars mean);
* a model saved before venues were recorded (no ``trained_on``) cannot be shown to match any venue: it scores
  only the venues listed for it in ``TAPEWATCH_KMEANS_EXTRA_VENUES``. Retraining records the venues.

A refused venue gets patterns only (no K-means score, no K-means alert). :class:`VenueGate` caches the
decision per model version and venue and reports each refusal once, so a stream logs one line per venue, not
one per record. Pure logic: no Kafka, no settings.

A model trained on TWSE and TPEx minutes scores those venues, not Binance's (unless the user lists Binance for
it), and no longer TWSE's once its profile says the feed prints every trade instead of snapshots:

>>> from tapewatch.feeds import FeedProfiles
>>> feeds = FeedProfiles()
>>> trained = TrainedOn.from_venues(["twse", "twse", "tpex"], feeds)
>>> trained.describe()
'tpex (books, no sides, snapshots), twse (books, no sides, snapshots)'
>>> refusal(trained, "kmeans v3", "twse", feeds("twse")) is None
True
>>> print(refusal(trained, "kmeans v3", "binance", feeds("binance")))
K-means not applied to venue binance: model kmeans v3 was trained on tpex (books, no sides, snapshots), twse
(books, no sides, snapshots); patterns only; if binance is like the training data, list it for the model in
TAPEWATCH_KMEANS_EXTRA_VENUES
>>> refusal(trained, "kmeans v3", "binance", feeds("binance"), extra=["binance"]) is None
True
>>> print(refusal(trained, "kmeans v3", "twse", FeedProfiles({"twse": {"prints": "trades"}})("twse")))
K-means not applied to venue twse: its feed is now books, no sides, trades, model kmeans v3 was trained on it as
books, no sides, snapshots; patterns only; ...
>>> TrainedOn.from_json(trained.to_json()) == trained  # the manifest's ``trained_on``
True
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from tapewatch.feeds import FeedProfile

if TYPE_CHECKING:
    from tapewatch.detectors.kmeans import KMeansModel

MANIFEST_KEY: Final = "trained_on"
EXTRA_VENUES_ENV: Final = "TAPEWATCH_KMEANS_EXTRA_VENUES"
#: model name → venues the user asserts are like its training data
ExtraVenues = Mapping[str, Collection[str]]
#: a feed shape's prints where the venue's profile leaves them to be learnt per symbol
LEARNT: Final = "learnt"


@dataclass(frozen=True, slots=True)
class FeedShape:
    """The part of a feed profile that changes what a venue's bars and features mean."""

    books: bool
    sides: bool
    prints: str

    @classmethod
    def of(cls, profile: FeedProfile) -> FeedShape:
        return cls(profile.books, profile.sides, profile.prints or LEARNT)

    def describe(self) -> str:
        return f"{'books' if self.books else 'no books'}, {'sides' if self.sides else 'no sides'}, {self.prints}"

    def to_json(self) -> dict[str, Any]:
        return {"books": self.books, "sides": self.sides, "prints": self.prints}

    @classmethod
    def from_json(cls, raw: object) -> FeedShape:
        if not isinstance(raw, dict):
            raise ValueError("a feed shape must be an object")
        books, sides, prints = raw.get("books"), raw.get("sides"), raw.get("prints")
        if not isinstance(books, bool) or not isinstance(sides, bool) or prints not in ("trades", "snapshots", LEARNT):
            raise ValueError(
                f"feed shape {raw!r} needs books/sides true or false and prints trades, snapshots or {LEARNT}"
            )
        return cls(books, sides, str(prints))


@dataclass(frozen=True, slots=True)
class TrainedOn:
    """The venues a model was trained on and, when known, the shape of each one's feed."""

    venues: tuple[str, ...]
    feeds: Mapping[str, FeedShape] = field(default_factory=dict)

    @classmethod
    def from_venues(cls, venues: Iterable[object], feeds: Callable[[str], FeedProfile] | None = None) -> TrainedOn:
        names = tuple(sorted({str(v) for v in venues if v is not None and str(v) not in ("", "nan", "<NA>")}))
        if not names:
            raise ValueError("training data names no venue")
        shapes = {} if feeds is None else {name: FeedShape.of(feeds(name)) for name in names}
        return cls(names, shapes)

    def to_json(self) -> dict[str, Any]:
        return {"venues": list(self.venues), "feeds": {name: shape.to_json() for name, shape in self.feeds.items()}}

    @classmethod
    def from_json(cls, raw: object) -> TrainedOn:
        """Parse the manifest's ``trained_on`` (ValueError with the reason when malformed)."""
        if not isinstance(raw, dict):
            raise ValueError("trained_on must be an object")
        venues = raw.get("venues")
        if not isinstance(venues, list) or not venues or not all(isinstance(v, str) and v for v in venues):
            raise ValueError("trained_on.venues must be a non-empty list of venue names")
        feeds = raw.get("feeds", {})
        if not isinstance(feeds, dict) or not set(feeds) <= set(venues):
            raise ValueError("trained_on.feeds must map trained venues to feed shapes")
        return cls(tuple(venues), {str(k): FeedShape.from_json(v) for k, v in feeds.items()})

    def describe(self) -> str:
        """``twse (books, no sides, snapshots), tpex`` — for log lines and listings."""
        return ", ".join(f"{v} ({self.feeds[v].describe()})" if v in self.feeds else v for v in self.venues)


def refusal(
    trained_on: TrainedOn | None, model: str, venue: str, profile: FeedProfile, extra: Collection[str] = ()
) -> str | None:
    """Why the model labelled ``model`` must not score ``venue`` (one line), or None when it may."""
    if venue in extra:
        return None
    hint = f"patterns only; if {venue} is like the training data, list it for the model in {EXTRA_VENUES_ENV}"
    if trained_on is None:
        return (
            f"K-means not applied to venue {venue}: model {model} was trained on unknown venues (saved before "
            f"models recorded them); {hint}, or retrain it"
        )
    if venue not in trained_on.venues:
        return f"K-means not applied to venue {venue}: model {model} was trained on {trained_on.describe()}; {hint}"
    recorded, now = trained_on.feeds.get(venue), FeedShape.of(profile)
    if recorded is not None and recorded != now:
        return (
            f"K-means not applied to venue {venue}: its feed is now {now.describe()}, model {model} was trained "
            f"on it as {recorded.describe()}; {hint}"
        )
    return None


@dataclass
class VenueGate:
    """Which venues the current model may score: decided once per (model version, venue) and reported once.

    >>> import numpy as np
    >>> from tapewatch.detectors.kmeans import KMeansModel
    >>> from tapewatch.feeds import FeedProfiles
    >>> feeds = FeedProfiles()
    >>> trained = TrainedOn.from_venues(["twse", "tpex"], feeds)
    >>> model = KMeansModel(("ret_1",), *[np.zeros(1)] * 7, silhouette=0.0, version="v3", trained_on=trained)
    >>> reported: list[str] = []
    >>> gate = VenueGate(feeds, report=reported.append)
    >>> gate.model_for(model, "tpex") is model, gate.model_for(model, "binance"), gate.model_for(model, "binance")
    (True, None, None)
    >>> len(reported), list(gate.refused())  # one line for Binance, however many of its records
    (1, ['binance'])
    """

    feeds: Callable[[str], FeedProfile]
    extra: ExtraVenues = field(default_factory=dict)
    #: called once per refused (model version, venue) with the one-line reason
    report: Callable[[str], None] = lambda line: None
    _decided: dict[tuple[str, str], str | None] = field(default_factory=dict, init=False, repr=False)

    def refusal(self, model: KMeansModel, venue: str) -> str | None:
        key = (f"{model.name} {model.version}", venue)
        if key not in self._decided:
            why = refusal(model.trained_on, key[0], venue, self.feeds(venue), self.extra.get(model.name, ()))
            self._decided[key] = why
            if why is not None:
                self.report(why)
        return self._decided[key]

    def model_for(self, model: KMeansModel | None, venue: str) -> KMeansModel | None:
        """``model`` when it may score ``venue``, else None (the detector then runs patterns only)."""
        if model is None or self.refusal(model, venue) is not None:
            return None
        return model

    def refused(self) -> dict[str, str]:
        """Venue → reason, for every refusal so far (any model version)."""
        return {venue: why for (_, venue), why in self._decided.items() if why is not None}
