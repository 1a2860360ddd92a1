"""Why an alert fired, for the case page, the report and the API: its evidence beside the bounds of the rule that
raised it (:func:`tapewatch.detectors.patterns.explain.explain`), on the parameters the stream uses for the alert's
venue (:meth:`PatternParams.for_feed` with the venue's feed profile, as ``tapewatch.streams.detect`` does)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tapewatch.detectors.flow import FlowConfig
from tapewatch.detectors.patterns.explain import explain, explains, rule_of
from tapewatch.detectors.patterns.params import PatternParams
from tapewatch.settings import Settings

__all__ = ["Explanation", "explanation"]


@dataclass(frozen=True, slots=True)
class Explanation:
    rule: str | None  # the rule's name ("pump onset"), None when no declared rule matches the evidence
    current: bool  # False: the alert was raised under another detector version's bounds
    lines: list[dict[str, Any]]  # :class:`tapewatch.detectors.evidence.EvidenceLine` as dicts (templates and JSON)


def explanation(case: Any, settings: Settings) -> Explanation:
    """The explanation of a case row (kind, evidence, venue, model_version, score)."""
    params = PatternParams().for_feed(FlowConfig.from_settings(settings), settings.venues.feeds()(case.venue))
    found = rule_of(case.kind, case.evidence)
    lines = [dataclasses.asdict(item) for item in explain(case.kind, case.evidence, params, score=case.score)]
    return Explanation(found.name if found else None, explains(case.kind, case.model_version), lines)


def duration_text(ms: int) -> str:
    """A window's length in words: ``30 min``, ``2 min``, ``90 s``, ``2 h``.

    >>> duration_text(1_800_000), duration_text(120_000), duration_text(90_000), duration_text(7_200_000)
    ('30 min', '2 min', '90 s', '2 h')
    """
    if ms % 3_600_000 == 0 and ms:
        return f"{ms // 3_600_000} h"
    if ms % 60_000 == 0 and ms:
        return f"{ms // 60_000} min"
    return f"{ms / 1000:g} s"


def news_window(settings: Settings) -> dict[str, str]:
    """Which news stands beside an alert (``TAPEWATCH_NEWS_BEFORE_MS``, ``…_AFTER_MS``), in words."""
    return {"before": duration_text(settings.news.before_ms), "after": duration_text(settings.news.after_ms)}
