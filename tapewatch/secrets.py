"""Credentials never printed or logged: one function masks them in any text (a setting, a message, a traceback).

Masked, in every URL found in the text (any scheme, lists of URLs too):

* the user-info password (``scheme://user:secret@host`` → ``scheme://user:********@host``), percent-encoded or
  not, and a user-info that is a bare token (``https://TOKEN@host`` → ``https://********@host``);
* the value of every query parameter that carries a secret (``password``, ``sslpassword``, ``token``,
  ``api_key``, ``secret``, ``sig``, …, any case).

>>> redact("postgresql+psycopg2://tw:s3cr%40t@db:5432/tw?sslmode=require&password=other")
'postgresql+psycopg2://tw:********@db:5432/tw?sslmode=require&password=********'
>>> redact("proxies http://u:p@proxy-1:3128,https://tok@proxy-2")
'proxies http://u:********@proxy-1:3128,https://********@proxy-2'
>>> redact("http://127.0.0.1:19200")
'http://127.0.0.1:19200'
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

MASK: Final = "********"

_USERINFO: Final = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/\s@?#,'\"]+)@")
_SECRET_PARAMS: Final = (
    "password|passwd|pwd|pass|sslpassword|sslkey_password|sasl_password|sasl\\.password|secret|client_secret"
    "|token|access_token|refresh_token|id_token|api[_-]?key|apikey|auth|authorization|sig|signature|credential"
)
_QUERY: Final = re.compile(rf"(?i)(?P<name>[?&;](?:{_SECRET_PARAMS})=)(?P<value>[^&;\s#'\",]*)")


def _userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    shown = f"{user}:{MASK}" if colon else MASK
    return f"{match['scheme']}{shown}@"


def redact(text: str) -> str:
    """``text`` with every credential inside a URL masked (see the module docstring)."""
    if "://" not in text and "=" not in text:
        return text
    return _QUERY.sub(lambda m: f"{m['name']}{MASK}", _USERINFO.sub(_userinfo, text))


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to a new file only its owner can read (0600 from creation: an older file, whatever its
    mode, is removed first, never reopened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
