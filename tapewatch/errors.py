"""The one error type the CLI turns into a single clear line and a non-zero exit, and the one reading of a
pydantic validation error as a location and a message."""

from __future__ import annotations

from pydantic import ValidationError


class TapewatchError(RuntimeError):
    """A user-facing failure: bad input, an unreachable service, a missing artifact."""


def first_problem(exc: ValidationError) -> tuple[str | None, str]:
    """The first problem pydantic found: (its dotted location, None at the top level; its message).

    >>> from pydantic import BaseModel
    >>> class Point(BaseModel):
    ...     x: int
    >>> try:
    ...     Point.model_validate({"x": "left"})
    ... except ValidationError as exc:
    ...     first_problem(exc)
    ('x', 'Input should be a valid integer, unable to parse string as an integer')
    """
    first = exc.errors(include_url=False)[0]
    return ".".join(str(part) for part in first["loc"]) or None, first["msg"]
