"""The case workflow's rules (tapewatch.console.workflow), over every actor, state, assignee and action."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapewatch.console.schema import DISPOSITIONS, ROLES, STATES
from tapewatch.console.workflow import ACTIONS, Actor, CaseState, ConflictError, ForbiddenError, decide

NAMES = ("ann", "bob", "sue")
actors = st.builds(Actor, st.sampled_from(NAMES), st.sampled_from(ROLES))
case_states = st.builds(CaseState, st.sampled_from(STATES), st.sampled_from((None, *NAMES)))


@given(
    actors,
    case_states,
    st.sampled_from(ACTIONS),
    st.sampled_from((None, *NAMES)),
    st.sampled_from((None, "bogus", *DISPOSITIONS)),
)
def test_every_decision_is_a_valid_state_or_a_refusal(
    actor: Actor, case: CaseState, action: str, assignee: str | None, disposition: str | None
) -> None:
    try:
        changes = decide(action, actor, case, assignee=assignee, disposition=disposition)
    except (ForbiddenError, ConflictError):
        return
    state = changes.get("state", case.state)
    assert state in STATES
    if state == "closed":
        assert changes["disposition"] in DISPOSITIONS
    if actor.role == "analyst":
        # an analyst never acts on a case assigned to someone else, and never assigns or reopens
        assert case.assignee in (None, actor.username)
        assert action not in ("assign", "reopen")
        assert changes.get("assignee", actor.username) == actor.username


@given(actors, case_states)
def test_a_closed_case_only_reopens(actor: Actor, case: CaseState) -> None:
    closed = CaseState("closed", case.assignee)
    for action in ("take", "assign", "escalate", "close"):
        with pytest.raises(ConflictError):
            decide(action, Actor(actor.username, "admin"), closed, assignee="ann", disposition="referred")


def test_an_analyst_cannot_take_an_escalated_case_but_a_supervisor_can() -> None:
    escalated = CaseState("escalated", None)
    with pytest.raises(ForbiddenError):
        decide("take", Actor("ann", "analyst"), escalated)
    assert decide("take", Actor("sue", "supervisor"), escalated) == {"state": "escalated", "assignee": "sue"}


def test_a_close_needs_a_disposition() -> None:
    with pytest.raises(ConflictError, match="disposition"):
        decide("close", Actor("ann", "analyst"), CaseState("in_review", "ann"))
