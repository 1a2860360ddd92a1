"""The statement-level case trigger (migration 0013) makes exactly the cases, reopen audits and severity history the
row-level trigger it replaced made, over batches of new alerts, escalations, de-escalations, tenant alerts and
cases closed between batches, for tenants whose venues overlap. The row trigger's function is still in the schema
(a downgrade puts it back): one schema runs it, the other the head's triggers, on the same batches."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tapewatch.console import users
from tapewatch.records import Alert, AlertKind, Severity
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tests.console_support import console_schema, make_alert, store_alerts

pytestmark = pytest.mark.integration

ROW_TRIGGER = """
DROP TRIGGER alerts_to_cases_inserted ON alerts;
DROP TRIGGER alerts_to_cases_updated ON alerts;
CREATE TRIGGER alerts_to_cases AFTER INSERT OR UPDATE ON alerts FOR EACH ROW EXECUTE FUNCTION alerts_to_cases();
"""
TENANTS = {"beta": ["sim", "twse"], "gamma": ["*"]}  # besides the schema's own "acme" (venue sim)
CASE_COLUMNS = (
    "tenant, alert_id, symbol, venue, kind, model_version, severity, severity_rank, score, opened_at, alert_ts, "
    "state, disposition, closed_at, assignee"
)


@pytest.fixture
def engines(services: Settings) -> Iterator[tuple[Engine, Engine]]:
    """(row trigger, statement trigger): two schemas with the same tenants."""
    with ExitStack() as stack:
        pair = []
        for row in (True, False):
            engine = db.make_engine(stack.enter_context(console_schema(services)))
            stack.callback(engine.dispose)
            with engine.begin() as conn:
                for tenant, venues in TENANTS.items():
                    users.add_tenant(conn, tenant, venues, "test")
                if row:
                    conn.execute(text(ROW_TRIGGER))
            pair.append(engine)
        yield pair[0], pair[1]


def _batch(rng: random.Random, latest: dict[str, Alert], step: int) -> list[Alert]:
    """New alerts on three venues (some a tenant's own) and later emissions of stored ones (half of them at the
    same severity: a closed case must stay closed), one per alert id."""
    batch: dict[str, Alert] = {}
    for n in range(rng.randint(5, 25)):
        alert = make_alert(
            f"S{rng.randrange(6)}",
            venue=rng.choice(["sim", "twse", "bin"]),
            kind=rng.choice(list(AlertKind)),
            start=1_700_000_000_000 + 60_000 * (step * 100 + n),
            severity=rng.choice(list(Severity)),
            score=round(rng.random(), 3),
            tenant=rng.choice([None, None, None, "beta", "acme"]),
        )
        batch[alert.alert_id] = alert
    for old in rng.sample(sorted(latest.values(), key=lambda a: a.alert_id), min(len(latest), rng.randint(5, 20))):
        severity = old.severity if rng.random() < 0.5 else rng.choice(list(Severity))
        later = {"ts": old.ts + 30_000, "severity": severity, "score": rng.random()}
        batch[old.alert_id] = old.model_copy(update=later)
    return list(batch.values())


def _close_some(engine: Engine, rng: random.Random) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE cases SET state = 'closed', disposition = 'false_positive', closed_at = '2024-01-02' "
                "WHERE hashtext(tenant || alert_id) % 3 = :r"
            ),
            {"r": rng.randrange(3)},
        )


def _state(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            "cases": conn.execute(text(f"SELECT {CASE_COLUMNS} FROM cases ORDER BY tenant, alert_id")).all(),
            "audit": sorted(
                conn.execute(
                    text("SELECT tenant, actor, action, object_type, object_id, before::text, after::text FROM audit")
                ).all()
            ),
            "history": conn.execute(text("SELECT * FROM severity_history ORDER BY alert_id, ts")).all(),
        }


def test_the_statement_trigger_makes_what_the_row_trigger_made(engines: tuple[Engine, Engine]) -> None:
    rng = random.Random(13)
    latest: dict[str, Alert] = {}
    for step in range(1, 11):
        batch = _batch(rng, latest, step)
        closing = rng.randrange(3)
        for engine in engines:
            store_alerts(engine, batch)
            _close_some(engine, random.Random(closing))
        latest.update((alert.alert_id, alert) for alert in batch)
    row, statement = (_state(engine) for engine in engines)
    assert len(row["cases"]) > 100 and sum(1 for a in row["audit"] if a[2] == "reopen") > 5
    assert {case[0] for case in row["cases"]} == {"acme", "beta", "gamma"}
    assert statement == row
