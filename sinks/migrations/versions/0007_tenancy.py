"""console: tenants as a sealed boundary (row-level security), a hash-chained audit, immutable notes, and one
race-free login throttle

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

**Tenancy.** Every case, note, link and audit line carries its tenant. A case is now a tenant's work on an
alert: the ``alerts_to_cases`` trigger makes one case per tenant whose venues cover the alert, so two tenants
that share a venue each work their own case of it. PostgreSQL's row-level security seals the rows: the
console's serving role sees and changes only the rows whose tenant is the transaction's ``tapewatch.tenant``
setting (:func:`tapewatch.console.tenancy.scoped`); with the setting unset it sees nothing. The schema's owner (the
migrations, the sinks, the admin commands) is not bound by the policies.

**Audit.** Each line carries ``prev_hash`` and ``hash`` (SHA-256 over the previous line's hash and the line's
own fields, :func:`audit_line_text`); a ``BEFORE INSERT`` trigger, under a transaction-scoped advisory lock,
numbers the line, stamps its time and chains it, whatever the inserting role sent. The serving role may only
INSERT and SELECT (its grants, :mod:`tapewatch.sinks.serving_role`); UPDATE, DELETE and TRUNCATE are refused by trigger
for every role but a superuser. ``tapewatch console audit verify`` recomputes the chain.

**Notes** are immutable (a trigger refuses UPDATE and DELETE); an edit is a new note naming the one it
``supersedes``.

**Login throttle.** One table of counters keyed ``user:<name>`` or ``client:<address>``, each updated by one
atomic upsert (:mod:`tapewatch.console.throttle`), replaces the per-address failure log and the per-user counters.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CASES_BY_TENANT = """
ALTER TABLE case_notes DROP CONSTRAINT case_notes_alert_id_fkey;
ALTER TABLE case_links DROP CONSTRAINT case_links_alert_id_fkey;
ALTER TABLE case_links DROP CONSTRAINT case_links_linked_id_fkey;
ALTER TABLE severity_history DROP CONSTRAINT severity_history_alert_id_fkey;
ALTER TABLE severity_history ADD FOREIGN KEY (alert_id) REFERENCES alerts;
ALTER TABLE cases DROP CONSTRAINT cases_assignee_fkey;

-- a case worked before tenancy stays with its assignee's tenant; an unassigned one with the tenant that saw it
ALTER TABLE cases ADD COLUMN tenant text;
UPDATE cases c SET tenant = u.tenant FROM users u WHERE u.username = c.assignee;
UPDATE cases c SET tenant = (SELECT min(t.tenant) FROM tenants t WHERE c.venue = ANY (t.venues) OR '*' = ANY (t.venues))
    WHERE tenant IS NULL;
DELETE FROM case_links WHERE alert_id IN (SELECT alert_id FROM cases WHERE tenant IS NULL)
    OR linked_id IN (SELECT alert_id FROM cases WHERE tenant IS NULL);
DELETE FROM case_notes WHERE alert_id IN (SELECT alert_id FROM cases WHERE tenant IS NULL);
DELETE FROM cases WHERE tenant IS NULL;
ALTER TABLE cases ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE cases ADD FOREIGN KEY (tenant) REFERENCES tenants;
ALTER TABLE cases DROP CONSTRAINT cases_pkey;
ALTER TABLE cases ADD PRIMARY KEY (tenant, alert_id);
ALTER TABLE cases ADD FOREIGN KEY (alert_id) REFERENCES alerts;
-- an assignee is a user of the case's own tenant, whatever the application checks
ALTER TABLE users ADD UNIQUE (tenant, username);
ALTER TABLE cases ADD FOREIGN KEY (tenant, assignee) REFERENCES users (tenant, username);

