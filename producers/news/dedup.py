"""One record per news item and edit: a source that lists an item on every page it serves, or a feed read every
minute, publishes it once; an edit (a later update time, or new text) publishes it again under the same id.

>>> seen = Seen(capacity=2)
>>> seen.fresh("cnyes:1", 1_000, "台積電大漲"), seen.fresh("cnyes:1", 1_000, "台積電大漲")
(True, False)
>>> seen.fresh("cnyes:1", 2_000, "台積電大漲，外資加碼")  # re-edited
True
>>> seen.fresh("cnyes:2", 1_000, "a"), seen.fresh("cnyes:3", 1_000, "b"), seen.fresh("cnyes:1", 2_000, "x")
(True, True, True)

Memory is bounded (``capacity`` items, the least recently seen forgotten first): an item forgotten and served
again is published again, which the sinks' idempotent writes absorb.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Final

DEFAULT_CAPACITY: Final = 50_000


class Seen:
    """The items published lately: id → (edit time, digest of the text)."""

    __slots__ = ("capacity", "items")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self.items: OrderedDict[str, tuple[int, bytes]] = OrderedDict()

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items

    def fresh(self, item_id: str, edited_ms: int, text: str) -> bool:
        """Whether this item, at this edit, was not published yet; remembers it. An older edit than the one
        published is not fresh (a stale page of the list)."""
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        known = self.items.get(item_id)
        if known is not None:
            self.items.move_to_end(item_id)
            if edited_ms < known[0] or (edited_ms == known[0] and digest == known[1]):
                return False
            if edited_ms == known[0] and digest != known[1]:
                pass  # same time, new text: an edit the source did not date
        self.items[item_id] = (edited_ms, digest)
        if len(self.items) > self.capacity:
            self.items.popitem(last=False)
        return True
