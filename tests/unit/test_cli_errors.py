"""Every command group ends bad input and a missing prerequisite with one clear line and a non-zero exit, never a
traceback: a table of wrong files, wrong columns, empty fields, a short password, unknown topics and services that
are down (closed ports, so no service is needed). The commands run in this process through the `tapewatch` entry
point, as the shell runs them."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tapewatch.cli.app import main
from tapewatch.settings import get_settings

#: nothing listens on port 1: every service is down
SERVICES_DOWN = {
    "TAPEWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1",
    "TAPEWATCH_POSTGRES_URL": "postgresql+psycopg2://tapewatch:hunter2hunter2@127.0.0.1:1/tapewatch",
    "TAPEWATCH_ES_URL": "http://127.0.0.1:1",
}
TICKS = "symbol,ts,price,size,side\n2330,1000,580.0,10,B\n2330,2000,580.5,10,S\n"


def inputs(root: Path) -> dict[str, str]:
    """The files the table names, by the stem of their name: {"ticks": ".../ticks.csv", …}."""
    files = {
        "ticks.csv": TICKS,
        "wrong-columns.csv": "sym,time\n2330,1000\n",
        "empty-price.csv": "symbol,ts,price,size\n2330,1000,,10\n",
        "truth-empty-field.csv": "symbol,venue,kind,start,end\n2330,twse,spoofing,,2000\n",
        "not-json.jsonl": "{not json\n",
        "subscribers.yaml": "- name: [unclosed\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    return {name.split(".")[0]: str(root / name) for name in files} | {"missing": str(root / "missing.parquet")}


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    says: str
    stdin: str = ""
    env: dict[str, str] = field(default_factory=dict)


#: each command group"s bad inputs and missing prerequisites ({name} is a file of inputs()), and what the line says
CASES: list[Case] = [
    Case("run: unknown source", ["run", "--source", "nowhere"], "unknown source"),
    Case("run: replay without a file", ["run", "--source", "replay"], "--file"),
    Case("forecast: missing data", ["forecast", "AAPL", "--data", "{missing}"], "missing.parquet"),
    Case("calibrate: missing file", ["calibrate", "{missing}", "--venue", "twse"], "missing.parquet"),
    Case(
        "config: bad setting",
        ["config", "show"],
        "TAPEWATCH_TOPIC_PARTITIONS",
        env={"TAPEWATCH_TOPIC_PARTITIONS": "many"},
    ),
    Case("schema: directory is a file", ["schema", "export", "{ticks}"], "ticks.csv"),
    Case("infra: no such service", ["infra", "logs", "nosuch"], "nosuch"),
    Case("topics: kafka down", ["topics", "list"], "kafka: unreachable"),
    Case("db: postgres down", ["db", "upgrade"], "postgres"),
    Case("bench: no symbols", ["bench", "flow", "0", "1"], "symbols"),
    Case("produce: missing file", ["produce", "replay", "{missing}"], "no such file"),
    Case("produce: wrong columns", ["produce", "replay", "{wrong-columns}"], "missing column"),
    Case("produce: kafka down", ["produce", "replay", "{ticks}"], "kafka: unreachable"),
    Case("produce: simulate, kafka down", ["produce", "simulate", "--minutes", "1"], "kafka: unreachable"),
    Case("produce: news file missing", ["produce", "news-replay", "{missing}"], "missing.parquet"),
    Case("fetch: missing tape", ["fetch", "es-tape", "--file", "{missing}", "--out", "{missing}"], "missing.parquet"),
    Case("stream: kafka down", ["stream", "worker"], "kafka: unreachable"),
    Case("sink: unknown topic", ["sink", "postgres", "--topics", "md.nowhere"], "md.nowhere"),
    Case("sink: kafka down", ["sink", "elasticsearch"], "kafka: unreachable"),
    Case("sink: bad subscribers", ["sink", "webhook", "--subscribers", "{subscribers}"], "subscribers.yaml"),
    Case("alerts: kafka down", ["alerts", "tail"], "kafka: unreachable"),
    Case("kibana: down", ["kibana", "import", "http://127.0.0.1:1"], "cannot reach"),
    Case("detect: missing file", ["detect", "file", "{missing}"], "missing.parquet"),
    Case("detect: wrong columns", ["detect", "file", "{wrong-columns}"], "wrong-columns.csv"),
    Case("detect: empty price", ["detect", "file", "{empty-price}"], "price"),
    Case(
        "eval: empty truth field",
        ["eval", "detect", "--truth", "{truth-empty-field}", "--alerts", "{not-json}"],
        "truth-empty-field.csv",
    ),
    Case("eval: matrix seeds", ["eval", "matrix", "--seeds", "five"], "seeds 'five'"),
    Case("train: missing ticks", ["train", "kmeans", "{missing}"], "missing.parquet"),
    Case("train: missing daily bars", ["train", "dqn", "--data", "{missing}"], "missing.parquet"),
    Case("backtest: missing daily bars", ["backtest", "signals", "--data", "{missing}"], "missing.parquet"),
    Case(
        "console: short password",
        ["console", "user", "add", "ann", "--tenant", "t", "--password-stdin"],
        "12",
        stdin="short\n",
    ),
    Case("console: postgres down", ["console", "user", "list"], "postgres"),
    Case("trade: postgres down", ["trade", "report"], "postgres"),
    Case("trade: kafka down", ["trade", "paper"], "kafka: unreachable"),
]


def run_cli(args: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["tapewatch", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    get_settings.cache_clear()
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        get_settings.cache_clear()
    return 0


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_line(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in SERVICES_DOWN.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TAPEWATCH_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TAPEWATCH_LOG_LEVEL", "WARNING")
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    files = inputs(tmp_path)
    code = run_cli([arg.format_map(files) for arg in case.args], case.stdin, monkeypatch)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, f"{case.name}: exit 0\n{out}{err}"
    assert "Traceback" not in out + err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{case.name}: {len(lines)} lines\n{err}"
    assert case.says in lines[0], lines[0]
    assert "hunter2" not in out + err


def test_the_table_covers_every_command_group() -> None:
    import typer

    from tapewatch.cli.app import cli

    groups = set(typer.main.get_command(cli()).commands)  # type: ignore[attr-defined]
    assert groups == {case.args[0] for case in CASES}


@pytest.mark.parametrize("width", [80, 100, 160])
def test_alerts_tail_keeps_every_field_at_any_width(width: int) -> None:
    from rich.console import Console

    from tapewatch.bench.sink import synthetic_alert
    from tapewatch.cli.sink import alert_row

    alert = synthetic_alert(7, 1_700_000_000_123)
    screen = Console(width=width, record=True, file=io.StringIO())
    screen.print(alert_row(alert, header=True, width=width))
    header, row = screen.export_text().splitlines()
    for name in ("time (UTC)", "symbol", "venue", "kind", "severity", "score", "message"):
        assert name in header
    for value in (alert.symbol, alert.venue, alert.kind.value, alert.severity.value, f"{alert.score:.2f}", "11-14"):
        assert value in row, (value, row)
    assert max(len(header), len(row)) <= width
    assert ("2023-11-14 22:13:20.123" in row) == (width >= 118)


def test_the_sinks_help_names_their_default_topics() -> None:
    from typer.testing import CliRunner

    from tapewatch.cli.app import cli
    from tapewatch.sinks.defaults import ELASTICSEARCH_TOPICS, POSTGRES_TOPICS

    for sink, topics in (("postgres", POSTGRES_TOPICS), ("elasticsearch", ELASTICSEARCH_TOPICS)):
        shown = " ".join(CliRunner().invoke(cli(), ["sink", sink, "--help"], terminal_width=400).output.split())
        assert f"Default topics: {', '.join(topics)}." in shown
