"""The case load of `tapewatch bench console`: a million alerts and their cases, seeded set-based in PostgreSQL.

The alerts go in by ``INSERT … SELECT … generate_series`` through the ``alerts_to_cases_*`` triggers, so their
cases, severity history and notifications are made as the PostgreSQL sink's rows make them; a share of them is
then re-emitted escalated (``ON CONFLICT DO UPDATE``, the sink's own path: the trigger's update branch). The
analysts' work is laid over them: most cases closed with a disposition by an assignee, a few thousand open
(none critical: those are worked first), notes, links between cases of one symbol and the audit lines of the
closes and notes. Bars and one-second book snapshots are stored around a sample of alerts, so their case
pages draw charts. While the tables fill, their foreign keys and secondary indexes are set aside and rebuilt
afterwards from the catalog's own definitions (the keys re-validated over every row), as bulk loads do: the
trigger still makes every case, at ~half the cost. About two minutes for a million alerts here.

Two tenants: ``bench`` (every venue; the benchmark's supervisor and analysts, all the work) and ``rival`` (one
venue, its cases left new), so every page is timed with another tenant's third of a million open cases in the
same tables, which row-level security must skip.

The shape: ``symbols`` symbols (a few noisy ones carry most alerts) on three venues, all eight kinds (bursts
and outliers the commonest), severities mostly low and medium, episodes spread evenly over ``days`` days in
the order they happened. Draws are ``random()`` for the alerts and hashes of the alert id for what is laid
over them, so one statement stays consistent with itself (a closed case always has its disposition).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import Connection, Engine, text

from tapewatch.console import users
from tapewatch.console.passwords import hash_password
from tapewatch.records import AlertKind

__all__ = ["ANALYSTS", "BENCH_PASSWORD", "BENCH_TENANT", "BENCH_USER", "SeedPlan", "seed"]

BENCH_USER: Final = "bench"  # the supervisor the benchmark signs in as
BENCH_TENANT: Final = "bench"
RIVAL_TENANT: Final = "rival"  # another tenant sharing one venue: its cases are in the tables, never on a page
BENCH_PASSWORD: Final = "console benchmark password"
ANALYSTS: Final = 12  # analyst01 … analyst12: the assignees
VENUES: Final = ("xnas", "arca", "bats")
#: how often each kind fires, relative (every kind appears)
KIND_WEIGHTS: Final = {
    AlertKind.VOLUME_BURST: 4,
    AlertKind.PRICE_BURST: 3,
    AlertKind.KMEANS_OUTLIER: 2,
    AlertKind.SPOOFING: 1,
    AlertKind.PUMP_AND_DUMP: 1,
    AlertKind.WASH_TRADING: 1,
    AlertKind.MARKING_THE_CLOSE: 1,
    AlertKind.MOMENTUM_IGNITION: 1,
}
CHUNK: Final = 50_000  # alerts per transaction
SEED_WORKERS: Final = 2  # transactions at a time


def _unit(position: int) -> str:
    """SQL: a uniform draw in [0, 1) from six hex digits of the alert id (an md5), from ``position``."""
    return f"(('x' || substr(alert_id, {position}, 6))::bit(24)::int / 16777216::float8)"


def _sql_array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"  # enum values and constants, no user input


_KINDS = _sql_array([kind.value for kind, weight in KIND_WEIGHTS.items() for _ in range(weight)])
_N_KINDS = sum(KIND_WEIGHTS.values())
#: a symbol's reference price, from its number (S0042 → 42)
_BASE_PRICE = "(5 + (substr(symbol, 2)::int * 7919) % 500)"

ALERTS_SQL: Final = f"""
WITH draws AS (
    SELECT g, floor(:symbols * power(random(), 1.6))::int AS sym, random() AS r_venue, random() AS r_kind,
           random() AS r_sev, random() AS r_score, random() AS r_dur, random() AS r_jitter
    FROM generate_series(:first, :last) AS g
), shaped AS (
    SELECT g, 'S' || lpad(sym::text, 4, '0') AS symbol,
           ({_sql_array(list(VENUES))})[1 + (sym + (r_venue > 0.85)::int) % {len(VENUES)}] AS venue,
           ({_KINDS})[1 + floor(r_kind * {_N_KINDS})::int] AS kind,
           CASE WHEN r_sev < 0.55 THEN 'low' WHEN r_sev < 0.85 THEN 'medium' WHEN r_sev < 0.97 THEN 'high'
                ELSE 'critical' END AS severity,
           r_score,
           date_trunc('second', to_timestamp((:t0_ms + (g - 1 + r_jitter) * :step_ms) / 1000.0)) AS window_start,
           make_interval(secs => 60 * (1 + floor(r_dur * 5))) AS duration
    FROM draws
)
INSERT INTO alerts (alert_id, symbol, venue, ts, kind, severity, score, window_start, window_end, evidence,
                    model_version, message)
