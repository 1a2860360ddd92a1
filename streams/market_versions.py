"""The market stage's state formats, as Alembic keeps a schema: :data:`MARKET_STATE` lists the step from each format
of a symbol's entry in the market-state table (:mod:`tapewatch.streams.market`) to the next, and its
:meth:`~tapewatch.state_versions.StateVersions.upgrade` runs them from a stored entry's format up to the current one,
so that the stage's ``_load`` reads the current format only. Formats before 3 are not loaded.

The entry, in the current format: ``bars`` (the :class:`~tapewatch.detectors.bars.BarBuilder`'s state), ``features``
(the bar features'), ``flow`` (the order flow's, each versioned on its own), ``offsets`` (source topic → partition
and offset of the last record applied), ``partition`` and ``derived`` (of a venue whose level-2 is derived from its
orders: the newest trade's number and book's time applied) and ``wash`` (the wash tests' open window,
:class:`~tapewatch.detectors.venue_wash.VenueWash`'s state, or null where they do not run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tapewatch.state_versions import StateVersions


def _format_4(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Format 4 keeps the newest derived trade's number and book's time (``derived``); an older entry starts with
    none (no venue's level-2 was derived from its orders before)."""
    return {**stored, "derived": {}}


def _format_5(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Format 5 keeps the wash tests' open window (``wash``); an older entry starts with none: its first window
    opens at its next trade."""
    return {**stored, "wash": None}


MARKET_STATE: Final = StateVersions("market state", (_format_4, _format_5), first=3, key="format")
