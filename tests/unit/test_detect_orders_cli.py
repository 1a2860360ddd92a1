"""``tapewatch detect file --orders``: a Databento MBO file and a FIX drop copy with a bad line through the
market-by-order path; what cannot be read is named by its place and reason, and the rest is judged."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.order_samples import HEADER, ROWS, report

pytestmark = pytest.mark.usefixtures("private_models")


def test_a_databento_file_and_a_drop_copy_with_a_bad_checksum_run_and_the_bad_line_is_named(tmp_path: Path) -> None:
    from tapewatch.cli.app import cli

    feed = tmp_path / "mbo.csv"
    feed.write_text("\n".join([HEADER, *ROWS]) + "\n")
    good = report(t55="AAPL")
    bad_checksum = report(t55="AAPL", t17="E2").replace(b"ACC-7", b"ACC-8")
    drop_copy = tmp_path / "drop.fix"
    drop_copy.write_bytes(good + b"\n" + bad_checksum + b"\n")
    out = tmp_path / "alerts.jsonl"
    args = ["detect", "file", "--orders", str(feed), "--venue", "xnas", "--drop-copy", str(drop_copy)]
    result = CliRunner().invoke(
        cli(), [*args, "--tenant", "acme", "--no-kmeans", "--out", str(out)], env={"COLUMNS": "500"}
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"{drop_copy}:2: " in said and "CheckSum (10)" in said
    assert "market-by-order: 6 events, 1 reports over 1 symbol(s); derived 1 trades" in said
    assert out.exists() and all(orjson.loads(line)["symbol"] == "AAPL" for line in out.read_bytes().splitlines())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--drop-copy", "{drop}"], "a drop copy is a tenant's"),
        (["--tenant", "acme"], "--tenant names whose drop copy"),
        (["--sample", "nasdaq"], "--sample 'nasdaq': one of bitstamp"),
        (["{drop}"], "a drop copy, not a market-by-order feed"),
    ],
)
def test_a_wrong_order_input_is_one_clear_line(tmp_path: Path, extra: list[str], message: str) -> None:
    from tapewatch.cli.app import cli

    feed, drop = tmp_path / "mbo.csv", tmp_path / "drop.fix"
    feed.write_text("\n".join([HEADER, *ROWS]) + "\n")
    drop.write_bytes(report(t55="AAPL") + b"\n")
    inputs = [] if "--sample" in extra else [str(feed)]
    args = ["detect", "file", "--orders", *inputs, *(a.replace("{drop}", str(drop)) for a in extra), "--no-kmeans"]
    result = CliRunner().invoke(cli(), [*args, "--out", str(tmp_path / "a.jsonl")], env={"COLUMNS": "500"})
    assert result.exit_code != 0 and message in str(result.exception), result.output
