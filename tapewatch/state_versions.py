"""Kept state across versions, as Alembic keeps a schema: a kept state's module lists the steps from each of its
versions to the next, and loading runs the steps from the stored version up to the current one, so that the state's
loader reads one format, the current one.

A step is a pure function of the plain JSON-safe state: it returns the next version's state and leaves its
argument as it was. Its docstring says what the next version changes, and what an older state starts with there.

>>> counter = StateVersions("counter state", (lambda state: {**state, "n": 0},))
>>> counter.current
2
>>> counter.upgrade({"v": 1})
{'v': 2, 'n': 0}
>>> counter.upgrade({"v": 3})
Traceback (most recent call last):
...
tapewatch.state_versions.StateVersionError: counter state version 3 is not supported (this code reads ...)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tapewatch.errors import TapewatchError

#: one version's state → the next one's
Step = Callable[[Mapping[str, Any]], dict[str, Any]]


class StateVersionError(TapewatchError, ValueError):
    """A stored state of a version this code does not load: an unknown one, or one newer than this code."""


@dataclass(frozen=True, slots=True)
class StateVersions:
    """One kept state's versions: ``steps[i]`` takes version ``first + i`` to the next; the last one reached is
    :attr:`current`. The version is stored under ``key`` (a stage's state calls it its ``format``); ``what`` names
    the state in the error (``"flow state"``)."""

    what: str
    steps: tuple[Step, ...] = ()
    first: int = 1
    key: str = "v"

    @property
    def current(self) -> int:
        return self.first + len(self.steps)

    def upgrade(self, state: Mapping[str, Any], of: str | None = None) -> Mapping[str, Any]:
        """``state`` in the current version's format (itself when it is of that version already);
        :class:`StateVersionError` for a version this code does not load (``of``: whose state, for the error)."""
        version = state.get(self.key)
        if type(version) is not int or not self.first <= version <= self.current:
            noun = "version" if self.key == "v" else self.key
            reads = f"{noun} {self.first}" if self.first == self.current else f"{noun}s {self.first} to {self.current}"
            what = self.what if of is None else f"{self.what} of {of!r}"
            raise StateVersionError(f"{what} {noun} {version!r} is not supported (this code reads {reads})")
        for step in self.steps[version - self.first :]:
            version += 1
            state = {**step(state), self.key: version}
        return state
