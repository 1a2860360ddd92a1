"""The README's configuration and topics tables must match the code they document."""

from __future__ import annotations

import re

from tapewatch.settings import PROJECT_ROOT, Settings
from tapewatch.topics import ALL_TOPICS

README = (PROJECT_ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"^\| `(TAPEWATCH_[A-Z0-9_]+)` \|", README, flags=re.MULTILINE))
    actual = {f"TAPEWATCH_{name.upper()}" for name in Settings.model_fields}
    assert documented == actual


def test_every_topic_is_documented() -> None:
    rows = re.findall(r"^\| (`[a-z0-9.]+`(?:, `[a-z0-9.]+`)*) \|", README, flags=re.MULTILINE)
    documented = {name for row in rows for name in re.findall(r"`([a-z0-9.]+)`", row)}
    assert {t.name for t in ALL_TOPICS} <= documented


def test_quick_start_is_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in quick.strip().splitlines()] == ["make demo", "make test"]
