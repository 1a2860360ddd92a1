"""The detect stage's state formats, as Alembic keeps a schema: :func:`detect_state` lists the step from each format
of a symbol's entry in the detect-state table (:mod:`tapewatch.streams.detect`) to the next, and its
:meth:`~tapewatch.state_versions.StateVersions.upgrade` runs them from a stored entry's format up to the current
one, so that the stage's ``_load`` reads the current format only.

The entry, in the current format: ``detector`` (the :class:`~tapewatch.detectors.patterns.SymbolDetector`'s
state, versioned on its own), ``position`` (the DQN position), ``history`` (the forecasters' bar rows), ``newest``
(cadence → event time of the newest features record applied), ``news`` (the symbol's recent news), ``raised``
(the alerts it raised lately, as raised), ``partition`` and ``offsets`` (source topic → offset of the last record
applied).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from tapewatch.state_versions import StateVersions


def _format_2(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Format 2 keeps the event time of the newest features record applied per cadence (``newest``): none known, so
    the next record of each cadence is applied. A format-1 entry written before the forecasters lacks their bar rows
    (``history``): none kept."""
    return {"history": {"v": 1, "names": [], "capacity": 0, "rows": []}, "newest": {}, **stored}


def _format_3(stored: Mapping[str, Any], features_topic: str) -> dict[str, Any]:
    """Format 3 reads the news too: the offset of the last record applied is kept per source topic (``offsets``:
    the one offset of format 2 is the features topic's), with the symbol's recent news (``news``: none) and the
    alerts it raised lately (``raised``: none)."""
    upgraded = {key: value for key, value in stored.items() if key != "offset"}
    if "offset" in stored:
        upgraded["offsets"] = {features_topic: stored["offset"]}
    return {"news": {"v": 1, "items": []}, "raised": [], **upgraded}


def detect_state(features_topic: str) -> StateVersions:
    """The entry's formats, for a stage that reads ``features_topic``."""
    return StateVersions("detect state", (_format_2, partial(_format_3, features_topic=features_topic)), key="format")
