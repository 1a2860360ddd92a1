"""The JSON API for downstream services (``/api/v1``, OpenAPI at ``/api/openapi.json``): cases, one case with
its evidence, history and notes, and the measured false-positive rates. Read-only, authenticated by a
per-service token (``Authorization: Bearer …``, stored hashed) or a signed-in user's session; the token's or
user's tenant bounds what is seen, as on the pages (:func:`tapewatch.console.tenancy.scoped`). The false-positive rates
are a supervisor's numbers: a supervisor's session only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from tapewatch.console import cases, supervisor
from tapewatch.console.auth import Principal
from tapewatch.console.explain import explanation
from tapewatch.console.security import engine_of, service, settings_of, supervisor_or_session
from tapewatch.console.tenancy import scoped
from tapewatch.console.web import Filter

__all__ = ["CaseDetail", "CaseSummary", "EvidenceItem", "FalsePositiveRateOut", "router"]

router = APIRouter(prefix="/api/v1", tags=["cases"])
Service = Annotated[Principal, Depends(service)]
Supervisor = Annotated[Principal, Depends(supervisor_or_session)]


class CaseSummary(BaseModel):
    alert_id: str
    symbol: str
    venue: str
    kind: str
    severity: str
    score: float
    state: str
    assignee: str | None
    disposition: str | None
    opened_at: datetime
    alert_ts: datetime
    model_version: str


class EvidenceItem(BaseModel):
    """One evidence value beside the bar its rule compared it with (``passed`` None: context, no bar)."""

    key: str
    label: str
    value: Any
    unit: str
    threshold: float | None
    comparison: str | None
    passed: bool | None
    param: str | None  # the detector parameter the threshold comes from
    formula: str | None  # how the threshold is computed from it
    unless: str | None  # the rule's other way to fire: a hit may fail this bar when that holds


class SeverityStep(BaseModel):
    ts: datetime
    severity: str
    score: float


class Note(BaseModel):
    note_id: int
    author: str
    at: datetime
    body: str
    supersedes: int | None  # the note this one edits (both are kept)


class NewsOut(BaseModel):
    """A news item beside the case's alert (published around its onset)."""

    item_id: str
    ts: datetime
    source: str
    title: str
    url: str
    sentiment: float | None


class CaseDetail(CaseSummary):
    message: str
    rule: str | None  # which of the kind's rules fired
    rule_is_current: bool  # False: raised under another detector version's bars than this console explains
    window_start: datetime
    window_end: datetime
    evidence: list[EvidenceItem]
    news: list[NewsOut]  # the symbol's news around the onset, newest first
    history: list[SeverityStep]
    notes: list[Note]


class CasePage(BaseModel):
    cases: list[CaseSummary]
    next_page: int | None


class FalsePositiveRateOut(BaseModel):
    kind: str
    model_version: str
    closed: int
    deciding: int
    false_positives: int
    rate: float | None


def _summary(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in CaseSummary.model_fields}


@router.get("/cases", response_model=CasePage)
def list_cases(request: Request, principal: Service, f: Filter) -> CasePage:
    """Cases by severity then age (the queue's order), 50 a page; ``state=open`` (default), ``all`` or one."""
    with scoped(engine_of(request), principal.tenant) as conn:
        rows, more = cases.queue(conn, f)
    return CasePage(cases=[CaseSummary(**_summary(r)) for r in rows], next_page=f.page + 1 if more else None)


@router.get("/cases/{alert_id}", response_model=CaseDetail)
def get_case(request: Request, principal: Service, alert_id: str) -> CaseDetail:
    with scoped(engine_of(request), principal.tenant) as conn:
        row = cases.case_detail(conn, alert_id)
        history, (notes, _) = cases.history(conn, alert_id), cases.notes(conn, alert_id)
    why = explanation(row, settings_of(request))
    return CaseDetail(
        **_summary(row),
        message=row.message,
        window_start=row.window_start,
        window_end=row.window_end,
        rule=why.rule,
        rule_is_current=why.current,
        evidence=[EvidenceItem(**line) for line in why.lines],
        news=[NewsOut(**{**item, "ts": datetime.fromtimestamp(item["ts"] / 1000, tz=UTC)}) for item in row.news],
        history=[SeverityStep(ts=h.ts, severity=h.severity, score=h.score) for h in history],
        notes=[Note(note_id=n.note_id, author=n.author, at=n.at, body=n.body, supersedes=n.supersedes) for n in notes],
    )


@router.get("/false-positive-rates", response_model=list[FalsePositiveRateOut])
def false_positive_rates(request: Request, principal: Supervisor) -> list[FalsePositiveRateOut]:
    """Per alert kind and detector version, from the closed cases' dispositions (see the supervisor page)."""
    with scoped(engine_of(request), principal.tenant) as conn:
        rates = supervisor.false_positive_rates(conn)
    return [
        FalsePositiveRateOut(
            kind=r.kind,
            model_version=r.model_version,
            closed=r.closed,
            deciding=r.deciding,
            false_positives=r.false_positives,
            rate=r.rate,
        )
        for r in rates
    ]
