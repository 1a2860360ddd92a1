"""A tenant's accounts as a CSV file, as a firm's system of record exports them (``tapewatch console accounts load``):
a header naming ``account`` and, each optional, ``owner`` (the beneficial owner) and ``group`` (a group of linked
accounts); an empty cell is none. Each line is one :class:`~tapewatch.records.AccountRef` of the tenant, or, when it
breaks the contract, a :class:`RefusedLine` (for ``dlq.producers``, with its reason and place ``<file>:<line>``).

>>> import io
>>> rows = io.StringIO("account,owner,group\\nA1,O1,\\nA2,O1,G7\\nA3,bad owner,\\n")
>>> for read in read_accounts(rows, "acme", 0, "firm.csv"):
...     print((read.account, read.owner, read.group) if isinstance(read, AccountRef) else (read.place, read.account))
('A1', 'O1', None)
('A2', 'O1', 'G7')
('firm.csv:4', 'A3')
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from tapewatch.deadletter import DeadLetter
from tapewatch.errors import TapewatchError
from tapewatch.records import AccountRef, RecordError

__all__ = ["COLUMNS", "RefusedLine", "read_accounts", "read_file"]

COLUMNS: Final = ("account", "owner", "group")


@dataclass(frozen=True, slots=True)
class RefusedLine:
    """A line that breaks the contract: its cells (the bytes dead-lettered), its place, why, and the account it names
    (stripped; None if empty), which a load that replaces the tenant's accounts must not remove."""

    raw: bytes
    place: str
    reason: str
    field: str | None
    account: str | None

    def dead_letter(self, stage: str) -> DeadLetter:
        return DeadLetter(stage=stage, reason=self.reason, field=self.field, source=self.place)


def read_accounts(lines: IO[str], tenant: str, ts: int, source: str) -> Iterator[AccountRef | RefusedLine]:
    """Each line of an accounts CSV named ``source`` as ``tenant``'s record (set at ``ts``) or a refused line;
    :class:`ValueError` if the header is not an accounts file's."""
    reader = csv.DictReader(lines)
    unknown = set(reader.fieldnames or ()) - set(COLUMNS)
    if "account" not in (reader.fieldnames or ()) or unknown:
        raise ValueError(f"the header names {', '.join(COLUMNS)} (account required), not {reader.fieldnames}")
    for row in reader:
        cells = {k: (row.get(k) or None) for k in COLUMNS}
        try:
            yield AccountRef.from_dict({"tenant": tenant, "ts": ts, **cells})
        except RecordError as exc:
            where = f"field '{exc.field}': " if exc.field else ""
            raw = ",".join(row.get(k) or "" for k in COLUMNS).encode()
            named = (row.get("account") or "").strip() or None
            yield RefusedLine(raw, f"{source}:{reader.line_num}", f"{where}{exc.reason}", exc.field, named)


def read_file(path: Path, tenant: str, ts: int) -> list[AccountRef | RefusedLine]:
    """The whole file, read before anything is written: a file that cannot be read changes nothing."""
    try:
        with path.open(newline="", encoding="utf-8") as lines:
            return list(read_accounts(lines, tenant, ts, str(path)))
    except FileNotFoundError:
        raise TapewatchError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise TapewatchError(f"{path}: {exc}") from None
