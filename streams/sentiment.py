"""The news stage's sentiment model: the newest version published to the model store, else the plain lexicon.

The worker's timer calls :meth:`SentimentModelSlot.refresh`; a version that cannot be loaded is logged once and the
stage keeps the model it has (as :class:`tapewatch.streams.detect.ModelSlot` does for the detectors' models).
"""

from __future__ import annotations

import logging

from tapewatch.artifacts import ArtifactError, ArtifactStore
from tapewatch.detectors.news.sentiment import ARTIFACT_NAME, SentimentModel, plain_lexicon

log = logging.getLogger(__name__)


class SentimentModelSlot:
    """The model the news stage scores with now."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.scorer: SentimentModel = plain_lexicon()
        self._published: str | None = None
        self._failed: str | None = None
        if not self.refresh():
            log.info("news sentiment: no published model, scoring with the plain lexicon %s", self.scorer.version)

    def refresh(self) -> bool:
        """Loads a newer published version if there is one; whether the model changed."""
        newest = self.store.latest_version(ARTIFACT_NAME)
        if newest is None or newest in (self._published, self._failed):
            return False
        try:
            self.scorer = SentimentModel.load(self.store, newest)
        except (ArtifactError, OSError, ValueError) as exc:
            log.error("news sentiment model %s not loaded, keeping %s: %s", newest, self.scorer.version, exc)
            self._failed = newest
            return False
        self._published = newest
        log.info("news sentiment model %s loaded", newest)
        return True
