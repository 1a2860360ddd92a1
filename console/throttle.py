"""Sign-in throttling: one counter per key (``user:<name>``, known or not, and ``client:<address>``), each
attempt counted *before* its password is checked by one atomic upsert, so a parallel burst cannot slip past the
limit between a read and a write. A success hands its reservation back. A key over its limit is locked for the
lockout period; the lock's expiry resets the counter, and so does a quiet window without a lock.

The attempt that first passes a limit is the lock event (the one audit line a lock writes); the attempts refused
after it are only counted here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import Connection, text

__all__ = ["Reservation", "purge", "release", "reserve"]

_RESET: Final = (
    "((t.locked_until IS NOT NULL AND t.locked_until <= now())"
    " OR (t.locked_until IS NULL AND t.window_start <= now() - :window))"
)
_RESERVE: Final = text(
    f"""
    INSERT INTO login_throttle AS t (key, failures, window_start) VALUES (:key, 1, now())
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN {_RESET} THEN 1 ELSE t.failures + 1 END,
        window_start = CASE WHEN {_RESET} THEN now() ELSE t.window_start END,
        locked_until = CASE WHEN {_RESET} THEN NULL
                            WHEN t.locked_until IS NULL AND t.failures + 1 > :limit THEN now() + :window
                            ELSE t.locked_until END
    RETURNING failures
    """
)


@dataclass(frozen=True, slots=True)
class Reservation:
    key: str
    failures: int  # attempts in the window that did not sign in, this one included
    limit: int

    @property
    def refused(self) -> bool:
        return self.failures > self.limit

    @property
    def lock_event(self) -> bool:
        """This attempt is the one that locked the key."""
        return self.failures == self.limit + 1


def reserve(conn: Connection, key: str, limit: int, window: timedelta) -> Reservation:
    failures = conn.execute(_RESERVE, {"key": key, "limit": limit, "window": window}).scalar_one()
    return Reservation(key, int(failures), limit)


def release(conn: Connection, key: str, *, forget: bool) -> None:
    """Hand a successful attempt's reservation back: ``forget`` clears the key (a user who signed in), else one
    attempt is taken off (an address: its other failures still count)."""
    if forget:
        conn.execute(text("DELETE FROM login_throttle WHERE key = :key"), {"key": key})
    else:
        conn.execute(
            text("UPDATE login_throttle SET failures = failures - 1 WHERE key = :key AND failures > 0"), {"key": key}
        )


def purge(conn: Connection, window: timedelta) -> None:
    """Forget keys quiet for two windows and not locked (a flood of made-up names leaves no lasting rows)."""
    conn.execute(
        text(
            "DELETE FROM login_throttle WHERE window_start < now() - 2 * :window"
            " AND (locked_until IS NULL OR locked_until < now())"
        ),
        {"window": window},
    )
