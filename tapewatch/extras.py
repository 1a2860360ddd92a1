"""The optional parts of tapewatch and the libraries each needs (``pyproject.toml``'s extras).

``pip install tapewatch`` installs the surveillance: producers, the stream worker's detection, the sinks and the CLI.
The rest is an extra: ``signals`` (the trading-signal models: torch, gymnasium), ``spark`` (the Spark jobs) and
``console`` (the analyst console's web stack); ``all`` is every one of them.

A command that needs an extra calls :func:`require` first, so a missing one is a single line with the fix rather
than a traceback; the stream worker asks :func:`available` and runs detection without the signals.

>>> hint("spark")
"pip install 'tapewatch[spark]'"
"""

from __future__ import annotations

import importlib.util
from typing import Final

from tapewatch.errors import TapewatchError

#: extra → the top-level modules it installs that the code imports (what decides whether it is installed)
EXTRAS: Final[dict[str, tuple[str, ...]]] = {
    "signals": ("torch", "gymnasium"),
    "spark": ("pyspark",),
    "console": ("fastapi", "uvicorn", "multipart", "jinja2", "argon2"),
}


class MissingExtraError(TapewatchError):
    """A command needs an extra that is not installed."""


def hint(extra: str) -> str:
    """How to install ``extra``."""
    return f"pip install 'tapewatch[{extra}]'"


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (found without importing them: no torch is loaded)."""
    absent = []
    for name in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken install, or a module blocked in sys.modules
            found = False
        if not found:
            absent.append(name)
    return absent


def available(extra: str) -> bool:
    return not missing(extra)


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` (one line: what needs which extra, and the command that installs it) unless
    ``extra`` is installed."""
    absent = missing(extra)
    if absent:
        raise MissingExtraError(f"{what} needs the '{extra}' extra ({', '.join(absent)} not installed): {hint(extra)}")


def extra_of(module: str | None) -> str | None:
    """The extra that installs ``module`` (a dotted name, as in ``ModuleNotFoundError.name``), or None.

    >>> extra_of("torch.nn"), extra_of("pyspark.sql"), extra_of("numpy")
    ('signals', 'spark', None)
    """
    top = (module or "").split(".", maxsplit=1)[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)