ALTER TABLE case_notes ADD COLUMN tenant text;
UPDATE case_notes n SET tenant = c.tenant FROM cases c WHERE c.alert_id = n.alert_id;
ALTER TABLE case_notes ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE case_notes ADD FOREIGN KEY (tenant, alert_id) REFERENCES cases (tenant, alert_id);
ALTER TABLE case_notes ADD COLUMN supersedes bigint REFERENCES case_notes;
DROP INDEX case_notes_alert_idx;
CREATE INDEX case_notes_case_idx ON case_notes (tenant, alert_id, note_id);

ALTER TABLE case_links ADD COLUMN tenant text;
UPDATE case_links l SET tenant = c.tenant FROM cases c WHERE c.alert_id = l.alert_id;
ALTER TABLE case_links ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE case_links DROP CONSTRAINT case_links_pkey;
ALTER TABLE case_links ADD PRIMARY KEY (tenant, alert_id, linked_id);
ALTER TABLE case_links ADD FOREIGN KEY (tenant, alert_id) REFERENCES cases (tenant, alert_id);
ALTER TABLE case_links ADD FOREIGN KEY (tenant, linked_id) REFERENCES cases (tenant, alert_id);

-- every tenant gets its own case of each alert its venues cover
INSERT INTO cases (tenant, alert_id, symbol, venue, kind, model_version, severity, severity_rank, score, opened_at,
                   alert_ts)
    SELECT t.tenant, a.alert_id, a.symbol, a.venue, a.kind, a.model_version, a.severity, severity_rank(a.severity),
           a.score, a.window_start, a.ts
    FROM alerts a JOIN tenants t ON a.venue = ANY (t.venues) OR '*' = ANY (t.venues)
    ON CONFLICT DO NOTHING;

-- the queue's indexes lead with the tenant: row-level security's filter is their first column
DROP INDEX cases_open_queue_idx;
DROP INDEX cases_queue_idx;
DROP INDEX cases_symbol_idx;
DROP INDEX cases_assignee_idx;
DROP INDEX cases_kind_idx;
CREATE INDEX cases_open_queue_idx ON cases (tenant, severity_rank DESC, opened_at, alert_id) WHERE state <> 'closed';
CREATE INDEX cases_queue_idx ON cases (tenant, severity_rank DESC, opened_at, alert_id);
CREATE INDEX cases_symbol_idx ON cases (tenant, symbol, opened_at);
CREATE INDEX cases_assignee_idx ON cases (tenant, assignee, state);
CREATE INDEX cases_kind_idx ON cases (tenant, kind, opened_at);
CREATE INDEX cases_alert_idx ON cases (alert_id);
-- the supervisor's false-positive rates: an index-only scan of the tenant's closed cases, not of every case
CREATE INDEX cases_closed_rates_idx ON cases (tenant, kind, model_version) INCLUDE (disposition)
    WHERE state = 'closed';

-- the implicit tenant that saw every venue goes, unless someone uses it
DELETE FROM cases c WHERE c.tenant = 'default'
    AND NOT EXISTS (SELECT 1 FROM users WHERE tenant = 'default')
    AND NOT EXISTS (SELECT 1 FROM api_tokens WHERE tenant = 'default')
    AND NOT EXISTS (SELECT 1 FROM case_notes WHERE tenant = 'default')
    AND NOT EXISTS (SELECT 1 FROM case_links WHERE tenant = 'default');
DELETE FROM tenants t WHERE t.tenant = 'default' AND NOT EXISTS (SELECT 1 FROM cases WHERE tenant = 'default')
    AND NOT EXISTS (SELECT 1 FROM users WHERE tenant = 'default')
    AND NOT EXISTS (SELECT 1 FROM api_tokens WHERE tenant = 'default');
"""

NOTES_IMMUTABLE = """
CREATE FUNCTION case_notes_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case notes are immutable: % refused (an edit is a new note that supersedes)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER case_notes_immutable BEFORE UPDATE OR DELETE ON case_notes
    FOR EACH ROW EXECUTE FUNCTION case_notes_refuse_change();
