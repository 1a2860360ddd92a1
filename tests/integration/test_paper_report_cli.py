"""`tapewatch trade report` (tapewatch.cli.trade) on the real PostgreSQL: an empty database gives the
'nothing yet' report, stored paper trading a report with charts for the selected account and time; bad input is
one clear line. Each test has its own schema, handed to the command as TAPEWATCH_POSTGRES_URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from tapewatch.cli.trade import report_command
from tapewatch.errors import TapewatchError
from tapewatch.settings import Settings
from tapewatch.sinks import db
from tests.integration.test_sink_paper import T0, paper_records

pytestmark = pytest.mark.integration


@pytest.fixture
def command_db(pg: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The command's settings point at this test's private schema (the settings are cached per process)."""
    from tapewatch.settings import get_settings

    monkeypatch.setenv("TAPEWATCH_POSTGRES_URL", pg.postgres.url_plain)
    get_settings.cache_clear()
    yield pg
    get_settings.cache_clear()


def invoke(*args: str) -> Result:
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, as `tapewatch trade` will be
    app.command("report")(report_command)
    return CliRunner().invoke(app, ["report", *args], env={"COLUMNS": "200"})


def test_an_empty_database_gives_the_nothing_yet_report(command_db: Settings, tmp_path: Path) -> None:
    result = invoke("--out", str(tmp_path / "trade"))  # the schema is not even migrated: the command does it
    assert result.exit_code == 0, result.output
    assert "nothing to report yet" in result.output and str(tmp_path / "trade" / "report.md") in result.output
    text = (tmp_path / "trade" / "report.md").read_text()
    assert "Nothing yet" in text and "Selection: every account, all time." in text
    assert sorted(p.name for p in (tmp_path / "trade").iterdir()) == ["report.md"]


def test_a_report_of_one_account_since_a_time(command_db: Settings, tmp_path: Path) -> None:
    orders, fills, portfolio = paper_records()
    db.upgrade(command_db)
    engine = db.make_engine(command_db)
    with engine.begin() as conn:
        for table, records in ((db.paper_orders, orders), (db.paper_fills, fills), (db.paper_portfolio, portfolio)):
            db.copy_rows(conn, table, [db.record_doc(r) for r in records])
    engine.dispose()
    out = tmp_path / "trade"
    result = invoke("--out", str(out), "--account", "paper-1", "--since", "2025-11-24T16:10", "--until", "2025-11-25")
    assert result.exit_code == 0, result.output
    assert "and 3 charts beside it" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["equity.png", "report.md", "slippage.png", "trades_per_hour.png"]
    text = (out / "report.md").read_text()
    assert "accounts paper-1, from 2025-11-24T16:10:00+00:00, until 2025-11-25T00:00:00+00:00 (exclusive)" in text
    assert "paper-0" not in text and "| lstm |" in text and "| dqn |" not in text
    closing_time = T0 + 10 * 60_000
    kept = [f for f in fills if f.account == "paper-1" and f.ts >= closing_time]
    assert f"| paper-1 | {len(kept)} |" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is not an ISO date or date-time"),
        (["--since", "2026-11-26", "--until", "2026-11-25"], "--since must be before --until"),
    ],
)
def test_bad_times_are_one_clear_line(command_db: Settings, tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke("--out", str(tmp_path), *args)
    assert result.exit_code != 0
    assert isinstance(result.exception, TapewatchError) and message in str(result.exception)
