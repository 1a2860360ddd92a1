"""The audit trail: one append-only row per change or refusal, written in the transaction of the change (the
table refuses UPDATE, DELETE and TRUNCATE by trigger, migration 0004)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert

from console.schema import audit

__all__ = ["record"]


def record(
    conn: Connection,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | None = None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    client: str | None = None,
) -> None:
    """Append one audit line. Never pass a secret in ``before``/``after``: the line is readable by supervisors."""
    conn.execute(
        insert(audit).values(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=dict(before) if before is not None else None,
            after=dict(after) if after is not None else None,
            client=client,
        )
    )