CREATE TRIGGER case_notes_no_truncate BEFORE TRUNCATE ON case_notes
    FOR EACH STATEMENT EXECUTE FUNCTION case_notes_refuse_change();
"""

# The text a line's hash covers: the previous hash, then each field, NULL told from a value ('n' / 'v' + value),
# separated by the unit separator. console/audit.py's verifier builds the same text from the stored fields.
AUDIT_CHAIN = """
ALTER TABLE audit ADD COLUMN tenant text, ADD COLUMN prev_hash text, ADD COLUMN hash text;
UPDATE audit a SET tenant = u.tenant FROM users u WHERE u.username = a.actor;
UPDATE audit SET tenant = object_id WHERE tenant IS NULL AND object_type = 'tenant';
UPDATE audit SET tenant = after ->> 'tenant' WHERE tenant IS NULL AND action IN ('user.add', 'token.add');
CREATE INDEX audit_tenant_idx ON audit (tenant, audit_id);
CREATE INDEX audit_tenant_actor_idx ON audit (tenant, actor, audit_id);
DROP INDEX audit_actor_idx;
DROP INDEX audit_object_idx;
CREATE INDEX audit_object_idx ON audit (tenant, object_type, object_id, audit_id);

CREATE FUNCTION audit_line_text(prev text, line audit) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT concat_ws(E'\\x1f', prev, line.audit_id::text,
                     ((extract(epoch FROM line.at) * 1000000)::bigint)::text,
                     coalesce('v' || line.tenant, 'n'), 'v' || line.actor, 'v' || line.action,
                     'v' || line.object_type, coalesce('v' || line.object_id, 'n'),
                     coalesce('v' || line.before::text, 'n'), coalesce('v' || line.after::text, 'n'),
                     coalesce('v' || line.client, 'n'))
$$;
CREATE FUNCTION audit_line_hash(prev text, line audit) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(audit_line_text(prev, line), 'UTF8')), 'hex')
$$;

-- the lines written before the chain existed are chained in their order
ALTER TABLE audit DISABLE TRIGGER audit_no_update_delete;
DO $$
DECLARE
    line audit%ROWTYPE;
    last text := repeat('0', 64);
BEGIN
    FOR line IN SELECT * FROM audit ORDER BY audit_id LOOP
        UPDATE audit SET prev_hash = last, hash = audit_line_hash(last, line) WHERE audit_id = line.audit_id
            RETURNING hash INTO last;
    END LOOP;
END $$;
ALTER TABLE audit ENABLE TRIGGER audit_no_update_delete;
ALTER TABLE audit ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL;
ALTER TABLE audit ALTER COLUMN audit_id DROP DEFAULT;

-- SECURITY DEFINER: the chain's newest line is read whatever the inserting role may see; the search path is the
-- one the migration ran with, so no caller can swap the functions it calls
CREATE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    last text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tapewatch.audit.' || current_schema()));
    SELECT hash INTO last FROM audit ORDER BY audit_id DESC LIMIT 1;
    NEW.audit_id := nextval('audit_audit_id_seq');
    NEW.at := clock_timestamp();
    NEW.prev_hash := coalesce(last, repeat('0', 64));
    NEW.hash := audit_line_hash(NEW.prev_hash, NEW);
    RETURN NEW;
END $$;
CREATE TRIGGER audit_chain BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_chain();
"""

# The tenant is read once per statement ((SELECT …): an InitPlan), not once per row: a filter over a million cases
# compares a constant, and the queue's indexes take it as their first key.
ROW_LEVEL_SECURITY = """
ALTER TABLE cases ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit ENABLE ROW LEVEL SECURITY;
CREATE POLICY cases_of_tenant ON cases USING (tenant = (SELECT current_setting('tapewatch.tenant', true)));
CREATE POLICY case_notes_of_tenant ON case_notes USING (tenant = (SELECT current_setting('tapewatch.tenant', true)));
CREATE POLICY case_links_of_tenant ON case_links USING (tenant = (SELECT current_setting('tapewatch.tenant', true)));
CREATE POLICY audit_read_own_tenant ON audit FOR SELECT
    USING (tenant = (SELECT current_setting('tapewatch.tenant', true)));
