"""A firm's own orders behind its alert, for the case page: the execution reports (``executions``, its drop copy) of
the accounts the alert names, on the alert's symbol over the chart's window, and the tenant's other cases that name
those accounts. Only an alert of the tenant's own (``alerts.tenant``) names accounts; row-level security gives the
serving role its own tenant's rows only, and every query here names the tenant too (the indexes lead with it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import ARRAY, Connection, Row, Text, cast, func, literal, select

from tapewatch.console.charts import Span
from tapewatch.console.schema import cases
from tapewatch.sinks.db import alerts, executions

#: rows shown on a case page; the rest are counted
MAX_ORDERS: Final = 200
MAX_CASES: Final = 20


def named_accounts(evidence: Mapping[str, Any]) -> list[str]:
    """The accounts an alert's evidence names (``account``, or ``accounts`` joined by ``;``), in order, once each.

    >>> named_accounts({"accounts": "A1;A2", "account": "A1"})
    ['A1', 'A2']
    """
    found = [evidence.get("account"), *str(evidence.get("accounts") or "").split(";")]
    return list(dict.fromkeys(a for a in found if isinstance(a, str) and a))


def orders_of(conn: Connection, case: Row[Any], accounts: list[str], view: Span) -> tuple[list[Row[Any]], int]:
    """The execution reports of ``accounts`` on the case's symbol within ``view``, in time order (at most
    :data:`MAX_ORDERS`), and how many more there are."""
    where = (
        executions.c.tenant == case.alert_tenant,
        executions.c.symbol == case.symbol,
        executions.c.venue == case.venue,
        executions.c.account.in_(accounts),
        executions.c.ts >= _moment(view.start_ms),
        executions.c.ts <= _moment(view.end_ms),
    )
    rows = list(
        conn.execute(select(executions).where(*where).order_by(executions.c.ts, executions.c.exec_id).limit(MAX_ORDERS))
    )
    total = int(conn.execute(select(func.count()).select_from(executions).where(*where)).scalar_one())
    return rows, total - len(rows)


def cases_of_accounts(conn: Connection, case: Row[Any], accounts: list[str]) -> list[Row[Any]]:
    """The tenant's other cases whose alert names one of ``accounts``, newest first (at most :data:`MAX_CASES`)."""
    evidence = alerts.c.evidence
    listed = func.string_to_array(evidence["accounts"].astext, literal(";"))
    named = evidence["account"].astext.in_(accounts) | listed.op("&&")(cast(accounts, ARRAY(Text)))
    query = (
        select(cases.c.alert_id, cases.c.symbol, cases.c.kind, cases.c.opened_at, cases.c.state)
        .join(alerts, alerts.c.alert_id == cases.c.alert_id)
        .where(alerts.c.tenant == case.alert_tenant, cases.c.alert_id != case.alert_id, named)
        .order_by(cases.c.opened_at.desc())
        .limit(MAX_CASES)
    )
    return list(conn.execute(query))


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def replay_reports(conn: Connection, case: Row[Any], view: Span) -> list[dict[str, Any]]:
    """For the book replay: the execution reports of the accounts the case's alert names, over ``view``, in time
    order (the replay shows each order where it rests, from its report at or before a snapshot); none for a public
    alert."""
    accounts = named_accounts(case.evidence) if case.alert_tenant is not None else []
    if not accounts:
        return []
    rows, _ = orders_of(conn, case, accounts, view)
    return [
        {
            "ts": int(r.ts.timestamp() * 1000),
            "account": r.account,
            "order_id": r.order_id,
            "exec_type": r.exec_type,
            "side": r.side,
            "price": r.price,
            "leaves_qty": r.leaves_qty,
            "last_qty": r.last_qty,
            "last_price": r.last_price,
        }
        for r in rows
    ]