SELECT md5(symbol || '|' || kind || '|' || g), symbol, venue, window_start + duration, kind, severity,
       round((CASE severity WHEN 'low' THEN 0.5 WHEN 'medium' THEN 0.62 WHEN 'high' THEN 0.75 ELSE 0.88 END
              + r_score * 0.12)::numeric, 3)::float8,
       window_start, window_start + duration,
       jsonb_build_object('price', round(({_BASE_PRICE} * (1 + r_score / 50))::numeric, 2),
                          'change_pct', round((r_score * 8 - 4)::numeric, 2),
                          'volume', round(20000 + r_score * 480000),
                          'zscore', round((3 + r_score * 6)::numeric, 2),
                          'baseline_volume', round(8000 + r_score * 40000),
                          'window_s', extract(epoch FROM duration)::int),
       CASE WHEN kind = 'kmeans_outlier' THEN 'kmeans-v3' ELSE 'patterns-v18' END,
       format('%s on %s (%s): z %s over %s min', replace(kind, '_', ' '), symbol, venue,
              round((3 + r_score * 6)::numeric, 1), (extract(epoch FROM duration) / 60)::int)
FROM shaped
"""

ESCALATIONS_SQL: Final = f"""
INSERT INTO alerts (alert_id, symbol, venue, ts, kind, severity, score, window_start, window_end, evidence,
                    model_version, message)
SELECT alert_id, symbol, venue, ts + interval '30 seconds', kind,
       CASE severity WHEN 'low' THEN 'medium' WHEN 'medium' THEN 'high' ELSE 'critical' END,
       least(1.0, score + 0.1), window_start, window_end + interval '30 seconds',
       evidence || '{{"escalated": true}}', model_version, message || ' (escalated)'
FROM alerts WHERE severity <> 'critical' AND {_unit(1)} < :share
ON CONFLICT (alert_id) DO UPDATE SET ts = EXCLUDED.ts, severity = EXCLUDED.severity, score = EXCLUDED.score,
    window_end = EXCLUDED.window_end, evidence = EXCLUDED.evidence, message = EXCLUDED.message
WHERE alerts.ts < EXCLUDED.ts
"""

ANALYSTS_SQL: Final = """
INSERT INTO users (username, password_hash, role, tenant)
SELECT 'analyst' || lpad(i::text, 2, '0'), :hash, 'analyst', :tenant FROM generate_series(1, :analysts) AS i
"""

# Open: a share of the last three days' cases and a sliver of the older ones, never a critical one.
WORK_SQL: Final = f"""
UPDATE cases SET state = w.state, assignee = w.assignee, disposition = w.disposition, closed_at = w.closed_at,
                 closed_by = CASE WHEN w.closed_at IS NOT NULL THEN w.assignee END,
                 updated_at = coalesce(w.closed_at, cases.opened_at + interval '20 minutes')