-- refusals and failed sign-ins are written before any tenant is known (tenant NULL: seen by the owner only)
CREATE POLICY audit_append ON audit FOR INSERT
    WITH CHECK (tenant IS NULL OR tenant = (SELECT current_setting('tapewatch.tenant', true)));
"""

THROTTLE = """
DROP TABLE login_failures;
ALTER TABLE users DROP COLUMN failed_logins, DROP COLUMN locked_until;
CREATE TABLE login_throttle (
    key text PRIMARY KEY,             -- 'user:<name>' (known or not) or 'client:<address>'
    failures integer NOT NULL,        -- attempts in the window that did not sign in (counted before the check)
    window_start timestamptz NOT NULL,
    locked_until timestamptz          -- set once, when the count first passes the limit
);
CREATE INDEX login_throttle_window_idx ON login_throttle (window_start);
"""

# One case per tenant whose venues cover the alert; an escalation after a tenant's close reopens that tenant's
# case (audited as 'system' in that tenant). The notification names the schema and the tenant, so an open queue
# is woken only by its own tenant's alerts.
ALERTS_TO_CASES = """
CREATE OR REPLACE FUNCTION alerts_to_cases() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    held cases%ROWTYPE;
    owner text;
    raised boolean;
BEGIN
    FOR owner IN SELECT tenant FROM tenants WHERE NEW.venue = ANY (venues) OR '*' = ANY (venues) LOOP
        SELECT * INTO held FROM cases WHERE tenant = owner AND alert_id = NEW.alert_id FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO cases (tenant, alert_id, symbol, venue, kind, model_version, severity, severity_rank, score,
                               opened_at, alert_ts)
            VALUES (owner, NEW.alert_id, NEW.symbol, NEW.venue, NEW.kind, NEW.model_version, NEW.severity,
                    severity_rank(NEW.severity), NEW.score, NEW.window_start, NEW.ts);
        ELSE
            raised := held.state = 'closed' AND severity_rank(NEW.severity) > held.severity_rank;
            UPDATE cases SET severity = NEW.severity, severity_rank = severity_rank(NEW.severity), score = NEW.score,
                             model_version = NEW.model_version, alert_ts = NEW.ts,
                             opened_at = LEAST(opened_at, NEW.window_start), updated_at = now(),
                             state = CASE WHEN raised THEN 'new' ELSE held.state END,
                             disposition = CASE WHEN raised THEN NULL ELSE held.disposition END,
                             closed_at = CASE WHEN raised THEN NULL ELSE held.closed_at END
            WHERE tenant = owner AND alert_id = NEW.alert_id;
            IF raised THEN
                INSERT INTO audit (tenant, actor, action, object_type, object_id, before, after)
                VALUES (owner, 'system', 'reopen', 'case', NEW.alert_id,
                        jsonb_build_object('state', held.state, 'disposition', held.disposition,
                                           'severity', held.severity),
                        jsonb_build_object('state', 'new', 'severity', NEW.severity));
            END IF;
        END IF;
        PERFORM pg_notify('tapewatch_alerts', current_schema() || ' ' || owner);
    END LOOP;
    INSERT INTO severity_history (alert_id, ts, severity, score)
    VALUES (NEW.alert_id, NEW.ts, NEW.severity, NEW.score) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(CASES_BY_TENANT)
    op.execute(NOTES_IMMUTABLE)
    op.execute(AUDIT_CHAIN)
    op.execute(ROW_LEVEL_SECURITY)
    op.execute(THROTTLE)
    op.execute(ALERTS_TO_CASES)


def downgrade() -> None:
    raise NotImplementedError("0007 seals tenants and chains the audit; going back would unseal them")
