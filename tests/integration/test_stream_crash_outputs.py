"""A crash changes no output: bars, features, scores, alerts (every emission), actions, forecasts and dead
letters of a run with ``kill -9`` are byte for byte those of an uninterrupted run over the same session.

The reference is one worker over the session produced as fast as possible. The crash runs get the session at
40× its pace, so the kills fall in the middle of it, and checkpoint every 5 s instead of every second: a killed
market stage has then sent up to 5 s of features its changelog does not know of yet, which its successor sends
again at new offsets (the case the detect stage must recognise by event identity, not by offset). Two runs:
one worker killed twice and restarted at once; two workers in one group, one of them killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tapewatch.settings import PROJECT_ROOT, Settings
from tapewatch.streams.app import MARKET_STATE_TABLE, changelog_topic
from tapewatch.topics import ACTIONS, ALERTS, FEATURES, FORECASTS, SCORES
from tests.pipeline_session import SESSION, PreparedSession, sim_args
from tests.stream_runs import Positions, drop_worker_state, outputs, private_topics, wait_consumed, wait_until
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration

Outputs = dict[str, set[tuple[bytes | None, bytes]]]
WAIT_S = 300.0
#: checkpoints 5 s apart in the crash runs (the reference keeps the default): more to send again after a kill
CHECKPOINT_S = 5.0
SLOW_CHECKPOINTS = {"TAPEWATCH_STREAM_CHECKPOINT_INTERVAL_MS": str(int(CHECKPOINT_S * 1000))}
#: how long a frozen worker's requests already on the wire take to land
IN_FLIGHT_S = 0.3


def produce(settings: Settings, env: dict[str, str], speed: float) -> subprocess.Popen[bytes]:
    """The session into the settings' md.quotes / md.books at ``speed`` × its pace (0: as fast as possible)."""
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("tapewatch")), "produce", "simulate", *sim_args(SESSION),
         "--speed", str(speed), "--no-progress"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env, "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def produced(producer: subprocess.Popen[bytes]) -> None:
    _, err = producer.communicate(timeout=WAIT_S)
    assert producer.returncode == 0, err.decode(errors="replace")[-2000:]


def tails(workers: list[Worker]) -> str:
    return "\n".join(w.tail() for w in workers)


@pytest.fixture(scope="module")
def models_env(prepared_session: PreparedSession) -> dict[str, str]:
    return prepared_session.env


