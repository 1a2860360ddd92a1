"""Shared fixtures. Integration tests run against the real services infra/ starts (never mocks):
the session fixture brings them up (a quick no-op when `make test` already did); each test gets its own
topics behind a unique prefix."""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tapewatch.settings import Settings

if TYPE_CHECKING:
    from tests.pipeline_session import PreparedSession

# Hypothesis's default 200 ms deadline per example, and its health check on slow data generation, time the
# machine, not the code: on a 2-core VM shared with Kafka, Elasticsearch and PostgreSQL one slow example fails a
# property that holds. Speed is measured by the benchmarks (`tapewatch bench …`); the properties keep every
# other check.
hypothesis_settings.register_profile(
    "tapewatch", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
hypothesis_settings.load_profile("tapewatch")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests that stop and restart the services go last, so they cannot pull the floor from under others.
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


def pytest_configure(config: pytest.Config) -> None:
    # A pytest-xdist worker starts with COLUMNS=80 (and LINES) in its environment, which fixes the width of every rich
    # console created in it; the tests ask for the width they need (CliRunner's env), as in a plain run.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        for variable in ("COLUMNS", "LINES"):
            os.environ.pop(variable, None)
    # py4j (Spark's gateway) logs from __del__ at interpreter exit, after pytest closed the streams
    logging.getLogger("py4j").setLevel(logging.WARNING)
    config.addinivalue_line("markers", "disruptive: stops or restarts shared services; runs last")


@pytest.fixture
def private_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A model directory of the test's own (the settings read again on both sides): a command that reads or writes
    models never touches the project's."""
    from tapewatch.settings import get_settings

    monkeypatch.setenv("TAPEWATCH_MODEL_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def services(base_settings: Settings) -> Settings:
    """The real Kafka, PostgreSQL and Elasticsearch, healthy."""
    from tapewatch.infra import manager

    manager.up(base_settings)
    return base_settings


@pytest.fixture
def settings(services: Settings) -> Iterator[Settings]:
    """Settings whose topics are private to this test (created now, deleted at the end): tests read
    topics from the beginning, so sharing them would mix one test's records into another's."""
    from tests.stream_runs import private_topics

    with private_topics(services) as isolated:
        yield isolated


@pytest.fixture
def pg(settings: Settings) -> Iterator[Settings]:
    """The per-test topics of ``settings``, plus a private PostgreSQL schema (dropped at the end): the tables of
    one test, and their Alembic version, never meet another's, nor the shared database's ``public`` schema."""
    from tapewatch.sinks import db

    schema = f"t_{uuid.uuid4().hex[:10]}"
    db.create_schema(settings, schema)
    yield db.in_schema(settings, schema)
    db.drop_schema(settings, schema)


@pytest.fixture
def stream_settings(settings: Settings) -> Iterator[Settings]:
    """The per-test topics of conftest's ``settings``, plus cleaning what the worker adds: its changelog
    topic and its data directory."""
    from tests.stream_runs import drop_worker_state

    yield settings
    drop_worker_state(settings)


@pytest.fixture
def stores(settings: Settings) -> Iterator[Settings]:
    """Settings with a private PostgreSQL schema and Elasticsearch index prefix besides the private topics."""
    from tapewatch.sinks import db
    from tapewatch.sinks.elastic import delete_everything
    from tapewatch.sinks.search import es_client

    tag = uuid.uuid4().hex[:8]
    db.create_schema(settings, f"test_{tag}")
    isolated = db.in_schema(settings, f"test_{tag}").updated(es={"index_prefix": f"twtest{tag}"})
    yield isolated
    db.drop_schema(settings, f"test_{tag}")
    es = es_client(isolated)
    delete_everything(es, isolated)
    es.close()


@pytest.fixture(scope="session")
def prepared_session(tmp_path_factory: pytest.TempPathFactory) -> PreparedSession:
    """The simulated pipeline session with its models (K-means, DQN, LSTM, CNN) and what the offline twin says about
    it, prepared once for every test that streams it (the tests only read it): under pytest-xdist, by the first
    worker that needs it, in the run's shared temporary directory; the others wait for it and read it."""
    from filelock import FileLock

    from tests.pipeline_session import prepare_session

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return prepare_session(tmp_path_factory.mktemp("pipeline-session"), {}, forecasters=True)
    shared = tmp_path_factory.getbasetemp().parent / "pipeline-session"
    saved = shared / "prepared.pickle"
    with FileLock(f"{shared}.lock"):
        if saved.exists():
            prepared: PreparedSession = pickle.loads(saved.read_bytes())
            return prepared
        # a worker whose preparation failed left its directory half-written: prepare it afresh (and fail with the
        # cause, not with the directory being there)
        shutil.rmtree(shared, ignore_errors=True)
        shared.mkdir()
        prepared = prepare_session(shared, {}, forecasters=True)
        saved.write_bytes(pickle.dumps(prepared))
        return prepared


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark for the tests that compare a Spark job with its pandas twin (a JVM takes seconds to start)."""
    import pyspark.sql as pyspark_sql  # a dependency: a missing install must fail, not skip

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .appName("tapewatch-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    yield spark
    spark.stop()
