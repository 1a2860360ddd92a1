from __future__ import annotations

from pathlib import Path

import pytest

from tapewatch.settings import ElasticsearchSettings, KafkaSettings, LocalSettings, PostgresSettings, Settings


def test_environment_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAPEWATCH_KAFKA_BOOTSTRAP", "k1:9092,k2:9093")
    monkeypatch.setenv("TAPEWATCH_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("TAPEWATCH_VAR_DIR", str(tmp_path / "v"))
    s = Settings()
    assert s.kafka.hosts() == [("k1", 9092), ("k2", 9093)]
    listeners = s.updated(kafka={"bootstrap": "SASL_SSL://broker-1:9093, [::1]:9092"})
    assert listeners.kafka.hosts() == [("broker-1", 9093), ("::1", 9092)]
    assert s.kafka.topic_partitions == 12
    assert s.local.var_dir == tmp_path / "v"
    assert s.local.models_path == tmp_path / "v" / "models"


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
        postgres=PostgresSettings(url="postgresql+psycopg2://u:hunter2@db:5432/x"),
        kafka=KafkaSettings(sasl_password="kafkapw"),
        es=ElasticsearchSettings(password="espw"),
    )
    shown = s.masked()
    text = " ".join(shown.values())
    assert "hunter2" not in text and "kafkapw" not in text and "espw" not in text
    assert shown["postgres_url"] == "postgresql+psycopg2://u:********@db:5432/x"
    assert shown["kafka_sasl_password"] == "********"


def test_kafka_security_is_passed_through(tmp_path: Path) -> None:
    s = Settings(
        kafka=KafkaSettings(
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="svc",
            sasl_password="pw",
            ssl_ca_location=tmp_path / "ca.pem",
        )
    )
    conf = s.kafka.client_config()
    assert conf["security.protocol"] == "sasl_ssl"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "svc" and conf["sasl.password"] == "pw"
    assert conf["ssl.ca.location"] == str(tmp_path / "ca.pem")


def test_external_services() -> None:
    s = Settings(local=LocalSettings(external_services="elasticsearch"))
    assert s.local.is_external("elasticsearch", "127.0.0.1")
    assert not s.local.is_external("kafka", "127.0.0.1")
    assert not s.local.is_external("kafka", "localhost")
    assert s.local.is_external("kafka", "kafka.internal")
    assert s.local.is_external("postgres", "10.1.2.3")


def test_every_group_reads_its_variables_from_the_environment_and_the_same_env_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TAPEWATCH_TOPIC_PREFIX", "env.")
    monkeypatch.setenv("TAPEWATCH_LOG_JSON", "true")
    (tmp_path / "other.env").write_text(
        "TAPEWATCH_PRODUCER_MAX_FUTURE_MS=5000\nTAPEWATCH_FLOW_CHUNK_MS=2500\nTAPEWATCH_TOPIC_PREFIX=file.\n"
    )
    s = Settings(_env_file=tmp_path / "other.env")
    assert s.kafka.topic_prefix == "env."  # the environment wins over the file, as for one flat class
    assert s.log.json_lines and s.sources.max_future_ms == 5000 and s.flow.chunk_ms == 2500
    assert Settings.variables()["TAPEWATCH_PRODUCER_MAX_FUTURE_MS"] == ("sources", "max_future_ms")
    assert s.masked()["producer_max_future_ms"] == "5000"


def test_updated_replaces_fields_of_groups_and_refuses_unknown_ones() -> None:
    s = Settings(kafka=KafkaSettings(topic_prefix="a."))
    copy = s.updated(kafka={"topic_prefix": "b."}, es={"index_prefix": "tw"})
    assert (copy.topic("x"), copy.es.index_prefix, s.topic("x")) == ("b.x", "tw", "a.x")
    with pytest.raises(TypeError, match="topic_partition"):
        s.updated(kafka={"topic_partition": 3})


def test_the_detectors_build_their_parameters_from_their_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    from tapewatch.detectors.news.context import NewsContextParams
    from tapewatch.detectors.news.indicator import NewsIndicatorParams

    monkeypatch.setenv("TAPEWATCH_NEWS_HALF_LIFE_MS", "600000")
    monkeypatch.setenv("TAPEWATCH_NEWS_BEFORE_MS", "60000")
    monkeypatch.setenv("TAPEWATCH_NEWS_DISCOUNT", "0.25")
    news = Settings().news
    assert NewsIndicatorParams.from_settings(news).half_life_ms == 600_000
    context = NewsContextParams.from_settings(news)
    assert (context.before_ms, context.after_ms, context.discount) == (60_000, 120_000, 0.25)
