"""The analyst console: alert cases, evidence, charts and book replay in the browser, with users, roles, sessions,
CSRF protection and an append-only audit trail in PostgreSQL (issue 14).

The web application (FastAPI, server-rendered pages, every asset in the package) is served by
``tapewatch console serve``; users and API tokens are managed by ``tapewatch console user|token``.
"""

from __future__ import annotations

__all__: list[str] = []
