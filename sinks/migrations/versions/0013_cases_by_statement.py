"""cases by statement: the alerts a sink's batch stores become cases in one set of statements, not row by row

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29

The ``alerts_to_cases`` row trigger ran a PL/pgSQL loop per stored alert (find the covering tenants, lock, insert or
update the case, audit a reopen, notify, record the severity): about as much of PostgreSQL's time as storing the
alert itself (measured on docs/2026-11-29-fast-on-purpose.md). The same rules now run once per statement over the
statement's changed alerts (transition tables), set-based:

- one case per tenant whose venues cover a public alert, or for its own tenant only (an alert from a tenant's
  confidential data);
- an escalation above a closed case's severity reopens it, audited as ``system`` in that tenant (the audit row reads
  the case as it was: the cases are locked first, the audit written before the case changes);
- one notification per tenant and statement (PostgreSQL folded the per-row duplicates anyway);
- the alert's severity history, keyed by its emission time.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: which tenants an alert of the statement makes a case for (``a`` the alert, ``t`` the tenant)
_COVERS = (
    "CASE WHEN a.tenant IS NULL THEN a.venue = ANY (t.venues) OR '*' = ANY (t.venues) ELSE t.tenant = a.tenant END"
)
_RAISED = "cases.state = 'closed' AND EXCLUDED.severity_rank > cases.severity_rank"

CASES_BY_STATEMENT = f"""
CREATE FUNCTION alerts_to_cases_by_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM cases c JOIN changed_alerts a USING (alert_id) ORDER BY c.tenant, c.alert_id FOR UPDATE OF c;
    INSERT INTO audit (tenant, actor, action, object_type, object_id, before, after)
    SELECT c.tenant, 'system', 'reopen', 'case', a.alert_id,
           jsonb_build_object('state', c.state, 'disposition', c.disposition, 'severity', c.severity),
           jsonb_build_object('state', 'new', 'severity', a.severity)
    FROM changed_alerts a JOIN tenants t ON {_COVERS}
         JOIN cases c ON c.tenant = t.tenant AND c.alert_id = a.alert_id
    WHERE c.state = 'closed' AND severity_rank(a.severity) > c.severity_rank
    ORDER BY c.tenant, a.alert_id;
    INSERT INTO cases (tenant, alert_id, symbol, venue, kind, model_version, severity, severity_rank, score,
                       opened_at, alert_ts)
    SELECT t.tenant, a.alert_id, a.symbol, a.venue, a.kind, a.model_version, a.severity, severity_rank(a.severity),
           a.score, a.window_start, a.ts
    FROM changed_alerts a JOIN tenants t ON {_COVERS}
    ORDER BY t.tenant, a.alert_id
    ON CONFLICT (tenant, alert_id) DO UPDATE SET
        severity = EXCLUDED.severity, severity_rank = EXCLUDED.severity_rank, score = EXCLUDED.score,
        model_version = EXCLUDED.model_version, alert_ts = EXCLUDED.alert_ts,
        opened_at = LEAST(cases.opened_at, EXCLUDED.opened_at), updated_at = now(),
        state = CASE WHEN {_RAISED} THEN 'new' ELSE cases.state END,
        disposition = CASE WHEN {_RAISED} THEN NULL ELSE cases.disposition END,
        closed_at = CASE WHEN {_RAISED} THEN NULL ELSE cases.closed_at END;
    PERFORM pg_notify('tapewatch_alerts', current_schema() || ' ' || owner)
    FROM (SELECT DISTINCT t.tenant AS owner FROM changed_alerts a JOIN tenants t ON {_COVERS}) AS owners;
    INSERT INTO severity_history (alert_id, ts, severity, score)
    SELECT alert_id, ts, severity, score FROM changed_alerts ORDER BY alert_id
    ON CONFLICT (alert_id, ts) DO UPDATE SET severity = EXCLUDED.severity, score = EXCLUDED.score;
    RETURN NULL;
END $$;
DROP TRIGGER alerts_to_cases ON alerts;
CREATE TRIGGER alerts_to_cases_inserted AFTER INSERT ON alerts REFERENCING NEW TABLE AS changed_alerts
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_to_cases_by_statement();
CREATE TRIGGER alerts_to_cases_updated AFTER UPDATE ON alerts REFERENCING NEW TABLE AS changed_alerts
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_to_cases_by_statement();
"""


def upgrade() -> None:
    op.execute(CASES_BY_STATEMENT)


def downgrade() -> None:
    # the row trigger's function, as 0009 left it, is still defined
    op.execute("""
DROP TRIGGER alerts_to_cases_inserted ON alerts;
DROP TRIGGER alerts_to_cases_updated ON alerts;
DROP FUNCTION alerts_to_cases_by_statement();
CREATE TRIGGER alerts_to_cases AFTER INSERT OR UPDATE ON alerts FOR EACH ROW EXECUTE FUNCTION alerts_to_cases();
""")