FROM (
    SELECT alert_id,
           CASE WHEN NOT open THEN 'closed' WHEN u3 < 0.55 THEN 'new' WHEN u3 < 0.9 THEN 'in_review'
                ELSE 'escalated' END AS state,
           CASE WHEN open AND u3 < 0.55 THEN NULL
                ELSE 'analyst' || lpad((1 + floor(:analysts * power(u2, 1.3)))::text, 2, '0') END AS assignee,
           CASE WHEN open THEN NULL WHEN u3 < 0.7 THEN 'false_positive' WHEN u3 < 0.85 THEN 'true_positive'
                WHEN u3 < 0.95 THEN 'needs_more_information' ELSE 'referred' END AS disposition,
           CASE WHEN NOT open THEN least(now(), opened_at + make_interval(mins => (10 + u4 * 4000)::int)) END
               AS closed_at
    FROM (
        SELECT alert_id, opened_at, {_unit(7)} AS u2, {_unit(13)} AS u3, {_unit(19)} AS u4,
               severity <> 'critical' AND {_unit(25)} < CASE WHEN opened_at > now() - interval '3 days'
                                                             THEN :p_recent ELSE :p_old END AS open
        FROM cases WHERE tenant = :tenant
    ) AS drawn
) AS w
WHERE cases.tenant = :tenant AND w.alert_id = cases.alert_id
"""

NOTES_SQL: Final = f"""
INSERT INTO case_notes (tenant, alert_id, author, at, body)
SELECT tenant, alert_id, coalesce(assignee, 'analyst01'), coalesce(closed_at, opened_at + interval '15 minutes'),
       CASE WHEN disposition = 'false_positive' THEN 'Benign: the move follows a news item; volume in line with '
            WHEN disposition = 'true_positive' THEN 'Confirmed: the same participant pattern as the earlier case on '
            ELSE 'Pending: asked the venue for the order-level data of ' END
       || symbol || ' (' || venue || '). Checked the book replay and the bars around the episode.'
FROM cases WHERE tenant = :tenant AND {_unit(19)} < :share
"""

LINKS_SQL: Final = f"""
INSERT INTO case_links (tenant, alert_id, linked_id, linked_by, at)
SELECT tenant, alert_id, previous, coalesce(assignee, 'analyst01'), coalesce(closed_at, opened_at)
FROM (
    SELECT tenant, alert_id, assignee, closed_at, opened_at, {_unit(27)} AS u,
           lag(alert_id) OVER (PARTITION BY symbol, venue ORDER BY opened_at) AS previous
    FROM cases WHERE tenant = :tenant
) AS ordered
WHERE previous IS NOT NULL AND u < :share
ON CONFLICT DO NOTHING
"""
LINKS_BACK_SQL: Final = """
INSERT INTO case_links (tenant, alert_id, linked_id, linked_by, at)
SELECT tenant, linked_id, alert_id, linked_by, at FROM case_links
ON CONFLICT DO NOTHING
"""

# through the chain trigger like every line (it stamps them with the time they are written)
AUDIT_SQL: Final = """
INSERT INTO audit (tenant, actor, action, object_type, object_id, before, after, client)
SELECT tenant, closed_by, 'case.close', 'case', alert_id,
       jsonb_build_object('state', 'in_review', 'disposition', NULL),
       jsonb_build_object('state', 'closed', 'disposition', disposition), '10.1.0.' || (1 + ascii(alert_id) % 200)
FROM cases WHERE state = 'closed' ORDER BY closed_at;
INSERT INTO audit (tenant, actor, action, object_type, object_id, after, client)
SELECT tenant, author, 'case.note', 'case', alert_id,
       jsonb_build_object('note_id', note_id, 'chars', length(body),
                          'sha256', encode(sha256(convert_to(body, 'UTF8')), 'hex')),
       '10.1.0.' || (1 + ascii(alert_id) % 200)
FROM case_notes ORDER BY note_id;
"""

BARS_SQL: Final = f"""
INSERT INTO bars (symbol, venue, start, "end", open, high, low, close, volume, vwap, trades, price_change_pct)
SELECT symbol, venue, m, m + interval '1 minute', o, greatest(o, c) * 1.001, least(o, c) * 0.999, c, v, (o + c) / 2,
       (v / 40)::int, round(((c / o - 1) * 100)::numeric, 3)
