"""Logging setup: human-readable by default, one JSON object per line with TAPEWATCH_LOG_JSON=1."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import orjson

from tapewatch.secrets import redact

if TYPE_CHECKING:
    from tapewatch.settings import Settings

#: librdkafka's own log lines (reconnect attempts, …) arrive here instead of on raw stderr
LIBRDKAFKA = logging.getLogger("tapewatch.librdkafka")


class RedactingFormatter(logging.Formatter):
    """The plain format with credentials masked in the message and the traceback (a connection error may quote
    a URL with its password)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            event.update(extra)
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(event, default=str).decode())


def configure(settings: Settings, quiet_clients: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log.json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log.level.upper())
    # Connection errors are reported once, by the command that needed the service, not per retry.
    LIBRDKAFKA.setLevel(logging.CRITICAL if quiet_clients else logging.WARNING)
    # alembic announces every migration step at INFO: a command says what it did in one line of its own
    for noisy in ("elastic_transport", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
