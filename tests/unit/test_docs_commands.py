"""Every `tapewatch …` command the README and the pages show is one the command line takes: its command exists, its
options exist and get the values they need. The blocks the suite does not run say why on the page."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from tapewatch.cli.app import cli
from tests.docs_commands import (
    ROOT,
    Block,
    blocks,
    excerpt_matches,
    inline_commands,
    invocations,
    is_placeholder,
    pages,
)

ROOT_COMMAND = typer.main.get_command(cli())


def documented() -> list[tuple[str, list[str], bool]]:
    """(where, arguments, whether the whole command is written out): a block's lines are commands; the text also
    names commands without their arguments (`tapewatch detect file`)."""
    found = []
    for page in pages():
        for block in blocks(page):
            for command in block.commands():
                found += [(f"{block.where} {command}", args, True) for args in invocations(command)]
        for line, command in inline_commands(page):
            if not is_placeholder(command):
                where = f"{page.relative_to(ROOT)}:{line} {command}"
                found += [(where, args, False) for args in invocations(command)]
    return found


def parse(args: list[str], whole: bool) -> None:
    """Parse as the shell's call would, without running it: a group resolves its sub-command, a command its options
    (a file the page names as an example need not exist here; a command named in the text, its arguments)."""
    command: Any = ROOT_COMMAND
    context = command.make_context("tapewatch", list(args))
    while hasattr(command, "resolve_command"):
        rest = [*context._protected_args, *context.args]
        if not rest:
            return
        name, command, rest = command.resolve_command(context, rest)
        try:
            context = command.make_context(name, rest, parent=context)
        except typer.TyperException as exc:
            missing = type(exc).__name__ in ("MissingParameter", "NoArgsIsHelpError")  # an argument or option
            if not ("does not exist" in exc.format_message() or (missing and not whole)):
                raise


DOCUMENTED = documented()


def test_the_pages_show_commands() -> None:
    assert len(DOCUMENTED) >= 60  # the parse below is not vacuous


@pytest.mark.parametrize(("where", "args", "whole"), DOCUMENTED, ids=[where for where, *_ in DOCUMENTED])
def test_a_documented_command_parses(where: str, args: list[str], whole: bool) -> None:
    try:
        parse(args, whole)
    except typer.TyperException as exc:
        pytest.fail(f"{where}: {exc.format_message()}")


def test_a_block_not_run_says_why_and_an_excerpt_follows_a_block_that_runs() -> None:
    for page in pages():
        for block in blocks(page):
            assert block.skip_reason != "", f"{block.where}: say why it is not run"
            assert block.excerpt is None or block.skip_reason is None, f"{block.where}: an excerpt of what?"


def test_an_excerpt_matches_numbers_and_ellipses_only_where_it_says() -> None:
    output = "simulate: ground truth (12 episodes) in /tmp/x/var/sim/truth-20240102-seed0-ab12cd34.csv\nok 1,234.5 s"
    assert excerpt_matches("simulate: ground truth (3 episodes) in …/var/sim/truth-…csv\nok 7 s", output) == []
    assert excerpt_matches("simulate: ground truth (3 alerts)", output) == ["simulate: ground truth (3 alerts)"]
    assert Block(pages()[0], 1, "# not run by the tests: needs a network\nx\n", None).skip_reason == "needs a network"
