"""console: tenants, users, sessions, API tokens, cases (one per alert), notes, links, severity history and the
append-only audit trail

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

A case is created by the database itself when the sink stores an alert (trigger ``alerts_to_cases``), in the
sink's own transaction: the sink needs no change, an alert is never without its case, and each new emission
of an alert (an escalation) updates the case's severity, appends to ``severity_history`` and wakes the open
queues through ``NOTIFY tapewatch_alerts``. The audit table refuses UPDATE, DELETE and TRUNCATE by trigger
(the owner is not bound by REVOKE, a trigger binds everyone but a superuser who disables it).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = """
CREATE TABLE tenants (
    tenant text PRIMARY KEY CHECK (tenant ~ '^[a-z0-9_.-]{1,64}$'),
    venues text[] NOT NULL  -- the venues whose alerts the tenant's users see; '{*}' is every venue
);
INSERT INTO tenants (tenant, venues) VALUES ('default', '{*}');
CREATE TABLE users (
    username text PRIMARY KEY CHECK (username ~ '^[a-z0-9_.-]{2,64}$'),
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('analyst', 'supervisor', 'admin')),
    tenant text NOT NULL REFERENCES tenants,
    disabled boolean NOT NULL DEFAULT false,
    failed_logins integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE sessions (
    token_hash text PRIMARY KEY,  -- sha256 of the cookie's random token: a database leak gives no session
    username text NOT NULL REFERENCES users ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_username_idx ON sessions (username);
CREATE TABLE login_failures (  -- per client address, for throttling guesses spread over many user names
    client text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_client_at_idx ON login_failures (client, at);
CREATE TABLE api_tokens (
    token_id text PRIMARY KEY,
    service text NOT NULL,
    token_hash text NOT NULL UNIQUE,
    tenant text NOT NULL REFERENCES tenants,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE TABLE cases (
    alert_id text PRIMARY KEY REFERENCES alerts,
    symbol text NOT NULL,
    venue text NOT NULL,
    kind text NOT NULL,
    model_version text NOT NULL,
    severity text NOT NULL,
    severity_rank smallint NOT NULL,
    score double precision NOT NULL,
    opened_at timestamptz NOT NULL,   -- the episode's start (the alert's first window_start)
    alert_ts timestamptz NOT NULL,    -- the newest emission
    state text NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'in_review', 'escalated', 'closed')),
    assignee text REFERENCES users,
    disposition text CHECK (disposition IN ('true_positive', 'false_positive', 'needs_more_information', 'referred')),
    closed_at timestamptz,
    closed_by text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'closed') = (disposition IS NOT NULL))
);
-- the queue: open cases by severity then age; every case (state=all, closed, with any other filter) in the same
-- order, so a page is read off the index, not sorted out of a million closed cases (`tapewatch bench console`: the
-- closed queue 1.3 s → 8 ms a page); per symbol (and its cases nearest in time, tapewatch.console.cases.related); per
-- assignee; per kind
CREATE INDEX cases_open_queue_idx ON cases (severity_rank DESC, opened_at, alert_id) WHERE state <> 'closed';
CREATE INDEX cases_queue_idx ON cases (severity_rank DESC, opened_at, alert_id);
CREATE INDEX cases_symbol_idx ON cases (symbol, opened_at);
CREATE INDEX cases_assignee_idx ON cases (assignee, state);
CREATE INDEX cases_kind_idx ON cases (kind, opened_at);
CREATE TABLE case_notes (
    note_id bigserial PRIMARY KEY,
    alert_id text NOT NULL REFERENCES cases,
    author text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    body text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000)
);
CREATE INDEX case_notes_alert_idx ON case_notes (alert_id, at);
CREATE TABLE case_links (
    alert_id text NOT NULL REFERENCES cases,
    linked_id text NOT NULL REFERENCES cases,
    linked_by text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, linked_id),
    CHECK (alert_id <> linked_id)
);
CREATE TABLE severity_history (
    alert_id text NOT NULL REFERENCES cases,
    ts timestamptz NOT NULL,
    severity text NOT NULL,
    score double precision NOT NULL,
    PRIMARY KEY (alert_id, ts)
);
CREATE TABLE audit (
    audit_id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text NOT NULL,
    action text NOT NULL,
    object_type text NOT NULL,
    object_id text,
    before jsonb,
    after jsonb,
    client text
);
CREATE INDEX audit_object_idx ON audit (object_type, object_id, audit_id);
CREATE INDEX audit_actor_idx ON audit (actor, audit_id);
"""

AUDIT_APPEND_ONLY = """
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM PUBLIC;
"""

# A closed case whose alert escalates after the close is reopened (state 'new', disposition cleared): the
# evidence grew after the analyst's decision. The reopening is audited by the actor 'system'.
ALERTS_TO_CASES = """
CREATE FUNCTION severity_rank(severity text) RETURNS smallint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END::smallint
$$;
CREATE FUNCTION alerts_to_cases() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    held cases%ROWTYPE;
BEGIN
    SELECT * INTO held FROM cases WHERE alert_id = NEW.alert_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO cases (alert_id, symbol, venue, kind, model_version, severity, severity_rank, score,
                           opened_at, alert_ts)
        VALUES (NEW.alert_id, NEW.symbol, NEW.venue, NEW.kind, NEW.model_version, NEW.severity,
                severity_rank(NEW.severity), NEW.score, NEW.window_start, NEW.ts);
    ELSE
        UPDATE cases SET severity = NEW.severity, severity_rank = severity_rank(NEW.severity), score = NEW.score,
                         model_version = NEW.model_version, alert_ts = NEW.ts,
                         opened_at = LEAST(opened_at, NEW.window_start), updated_at = now(),
                         state = CASE WHEN held.state = 'closed' AND severity_rank(NEW.severity) > held.severity_rank
                                      THEN 'new' ELSE held.state END,
                         disposition = CASE WHEN held.state = 'closed'
                                             AND severity_rank(NEW.severity) > held.severity_rank
                                            THEN NULL ELSE held.disposition END,
                         closed_at = CASE WHEN held.state = 'closed'
                                           AND severity_rank(NEW.severity) > held.severity_rank
                                          THEN NULL ELSE held.closed_at END
        WHERE alert_id = NEW.alert_id;
        IF held.state = 'closed' AND severity_rank(NEW.severity) > held.severity_rank THEN
            INSERT INTO audit (actor, action, object_type, object_id, before, after)
            VALUES ('system', 'reopen', 'case', NEW.alert_id,
                    jsonb_build_object('state', held.state, 'disposition', held.disposition,
                                       'severity', held.severity),
                    jsonb_build_object('state', 'new', 'severity', NEW.severity));
        END IF;
    END IF;
    INSERT INTO severity_history (alert_id, ts, severity, score)
    VALUES (NEW.alert_id, NEW.ts, NEW.severity, NEW.score) ON CONFLICT DO NOTHING;
    PERFORM pg_notify('tapewatch_alerts', current_schema());
    RETURN NULL;
END $$;
CREATE TRIGGER alerts_to_cases AFTER INSERT OR UPDATE ON alerts
    FOR EACH ROW EXECUTE FUNCTION alerts_to_cases();
INSERT INTO cases (alert_id, symbol, venue, kind, model_version, severity, severity_rank, score, opened_at, alert_ts)
    SELECT alert_id, symbol, venue, kind, model_version, severity, severity_rank(severity), score, window_start, ts
    FROM alerts;
INSERT INTO severity_history (alert_id, ts, severity, score) SELECT alert_id, ts, severity, score FROM alerts;
"""


def upgrade() -> None:
    op.execute(TABLES)
    op.execute(AUDIT_APPEND_ONLY)
    op.execute(ALERTS_TO_CASES)


def downgrade() -> None:
    op.execute("DROP TRIGGER alerts_to_cases ON alerts")
    op.execute("DROP FUNCTION alerts_to_cases(), severity_rank(text), audit_refuse_change()")
    for table in (
        "audit",
        "severity_history",
        "case_links",
        "case_notes",
        "cases",
        "api_tokens",
        "login_failures",
        "sessions",
        "users",
        "tenants",
    ):
        op.execute(f"DROP TABLE {table}")
