"""The root of every user-facing error, which the CLI turns into a single clear line and a non-zero exit; the one
mapping of the library's own configuration errors onto it; and the one reading of a pydantic validation error as a
location and a message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError


class TapewatchError(Exception):
    """A user-facing failure: bad input, an unreachable service, a missing or refused artifact. Every error a user
    can cause and mend subclasses it (:class:`~tapewatch.artifacts.ArtifactError`,
    :class:`~tapewatch.records.RecordError`, the detectors' input, feature and calibration errors, …); those that
    were ``ValueError`` stay ``ValueError`` too, so callers that catch that still do."""


@contextmanager
def user_errors() -> Iterator[None]:
    """A ``ValueError`` inside becomes a :class:`TapewatchError` (one line, no traceback): the signals lab's models
    and configurations report a value the user gave them that way.

    >>> with user_errors():
    ...     raise ValueError("window must be at least 5 bars")
    Traceback (most recent call last):
    tapewatch.errors.TapewatchError: window must be at least 5 bars
    """
    try:
        yield
    except TapewatchError:
        raise
    except ValueError as exc:
        raise TapewatchError(str(exc)) from None


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
