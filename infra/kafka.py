"""Apache Kafka 4.x, KRaft single node (broker + controller), jars from Maven Central via infra/pom.xml."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from pathlib import Path

from tapewatch.errors import TapewatchError
from tapewatch.infra.common import (
    POM,
    ServiceStatus,
    file_digest,
    java_home,
    mvn,
    pom_property,
    read_pid,
    run,
    spawn,
    stop_all,
    terminate,
)
from tapewatch.kafka import cluster_metadata, create_missing_topics, new_topic
from tapewatch.settings import Settings
from tapewatch.topics import ALL_TOPICS, Topic

LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log}
appender.file.filePattern = {log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def new_cluster_id(draw: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A Kafka cluster id: the 22-character url-safe base64 of 16 random bytes, never starting with ``-``.

    One id in 64 would start with ``-``, and the storage tool's argument parser then reads it as an option
    (``argument --cluster-id/-t: expected one argument``: a fresh machine failed so). Kafka's own
    ``Uuid.randomUuid`` draws again in that case; so do we.

    >>> new_cluster_id(iter([bytes([0xF8] * 16), bytes(16)]).__next__)  # the first draw encodes to "-..."
    'AAAAAAAAAAAAAAAAAAAAAA'
    """
    while True:
        cid = base64.urlsafe_b64encode(draw()).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class Kafka:
    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.local.var_dir / "kafka"
        self.data = self.home / "data"
        self.pid_file = self.home / "kafka.pid"
        self.log_file = self.home / "server.log"
        self.stdout_file = self.home / "kafka.out"
        host, port = settings.kafka.hosts()[0]
        self.host, self.port = host, port
        self.controller_port = port + 1

    @property
    def version(self) -> str:
        return pom_property("kafka.version")

    @property
    def marker(self) -> str:
        """What the command line of every process of ours holds (our directory): tells ours from a stranger."""
        return str(self.home)

    @property
    def address(self) -> str:
        return self.settings.kafka.bootstrap

    # -- install ------------------------------------------------------------------------------
    def classpath(self) -> str:
        """The broker classpath from ~/.m2, resolved once per pom.xml version (mvn costs seconds)."""
        cached = self.home / f"classpath-{file_digest(POM)}.txt"
        if cached.exists():
            cp = cached.read_text().strip()
            if cp and all(Path(jar).exists() for jar in cp.split(":")):
                return cp
        self.home.mkdir(parents=True, exist_ok=True)
        out = self.home / "classpath.tmp"
        run(
            [mvn(), "-q", "-B", "-f", str(POM), "dependency:build-classpath", f"-Dmdep.outputFile={out}"],
            what="kafka: resolve broker jars with Maven",
            log=self.home / "install.log",
        )
        out.replace(cached)
        return cached.read_text().strip()

    def _write_config(self) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": str(self.settings.kafka.topic_partitions),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Two cores shared with Elasticsearch and PostgreSQL: keep the broker's thread pools small.
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.retention.hours": "168",
            "auto.create.topics.enable": "false",
        }
        conf = self.home / "server.properties"
        conf.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.home / "log4j2.properties").write_text(LOG4J2.format(log=self.log_file))
        return conf

    def install(self) -> None:
        java_home()
        cp = self.classpath()
        conf = self._write_config()
        if (self.data / "meta.properties").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        java = str(java_home() / "bin" / "java")
        cid = new_cluster_id()
        run(
            [java, "-cp", cp, "kafka.tools.StorageTool", "format", "--standalone", "-t", cid, "-c", str(conf)],
            what="kafka: format KRaft storage",
            log=self.home / "install.log",
        )

    # -- lifecycle ----------------------------------------------------------------------------
    def pid(self) -> int | None:
        return read_pid(self.pid_file, str(self.home))

    def start(self) -> int:
        conf = self._write_config()
        java = str(java_home() / "bin" / "java")
        heap = f"-Xmx{self.settings.local.kafka_heap_mb}m"
        argv = [
            java,
            f"-Xms{min(256, self.settings.local.kafka_heap_mb)}m",
            heap,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp",
            self.classpath(),
            "kafka.Kafka",
            str(conf),
        ]
        pid = spawn(argv, self.stdout_file)
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def reconcile(self) -> None:
        """No accounts to keep here."""

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, timeout_s=60)
        stop_all(str(self.home), timeout_s=15)
        self.pid_file.unlink(missing_ok=True)

    def probe(self, managed: bool) -> ServiceStatus:
        pid = self.pid() if managed else None
        try:
            meta = cluster_metadata(self.settings)
        except TapewatchError as exc:
            reason = str(exc).split(": ", 2)[-1]
            return ServiceStatus(self.name, self.address, False, managed, None, pid, f"unreachable: {reason}")
        version = self.version if managed and pid else None
        return ServiceStatus(
            self.name,
            self.address,
            True,
            managed,
            version,
            pid,
            f"{len(meta.brokers)} broker(s), {len(meta.topics)} topics",
        )

    def failure_hint(self) -> Path:
        return self.log_file if self.log_file.exists() else self.stdout_file


def topic_config(topic: Topic) -> dict[str, str]:
    """A registry topic's broker configuration: compacted (no age limit), or deleted after its retention."""
    if topic.compacted:
        return {"cleanup.policy": "compact", "compression.type": "producer"}
    return {"retention.ms": str(topic.retention_ms), "compression.type": "producer"}


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create every registry topic that does not exist yet, all with the configured partition count."""
    wanted = [new_topic(settings, settings.topic(t.name), topic_config(t)) for t in ALL_TOPICS]
    return create_missing_topics(settings, wanted, timeout_s=timeout_s)
