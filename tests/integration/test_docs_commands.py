"""The blocks of commands the pages show, run as written on the real services: each page's runnable blocks in one
shell, in page order (background jobs and the working directory carry from one block to the next, as in a reader's
terminal), with a topic prefix, a PostgreSQL schema, an index prefix and a model directory of the test's own. A block
must exit 0, and the excerpt after it must be in its output."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapewatch.settings import Settings
from tapewatch.sinks import db
from tests.browser import free_port
from tests.docs_commands import ROOT, Block, blocks, excerpt_matches, pages

pytestmark = pytest.mark.integration

RUNNABLE = {page: runnable for page in pages() if (runnable := [b for b in blocks(page) if b.skip_reason is None])}
#: what separates one block's output from the next in the page's one shell
MARK = "::docs-block-done::"


@pytest.fixture
def private_env(services: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    schema = f"docs_{uuid.uuid4().hex[:8]}"
    db.create_schema(services, schema)
    tag = uuid.uuid4().hex[:8]
    yield {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TAPEWATCH_TOPIC_PREFIX": f"docs-{tag}.",
        "TAPEWATCH_POSTGRES_URL": db.in_schema(services, schema).postgres.url_plain,
        "TAPEWATCH_ES_INDEX_PREFIX": f"twdocs{tag}",
        "TAPEWATCH_MODEL_DIR": str(tmp_path / "models"),
        # a worker the page starts serves its metrics on a port of its own: tests run side by side
        "TAPEWATCH_STREAM_METRICS_PORT": str(free_port()),
        "COLUMNS": "100",
    }
    db.drop_schema(services, schema)


def script(page_blocks: list[Block]) -> str:
    """The page's blocks as one shell script: each block exits the script on failure and prints a mark after it."""
    # one stream, in the order a terminal shows it; nothing a page starts in the background outlives it, even when a
    # block fails
    parts = ["set -euo pipefail", "exec 2>&1", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for block in page_blocks:
        parts += [block.text, f"echo {MARK}"]
    return "\n".join(parts)


@pytest.mark.parametrize("page", list(RUNNABLE), ids=[str(page.relative_to(ROOT)) for page in RUNNABLE])
def test_a_pages_commands_run_as_written(page: Path, private_env: dict[str, str], tmp_path: Path) -> None:
    page_blocks = RUNNABLE[page]
    # the working directory stands for a checkout's root (the pages say `.venv/bin/…`), without writing into ours
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    with subprocess.Popen(
        ["bash", "-c", script(page_blocks)],
        cwd=tmp_path,
        env=private_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a timeout takes the page's background jobs too
    ) as shell:
        try:
            stdout, _ = shell.communicate(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGTERM)
    done = subprocess.CompletedProcess(shell.args, shell.returncode, stdout, "")
    outputs = done.stdout.split(MARK)
    assert done.returncode == 0, f"{page.name}: exit {done.returncode} in block {len(outputs)}\n{done.stdout[-3000:]}"
    for block, output in zip(page_blocks, outputs, strict=False):
        if block.excerpt is not None:
            missing = excerpt_matches(block.excerpt, output)
            assert not missing, f"{block.where}: not in the output: {missing}\n{output[-3000:]}"


def test_the_getting_started_path_is_run() -> None:
    assert ROOT / "docs" / "getting-started.md" in RUNNABLE
