"""Elasticsearch 8.x from Maven Central's integ-test zip, single node, run as an unprivileged user.

The integ-test distribution has no bundled JDK and only core modules (no ILM, no ingest, no painless),
and it answers ``GET /`` with 405: health and version come from ``_cluster/health`` and ``_nodes/_local``.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import orjson
import urllib3

from tapewatch.infra.common import (
    POM,
    SERVICE_USER,
    InfraError,
    ServiceStatus,
    as_user,
    chown_tree,
    ensure_service_user,
    is_root,
    java_home,
    mvn,
    pom_property,
    read_pid,
    run,
    service_home,
    spawn,
    stop_all,
    terminate,
)
from tapewatch.settings import Settings


class Elasticsearch:
    name = "elasticsearch"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = service_home(settings.local.var_dir, "elasticsearch", SERVICE_USER if is_root() else None)
        self.dist = self.root / f"elasticsearch-{self.version}"
        self.data = self.root / "data"
        self.logs = self.root / "logs"
        self.pid_file = self.root / "elasticsearch.pid"
        self.stdout_file = self.root / "elasticsearch.out"
        self.host, self.port = settings.es.host_port()

    @property
    def version(self) -> str:
        return pom_property("elasticsearch.version")

    @property
    def marker(self) -> str:
        """What the command line of every process of ours holds (our directory): tells ours from a stranger."""
        return str(self.root)

    @property
    def address(self) -> str:
        return self.settings.es.url

    @property
    def log_file(self) -> Path:
        return self.logs / "tapewatch.log"

    # -- install ------------------------------------------------------------------------------
    def install(self) -> None:
        user = ensure_service_user()
        java_home()
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.dist / "bin" / "elasticsearch").exists():
            self._unpack()
        self._write_config()
        for path in (self.data, self.logs):
            path.mkdir(parents=True, exist_ok=True)
        chown_tree(self.root, user)

    def _unpack(self) -> None:
        artifact = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{self.version}:zip"
        download = self.root / "download"
        run(
            [
                mvn(),
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy",
                f"-Dartifact={artifact}",
                f"-DoutputDirectory={download}",
            ],
            what="elasticsearch: fetch the distribution with Maven",
            log=self.root / "install.log",
        )
        archive = download / f"elasticsearch-{self.version}.zip"
        staging = self.root / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)
            # zipfile drops the exec bits; the launcher scripts and native tools need them back.
            for member in zf.infolist():
                mode = (member.external_attr >> 16) & 0o777
                if mode:
                    (staging / member.filename).chmod(mode)
        (staging / f"elasticsearch-{self.version}").replace(self.dist)
        shutil.rmtree(staging, ignore_errors=True)
        archive.unlink(missing_ok=True)

    def _write_config(self) -> None:
        config = {
            "cluster.name": "tapewatch",
            "node.name": "tapewatch-1",
            "network.host": self.host,
            "http.port": self.port,
            "transport.port": self.port + 100,
            "discovery.type": "single-node",
            "path.data": str(self.data),
            "path.logs": str(self.logs),
            "action.destructive_requires_name": False,
            # Low disk must not block writes on a developer laptop; the alert store is not a production cluster.
            "cluster.routing.allocation.disk.threshold_enabled": False,
        }
        lines = [f"{k}: {orjson.dumps(v).decode()}\n" for k, v in config.items()]
        if (self.dist / "modules" / "x-pack-security").exists():
            lines.append("xpack.security.enabled: false\n")
        (self.dist / "config" / "elasticsearch.yml").write_text("".join(lines))
        heap = self.settings.local.es_heap_mb
        (self.dist / "config" / "jvm.options.d").mkdir(exist_ok=True)
        (self.dist / "config" / "jvm.options.d" / "heap.options").write_text(f"-Xms{heap}m\n-Xmx{heap}m\n")

    # -- lifecycle ----------------------------------------------------------------------------
    def pid(self) -> int | None:
        return read_pid(self.pid_file, "org.elasticsearch")

    def start(self) -> int:
        user = ensure_service_user()
        self._write_config()
        chown_tree(self.root, user)
        self.pid_file.unlink(missing_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ES_JAVA_HOME": str(java_home()),
            "ES_TMPDIR": str(self.root / "tmp"),
            "HOME": str(self.root),
        }
        (self.root / "tmp").mkdir(exist_ok=True)
        chown_tree(self.root / "tmp", user)
        argv = as_user(
            user,
            [
                "env",
                *(f"{k}={v}" for k, v in env.items()),
                str(self.dist / "bin" / "elasticsearch"),
                "-p",
                str(self.pid_file),
            ],
        )
        return spawn(argv, self.stdout_file, cwd=self.root)

    def reconcile(self) -> None:
        """No accounts to keep here."""

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, timeout_s=60)
        stop_all(str(self.root), timeout_s=15)
        self.pid_file.unlink(missing_ok=True)

    def _get(self, path: str) -> dict[str, object]:
        timeout = urllib3.Timeout(
            connect=self.settings.local.service_timeout_s, read=self.settings.local.service_timeout_s
        )
        headers = urllib3.make_headers(
            basic_auth=(
                f"{self.settings.es.username}:{self.settings.es.password.get_secret_value()}"
                if self.settings.es.username and self.settings.es.password
                else None
            )
        )
        if self.settings.es.api_key:
            headers["Authorization"] = f"ApiKey {self.settings.es.api_key.get_secret_value()}"
        http = urllib3.PoolManager(
            timeout=timeout,
            retries=False,
            ca_certs=str(self.settings.es.ca_certs) if self.settings.es.ca_certs else None,
        )
        response = http.request("GET", self.settings.es.url.rstrip("/") + path, headers=headers)
        if response.status != 200:
            raise InfraError(f"HTTP {response.status}: {response.data[:200].decode(errors='replace')}")
        data = orjson.loads(response.data)
        if not isinstance(data, dict):
            raise InfraError("unexpected answer")
        return data

    def probe(self, managed: bool) -> ServiceStatus:
        pid = self.pid() if managed else None
        try:
            health = self._get("/_cluster/health")
            nodes = self._get("/_nodes/_local?filter_path=nodes.*.version")
        except (urllib3.exceptions.HTTPError, InfraError, orjson.JSONDecodeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return ServiceStatus(self.name, self.address, False, managed, None, pid, f"unreachable: {reason}")
        node_map = nodes.get("nodes")
        version = None
        if isinstance(node_map, dict) and node_map:
            first = next(iter(node_map.values()))
            version = first.get("version") if isinstance(first, dict) else None
        status = str(health.get("status"))
        return ServiceStatus(
            self.name,
            self.address,
            status in ("green", "yellow"),
            managed,
            version,
            pid,
            f"cluster {health.get('cluster_name')} {status}",
        )

    def failure_hint(self) -> Path:
        return self.log_file if self.log_file.exists() else self.stdout_file
