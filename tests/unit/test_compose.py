"""Structural checks of the Docker files (no Docker engine here, so they are never run on this machine):
infra/docker-compose.yml, the Dockerfile and .env.example must stay consistent with the settings and
with the versions infra/pom.xml pins for the natively started services."""

from __future__ import annotations

import importlib
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from tapewatch.settings import Settings, host_port

try:
    yaml = importlib.import_module("yaml")
except ModuleNotFoundError:  # pragma: no cover - fail loudly, never skip
    pytest.fail("tests/unit/test_compose.py needs PyYAML: pip install PyYAML", pytrace=False)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "infra" / "docker-compose.yml"
POM = ROOT / "infra" / "pom.xml"
ENV_EXAMPLE = ROOT / ".env.example"
APP_SERVICES = ("topics", "stream-worker", "sink-postgres", "sink-elasticsearch", "producer")
VAR_PATTERN = re.compile(r"\bTAPEWATCH_[A-Z0-9_]+\b")
FIELDS = set(Settings.variables())


def load_compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), "docker-compose.yml is not a mapping"
    return loaded


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict), "no services"
    return found


def pom_property(name: str) -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    value = ET.parse(POM).getroot().findtext(f"m:properties/m:{name}", namespaces=ns)
    assert value, f"infra/pom.xml has no <{name}> property"
    return value.strip()


