"""Two stream workers in one group on a market-by-order feed and a firm's drop copy, the one at work killed
(``kill -9``) in the middle and its partitions taken over by the other: the order-book market's md.orders (venue
``sim-orders``, whose level-2 comes from its orders) become the trades and books its books imply, then bars and
features, and its orders.firm, with the firm's accounts on ref.accounts, the alerts of spoofing and wash trades by
account, each equal to the offline twin's (the same stages over the same records without Kafka:
``tests/stage_harness.py``); nothing is dead-lettered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from tapewatch.console import audit as audit_chain
from tapewatch.console.accounts import listed
from tapewatch.console.schema import audit
from tapewatch.console.tenancy import scoped
from tapewatch.detectors.orders.firm_desk import AccountReference, fixed_reference
from tapewatch.detectors.orders.firm_spoofing import MODEL_VERSION
from tapewatch.detectors.orders.public_spoofing import MODEL_VERSION as PUBLIC_MODEL_VERSION
from tapewatch.generators.lob_market import LobConfig, generate
from tapewatch.kafka_producer import KafkaProducer
from tapewatch.producers.market import MARKET_STAGE
from tapewatch.records import AccountRef
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tapewatch.topics import (
    ACCOUNTS,
    ALERTS,
    BARS,
    BOOKS,
    DLQ_PRODUCERS,
    DLQ_STREAMS,
    FEATURES,
    FIRM_ORDERS,
    MARKET_BY_ORDER,
    NEWS_ITEMS,
    QUOTES,
    TRUTH,
)
from tests.console_support import TENANT, console_schema
from tests.detect_harness import FakeMessage
from tests.kafka_reader import read_topic
from tests.order_samples import firm_market
from tests.stage_harness import FIRM, ORDERS, as_messages, derived, market_stage_run, orders_stage_run
from tests.stream_runs import Positions, drop_worker_state, outputs, private_topics, wait_consumed, wait_until
from tests.stream_worker import Worker

pytestmark = pytest.mark.integration
WAIT_S = 300.0
#: checkpoints 5 s apart: a killed worker has sent up to 5 s of trades and books its changelog does not know of
SLOW_CHECKPOINTS = {"TAPEWATCH_STREAM_CHECKPOINT_INTERVAL_MS": "5000"}


def test_two_workers_one_killed_give_the_offline_twins_outputs(services: Settings, tmp_path: Path) -> None:
    # a session whose firm has a linked-account group that washes: found only with the accounts on ref.accounts
    session = generate(firm_market(22, symbols=2, minutes=30, venue="sim-orders", clean_fraction=0.25))
    events = [event for symbol in session.tapes for event in session.order_events(symbol)]
    reports = [report for symbol in session.tapes for report in session.execution_reports(symbol)]
    accounts = session.account_refs()
    groups = {account.group for account in accounts if account.group is not None}
    reference = fixed_reference(
        {
            session.config.tenant: AccountReference(
                {a.account: a.owner for a in accounts if a.owner}, {a.account: a.group for a in accounts if a.group}
            )
        }
    )
    twin_orders = orders_stage_run(reference=reference)
    twin_orders.run(sorted([*as_messages(ORDERS, events), *as_messages(FIRM, reports)], key=_event_time))
    twin_market = market_stage_run()
    twin_market.run(derived(twin_orders))
    expected = {
        QUOTES.name: set(twin_orders.sent(QUOTES.name)),
        BOOKS.name: set(twin_orders.sent("md.books")),
        BARS.name: set(twin_market.sent("md.bars.1m")),
        FEATURES.name: set(twin_market.sent("features.1m")),
        ALERTS.name: set(twin_orders.sent("alerts")),
    }
    assert all(expected.values()), {name: len(values) for name, values in expected.items()}
    assert groups & {orjson.loads(alert)["evidence"].get("owner") for alert in expected[ALERTS.name]}

    with private_topics(services) as settings:
        workers = [Worker(settings, tmp_path / f"worker-{i}.log", env=SLOW_CHECKPOINTS) for i in (0, 1)]
        try:
            everything = set(range(settings.kafka.topic_partitions))
            wait_until(
                lambda: (
                    all(w.assigned() for w in workers) and workers[0].assigned() | workers[1].assigned() == everything
                ),
                WAIT_S,
                lambda: f"the group did not settle on two members\n{tails(workers)}",
            )
            with KafkaProducer(settings, DLQ_PRODUCERS) as producer:
                for account in accounts:
                    producer.produce(settings.topic(ACCOUNTS.name), account.key(), account.to_json())
                for event in events:
                    producer.produce(settings.topic(MARKET_BY_ORDER.name), event.key(), event.to_json())
                for report in reports:
                    producer.produce(settings.topic(FIRM_ORDERS.name), report.key(), report.to_json())
            # the member at work on its partitions is killed there; the other takes them over from the changelog
            positions = Positions(settings)
            try:
                wait_until(lambda: at_work(positions, workers) is not None, WAIT_S, lambda: tails(workers))
                victim = at_work(positions, workers)
            finally:
                positions.close()
            assert victim is not None
            killed = victim.assigned()
            assert victim.stop(sig=signal.SIGKILL) == -signal.SIGKILL
            survivor = next(w for w in workers if w is not victim)
            wait_consumed(settings, WAIT_S, lambda: tails(workers))
            got = outputs(settings)
            taken = survivor.assigned()
            derived_sent = {name: distinct(settings, name) for name in (QUOTES.name, BOOKS.name)}
        finally:
            for worker in workers:
                worker.stop()
            drop_worker_state(settings)
    assert killed and taken == everything, tails(workers)
    assert not got[DLQ_STREAMS.name]
    # every derived trade and book (a kill may have sent some twice: the market stage skipped those)
    assert derived_sent == {name: expected[name] for name in (QUOTES.name, BOOKS.name)}
    assert {value for _, value in got[BARS.name]} == expected[BARS.name]
    assert {value for _, value in got[FEATURES.name]} == expected[FEATURES.name]
    # the orders stage's alerts (the firms' and the public feed's), not the detect stage's over the derived trades
    orders_path = {MODEL_VERSION, PUBLIC_MODEL_VERSION}
    raised = {value for _, value in got[ALERTS.name] if orjson.loads(value)["model_version"] in orders_path}
    assert raised == expected[ALERTS.name]


def at_work(positions: Positions, workers: list[Worker]) -> Worker | None:
    """The member that has sent trades derived on its own partitions, if one has yet."""
    return next((w for w in workers if positions.records(QUOTES.name, w.assigned()) > 1_000), None)


def tails(workers: list[Worker]) -> str:
    return "\n".join(worker.tail() for worker in workers)


def _event_time(message: FakeMessage) -> tuple[int, bool]:
    """The twin reads both feeds in time order, a report after the public events of its millisecond."""
    return orjson.loads(message.value())["ts"], message.topic() == FIRM


def distinct(settings: Settings, name: str) -> set[bytes]:
    """The distinct values on a topic, read to its end."""
    positions = Positions(settings)
    try:
        count = positions.records(name)
    finally:
        positions.close()
    got = read_topic(settings, settings.topic(name), count, timeout_s=120, linger_s=0)
    assert len(got) == count, f"{name}: read {len(got)} of {count}"
    return {message.value for message in got}


def test_produce_market_sends_the_sessions_orders_drop_copy_and_news_in_time_order(
    services: Settings, tmp_path: Path
) -> None:
    """…and the firm's accounts through its tenant's table, audited as the source; a second run, on topics of its own
    (as every `tapewatch run`), changes no account and publishes them all again."""
    session = generate(
        LobConfig(symbols=2, seed=5, minutes=15, orders=True, venue="sim-orders", quiet_open_s=60, tenant=TENANT)
    )
    with private_topics(services) as topical, console_schema(topical) as settings:
        produce_market(settings, tmp_path)
        got = {name: distinct_in_order(settings, name) for name in (MARKET_BY_ORDER.name, FIRM_ORDERS.name)}
        news = distinct(settings, NEWS_ITEMS.name)
        labels = distinct(settings, TRUTH.name)
        firm = firm_accounts(settings)
        with private_topics(settings) as again:
            produce_market(again, tmp_path)
            assert firm_accounts(again) == firm
    for symbol in session.tapes:
        key = symbol.encode()
        assert got[MARKET_BY_ORDER.name][key] == [e.to_json() for e in session.order_events(symbol)]
        assert got[FIRM_ORDERS.name][key] == [r.to_json() for r in session.execution_reports(symbol)]
    assert news == {item.to_json() for item in session.news}
    episodes = session.episodes_frame()
    assert len(labels) == len(episodes) > 0
    assert {(e["symbol"], e["kind"], e["start"], e["end"]) for e in map(orjson.loads, labels)} == set(
        zip(episodes["symbol"], episodes["kind"], episodes["start"], episodes["end"], strict=True)
    )
    holdings = {(a.account, a.owner, a.group) for a in session.account_refs()}
    assert firm.table == firm.published == holdings and holdings
    assert firm.trail == {(MARKET_STAGE, "account.add", account) for account, _, _ in holdings}


@dataclass
class FirmAccounts:
    """The firm's accounts as the tenant's table holds them (as its serving role reads them), the newest of each on
    ref.accounts, and the audit lines of the tenant's accounts (actor, action, account)."""

    table: set[tuple[str, str | None, str | None]]
    published: set[tuple[str, str | None, str | None]]
    trail: set[tuple[str, str, str]]


