"""PROVISIONAL: evidence lines without thresholds until detectors' explanations land."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tapewatch.settings import Settings

__all__ = ["evidence_lines"]


def evidence_lines(kind: str, evidence: Mapping[str, Any], venue: str, settings: Settings) -> list[dict[str, Any]]:
    return [
        {"key": k, "label": k, "value": v, "unit": "", "threshold": None, "comparison": None, "passed": None}
        for k, v in evidence.items()
    ]
