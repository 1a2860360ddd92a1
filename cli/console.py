"""`tapewatch console …`: serve the analyst console; manage its users, tenants, API tokens and tenants' accounts.

Passwords are read from a hidden prompt (twice) or, for scripts, from standard input (``--password-stdin``);
they are never arguments (a process list shows arguments) and never printed. A new API token is written to a
file only its owner can read, whose path is printed.
"""

from __future__ import annotations

import os
import pwd
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.errors import TapewatchError
from tapewatch.extras import require
from tapewatch.secrets import write_secret
from tapewatch.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from tapewatch.console.accounts import AccountFeed, Loaded, NotPublishedError

console_app = typer.Typer(
    help="The analyst console: cases, evidence and book replay in the browser.", no_args_is_help=True
)
user_app = typer.Typer(help="Console users (roles: analyst, supervisor, admin).", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants: which venues' alerts their users see.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens of downstream services (read-only, stored hashed).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail (hash-chained, append-only).", no_args_is_help=True)
accounts_app = typer.Typer(
    help="Tenants' account reference data (kept by their admins on the Accounts page, or loaded from a file).",
    no_args_is_help=True,
)
console_app.add_typer(user_app, name="user")
console_app.add_typer(audit_app, name="audit")
console_app.add_typer(tenant_app, name="tenant")
console_app.add_typer(token_app, name="token")
console_app.add_typer(accounts_app, name="accounts")
out = Console()

#: how many refused lines a load names by place (the rest are counted)
SHOWN_REFUSED: Final = 5

PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input")]


def cli_user() -> str:
    """Who runs the command, for the audit trail: the user name of the process's effective user id (not
    ``$USER``/``$LOGNAME``, which whoever runs the command may set to anything)."""
    try:
        return f"cli:{pwd.getpwuid(os.geteuid()).pw_name}"
    except KeyError:  # a uid with no user name (a container's arbitrary uid)
        return f"cli:uid{os.geteuid()}"


def _engine(settings: Settings) -> Engine:
    from tapewatch.sinks import db

    db.upgrade(settings)
    return db.make_engine(settings)


def _password(from_stdin: bool) -> str:
    """The new password, checked before anything is stored."""
    from tapewatch.console import passwords

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = str(typer.prompt("Password", hide_input=True))
        if typer.prompt("Again", hide_input=True) != password:
            raise TapewatchError("console: the two passwords differ")
    try:
        passwords.check_strength(password)
    except passwords.WeakPasswordError as exc:
        raise TapewatchError(f"console: {exc}") from None
    return password


@console_app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Default: TAPEWATCH_CONSOLE_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: TAPEWATCH_CONSOLE_PORT")] = None,
) -> None:
    """Serve the console (pages, live queue, JSON API at /api/v1, OpenAPI at /api/openapi.json)."""
    require("console", "tapewatch console serve")
    import uvicorn

    from tapewatch.console.app import create_app

    settings = load_settings()
    app = create_app(settings)
    bind_host, bind_port = host or settings.console.host, port or settings.console.port
    out.print(f"console: http://{bind_host}:{bind_port}/")
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from loopback; the console reads it itself,
    # and only from TAPEWATCH_CONSOLE_TRUSTED_PROXIES (tapewatch.console.security.client_of)
    uvicorn.run(app, host=bind_host, port=bind_port, log_level="warning", access_log=False, proxy_headers=False)


