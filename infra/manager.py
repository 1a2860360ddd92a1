"""`tapewatch infra up|down|status|logs`: the real services on this machine, or checks of external ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from tapewatch.infra.common import (
    InfraError,
    ServiceStatus,
    pid_alive,
    port_holder,
    port_open,
    processes_with,
    stop_all,
    tail,
)
from tapewatch.infra.elasticsearch import Elasticsearch
from tapewatch.infra.kafka import Kafka, ensure_topics
from tapewatch.infra.postgres import Postgres
from tapewatch.settings import Settings

#: how long a freshly started service may take to answer on this 2-core machine
START_TIMEOUT_S = {"kafka": 120.0, "postgres": 90.0, "elasticsearch": 240.0}


class Service(Protocol):
    name: str
    host: str
    port: int

    @property
    def marker(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def log_file(self) -> Path: ...
    def install(self) -> None: ...
    def start(self) -> int | None:
        """Start the service; returns the pid of the process to watch while it comes up."""
        ...

    def stop(self) -> None: ...
    def reconcile(self) -> None:
        """Bring a running service's accounts to what the settings name (a no-op where there are none)."""
        ...

    def pid(self) -> int | None: ...
    def probe(self, managed: bool) -> ServiceStatus: ...
    def failure_hint(self) -> Path: ...


def services(settings: Settings) -> list[Service]:
    # Elasticsearch first: it is the slowest to start, so the others start while it warms up.
    return [Elasticsearch(settings), Kafka(settings), Postgres(settings)]


def service(settings: Settings, name: str) -> Service:
    for svc in services(settings):
        if svc.name == name:
            return svc
    raise InfraError(f"unknown service {name!r}; choose from kafka, postgres, elasticsearch")


def is_managed(settings: Settings, svc: Service) -> bool:
    return not settings.local.is_external(svc.name, svc.host)


#: how long `down` waits for a stopped service's port to fall silent
DOWN_TIMEOUT_S = 60.0


def status(settings: Settings) -> list[ServiceStatus]:
    svcs = services(settings)
    with ThreadPoolExecutor(len(svcs)) as pool:
        return list(pool.map(lambda s: _probe(settings, s), svcs))


def _probe(settings: Settings, svc: Service) -> ServiceStatus:
    """The service's answer, checked against who holds its port: for a service we run, an answer from a process
    that is not ours (its command line does not name our directory) is not our service being healthy."""
    managed = is_managed(settings, svc)
    probe = svc.probe(managed)
    if not managed:
        return probe
    holder = port_holder(svc.port, svc.marker)
    if holder.stranger:
        return replace(
            probe,
            healthy=False,
            pid=holder.pid,
            detail=f"port {svc.port} is held by another process (pid {holder.pid}: {holder.command[:80]})",
        )
    if holder.ours and probe.pid != holder.pid:
        return replace(probe, pid=holder.pid)  # the pid file was lost or names a launcher: the listener is ours
    return probe


Report = Callable[[str, str], None]


def up(settings: Settings, report: Report = lambda name, msg: None) -> list[ServiceStatus]:
    """Start what is not running, wait until everything answers, create the topics. Idempotent."""
    starting: list[tuple[Service, int | None]] = []
    for svc in services(settings):
        managed = is_managed(settings, svc)
        running_pid = svc.pid() if managed else None
        if not managed or port_open(svc.host, svc.port, timeout=1.0):
            probe = _probe(settings, svc)
            if probe.healthy:
                if managed:
                    svc.reconcile()
                report(svc.name, "running" if managed else "external, reachable")
                continue
            if not managed:
                raise InfraError(f"{svc.name}: external service at {svc.address} is {probe.detail}")
            if running_pid is None:
                raise InfraError(
                    f"{svc.name}: port {svc.port} is taken by a process that is not a healthy "
                    f"{svc.name}: {probe.detail}"
                )
        if running_pid is None:
            report(svc.name, "installing")
            svc.install()
            report(svc.name, "starting")
            running_pid = svc.start()
        starting.append((svc, running_pid))

    for svc, launcher in starting:
        report(svc.name, "waiting")
        _wait_healthy(svc, launcher, START_TIMEOUT_S[svc.name])
        report(svc.name, "healthy")

    report("topics", "creating")
    created = ensure_topics(settings)
    report("topics", f"{len(created)} created" if created else "present")
    return status(settings)


def _wait_healthy(svc: Service, launcher: int | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(svc.host, svc.port, timeout=1.0) and svc.probe(True).healthy:
            return
        if launcher is not None and not pid_alive(launcher):
            break  # it died while starting: say so now, not after the timeout
        time.sleep(1.0)
    last = tail(svc.failure_hint(), 1).strip()
    raise InfraError(
        f"{svc.name}: did not become healthy within {timeout_s:.0f} s — see {svc.failure_hint()}"
        + (f" (last line: {last[:200]})" if last else "")
    )


def down(settings: Settings, report: Report = lambda name, msg: None) -> None:
    """Stop only what `up` started here, and return only once none of it answers on its port any more. Ours is
    any process whose command line names the service's directory (whatever its pid file says); external
    services and strangers on our ports are left alone."""
    for svc in reversed(services(settings)):
        if not is_managed(settings, svc):
            report(svc.name, "external, left running")
            continue
        holder = port_holder(svc.port, svc.marker)
        if svc.pid() is None and not holder.ours and not processes_with(svc.marker):
            stranger = f"; port {svc.port} is held by another process (pid {holder.pid})" if holder.stranger else ""
            report(svc.name, "not running" + stranger)
            continue
        report(svc.name, "stopping")
        svc.stop()
        stop_all(svc.marker, timeout_s=30)  # anything of ours its own stop missed (a lost pid file, a launcher)
        _wait_silent(svc)
        report(svc.name, "stopped")


def _wait_silent(svc: Service) -> None:
    """Until no process of ours listens on the service's port (a stranger may: it is not ours to stop)."""
    deadline = time.monotonic() + DOWN_TIMEOUT_S
    while time.monotonic() < deadline:
        holder = port_holder(svc.port, svc.marker)
        if not holder.ours and (holder.stranger or not port_open(svc.host, svc.port, timeout=0.5)):
            return
        if holder.ours and holder.pid is not None:
            stop_all(svc.marker, timeout_s=10)
        time.sleep(0.2)
    raise InfraError(f"{svc.name}: still answering on port {svc.port} {DOWN_TIMEOUT_S:.0f} s after stopping it")
