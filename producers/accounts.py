"""A tenant's accounts from a CSV file onto ``ref.accounts``: a header naming ``account`` and, each optional,
``owner`` (the beneficial owner) and ``group`` (a group of linked accounts); an empty cell is none. One
:class:`~tapewatch.records.AccountRef` per line, keyed ``<tenant>/<account>``; a line that breaks the contract goes
to ``dlq.producers`` with its reason and place (``<file>:<line>``), and the load goes on.

>>> import io
>>> rows = io.StringIO("account,owner,group\\nA1,O1,\\nA2,O1,G7\\nbad account,,\\n")
>>> for read in read_accounts(rows, "acme", 0):
...     print((read.account, read.owner, read.group) if isinstance(read, AccountRef) else read.reason[:40])
('A1', 'O1', None)
('A2', 'O1', 'G7')
field 'account': String should match pat
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from tapewatch.errors import TapewatchError
from tapewatch.producers.framework import Emitter
from tapewatch.producers.orders.unreadable import Unreadable
from tapewatch.records import AccountRef, RecordError, tenant_problem
from tapewatch.topics import ACCOUNTS

COLUMNS = ("account", "owner", "group")


def read_accounts(lines: IO[str], tenant: str, ts: int) -> Iterator[AccountRef | Unreadable]:
    """Each line of an accounts CSV as ``tenant``'s record (set at ``ts``) or an :class:`Unreadable`."""
    reader = csv.DictReader(lines)
    unknown = set(reader.fieldnames or ()) - set(COLUMNS)
    if "account" not in (reader.fieldnames or ()) or unknown:
        raise ValueError(f"the header names {', '.join(COLUMNS)} (account required), not {reader.fieldnames}")
    for row in reader:
        line = reader.line_num
        try:
            yield AccountRef.from_dict({"tenant": tenant, "ts": ts, **{k: (row.get(k) or None) for k in COLUMNS}})
        except RecordError as exc:
            where = f"field '{exc.field}': " if exc.field else ""
            raw = ",".join(row.get(k) or "" for k in COLUMNS).encode()
            yield Unreadable(raw, line, f"{where}{exc.reason}", exc.field)


class AccountsFile:
    """A tenant's accounts file onto ``ref.accounts``; :meth:`run` is a source
    (:mod:`tapewatch.producers.framework`)."""

    def __init__(self, path: Path, tenant: str, ts: int) -> None:
        problem = tenant_problem(tenant)
        if problem is not None:
            raise TapewatchError(f"--tenant: {problem}")
        if not path.is_file():
            raise TapewatchError(f"no such file: {path}")
        self.path, self.tenant, self.ts = path, tenant, ts

    async def run(self, emitter: Emitter, stop: asyncio.Event) -> None:
        try:
            with self.path.open(newline="", encoding="utf-8") as lines:
                for parsed in read_accounts(lines, self.tenant, self.ts):
                    if isinstance(parsed, Unreadable):
                        emitter.dead_letter(
                            parsed.raw, parsed.reason, parsed.field, source=f"{self.path}:{parsed.line}"
                        )
                    else:
                        emitter.emit(ACCOUNTS, parsed)
                    if stop.is_set():
                        return
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
            raise TapewatchError(f"{self.path}: {exc}") from None
        await asyncio.sleep(0)
