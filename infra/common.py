"""Process, user and install helpers shared by the services infra/ runs on this machine."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tapewatch.errors import TapewatchError

INFRA_DIR = Path(__file__).resolve().parent
POM = INFRA_DIR / "pom.xml"
SERVICE_USER = "tapewatch"


class InfraError(TapewatchError):
    """A service could not be installed, started, reached or stopped. The message is one line for the user."""


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    address: str
    healthy: bool
    managed: bool
    version: str | None = None
    pid: int | None = None
    detail: str = ""


def is_root() -> bool:
    return os.geteuid() == 0


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is not running.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_pid(path: Path, marker: str) -> int | None:
    """The pid in ``path`` if that process is alive and its command line contains ``marker``.

    The marker (our var dir, say) guards against a stale pid file naming a pid the kernel reused.
    """
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid_alive(pid) and marker in cmdline(pid):
        return pid
    return None


def terminate(pid: int, timeout_s: float = 60.0) -> None:
    """SIGTERM, wait, then SIGKILL: services get a chance to flush before they are forced."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def processes_with(marker: str) -> list[int]:
    """Pids whose command line mentions ``marker`` (a service's own directory)."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (pid := int(entry.name)) != me and marker in cmdline(pid) and pid_alive(pid):
            found.append(pid)
    return found


def listening_pids(port: int) -> list[int]:
    """Pids holding a TCP socket that listens on ``port`` (any address), from /proc (Linux).

    Empty when nothing listens, or when the holder's file descriptors are not ours to read (another user's
    process, without root)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # local_address is HEXIP:HEXPORT; state 0A is LISTEN
                if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    if not inodes:
        return []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if str(fd.readlink()) in wanted:
                        pids.append(int(entry.name))
                        break
    return pids


@dataclass(frozen=True, slots=True)
class PortHolder:
    """Who listens on a service's port: our own process (its command line names our directory) or not."""

    pid: int | None
    ours: bool
    command: str = ""

    @property
    def stranger(self) -> bool:
        return self.pid is not None and not self.ours


def port_holder(port: int, marker: str) -> PortHolder:
    """The process listening on ``port``, and whether its command line contains ``marker`` (our directory).
    ``pid`` None: nothing listens, or the holder cannot be seen."""
    pids = listening_pids(port)
    for pid in pids:
        if marker in cmdline(pid):
            return PortHolder(pid, True, cmdline(pid))
    if pids:
        return PortHolder(pids[0], False, cmdline(pids[0]))
    return PortHolder(None, False)


def stop_all(marker: str, timeout_s: float = 60.0) -> None:
    """Terminate every process of a service, launchers included (runuser, the ES CLI launcher, …)."""
    for pid in processes_with(marker):
        terminate(pid, timeout_s)


def ensure_service_user(name: str = SERVICE_USER) -> str | None:
    """The unprivileged account services run as when we are root; None when we are not root."""
    if not is_root():
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            what=f"create user {name}",
        )
    return name


def as_user(user: str | None, argv: Sequence[str]) -> list[str]:
    if user is None or not is_root():
        return list(argv)
    return ["runuser", "-u", user, "--", *argv]


def chown_tree(path: Path, user: str | None) -> None:
    if user is None or not is_root():
        return
    run(["chown", "-R", f"{user}:", str(path)], what=f"chown {path}")


def traversable_by(user: str | None, path: Path) -> bool:
    """Can ``user`` (a service user of ours: not the owner, in no group of the path) reach ``path``? A cluster
    under /root is not reachable by postgres, for one. Read from the permission bits, so the answer does not
    depend on whether the user exists yet."""
    if user is None or not is_root():
        return True
    for part in (path.resolve(), *path.resolve().parents):
        try:
            mode = part.stat().st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return True


#: where services that run as another user keep their files when that user cannot reach the var dir
FALLBACK_ROOT = Path("/var/lib/tapewatch")


def service_home(var_dir: Path, name: str, user: str | None) -> Path:
    """``var_dir/name``, unless ``user`` cannot reach it (a clone under a private /root, say); then a
    directory of this var dir's own under /var/lib/tapewatch, so two clones never share a cluster.

    Stable across runs: a home that exists is kept, so `down` and `status` always look where `up` started
    the service (the first answer once depended on whether the service user existed yet)."""
    preferred = var_dir / name
    if user is None or not is_root():
        return preferred
    digest = hashlib.sha256(str(var_dir).encode()).hexdigest()[:12]
    fallback = FALLBACK_ROOT / digest / name
    if preferred.exists():
        return preferred
    if fallback.exists():
        return fallback
    var_dir.mkdir(parents=True, exist_ok=True)
    if traversable_by(user, var_dir):
        return preferred
    FALLBACK_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    FALLBACK_ROOT.chmod(0o755)
    return fallback


def run(
    argv: Sequence[str], what: str, log: Path | None = None, timeout: float = 1800, env: dict[str, str] | None = None
) -> str:
    """Run a command to completion; on failure raise one line naming what failed and where to look."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except FileNotFoundError:
        raise InfraError(f"{what}: command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise InfraError(f"{what}: timed out after {timeout:.0f} s") from None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()
        hint = f" (see {log})" if log else ""
        raise InfraError(f"{what} failed (exit {done.returncode}): {last[-1] if last else 'no output'}{hint}")
    return done.stdout


def apt_install(packages: Sequence[str], what: str) -> None:
    """Install Debian packages (root only): how a fresh machine gets PostgreSQL, Java or Maven."""
    if not is_root() or shutil.which("apt-get") is None:
        raise InfraError(f"{what}: missing; install {' '.join(packages)} with your package manager")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], what="apt-get update", env=env, timeout=600)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], what=f"install {what}", env=env)


def java_home(min_major: int = 17) -> Path:
    """A JDK/JRE of at least ``min_major``: $JAVA_HOME, else the `java` on PATH, else Debian's headless JRE."""
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    java = shutil.which("java")
    if java:
        candidates.append(Path(java).resolve().parent.parent)
    for home in candidates:
        if _java_major(home) >= min_major:
            return home
    apt_install(["openjdk-17-jre-headless"], what="Java 17")
    java = shutil.which("java")
    if java and _java_major(home := Path(java).resolve().parent.parent) >= min_major:
        return home
    raise InfraError(f"java: need Java {min_major}+; set JAVA_HOME")


def _java_major(home: Path) -> int:
    binary = home / "bin" / "java"
    if not binary.exists():
        return 0
    out = subprocess.run([str(binary), "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def mvn() -> str:
    found = shutil.which("mvn")
    if found:
        return found
    apt_install(["maven"], what="Maven")
    found = shutil.which("mvn")
    if not found:
        raise InfraError("maven: not found after install")
    return found


def pom_property(name: str) -> str:
    match = re.search(rf"<{re.escape(name)}>([^<]+)</{re.escape(name)}>", POM.read_text())
    if not match:
        raise InfraError(f"infra/pom.xml has no property {name}")
    return match.group(1).strip()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def spawn(argv: Sequence[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> int:
    """Start a long-running service detached from our session, stdout/stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    return proc.pid


def tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