@user_app.command("add")
def user_add(
    username: str,
    tenant: Annotated[str, typer.Option(help="The user's tenant (required: there is no default tenant)")],
    role: Annotated[str, typer.Option(help="analyst, supervisor or admin")] = "analyst",
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user; the password is asked for (hidden) or read from standard input."""
    from tapewatch.console import users

    password = _password(password_stdin)
    with _engine(load_settings()).begin() as conn:
        users.add_user(conn, username, password, role, tenant, cli_user())
    out.print(f"console: user {username} added ({role}, tenant {tenant})")


@user_app.command("passwd")
def user_passwd(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password (ends their sessions, lifts a lockout)."""
    from tapewatch.console import users

    password = _password(password_stdin)
    with _engine(load_settings()).begin() as conn:
        users.set_password(conn, username, password, cli_user())
    out.print(f"console: password of {username} changed")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user (ends their sessions at once)."""
    from tapewatch.console import users

    with _engine(load_settings()).begin() as conn:
        users.set_disabled(conn, username, True, cli_user())
    out.print(f"console: user {username} disabled")


@user_app.command("enable")
def user_enable(username: str) -> None:
    from tapewatch.console import users

    with _engine(load_settings()).begin() as conn:
        users.set_disabled(conn, username, False, cli_user())
    out.print(f"console: user {username} enabled")


@user_app.command("list")
def user_list() -> None:
    from tapewatch.console import users

    with _engine(load_settings()).begin() as conn:
        rows = users.list_users(conn)
    table = Table("user", "role", "tenant", "disabled")
    for name, role, tenant, disabled in rows:
        table.add_row(name, role, tenant, "yes" if disabled else "")
    out.print(table)


@tenant_app.command("add")
def tenant_add(tenant: str, venues: Annotated[str, typer.Option(help="Comma-separated venues, or *")]) -> None:
    """Add a tenant: its cases are made from the alerts of these venues (its own cases, seen by its users only)."""
    from tapewatch.console import users

    names = [v.strip() for v in venues.split(",") if v.strip()]
    with _engine(load_settings()).begin() as conn:
        made = users.add_tenant(conn, tenant, names, cli_user())
    out.print(f"console: tenant {tenant} added ({', '.join(names)}; {made} cases from stored alerts)")


@token_app.command("add")
def token_add(
    service: str,
    tenant: Annotated[str, typer.Option(help="The tenant whose cases the token reads (required)")],
    out_file: Annotated[Path | None, typer.Option("--out", help="Where the token goes (mode 0600)")] = None,
) -> None:
    """Create an API token for a service: the token is written once to a file only you can read."""
    from tapewatch.console import users

    settings = load_settings()
    with _engine(settings).begin() as conn:
        token = users.add_token(conn, service, tenant, cli_user())
    path = out_file or settings.local.var_dir / "console" / "tokens" / f"{service}-{token.token_id}.token"
    write_secret(path, token.secret)
    out.print(f"console: token {token.token_id} for {service}; the secret is in {path} (send it as 'Bearer …')")


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    from tapewatch.console import users

    with _engine(load_settings()).begin() as conn:
        users.revoke_token(conn, token_id, cli_user())
    out.print(f"console: token {token_id} revoked")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit's hash chain; exit 1 naming the first line that does not hold. Keep the printed head
    hash elsewhere (a ticket, a mail): a later run that no longer reaches it shows the newest lines were cut."""
    from tapewatch.console import audit

    with _engine(load_settings()).begin() as conn:
        report = audit.verify(conn)
    if not report.intact:
        raise TapewatchError(f"console: the audit chain breaks at line {report.broken_id}: {report.reason}")
    head = f"line {report.head_id}, hash {report.head_hash}" if report.head_id is not None else "empty"
    out.print(f"console: audit chain intact: {report.lines} lines; head {head}")


def _checked_tenant_name(tenant: str) -> None:
    from tapewatch.records import tenant_problem

    problem = tenant_problem(tenant)
    if problem is not None:
        raise TapewatchError(f"--tenant: {problem}")


def _require_tenant(conn: Connection, tenant: str) -> None:
    from sqlalchemy import select

    from tapewatch.console.schema import tenants

    if conn.execute(select(tenants.c.tenant).where(tenants.c.tenant == tenant)).first() is None:
        raise TapewatchError(f"console: no tenant {tenant!r}")


def _serving_engine(settings: Settings, tenant: str) -> Engine:
    """An engine as the console serves (its serving role: row-level security holds every statement to the tenant a
    transaction names), once the owner brought the schema up to date and granted the role; ``tenant`` must exist."""
    from sqlalchemy.exc import OperationalError

    from tapewatch.sinks import db

    db.upgrade(settings)
    engine = db.make_engine(settings, serving=True)
    try:
        with engine.begin() as conn:
            _require_tenant(conn, tenant)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        role = settings.console.db_user
        raise TapewatchError(f"console: cannot reach PostgreSQL as the serving role {role}: {reason}") from None
    except TapewatchError:
        engine.dispose()
        raise
    return engine


@accounts_app.command("publish")
def accounts_publish(tenant: Annotated[str, typer.Option(help="The tenant whose accounts are sent")]) -> None:
    """Send every account of the tenant to ref.accounts again, as stored (after Kafka refused a change, or to a
    new cluster): the topic keeps the newest per account, so a repeat changes nothing."""
    from tapewatch.console.accounts import AccountFeed, publish_table
    from tapewatch.kafka_producer import DeliveryError

    _checked_tenant_name(tenant)
    settings = load_settings()
    engine = _engine(settings)
    feed = AccountFeed(settings)
    try:
        with engine.begin() as conn:
            _require_tenant(conn, tenant)
        published = publish_table(engine, feed, tenant)
    except DeliveryError as exc:
        raise TapewatchError(f"console: the accounts were not published: {exc}") from None
    finally:
        feed.close()
        engine.dispose()
    out.print(f"console: {published:,} account(s) of {tenant} published to ref.accounts")


@contextmanager
def account_writer(settings: Settings, tenant: str) -> Iterator[tuple[Engine, AccountFeed]]:
    """What a load of the tenant's accounts writes with (:func:`tapewatch.console.accounts.load`): the console's
    serving role (row-level security) and its feed of ref.accounts, closed after the block; a load Kafka refused
    ends the command in one line. The broker is reached first: a missing one is one line at once, before the
    database is touched."""
    from tapewatch.console.accounts import AccountFeed, NotPublishedError
    from tapewatch.kafka import ensure_reachable

    ensure_reachable(settings)
    engine = _serving_engine(settings, tenant)
    feed = AccountFeed(settings)
    try:
        yield engine, feed
    except NotPublishedError as exc:
        raise TapewatchError(_not_loaded(exc)) from None
    finally:
        feed.close()
        engine.dispose()


@accounts_app.command("load")
def accounts_load(
    file: Annotated[Path, typer.Argument(help="A CSV with a header: account, and optionally owner and group")],
    tenant: Annotated[str, typer.Option(help="The tenant whose accounts these are")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Also remove the tenant's accounts that no line of the file names")
    ] = False,
) -> None:
    """Load a CSV of a tenant's accounts (from the firm's system of record) into its accounts table, as its admin's
    changes on the Accounts page are made (audited as cli:accounts-load), and send what changed to ref.accounts
    before committing: if Kafka does not take it, nothing is loaded. A line that breaks the contract goes to
    dlq.producers with its place, and the load goes on."""
    from tapewatch.console.account_file import read_file
    from tapewatch.console.accounts import load

    _checked_tenant_name(tenant)
    lines = read_file(file, tenant, int(time.time() * 1000))
    loading = out.status(f"console: loading {len(lines):,} line(s) of {file}…")
    with account_writer(load_settings(), tenant) as (engine, feed), loading:
        loaded = load(engine, feed, tenant, lines, replace=replace, client=cli_user())
    _print_loaded(loaded, tenant, file)


def _not_loaded(exc: NotPublishedError) -> str:
    from tapewatch.console.accounts import republish_command

    refused = f"console: nothing was loaded: Kafka did not take the accounts ({exc})"
    if exc.restored:
        return refused
    return f"{refused}, and may still deliver them: run `{republish_command(exc.tenant)}` once Kafka is back"


def _print_loaded(loaded: Loaded, tenant: str, file: Path) -> None:
    """What changed, in counts; the refused lines by place and field (never a value: accounts are confidential)."""
    out.print(
        f"console: accounts of {tenant} loaded from {file}: {loaded.count('account.add'):,} added, "
        f"{loaded.count('account.change'):,} changed, {loaded.unchanged:,} unchanged, "
        f"{loaded.count('account.remove'):,} removed; {len(loaded.refused):,} line(s) dead-lettered to dlq.producers"
    )
    for line in loaded.refused[:SHOWN_REFUSED]:
        out.print(f"  {line.place}: {f'field {line.field!r}' if line.field else 'refused'}")
    if len(loaded.refused) > SHOWN_REFUSED:
        out.print(f"  … and {len(loaded.refused) - SHOWN_REFUSED:,} more (their reasons are in dlq.producers)")