@pytest.fixture(scope="module")
def reference(services: Settings, models_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    """Every output of one uninterrupted worker over the session."""
    logs = tmp_path_factory.mktemp("reference")
    with private_topics(services) as settings:
        worker = Worker(settings, logs / "worker.log", env=models_env)
        try:
            produced(produce(settings, models_env, speed=0))
            wait_consumed(settings, WAIT_S, worker.tail)
            got = outputs(settings)
        finally:
            worker.stop()
            drop_worker_state(settings)
    assert got[ALERTS.name] and got[SCORES.name] and got[FORECASTS.name], "the session must raise alerts, forecasts"
    assert any(b'"q_values":{}' not in value for _, value in got[ACTIONS.name]), "no decided action"
    return got


@pytest.fixture
def crash_settings(services: Settings) -> Iterator[Settings]:
    with private_topics(services) as settings:
        yield settings
        drop_worker_state(settings)


def assert_same_outputs(got: Outputs, reference: Outputs, details: str) -> None:
    for name, want in reference.items():
        have = got[name]
        extra, missing = sorted(have - want), sorted(want - have)
        assert not extra and not missing, (
            f"{name}: {len(extra)} output(s) not in the uninterrupted run, {len(missing)} of it missing; e.g.\n"
            f"extra {extra[:2]}\nmissing {missing[:2]}\n{details}"
        )


def records(settings: Settings, name: str) -> int:
    positions = Positions(settings)
    try:
        return positions.records(name)
    finally:
        positions.close()


def actions_beyond(settings: Settings, count: float) -> bool:
    return records(settings, ACTIONS.name) >= count


def decided(settings: Settings, partitions: set[int]) -> bool:
    """Whether the member holding ``partitions`` has decided bars there."""
    positions = Positions(settings)
    try:
        return positions.records(ACTIONS.name, partitions) > 0
    finally:
        positions.close()


class UnsavedFeatures:
    """Whether the member holding ``partitions`` has sent features its market stage's state does not know of yet:
    those its successor sends again. A checkpoint sends the state only once every output is acknowledged, so the
    features there, counted when the stage's changelog is first seen at its present length, were all saved; any
    beyond that count came after the last checkpoint."""

    def __init__(self, settings: Settings, partitions: set[int]) -> None:
        self._positions = Positions(settings)
        self._changelog = changelog_topic(settings, MARKET_STATE_TABLE)
        self._features = settings.topic(FEATURES.name)
        self._partitions = partitions
        self._saved_with: dict[int, int] = {}  # changelog length -> features then

    def __call__(self) -> bool:
        saved = self._positions.written(self._changelog, self._partitions)
        sent = self._positions.written(self._features, self._partitions)
        return sent > self._saved_with.setdefault(saved, sent)

    def close(self) -> None:
        self._positions.close()


def kill_with_unsaved_features(
    settings: Settings, worker: Worker, partitions: set[int], ready: Callable[[], bool], what: Callable[[], str]
) -> None:
    """SIGKILL ``worker`` once ``ready()`` holds and it has sent features it has not checkpointed. It is frozen
    (SIGSTOP) while it is looked at, so no checkpoint falls between the look and the kill: on a loaded machine a
    worker found with quotes not committed had often sent nothing since its last checkpoint, and the kill tested
    nothing."""
    unsaved = UnsavedFeatures(settings, partitions)

    def frozen_with_unsaved() -> bool:
        if not ready():
            return False
        worker.proc.send_signal(signal.SIGSTOP)
        time.sleep(IN_FLIGHT_S)
        if unsaved():
            return True
        worker.proc.send_signal(signal.SIGCONT)
        return False

    try:
        wait_until(frozen_with_unsaved, WAIT_S, what)
    finally:
        unsaved.close()
    assert worker.stop(sig=signal.SIGKILL) == -signal.SIGKILL


@pytest.mark.timeout(900)
def test_one_worker_killed_twice(
    crash_settings: Settings, models_env: dict[str, str], reference: Outputs, tmp_path: Path
) -> None:
    settings, env = crash_settings, {**models_env, **SLOW_CHECKPOINTS}
    everything = set(range(settings.kafka.topic_partitions))
    workers = [Worker(settings, tmp_path / "worker-0.log", env=env)]
    producer = produce(settings, env, speed=40)
    try:
        for kill, share in enumerate((1 / 3, 2 / 3), start=1):
            # the kill falls where the worker has decided a share of the session's bars
            kill_with_unsaved_features(
                settings,
                workers[-1],
                everything,
                lambda: actions_beyond(settings, share * len(reference[ACTIONS.name])),  # noqa: B023
                lambda: f"no progress before kill {kill}\n{tails(workers)}",  # noqa: B023
            )
            workers.append(Worker(settings, tmp_path / f"worker-{kill}.log", env=env))
        produced(producer)
        wait_consumed(settings, WAIT_S, lambda: tails(workers))
        got = outputs(settings)
        resent = records(settings, FEATURES.name) - len(got[FEATURES.name])
        details = tails(workers)
    finally:
        producer.kill()
        for worker in workers:
            worker.stop()
    assert resent > 0, f"no killed market stage sent features again: the kills tested nothing\n{details}"
    assert_same_outputs(got, reference, details)


@pytest.mark.timeout(900)
def test_two_workers_one_killed(
    crash_settings: Settings, models_env: dict[str, str], reference: Outputs, tmp_path: Path
) -> None:
    settings, env = crash_settings, {**models_env, **SLOW_CHECKPOINTS}
    workers = [Worker(settings, tmp_path / f"worker-{i}.log", env=env) for i in (0, 1)]
    producer: subprocess.Popen[bytes] | None = None
    try:
        everything = set(range(settings.kafka.topic_partitions))
        wait_until(
            lambda: all(w.assigned() for w in workers) and workers[0].assigned() | workers[1].assigned() == everything,
            WAIT_S,
            lambda: f"the group did not settle on two members\n{tails(workers)}",
        )
        producer = produce(settings, env, speed=40)
        started = time.monotonic()
        # the kill falls after two of worker 0's checkpoints, once it has decided bars on its own partitions
        killed = workers[0].assigned()
        kill_with_unsaved_features(
            settings,
            workers[0],
            killed,
            lambda: time.monotonic() - started > 2.5 * CHECKPOINT_S and decided(settings, killed),
            lambda: f"no progress before the kill\n{tails(workers)}",
        )
        produced(producer)
        wait_consumed(settings, WAIT_S, lambda: tails(workers))
        got = outputs(settings)
        survivor = workers[1].assigned()  # before it stops (and gives them back)
        resent = records(settings, FEATURES.name) - len(got[FEATURES.name])
        details = tails(workers)
    finally:
        if producer is not None:
            producer.kill()
        for worker in workers:
            worker.stop()
    assert killed, f"the killed worker held no partition\n{details}"
    assert survivor == everything, f"the survivor did not take the killed worker's partitions\n{details}"
    assert resent > 0, f"the killed market stage sent no features again: the kill tested nothing\n{details}"
    assert_same_outputs(got, reference, details)
