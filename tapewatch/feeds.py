"""What each venue's feed carries: the feed profile every stage and offline twin reads instead of guessing.

A profile is a declaration, not something learned from arrival timing, because the stream's output must not
depend on how a worker happened to interleave md.quotes and md.books. The order-flow chunks of a venue whose
feed sends books wait for both streams (``W = min(newest quote, newest book)``); a venue without books is
driven by its quotes alone, and a stray book is used only if it is on time.

Profiles come from the built-in table below, overridden or extended by ``TAPEWATCH_FEED_PROFILES`` (JSON:
``{"venue": {"books": true, "sides": false, "prints": "snapshots"}}``, any field may be left out). A venue
named nowhere gets :data:`UNKNOWN`: quotes only, sides as given, individual prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

import orjson

Prints = Literal["trades", "snapshots"]


@dataclass(frozen=True, slots=True)
class FeedProfile:
    """What one venue's records carry."""

    #: the feed sends five-level book snapshots (md.books) for its symbols
    books: bool = False
    #: trades carry their aggressor side (``Quote.side``)
    sides: bool = True
    #: ``trades``: one quote per print; ``snapshots``: size traded since the previous snapshot, no print times
    prints: Prints = "trades"


UNKNOWN: Final = FeedProfile()

BUILT_IN: Final[Mapping[str, FeedProfile]] = {
    # the labelled simulator: every print with its side, a book snapshot per symbol every few seconds
    "sim": FeedProfile(books=True, sides=True, prints="trades"),
    # TWSE MIS (listed and OTC): 5-second snapshots, volume since the previous one, best five levels, no side
    "twse": FeedProfile(books=True, sides=False, prints="snapshots"),
    "tpex": FeedProfile(books=True, sides=False, prints="snapshots"),
    # Binance spot: trades with the taker's side, depth5 snapshots
    "binance": FeedProfile(books=True, sides=True, prints="trades"),
}


class FeedProfiles:
    """Venue → :class:`FeedProfile`: the built-in table with the settings' overrides applied."""

    def __init__(self, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        table = dict(BUILT_IN)
        for venue, fields in (overrides or {}).items():
            unknown = set(fields) - set(FeedProfile.__slots__)
            if unknown:
                raise ValueError(f"feed profile of {venue!r}: unknown field(s) {sorted(unknown)}")
            if "prints" in fields and fields["prints"] not in ("trades", "snapshots"):
                raise ValueError(f"feed profile of {venue!r}: prints must be 'trades' or 'snapshots'")
            for name in ("books", "sides"):
                if name in fields and not isinstance(fields[name], bool):
                    raise ValueError(f"feed profile of {venue!r}: {name} must be true or false")
            table[venue] = replace(table.get(venue, UNKNOWN), **fields)
        self._table = table

    @classmethod
    def from_json(cls, text: str) -> FeedProfiles:
        """Parse ``TAPEWATCH_FEED_PROFILES`` (empty: the built-in table alone)."""
        if not text.strip():
            return cls()
        parsed = orjson.loads(text)
        if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
            raise ValueError('feed profiles must be a JSON object of objects: {"venue": {"books": true}}')
        return cls(parsed)

    def __call__(self, venue: str) -> FeedProfile:
        return self._table.get(venue, UNKNOWN)

    def venues(self) -> dict[str, FeedProfile]:
        return dict(self._table)
