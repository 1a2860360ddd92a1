"""`tapewatch console user|token|audit …` on the real PostgreSQL: passwords from standard input never echoed,
hashes with Argon2, tokens written to an owner-only file, every change audited with the operating-system account
(not ``$USER``), no default tenant, and the audit chain verified (and a tampered line named)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from tapewatch.console.auth import load_api_token
from tapewatch.console.passwords import verify_password
from tapewatch.console.schema import audit, users
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tests.console_support import TENANT, console_schema

pytestmark = pytest.mark.integration
TAPEWATCH = str(Path(sys.executable).with_name("tapewatch"))
SECRET = "a long enough secret 42"


@pytest.fixture
def schema_settings(services: Settings) -> Iterator[Settings]:
    with console_schema(services) as settings:
        yield settings


def _cli(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    # $USER and $LOGNAME say someone else: the audit must name the account that really runs the command
    env = {**os.environ, "TAPEWATCH_POSTGRES_URL": settings.postgres.url_plain, "USER": "mallory", "LOGNAME": "mallory"}
    return subprocess.run(
        [TAPEWATCH, "console", *args], input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_user_add_passwd_disable(schema_settings: Settings) -> None:
    no_tenant = _cli(schema_settings, "user", "add", "ann", "--password-stdin", stdin=SECRET + "\n")
    assert no_tenant.returncode != 0 and "--tenant" in no_tenant.stdout + no_tenant.stderr  # no default tenant
    added = _cli(
        schema_settings,
        "user",
        "add",
        "ann",
        "--tenant",
        TENANT,
        "--role",
        "supervisor",
        "--password-stdin",
        stdin=SECRET + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert SECRET not in added.stdout + added.stderr
    assert len((added.stdout + added.stderr).strip().splitlines()) == 1, added.stdout + added.stderr  # no chatter
    refused = _cli(schema_settings, "user", "add", "bob", "--tenant", TENANT, "--password-stdin", stdin="short\n")
    assert refused.returncode != 0 and "12 characters" in refused.stdout + refused.stderr
    assert _cli(schema_settings, "user", "passwd", "ann", "--password-stdin", stdin=SECRET + "!\n").returncode == 0
    assert _cli(schema_settings, "user", "disable", "ann").returncode == 0
    engine = db.make_engine(schema_settings)
    with engine.connect() as conn:
        user = conn.execute(select(users).where(users.c.username == "ann")).one()
        actions = conn.execute(
            select(audit.c.action, audit.c.actor).where(audit.c.actor != "test").order_by(audit.c.audit_id)
        ).all()
    engine.dispose()
    assert user.role == "supervisor" and user.disabled and user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, SECRET + "!") and not verify_password(user.password_hash, SECRET)
    assert [a for a, _ in actions] == ["user.add", "user.passwd", "user.disable"]
    assert {actor for _, actor in actions} == {f"cli:{pwd.getpwuid(os.geteuid()).pw_name}"}


def test_token_add_writes_an_owner_only_file_and_revoke_ends_it(schema_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "feed.token"
    created = _cli(schema_settings, "token", "add", "risk-feed", "--tenant", TENANT, "--out", str(out))
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


def test_audit_verify_proves_the_chain_and_names_a_tampered_line(schema_settings: Settings) -> None:
    for name in ("ann", "bob", "cid"):
        added = _cli(schema_settings, "user", "add", name, "--tenant", TENANT, "--password-stdin", stdin=SECRET + "\n")
        assert added.returncode == 0, added.stderr
    intact = _cli(schema_settings, "audit", "verify")
    assert intact.returncode == 0 and "intact: 4 lines" in intact.stdout, intact.stdout + intact.stderr
    engine = db.make_engine(schema_settings)
    with engine.begin() as conn:  # the owner can get round the trigger; the chain still tells
        target = conn.execute(text("SELECT audit_id FROM audit WHERE object_id = 'bob'")).scalar_one()
        conn.execute(text("ALTER TABLE audit DISABLE TRIGGER audit_no_update_delete"))
        conn.execute(text('UPDATE audit SET after = \'{"role": "admin"}\' WHERE audit_id = :i'), {"i": target})
        conn.execute(text("ALTER TABLE audit ENABLE TRIGGER audit_no_update_delete"))
    changed = _cli(schema_settings, "audit", "verify")
    assert changed.returncode != 0 and f"breaks at line {target}" in changed.stdout + changed.stderr
    with engine.begin() as conn:  # a line removed instead: the next line's previous-hash no longer holds
        conn.execute(text("ALTER TABLE audit DISABLE TRIGGER audit_no_update_delete"))
        conn.execute(text("DELETE FROM audit WHERE audit_id = :i"), {"i": target})
        conn.execute(text("ALTER TABLE audit ENABLE TRIGGER audit_no_update_delete"))
        following = conn.execute(text("SELECT min(audit_id) FROM audit WHERE audit_id > :i"), {"i": target}).scalar()
    engine.dispose()
    removed = _cli(schema_settings, "audit", "verify")
    assert removed.returncode != 0 and f"breaks at line {following}" in removed.stdout + removed.stderr
    assert "removed or inserted" in removed.stdout + removed.stderr