FROM (
    SELECT symbol, venue, m, {_BASE_PRICE} * (1 + 0.01 * sin(extract(epoch FROM m) / 900)) AS o,
           {_BASE_PRICE} * (1 + 0.01 * sin((extract(epoch FROM m) + 60) / 900)
                            + CASE WHEN m BETWEEN window_start AND window_end THEN 0.004 ELSE 0 END) AS c,
           round(1000 + 9000 * random() + CASE WHEN m BETWEEN window_start AND window_end THEN 40000 ELSE 0 END) AS v
    FROM alerts CROSS JOIN LATERAL generate_series(date_trunc('minute', window_start) - interval '11 minutes',
                                                   window_end + interval '10 minutes', interval '1 minute') AS m
    WHERE alert_id = ANY(:ids)
) AS minutes
ON CONFLICT DO NOTHING
"""


def _side(sign: str) -> str:
    return (
        f"(SELECT jsonb_agg(jsonb_build_array(round((mid {sign} tick * l)::numeric, 2), "
        "100 * (1 + floor(random() * 20))::int) ORDER BY l) FROM generate_series(1, 5) AS l)"
    )


BOOKS_SQL: Final = f"""
INSERT INTO book_snapshots (symbol, venue, ts, bids, asks)
SELECT symbol, venue, t, {_side("-")}, {_side("+")}
FROM (
    SELECT symbol, venue, t, {_BASE_PRICE} * (1 + 0.01 * sin(extract(epoch FROM t) / 900)) AS mid,
           greatest(0.01, round({_BASE_PRICE} * 0.0004, 2)) AS tick
    FROM alerts CROSS JOIN LATERAL generate_series(window_start - interval '10 minutes',
                                                   window_end + interval '10 minutes', interval '1 second') AS t
    WHERE alert_id = ANY(:ids)
) AS seconds
ON CONFLICT DO NOTHING
"""

#: the tables the seeding fills, vacuumed and analysed at the end
TABLES: Final = ("alerts", "cases", "severity_history", "case_notes", "case_links", "audit", "bars", "book_snapshots")


@dataclass(frozen=True, slots=True)
class SeedPlan:
    alerts: int = 1_000_000
    symbols: int = 300
    days: int = 90
    open_share: float = 0.005  # of all cases: a few thousand open in a million
    escalated_share: float = 0.03
    note_share: float = 0.1
    link_share: float = 0.01
    charted: int = 300  # alerts with bars and book snapshots around them


@dataclass(slots=True)
class Seeded:
    seconds: dict[str, float] = field(default_factory=dict)  # per step
    counts: dict[str, int] = field(default_factory=dict)  # rows per table
    charted_ids: list[str] = field(default_factory=list)


def seed(engine: Engine, plan: SeedPlan, report: Callable[[str], object] = lambda message: None) -> Seeded:
    """Fill a freshly migrated schema (``engine``'s search path) with ``plan``'s case load; VACUUM ANALYZE."""
    seeded = Seeded()

    def step(name: str, work: Callable[[Connection], object]) -> None:
        report(f"seeding: {name}…")
        started = time.perf_counter()
        with engine.begin() as conn:
            work(conn)
        seeded.seconds[name] = time.perf_counter() - started

    step("users", _users)
    with engine.begin() as conn:
        held = _drop_keys_and_indexes(conn)
    _timed(seeded, "alerts and cases (trigger)", lambda: _alerts(engine, plan, report))
    step("escalations (trigger)", lambda conn: conn.execute(text(ESCALATIONS_SQL), {"share": plan.escalated_share}))
    step("analysts' work (closes, assignees)", lambda conn: _work(conn, plan))
    step("notes", lambda conn: conn.execute(text(NOTES_SQL), {"share": plan.note_share, "tenant": BENCH_TENANT}))
    step("links", lambda conn: _links(conn, plan))
    step("audit lines", lambda conn: conn.execute(text(AUDIT_SQL)))
    step("bars and book snapshots", lambda conn: seeded.charted_ids.extend(_charts(conn, plan)))
    step("indexes and foreign keys rebuilt", lambda conn: _restore(conn, held))
    report("seeding: VACUUM ANALYZE…")
    _timed(seeded, "vacuum analyze", lambda: _vacuum_and_count(engine, seeded))
    return seeded


def _timed(seeded: Seeded, name: str, work: Callable[[], object]) -> None:
    started = time.perf_counter()
    work()
    seeded.seconds[name] = time.perf_counter() - started


def _alerts(engine: Engine, plan: SeedPlan, report: Callable[[str], object]) -> None:
    """The alerts in chunks of :data:`CHUNK`, two transactions at a time (one per core here)."""
    span_ms = plan.days * 86_400_000
    t0_ms = int(time.time() * 1000) - span_ms - 600_000  # the newest episode ends before now
    done = 0

    def chunk(first: int) -> int:
        last = min(plan.alerts, first + CHUNK - 1)
        params = {"symbols": plan.symbols, "first": first, "last": last, "t0_ms": t0_ms}
        with engine.begin() as conn:
            conn.execute(text(ALERTS_SQL), {**params, "step_ms": span_ms / plan.alerts})
        return last - first + 1

    report("seeding: alerts through the trigger…")
    with ThreadPoolExecutor(max_workers=SEED_WORKERS) as pool:
        for stored in pool.map(chunk, range(1, plan.alerts + 1, CHUNK)):
            done += stored
            report(f"seeding: {done:,} of {plan.alerts:,} alerts through the trigger…")


#: the tables whose foreign keys and secondary indexes are set aside while they are filled
LOADED: Final = ("alerts", "cases", "severity_history", "case_notes", "case_links", "audit")


@dataclass(frozen=True, slots=True)
class _Held:
    """What :func:`_drop_keys_and_indexes` set aside: statements that put it back as the migration made it."""

    indexes: list[str]
    foreign_keys: list[str]


def _drop_keys_and_indexes(conn: Connection) -> _Held:
    """A bulk load's usual move: the seeded tables' foreign keys and secondary indexes (not their primary keys,
    which the trigger and ON CONFLICT use) dropped, their definitions read back from the catalog to rebuild
    them afterwards — the keys re-validated over every row."""
    indexes = conn.execute(
        text(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid WHERE t.relnamespace = current_schema()::regnamespace "
            "AND t.relname = ANY(:tables) AND NOT i.indisprimary AND NOT i.indisunique"
        ),
        {"tables": list(LOADED)},
    ).all()
    keys = conn.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND connamespace = current_schema()::regnamespace "
            "AND conrelid::regclass::text = ANY(:tables)"
        ),
        {"tables": list(LOADED)},
    ).all()
    for table, name, _ in keys:
        conn.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    return _Held(
        indexes=[definition for _, definition in indexes],
        foreign_keys=[f'ALTER TABLE "{t}" ADD CONSTRAINT "{n}" {definition}' for t, n, definition in keys],
    )


def _restore(conn: Connection, held: _Held) -> None:
    conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    for statement in [*held.indexes, *held.foreign_keys]:
        conn.execute(text(statement))


def _vacuum_and_count(engine: Engine, seeded: Seeded) -> None:
    with engine.connect() as plain:
        conn = plain.execution_options(isolation_level="AUTOCOMMIT")
        for table in TABLES:
            conn.execute(text(f"VACUUM ANALYZE {table}"))
        seeded.counts = {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TABLES}
        seeded.counts["open cases"] = int(
            conn.execute(
                text(f"SELECT count(*) FROM cases WHERE state <> 'closed' AND tenant = '{BENCH_TENANT}'")
            ).scalar_one()
        )


def _users(conn: Connection) -> None:
    users.add_tenant(conn, BENCH_TENANT, list(VENUES), "bench")
    users.add_tenant(conn, RIVAL_TENANT, [VENUES[1]], "bench")
    users.add_user(conn, BENCH_USER, BENCH_PASSWORD, "supervisor", BENCH_TENANT, "bench")
    analysts = {"hash": hash_password(BENCH_PASSWORD), "analysts": ANALYSTS, "tenant": BENCH_TENANT}
    conn.execute(text(ANALYSTS_SQL), analysts)


def _work(conn: Connection, plan: SeedPlan) -> None:
    recent = 3 / plan.days  # the share of cases opened in the last three days
    # 60 % of the open cases among the last three days', 40 % spread over the older ones
    p_recent = min(1.0, 0.6 * plan.open_share / recent)
    p_old = 0.4 * plan.open_share / (1 - recent)
    conn.execute(text(WORK_SQL), {"analysts": ANALYSTS, "p_recent": p_recent, "p_old": p_old, "tenant": BENCH_TENANT})


def _links(conn: Connection, plan: SeedPlan) -> None:
    conn.execute(text(LINKS_SQL), {"share": plan.link_share, "tenant": BENCH_TENANT})
    conn.execute(text(LINKS_BACK_SQL))


def _charts(conn: Connection, plan: SeedPlan) -> list[str]:
    ids = list(
        conn.execute(text("SELECT alert_id FROM alerts ORDER BY random() LIMIT :n"), {"n": plan.charted}).scalars()
    )
    conn.execute(text(BARS_SQL), {"ids": ids})
    conn.execute(text(BOOKS_SQL), {"ids": ids})
    return ids