def produce_market(settings: Settings, var_dir: Path) -> None:
    """`tapewatch produce market` (the session of the test above) on the settings' topics and database."""
    env = {**os.environ, "TAPEWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix, "TAPEWATCH_VAR_DIR": str(var_dir),
           "TAPEWATCH_POSTGRES_URL": settings.postgres.url_plain}  # fmt: skip
    command = [
        str(Path(sys.executable).with_name("tapewatch")),
        *("produce", "market", "--symbols", "2", "--seed", "5", "--minutes", "15", "--quiet-open", "1"),
        *("--tenant", TENANT, "--no-progress"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode == 0, done.stderr


def firm_accounts(settings: Settings) -> FirmAccounts:
    serving = db.make_engine(settings, serving=True)
    try:
        with scoped(serving, TENANT) as conn:
            table = {(row.account, row.owner, row.account_group) for row in listed(conn)}
            assert {row.updated_by for row in listed(conn)} == {MARKET_STAGE}
    finally:
        serving.dispose()
    owner = db.make_engine(settings)
    try:
        with owner.connect() as conn:
            lines = conn.execute(select(audit.c.actor, audit.c.action, audit.c.object_id).where(
                audit.c.tenant == TENANT, audit.c.object_type == "account"))  # fmt: skip
            trail = {(line.actor, line.action, line.object_id) for line in lines}
            assert audit_chain.verify(conn).intact
    finally:
        owner.dispose()
    newest = {}
    for key, values in distinct_in_order(settings, ACCOUNTS.name).items():
        ref = AccountRef.from_json(values[-1])
        newest[key] = (ref.account, ref.owner, ref.group)
    return FirmAccounts(table, set(newest.values()), trail)


def distinct_in_order(settings: Settings, name: str) -> dict[bytes, list[bytes]]:
    """A topic's values per key, in the order they came."""
    positions = Positions(settings)
    try:
        count = positions.records(name)
    finally:
        positions.close()
    out: dict[bytes, list[bytes]] = {}
    for message in read_topic(settings, settings.topic(name), count, timeout_s=120, linger_s=0):
        out.setdefault(message.key or b"", []).append(message.value)
    return out
