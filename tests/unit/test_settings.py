from __future__ import annotations

from pathlib import Path

import pytest

from tapewatch.settings import Settings


def test_environment_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAPEWATCH_KAFKA_BOOTSTRAP", "k1:9092,k2:9093")
    monkeypatch.setenv("TAPEWATCH_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("TAPEWATCH_VAR_DIR", str(tmp_path / "v"))
    s = Settings()
    assert s.kafka_hosts() == [("k1", 9092), ("k2", 9093)]
    assert s.topic_partitions == 12
    assert s.var_dir == tmp_path / "v"
    assert s.models_path == tmp_path / "v" / "models"


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TAPEWATCH_TOPIC_PREFIX=staging.\n")
    s = Settings()
    assert s.topic("md.quotes") == "staging.md.quotes"


def test_bad_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAPEWATCH_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValueError, match="topic_partitions"):
        Settings()


def test_secrets_are_masked() -> None:
    s = Settings(
        postgres_url="postgresql+psycopg2://u:hunter2@db:5432/x",
        kafka_sasl_password="kafkapw",
        es_password="espw",
    )
    shown = s.masked()
    text = " ".join(shown.values())
    assert "hunter2" not in text and "kafkapw" not in text and "espw" not in text
    assert shown["postgres_url"] == "postgresql+psycopg2://u:********@db:5432/x"
    assert shown["kafka_sasl_password"] == "********"


def test_kafka_security_is_passed_through(tmp_path: Path) -> None:
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password="pw",
        kafka_ssl_ca_location=tmp_path / "ca.pem",
    )
    conf = s.kafka_client_config()
    assert conf["security.protocol"] == "sasl_ssl"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "svc" and conf["sasl.password"] == "pw"
    assert conf["ssl.ca.location"] == str(tmp_path / "ca.pem")


def test_external_services() -> None:
    s = Settings(external_services="elasticsearch")
    assert s.is_external("elasticsearch", "127.0.0.1")
    assert not s.is_external("kafka", "127.0.0.1")
    assert not s.is_external("kafka", "localhost")
    assert s.is_external("kafka", "kafka.internal")
    assert s.is_external("postgres", "10.1.2.3")
