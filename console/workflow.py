"""Who may do what to a case, and what it becomes: the workflow as pure functions, so the web pages, the API
and the tests share one definition.

States move ``new → in_review → escalated → closed``; a supervisor may reopen a closed case. An analyst works
the cases assigned to them: taking a free case assigns it; only a supervisor or an admin assigns to someone
else, takes an escalated case, or closes or escalates a case assigned to another analyst.

>>> analyst, boss = Actor("ann", "analyst"), Actor("sue", "supervisor")
>>> decide("take", analyst, CaseState("new", None))
{'state': 'in_review', 'assignee': 'ann'}
>>> decide("close", Actor("bob", "analyst"), CaseState("in_review", "ann"), disposition="false_positive")
Traceback (most recent call last):
...
tapewatch.console.workflow.ForbiddenError: only the assignee or a supervisor may close this case
>>> decide("close", boss, CaseState("in_review", "ann"), disposition="referred")
{'state': 'closed', 'disposition': 'referred'}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tapewatch.console.schema import DISPOSITIONS, ROLES

__all__ = ["ACTIONS", "Actor", "CaseState", "ConflictError", "ForbiddenError", "decide", "may_supervise"]

ACTIONS: Final = ("take", "assign", "escalate", "close", "reopen")


@dataclass(frozen=True, slots=True)
class Actor:
    username: str
    role: str


@dataclass(frozen=True, slots=True)
class CaseState:
    state: str
    assignee: str | None


class ForbiddenError(Exception):
    """The actor's role or assignment does not allow the action (HTTP 403)."""


class ConflictError(Exception):
    """The case's state does not allow the action (HTTP 409)."""


def may_supervise(actor: Actor) -> bool:
    return actor.role in ROLES[1:]


def decide(
    action: str, actor: Actor, case: CaseState, *, assignee: str | None = None, disposition: str | None = None
) -> dict[str, str | None]:
    """The case's changed fields after ``action``, or :class:`ForbiddenError`/:class:`ConflictError`."""
    if action not in ACTIONS:
        raise ConflictError(f"unknown action {action!r}")
    if action == "reopen":
        return _reopen(actor, case)
    if case.state == "closed":
        raise ConflictError("the case is closed")
    if action == "take":
        return _take(actor, case)
    if action == "assign":
        return _assign(actor, case, assignee)
    _require_owner_or_supervisor(actor, case, action)
    if action == "escalate":
        if case.state == "escalated":
            raise ConflictError("the case is already escalated")
        return {"state": "escalated"}
    if disposition not in DISPOSITIONS:
        raise ConflictError(f"a close needs a disposition: {', '.join(DISPOSITIONS)}")
    return {"state": "closed", "disposition": disposition}


def _take(actor: Actor, case: CaseState) -> dict[str, str | None]:
    if case.assignee == actor.username:
        raise ConflictError("the case is already yours")
    if not may_supervise(actor) and (case.assignee is not None or case.state == "escalated"):
        raise ForbiddenError("only a supervisor may take a case that is assigned or escalated")
    return {"state": "in_review" if case.state == "new" else case.state, "assignee": actor.username}


def _assign(actor: Actor, case: CaseState, assignee: str | None) -> dict[str, str | None]:
    if not may_supervise(actor):
        raise ForbiddenError("only a supervisor may assign a case")
    if not assignee:
        raise ConflictError("assign to whom?")
    return {"state": "in_review" if case.state == "new" else case.state, "assignee": assignee}


def _reopen(actor: Actor, case: CaseState) -> dict[str, str | None]:
    if not may_supervise(actor):
        raise ForbiddenError("only a supervisor may reopen a case")
    if case.state != "closed":
        raise ConflictError("the case is open")
    return {"state": "in_review", "disposition": None}


def _require_owner_or_supervisor(actor: Actor, case: CaseState, action: str) -> None:
    if case.assignee != actor.username and not may_supervise(actor):
        raise ForbiddenError(f"only the assignee or a supervisor may {action} this case")
