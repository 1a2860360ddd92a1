"""New and escalated alerts, pushed to open queues: one thread LISTENs on PostgreSQL's ``tapewatch_alerts``
channel (notified by the ``alerts_to_cases_*`` triggers in the sink's transaction, so a notification means the
case is stored) and wakes the asyncio queues of that tenant's subscribers only. The payload is the schema and
the tenant: what changed is read by each page with its own user's filters under its own tenant's scope."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import threading
from typing import Final

import psycopg2
import psycopg2.extensions
from sqlalchemy.engine import make_url

from tapewatch.backoff import Backoff
from tapewatch.settings import Settings

__all__ = ["CHANNEL", "AlertListener"]

CHANNEL: Final = "tapewatch_alerts"
log = logging.getLogger(__name__)


class AlertListener:
    """Fan-out of alert notifications to asyncio subscribers; reconnects after a database outage."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._subscribers: dict[str, set[asyncio.Queue[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Listen on a thread of its own, waking subscribers on ``loop`` (again after a :meth:`stop`: an
        application's lifespan may run more than once)."""
        self._loop = loop
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="console-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.connected.clear()

    def subscribe(self, tenant: str) -> asyncio.Queue[None]:
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)  # one pending wake-up is enough
        self._subscribers.setdefault(tenant, set()).add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[None]) -> None:
        for queues in self._subscribers.values():
            queues.discard(queue)

    def _wake(self, tenants: set[str] | None) -> None:
        """Wake the subscribers of ``tenants`` (None: everyone, after a reconnection may have missed some)."""
        for tenant, queues in list(self._subscribers.items()):
            if tenants is not None and tenant not in tenants:
                continue
            for queue in list(queues):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                self._listen(backoff)
            except psycopg2.Error as exc:
                self.connected.clear()
                log.warning("console: alert notifications lost the database (%s); reconnecting", str(exc).strip())
                self._stop.wait(backoff.next_delay())

    def _listen(self, backoff: Backoff) -> None:
        url = make_url(self._settings.console_postgres_url_plain)
        conn = psycopg2.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
            options=str(url.query.get("options", "")) or None,
            connect_timeout=max(1, int(self._settings.local.service_timeout_s)),
        )
        try:
            conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
            with conn.cursor() as cursor:
                cursor.execute("SELECT current_schema()")
                schema = cursor.fetchone()[0]  # type: ignore[index]
                cursor.execute(f"LISTEN {CHANNEL}")
            self.connected.set()
            backoff.reset()
            if self._loop is not None:  # alerts stored while the connection was down: let the queues look
                self._loop.call_soon_threadsafe(self._wake, None)
            while not self._stop.is_set():
                if select.select([conn], [], [], 0.5)[0]:
                    conn.poll()
                    tenants = {t for s, _, t in (n.payload.partition(" ") for n in conn.notifies) if s == schema}
                    conn.notifies.clear()
                    if tenants and self._loop is not None:
                        self._loop.call_soon_threadsafe(self._wake, tenants)
        finally:
            conn.close()
