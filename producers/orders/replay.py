"""Replay market-by-order files and drop copies into ``md.orders`` and ``orders.firm``, as fast as the broker takes
them, in the files' order (each file is one venue's sequence). A line that is not a record goes to
``dlq.producers`` with its reason and its place (``<file>:<line>``), and the replay goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Final, Literal

from tapewatch.errors import TapewatchError
from tapewatch.producers.framework import Emitter
from tapewatch.producers.orders import databento, lobster
from tapewatch.producers.orders.fix_drop_copy import read_drop_copy
from tapewatch.producers.orders.unreadable import Unreadable
from tapewatch.records import ExecutionReport, OrderBookEvent, tenant_problem
from tapewatch.topics import FIRM_ORDERS, MARKET_BY_ORDER

OrderFormat = Literal["databento-csv", "databento-dbn", "lobster", "fix"]
FORMATS: Final[tuple[OrderFormat, ...]] = ("databento-csv", "databento-dbn", "lobster", "fix")
#: records handed to the publisher between two looks at the stop flag
CHUNK: Final = 2048

Parsed = OrderBookEvent | ExecutionReport | Unreadable


def guess_format(path: Path) -> OrderFormat:
    """The format a file's name says: ``.dbn``/``.dbn.zst`` DBN, ``_message_N.csv`` LOBSTER, ``.fix``/``.log`` a FIX
    drop copy, another ``.csv`` a Databento CSV."""
    name = path.name.lower()
    if name.endswith((".dbn", ".dbn.zst")):
        return "databento-dbn"
    if lobster.name_parts(path) is not None:
        return "lobster"
    if name.endswith((".fix", ".log", ".fix.txt")):
        return "fix"
    if name.endswith(".csv"):
        return "databento-csv"
    raise TapewatchError(f"{path}: which format? name it with --format ({', '.join(FORMATS)})")


class OrderReplay:
    """The files' records onto their topics; :meth:`run` is a source (:mod:`tapewatch.producers.framework`)."""

    def __init__(
        self,
        files: Sequence[Path],
        venue: str,
        file_format: OrderFormat | None = None,
        symbol: str | None = None,
        day: date | None = None,
        tenant: str | None = None,
    ) -> None:
        """``tenant``: whose drop copies the FIX files are (required when there is one)."""
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise TapewatchError(f"no such file: {', '.join(missing)}")
        self.files = [(f, file_format or guess_format(f)) for f in files]
        drop_copies = [str(f) for f, kind in self.files if kind == "fix"]
        if drop_copies and tenant is None:
            raise TapewatchError(f"{', '.join(drop_copies)}: a drop copy is a tenant's (name it with --tenant)")
        problem = None if tenant is None else tenant_problem(tenant)
        if problem is not None:
            raise TapewatchError(f"--tenant: {problem}")
        self.venue, self.symbol, self.day, self.tenant = venue, symbol, day, tenant

    def records(self, path: Path, file_format: OrderFormat) -> Iterator[Parsed]:
        try:
            if file_format == "databento-csv":
                yield from databento.read_csv(path, self.venue, self.symbol)
            elif file_format == "databento-dbn":
                yield from databento.read_dbn(path, self.venue, self.symbol)
            elif file_format == "lobster":
                yield from lobster.read_messages(path, self.venue, self.symbol, self.day)
            else:
                with path.open("rb") as lines:
                    yield from read_drop_copy(lines, self.venue, self.tenant or "")
        except (OSError, ValueError) as exc:
            raise TapewatchError(f"{path}: {exc}") from None

    async def run(self, emitter: Emitter, stop: asyncio.Event) -> None:
        for path, file_format in self.files:
            for n, parsed in enumerate(self.records(path, file_format), start=1):
                if isinstance(parsed, Unreadable):
                    emitter.dead_letter(parsed.raw, parsed.reason, parsed.field, source=f"{path}:{parsed.line}")
                elif isinstance(parsed, OrderBookEvent):
                    emitter.emit(MARKET_BY_ORDER, parsed)
                else:
                    emitter.emit(FIRM_ORDERS, parsed)
                if n % CHUNK == 0:
                    await asyncio.sleep(0)
                    if stop.is_set():
                        return
