"""The supervisor's numbers: workload per analyst, open cases by age, and the false-positive rate measured
from the dispositions, per alert kind and detector version — the number the detection team tunes against.

The false-positive rate counts the closed cases whose disposition decided the question: ``false_positive``
over ``true_positive + false_positive + referred`` (a referral is a case the analyst found worth a
regulator's look); ``needs_more_information`` decides nothing and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Row, case, func, select

from tapewatch.console.schema import cases

__all__ = ["AGE_BUCKETS", "FalsePositiveRate", "false_positive_rates", "open_by_age", "workload"]

#: (label, upper bound in hours) of the open-case age buckets
AGE_BUCKETS: Final = (("< 1 h", 1), ("1–4 h", 4), ("4–24 h", 24), ("1–7 d", 168), ("> 7 d", None))
DECIDING: Final = ("true_positive", "false_positive", "referred")


@dataclass(frozen=True, slots=True)
class FalsePositiveRate:
    kind: str
    model_version: str
    closed: int
    deciding: int
    false_positives: int

    @property
    def rate(self) -> float | None:
        """``false_positives / deciding``, None before any deciding disposition.

        >>> FalsePositiveRate("spoofing", "v1", 5, 4, 1).rate, FalsePositiveRate("wash", "v1", 1, 0, 0).rate
        (0.25, None)
        """
        return self.false_positives / self.deciding if self.deciding else None


def workload(conn: Connection) -> list[Row[Any]]:
    """Per assignee: open cases by state and the oldest one's start."""
    query = (
        select(
            cases.c.assignee,
            func.count().filter(cases.c.state == "in_review").label("in_review"),
            func.count().filter(cases.c.state == "escalated").label("escalated"),
            func.count().filter(cases.c.state == "new").label("new"),
            func.min(cases.c.opened_at).label("oldest"),
        )
        .where(cases.c.state != "closed")
        .group_by(cases.c.assignee)
        .order_by(cases.c.assignee.nulls_first())
    )
    return list(conn.execute(query))


def open_by_age(conn: Connection) -> list[Row[Any]]:
    """Open cases per age bucket (hours since the episode started) and severity."""
    age_h = func.extract("epoch", func.now() - cases.c.opened_at) / 3600
    bucket = case(
        *((age_h < hours, label) for label, hours in AGE_BUCKETS if hours is not None), else_=AGE_BUCKETS[-1][0]
    )
    query = (
        select(bucket.label("age"), cases.c.severity, func.count().label("cases"))
        .where(cases.c.state != "closed")
        .group_by(bucket, cases.c.severity)
    )
    return list(conn.execute(query))


def false_positive_rates(conn: Connection) -> list[FalsePositiveRate]:
    query = (
        select(
            cases.c.kind,
            cases.c.model_version,
            func.count().label("closed"),
            func.count().filter(cases.c.disposition.in_(DECIDING)).label("deciding"),
            func.count().filter(cases.c.disposition == "false_positive").label("fp"),
        )
        .where(cases.c.state == "closed")
        .group_by(cases.c.kind, cases.c.model_version)
        .order_by(cases.c.kind, cases.c.model_version)
    )
    return [FalsePositiveRate(r.kind, r.model_version, r.closed, r.deciding, r.fp) for r in conn.execute(query)]
