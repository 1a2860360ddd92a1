"""The README and the docs site must match the code they document: the settings, the topics, the detectors'
parameters, the two commands — and the README stays a newcomer's page (short, no commit hashes, no issue numbers).

The site's links and navigation are checked by ``mkdocs build --strict`` (``make docs``, run by ``make test``)."""

from __future__ import annotations

import re
from datetime import time
from enum import Enum
from pathlib import Path

import pytest

from tapewatch.detectors.patterns.params import PatternParams
from tapewatch.settings import PROJECT_ROOT, Settings
from tapewatch.topics import ALL_TOPICS

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
DOCS = PROJECT_ROOT / "docs"
CONFIGURATION = (DOCS / "configuration.md").read_text(encoding="utf-8")
TOPICS = (DOCS / "topics.md").read_text(encoding="utf-8")
GETTING_STARTED = (DOCS / "getting-started.md").read_text(encoding="utf-8")
DETECTOR_PAGES = sorted((DOCS / "detectors").glob("*.md"))

#: the README's budget: what a newcomer reads before the docs take over
README_MAX_LINES = 300


def shown(value: object) -> str:
    """A parameter's default as the detector pages write it: ``5000``, ``13:30``, ``trades``, ``none``."""
    if value is None:
        return "none"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, tuple):
        return ", ".join(shown(v) for v in value)
    return str(value)


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"^\| `(TAPEWATCH_[A-Z0-9_]+)` \|", CONFIGURATION, flags=re.MULTILINE))
    actual = set(Settings.variables())
    assert documented == actual


def documented_topics(text: str) -> set[str]:
    rows = re.findall(r"^\| (`[a-z0-9.]+`(?:, `[a-z0-9.]+`)*) \|", text, flags=re.MULTILINE)
    return {name for row in rows for name in re.findall(r"`([a-z0-9.]+)`", row)}


@pytest.mark.parametrize("page", ["README.md", "docs/topics.md"])
def test_every_topic_is_documented(page: str) -> None:
    text = README if page == "README.md" else TOPICS
    assert {t.name for t in ALL_TOPICS} <= documented_topics(text)


def quick_start(text: str) -> list[str]:
    quick = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#")[0].strip() for line in quick.strip().splitlines() if not line.startswith("#")]


def test_quick_start_is_two_commands() -> None:
    assert quick_start(README) == ["make demo", "make test"]
    assert quick_start(GETTING_STARTED) == ["make demo", "make test"]


def test_every_pattern_parameter_is_documented_with_its_default() -> None:
    """Each detector page lists its parameters as ``| `module.field` | `default` | meaning |``: every parameter of
    :class:`PatternParams` once, with the default the code has."""
    row = re.compile(r"^\| `([a-z_]+(?:\.[a-z_0-9]+)+)` \| `([^`]*)` \|", re.MULTILINE)
    rows = [found for page in DETECTOR_PAGES for found in row.findall(page.read_text(encoding="utf-8"))]
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), "a parameter is listed twice"
    params = PatternParams()
    assert set(names) == set(params.names())
    assert dict(rows) == {name: shown(params.value(name)) for name in names}


def test_readme_is_a_newcomers_page() -> None:
    lines = README.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README has {len(lines)} lines; move detail into docs/"
    assert not re.search(r"\bissues? [0-9]+|#[0-9]+\b", README), "no issue numbers in the README"
    hashes = [w for w in re.findall(r"\b[0-9a-f]{7,40}\b", README) if re.search(r"[a-f]", w) and re.search(r"\d", w)]
    assert not hashes, f"no commit hashes in the README: {hashes}"


def test_readme_links_into_docs_exist() -> None:
    targets = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", README)
    assert targets, "the README links into docs/"
    assert [t for t in targets if not Path(PROJECT_ROOT / t).is_file()] == []


def test_the_pump_detectors_known_limits_are_documented() -> None:
    """``tests/unit/test_patterns.py``'s expected failures name the page that documents them."""
    page = (DOCS / "detectors" / "pump-and-dump.md").read_text(encoding="utf-8")
    for limit in ("first minutes of a session", "second pump within the hour", "coarse-tick stock"):
        assert limit in page
