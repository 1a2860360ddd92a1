"""The audit trail: one append-only line per change or refusal, written in the transaction of the change, each
line chained to the one before by a SHA-256 hash (migration 0007: the database numbers, stamps and chains every
line, whatever the inserting role sent; UPDATE, DELETE and TRUNCATE are refused by trigger). :func:`verify`
recomputes the chain from the stored fields and names the first line that does not hold."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, RowMapping, insert, text

from tapewatch.console.schema import audit

__all__ = ["GENESIS", "ChainReport", "Entry", "append", "line_text", "record", "verify"]

#: the previous hash of the first line
GENESIS: Final = "0" * 64
_SEPARATOR: Final = "\x1f"


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit line to append (:func:`record`'s arguments as a value). ``tenant`` None: an event of no tenant's,
    such as a sign-in with an unknown name, seen by the owner only. Never put a secret in ``before``/``after``:
    supervisors read the line."""

    actor: str
    action: str
    object_type: str
    object_id: str | None
    tenant: str | None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    client: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "before": dict(self.before) if self.before is not None else None,
            "after": dict(self.after) if self.after is not None else None,
            "client": self.client,
        }


def record(
    conn: Connection,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | None = None,
    *,
    tenant: str | None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    client: str | None = None,
) -> None:
    """Append one audit line (:class:`Entry`)."""
    append(conn, [Entry(actor, action, object_type, object_id, tenant, before, after, client)])


def append(conn: Connection, entries: Sequence[Entry]) -> None:
    """Append ``entries`` in their order, in one statement: the chain's lock is held from the first line to the
    transaction's end, so many lines go in one round trip rather than one each."""
    if entries:
        conn.execute(insert(audit), [entry.row() for entry in entries])


def _field(value: str | None) -> str:
    return "n" if value is None else f"v{value}"


def line_text(prev_hash: str, line: Mapping[str, Any] | RowMapping) -> str:
    """What a line's hash covers, as the database's ``audit_line_text`` builds it: the previous hash, the line's
    number, its time in epoch microseconds, then each field (``n`` for NULL, ``v`` + the value otherwise; JSON
    as PostgreSQL renders ``jsonb``).

    >>> line = {"audit_id": 7, "at_us": 1, "tenant": None, "actor": "ann", "action": "login", "object_type": "user",
    ...         "object_id": "ann", "before": None, "after": '{"a": 1}', "client": "::1"}
    >>> line_text("ab", line).split("\\x1f")
    ['ab', '7', '1', 'n', 'vann', 'vlogin', 'vuser', 'vann', 'n', 'v{"a": 1}', 'v::1']
    """
    fields = [
        prev_hash,
        str(line["audit_id"]),
        str(line["at_us"]),
        _field(line["tenant"]),
        _field(line["actor"]),
        _field(line["action"]),
        _field(line["object_type"]),
        _field(line["object_id"]),
        _field(line["before"]),
        _field(line["after"]),
        _field(line["client"]),
    ]
    return _SEPARATOR.join(fields)


@dataclass(frozen=True, slots=True)
class ChainReport:
    lines: int  # lines checked
    head_id: int | None  # the newest line's number …
    head_hash: str  # … and hash: kept elsewhere, it shows a later cut of the newest lines too
    broken_id: int | None = None  # the first line that does not hold, if any
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_id is None


_LINES: Final = text(
    "SELECT audit_id, (extract(epoch FROM at) * 1000000)::bigint AS at_us, tenant, actor, action, object_type, "
    "object_id, before::text AS before, after::text AS after, client, prev_hash, hash FROM audit ORDER BY audit_id"
)


def verify(conn: Connection) -> ChainReport:
    """Walk the whole chain in order (as the owner: every tenant's lines); stop at the first line whose
    previous hash is not the line before's hash, or whose own hash is not that of its fields."""
    last, count, head_id = GENESIS, 0, None
    for row in conn.execution_options(yield_per=10_000).execute(_LINES).mappings():
        if row["prev_hash"] != last:
            reason = "its previous-hash is not the hash of the line before it (a line was removed or inserted)"
            return ChainReport(count, head_id, last, row["audit_id"], reason)
        if hashlib.sha256(line_text(last, row).encode()).hexdigest() != row["hash"]:
            return ChainReport(
                count, head_id, last, row["audit_id"], "its fields do not match its hash (it was changed)"
            )
        last, count, head_id = row["hash"], count + 1, row["audit_id"]
    return ChainReport(count, head_id, last)
