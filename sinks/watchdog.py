"""A client-side limit on a database round trip: a hung or paused server answers nothing — not the statement,
not its own ``statement_timeout``, not a cancel request (the postmaster is stopped too) — so the only way out is
our own end. :func:`cut_after` shuts the connection's socket down once the limit passes, and the call blocked on it
fails at once with a connection error, which the sink counts as an outage and retries."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection

__all__ = ["Watch", "cut_after"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Watch:
    limit_s: float
    fired: bool = False


def _shutdown(fd: int) -> None:
    """Shut the socket behind ``fd`` down in both directions (on a duplicate: the driver still owns ``fd``)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # already closed: the call it guarded has ended anyway
        log.debug("watchdog: socket already gone (%s)", exc)


@contextmanager
def cut_after(conn: Connection, limit_s: float) -> Iterator[Watch]:
    """Guard what runs on ``conn`` inside the block: after ``limit_s`` its socket is shut down. ``Watch.fired``
    tells the caller why the block then failed."""
    fd = conn.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
    watch = Watch(limit_s)

    def fire() -> None:
        watch.fired = True
        _shutdown(fd)

    timer = threading.Timer(limit_s, fire)
    timer.daemon = True
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()
