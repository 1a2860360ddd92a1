"""The E-mini S&P 500 tape (mlfinpy's sample, installed by `make deps` without its dependencies) → tick rows:
exchange time (US Central) to UTC, Globex sessions counted by trade date, prints-only rows the readers accept."""

from __future__ import annotations

from pathlib import Path

from tapewatch.producers import es_tape
from tapewatch.ticks import Validated


def test_exchange_time_becomes_utc_and_sessions_follow_the_globex_open(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(
        "DateTime,Price,Volume\n"
        "2013-09-01 17:00:00.083,1640.25,3\n"  # Sunday's evening session: trade date Monday
        "2013-09-02 09:15:00.500,1641.00,1\n"
        "2013-09-02 17:00:00.000,1642.50,2\n"  # Monday evening: trade date Tuesday
        "2013-09-02 16:59:59.999,1641.25,5\n"  # out of order in the file: sorted by time, stable
    )
    tape = es_tape.read_tape(path)
    assert tape.sessions == 2
    assert tape.first_ms == 1_378_072_800_083  # 22:00:00.083 UTC (CDT is UTC-5)
    assert list(tape.ticks["price"]) == [1640.25, 1641.00, 1641.25, 1642.50]
    assert tape.ticks["side"].isna().all() and set(tape.ticks["venue"]) == {"cme"}
    checked = Validated(tape.ticks, "cme")
    assert bool(checked.good.all()), set(checked.reason)


def test_the_bundled_tape_is_two_sessions_of_half_a_million_prints() -> None:
    tape = es_tape.read_tape(es_tape.sample_path())
    assert len(tape.ticks) == 500_000 and tape.sessions == 2
    assert tape.ticks["ts"].is_monotonic_increasing
    assert ((tape.ticks["price"] * 4) % 1 == 0).all()  # the contract's 0.25 grid
