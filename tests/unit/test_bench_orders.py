"""The orders-stage benchmark (``tapewatch bench orders``) on a small session: it prints its numbers, and every run
of one session sends the same bytes (its digests are what two versions of the stage are compared by)."""

from __future__ import annotations

import re

import pytest

from tapewatch.bench.orders_stage import main


def test_each_run_prints_its_speed_and_the_same_digests(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--symbols", "1", "--minutes", "3", "--batch", "500", "--checkpoint", "2", "--repeat", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    line = re.compile(
        r"orders stage .* CPU ([\d,]+) events/s\s+([\d,]+) out\s+sha256 outputs (\w{16}), changelog (\w{16})"
    )
    runs = [match.groups() for match in map(line.search, lines) if match is not None]
    assert len(runs) == 2, lines
    assert all(int(cpu.replace(",", "")) > 0 and int(out.replace(",", "")) > 0 for cpu, out, _, _ in runs), lines
    assert runs[0][1:] == runs[1][1:], lines