def image_tag(service: dict[str, Any]) -> tuple[str, str]:
    repository, _, tag = str(service["image"]).rpartition(":")
    return repository, tag


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of every published port, short or long syntax."""
    result = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            result.append((str(port.get("host_ip", "")), int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split("/")[0].rsplit(":", 2)
        if len(parts) == 3:
            result.append((parts[0], int(parts[1]), int(parts[2])))
        elif len(parts) == 2:
            result.append(("", int(parts[0]), int(parts[1])))
        else:
            result.append(("", 0, int(parts[0])))
    return result


def test_compose_parses_with_the_expected_services(services: dict[str, dict[str, Any]]) -> None:
    expected = {"kafka", "postgres", "elasticsearch", "kibana", "kibana-setup", *APP_SERVICES}
    assert expected <= set(services), f"missing services: {sorted(expected - set(services))}"


def test_every_dependency_exists_and_one_shots_are_awaited_to_completion(
    services: dict[str, dict[str, Any]],
) -> None:
    one_shots = {name for name, svc in services.items() if str(svc.get("restart", "no")) == "no"}
    assert one_shots, "kibana-setup is a one-shot"
    assert sum(len(depends_on(service)) for service in services.values()) >= len(APP_SERVICES)
    for name, service in services.items():
        for dep, condition in depends_on(service).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert dep != name, f"{name} depends on itself"
            assert condition in ("service_started", "service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"
            if dep in one_shots:
                assert condition == "service_completed_successfully", f"{name} should wait for {dep} to finish"


def test_every_published_port_binds_loopback(services: dict[str, dict[str, Any]]) -> None:
    assert all(published(services[name]) for name in ("kafka", "postgres", "elasticsearch"))
    for name, service in services.items():
        for host_ip, host, target in published(service):
            assert host_ip == "127.0.0.1", f"{name} publishes {host}->{target} on {host_ip or 'all interfaces'}"


def default(name: str) -> str:
    group, field = Settings.variables()[f"TAPEWATCH_{name.upper()}"]
    value = Settings.groups()[group].model_fields[field].default
    return str(value.get_secret_value() if isinstance(value, SecretStr) else value)


def test_host_ports_are_the_ones_the_settings_default_to(services: dict[str, dict[str, Any]]) -> None:
    kafka_port = host_port(default("kafka_bootstrap"), 9092)[1]
    postgres_port = urlsplit(default("postgres_url")).port
    es_port = host_port(default("es_url"), 9200)[1]
    assert kafka_port in {host for _, host, _ in published(services["kafka"])}
    assert postgres_port in {host for _, host, _ in published(services["postgres"])}
    assert es_port in {host for _, host, _ in published(services["elasticsearch"])}
    # The broker must advertise the same address on its host listener, or clients on the host get lost.
    advertised = environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{default('kafka_bootstrap')}" in advertised


def test_service_versions_follow_infra_pom(services: dict[str, dict[str, Any]]) -> None:
    kafka_version = pom_property("kafka.version")
    es_version = pom_property("elasticsearch.version")
    assert image_tag(services["kafka"]) == ("apache/kafka", kafka_version)
    assert image_tag(services["elasticsearch"]) == ("docker.elastic.co/elasticsearch/elasticsearch", es_version)
    assert image_tag(services["kibana"]) == ("docker.elastic.co/kibana/kibana", es_version)
    # PostgreSQL is Debian's package natively (no version in the pom): pin a major, never `latest`.
    repository, tag = image_tag(services["postgres"])
    assert repository == "postgres"
    assert re.fullmatch(r"\d+(\.\d+)?", tag), f"postgres image tag {tag!r} is not a pinned version"


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    assert {name for name, service in services.items() if "build" not in service} >= {"kafka", "postgres"}
    for name, service in services.items():
        if "build" in service:
            continue
        _, tag = image_tag(service)
        assert tag and tag != "latest", f"{name}: image {service['image']} is not pinned"


def test_every_tapewatch_variable_is_a_real_setting() -> None:
    # The raw text, comments included: a typo in a documented variable is silently ignored (extra="ignore").
    used = set(VAR_PATTERN.findall(COMPOSE.read_text(encoding="utf-8")))
    assert used, "the compose file sets no TAPEWATCH_* variable"
    assert used <= FIELDS, f"not settings: {sorted(used - FIELDS)}"


def test_app_services_reach_the_compose_services(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        service = services[name]
        assert service.get("build"), f"{name} is not built from the repository's Dockerfile"
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file()
        env = environment(service)
        groups: dict[str, dict[str, Any]] = {}
        for variable, value in env.items():
            if variable in Settings.variables():
                group, field = Settings.variables()[variable]
                groups.setdefault(group, {})[field] = value
        settings = Settings.model_validate(groups)
        external = {part.strip() for part in settings.local.external_services.split(",")}
        assert external == {"kafka", "postgres", "elasticsearch"}, f"{name} could try to start services itself"
        hosts = {
            "kafka": [host for host, _ in settings.kafka.hosts()],
            "postgres": [settings.postgres.host_port()[0]],
            "elasticsearch": [settings.es.host_port()[0]],
        }
        for service_name, names in hosts.items():
            assert names == [service_name], f"{name} reaches {service_name} at {names}, not the compose service"


def test_dockerfile_is_the_one_compose_builds() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert re.search(r"^USER (?!root\b)\S+", text, re.MULTILINE), "the image must not run as root"
    assert 'ENTRYPOINT ["tapewatch"]' in text
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for pattern in (".git", ".venv", "var", ".env"):
        assert pattern in ignored, f".dockerignore does not exclude {pattern}"


def _env_lines(text: str) -> dict[str, str]:
    lines: dict[str, str] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"#?\s*(TAPEWATCH_[A-Z0-9_]+)=(.*)", line.strip())
        if match:
            lines.setdefault(match.group(1), match.group(2))
    return lines


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = set(_env_lines(ENV_EXAMPLE.read_text(encoding="utf-8")))
    assert listed - FIELDS == set(), f"not settings: {sorted(listed - FIELDS)}"
    assert FIELDS - listed == set(), f"settings missing from .env.example: {sorted(FIELDS - listed)}"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("TAPEWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.usefixtures("clean_env")
def test_env_example_values_are_the_defaults(tmp_path: Path) -> None:
    active = "\n".join(
        line for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines() if not line.startswith("#")
    )
    (tmp_path / "example.env").write_text(active, encoding="utf-8")
    from_file = Settings(_env_file=tmp_path / "example.env")
    assert from_file.masked() == Settings(_env_file=None).masked()


@pytest.mark.usefixtures("clean_env")
def test_env_example_external_block_is_valid(tmp_path: Path) -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    block = text[text.index("# Example: your own clusters") :]
    uncommented = [line[2:] for line in block.splitlines() if VAR_PATTERN.match(line[2:])]
    (tmp_path / "external.env").write_text("\n".join(uncommented), encoding="utf-8")
    settings = Settings(_env_file=tmp_path / "external.env")
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert all(settings.local.is_external("kafka", host) for host, _ in settings.kafka.hosts())
    assert settings.local.is_external("postgres", settings.postgres.host_port()[0])
    assert settings.local.is_external("elasticsearch", settings.es.host_port()[0])
    conf = settings.kafka.client_config()
    assert conf["security.protocol"] == "sasl_ssl" and conf["sasl.mechanism"]


def test_postgres_roles_are_not_superusers_and_passwords_come_from_the_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    postgres = environment(services["postgres"])
    # the image's POSTGRES_USER is the cluster's superuser: no tapewatch process may connect as it
    app_env = environment(services[APP_SERVICES[0]])
    owner = make_url(app_env["TAPEWATCH_POSTGRES_URL"]).username
    assert postgres["POSTGRES_USER"] not in {owner, "tapewatch_console"}
    init = (COMPOSE.parent / "postgres-init.sh").read_text(encoding="utf-8")
    assert "NOSUPERUSER" in init and init.count("CREATE ROLE") == 2
    passwords = [
        postgres["POSTGRES_PASSWORD"],
        postgres["PG_OWNER_PASSWORD"],
        postgres["TAPEWATCH_CONSOLE_DB_PASSWORD"],
        app_env["TAPEWATCH_CONSOLE_DB_PASSWORD"],
        str(make_url(app_env["TAPEWATCH_POSTGRES_URL"]).password),
    ]
    for password in passwords:
        assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", password), f"a fixed password in compose: {password!r}"
    assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", postgres["POSTGRES_PASSWORD"])  # required, never empty
