"""PostgreSQL from Debian's package: a private cluster under the var dir, run as the `postgres` user."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg2
from psycopg2 import sql

from tapewatch.infra.common import (
    InfraError,
    ServiceStatus,
    apt_install,
    as_user,
    chown_tree,
    is_root,
    read_pid,
    run,
    service_home,
)
from tapewatch.settings import Settings

PG_USER = "postgres"


def pg_bindir() -> Path:
    """The newest server binaries Debian installed (/usr/lib/postgresql/N/bin), installing them if missing."""

    def newest() -> Path | None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
        if found:
            return found[-1].parent
        initdb = shutil.which("initdb")
        return Path(initdb).resolve().parent if initdb else None

    bindir = newest()
    if bindir is None:
        apt_install(["postgresql"], what="PostgreSQL server")
        bindir = newest()
    if bindir is None:
        raise InfraError("postgres: server binaries (initdb, pg_ctl) not found after install")
    return bindir


#: the advisory lock key that serialises the roles and database reconciliation (any constant of ours)
RECONCILE_LOCK = 0x7461_7065  # "tape"


class Postgres:
    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = service_home(settings.local.var_dir, "postgres", self.user)
        self.data = self.home / "data"
        self.socket_dir = self.home / "run"
        self.log_file = self.home / "postgres.log"
        self.host, self.port = settings.postgres.host_port()
        url = urlsplit(settings.postgres.url_plain)
        self.db_user = unquote(url.username or "tapewatch")
        self.db_password = unquote(url.password or "")
        self.db_name = url.path.lstrip("/") or "tapewatch"

    @property
    def marker(self) -> str:
        """What the command line of every process of ours holds (our directory): tells ours from a stranger."""
        return str(self.data)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def user(self) -> str | None:
        return PG_USER if is_root() else None

    def _pg(self, tool: str, *args: str) -> list[str]:
        return as_user(self.user, [str(pg_bindir() / tool), *args])

    # -- install ------------------------------------------------------------------------------
    def install(self) -> None:
        pg_bindir()
        if (self.data / "PG_VERSION").exists():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(mode=0o700, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        chown_tree(self.home, self.user)
        # Local socket: trust, but the socket directory is 0700, so only the service user (and root) get in.
        run(
            self._pg(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                PG_USER,
                "-E",
                "UTF8",
                "--no-locale",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ),
            what="postgres: initdb",
            log=self.home / "install.log",
        )
        conf = self.data / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write("\ninclude_if_exists = 'tapewatch.conf'\n")

    def _write_config(self) -> None:
        settings = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "100",
            "shared_buffers": "'128MB'",
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "synchronous_commit": "on",
            "logging_collector": "off",
        }
        target = self.data / "tapewatch.conf"
        text = "".join(f"{k} = {v}\n" for k, v in settings.items())
        target.write_text(text)
        chown_tree(target, self.user)

    # -- lifecycle ----------------------------------------------------------------------------
    def pid(self) -> int | None:
        return read_pid(self.data / "postmaster.pid", "postgres")

    def start(self) -> int | None:
        self._write_config()
        self.log_file.touch()
        chown_tree(self.log_file, self.user)
        run(
            self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log_file), "-w", "-t", "90", "start"),
            what="postgres: pg_ctl start",
            log=self.home / "install.log",
        )
        self._ensure_role_and_database()
        return self.pid()

    def reconcile(self) -> None:
        """The roles and the database the settings name, on a cluster already running (a role added since)."""
        self._ensure_role_and_database()

    def _ensure_role_and_database(self) -> None:
        conn = psycopg2.connect(host=str(self.socket_dir), port=self.port, user=PG_USER, dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                # one reconciliation at a time: two `infra up` at once (two terminals, two test processes) would
                # ALTER the same role concurrently, which PostgreSQL refuses ("tuple concurrently updated")
                cur.execute("SELECT pg_advisory_lock(%s)", (RECONCILE_LOCK,))
                # the schema's owner (migrations, sinks, admin commands) and the console's serving role: neither
                # a superuser, so the audit's triggers bind both and the serving role's grants are all it has
                for role, password in (
                    (self.db_user, self.db_password),
                    (self.settings.console.db_user, self.settings.console.db_password.get_secret_value()),
                ):
                    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                    verb = "ALTER" if cur.fetchone() else "CREATE"
                    cur.execute(
                        sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s").format(
                            sql.Identifier(role)
                        ),
                        (password,),
                    )
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.db_name,))
                if cur.fetchone() is None:
                    cur.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(self.db_name), sql.Identifier(self.db_user)
                        )
                    )
        finally:
            conn.close()

    def stop(self) -> None:
        if self.pid() is None:
            return
        run(
            self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"),
            what="postgres: pg_ctl stop",
            log=self.home / "install.log",
        )

    def probe(self, managed: bool) -> ServiceStatus:
        pid = self.pid() if managed else None
        try:
            conn = psycopg2.connect(
                self.settings.postgres.url_plain.replace("postgresql+psycopg2://", "postgresql://"),
                connect_timeout=max(1, int(self.settings.local.service_timeout_s)),
            )
        except psycopg2.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return ServiceStatus(self.name, self.address, False, managed, None, pid, f"unreachable: {reason}")
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version")
                row = cur.fetchone()
                version = str(row[0]).split()[0] if row else None
        finally:
            conn.close()
        return ServiceStatus(self.name, self.address, True, managed, version, pid, f"database {self.db_name}")

    def failure_hint(self) -> Path:
        return self.log_file
