"""`tapewatch console user|token …` on the real PostgreSQL: passwords from standard input never echoed,
hashes with Argon2, tokens written to an owner-only file, every change audited with the operating-system user."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from console.auth import load_api_token
from console.passwords import verify_password
from console.schema import audit, users
from sinks import db
from tapewatch.settings import Settings
from tests.console_support import console_schema

pytestmark = pytest.mark.integration
TAPEWATCH = str(Path(sys.executable).with_name("tapewatch"))
SECRET = "a long enough secret 42"


@pytest.fixture
def schema_settings(services: Settings) -> Iterator[Settings]:
    with console_schema(services) as settings:
        yield settings


def _cli(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TAPEWATCH_POSTGRES_URL": settings.postgres_url_plain}
    return subprocess.run(
        [TAPEWATCH, "console", *args], input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_user_add_passwd_disable(schema_settings: Settings) -> None:
    added = _cli(schema_settings, "user", "add", "ann", "--role", "supervisor", "--password-stdin", stdin=SECRET + "\n")
    assert added.returncode == 0, added.stderr
    assert SECRET not in added.stdout + added.stderr
    refused = _cli(schema_settings, "user", "add", "bob", "--password-stdin", stdin="short\n")
    assert refused.returncode != 0 and "12 characters" in refused.stdout + refused.stderr
    assert _cli(schema_settings, "user", "passwd", "ann", "--password-stdin", stdin=SECRET + "!\n").returncode == 0
    assert _cli(schema_settings, "user", "disable", "ann").returncode == 0
    engine = db.make_engine(schema_settings)
    with engine.connect() as conn:
        user = conn.execute(select(users).where(users.c.username == "ann")).one()
        actions = conn.execute(select(audit.c.action, audit.c.actor).order_by(audit.c.audit_id)).all()
    engine.dispose()
    assert user.role == "supervisor" and user.disabled and user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, SECRET + "!") and not verify_password(user.password_hash, SECRET)
    assert [a for a, _ in actions] == ["user.add", "user.passwd", "user.disable"]
    assert {actor for _, actor in actions} == {f"cli:{getpass.getuser()}"}


def test_token_add_writes_an_owner_only_file_and_revoke_ends_it(schema_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "feed.token"
    created = _cli(schema_settings, "token", "add", "risk-feed", "--out", str(out))
    assert created.returncode == 0, created.stderr
    secret = out.read_text().strip()
    assert out.stat().st_mode & 0o777 == 0o600 and secret not in created.stdout + created.stderr
    engine = db.make_engine(schema_settings)
    with engine.begin() as conn:
        principal = load_api_token(conn, secret)
        assert principal is not None and principal.role == "service"
        token_id = conn.execute(text("SELECT token_id FROM api_tokens")).scalar_one()
    assert _cli(schema_settings, "token", "revoke", token_id).returncode == 0
    with engine.begin() as conn:
        assert load_api_token(conn, secret) is None
    engine.dispose()
