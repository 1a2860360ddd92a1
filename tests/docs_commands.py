"""The shell commands the README and the documentation pages show, read from the pages themselves.

A fenced ``bash`` block is run by the suite (``tests/integration/test_docs_commands.py``), the blocks of a page in one
shell in page order, as a reader following the page in one terminal would; a block whose first line is
``# not run by the tests: <why>`` is not (it needs a network, your own clusters, or hours), and says so to the reader.
A fenced ``text`` block right after a block that runs is what a good result looks like: each of its lines must appear
in that block's output, any run of digits matching any number and ``…`` anything.

Every ``tapewatch …`` command on the pages, in blocks and in the text, is parsed by the real command line
(``tests/unit/test_docs_commands.py``), so an option or a command that no longer exists fails the suite.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = "# not run by the tests:"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"(?<!`)`(tapewatch [^`]+)`(?!`)")
_SHELL_OPERATORS = {"&&", "||", "|", ";", "&", ">", ">>", "2>", "2>&1", "<"}


def pages() -> list[Path]:
    """README and every page of the site but the archive (history, kept as written)."""
    docs = sorted(path for path in (ROOT / "docs").rglob("*.md") if "archive" not in path.parts)
    return [ROOT / "README.md", *docs]


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    text: str
    #: the expected-output excerpt that follows it, if any
    excerpt: str | None

    @property
    def skip_reason(self) -> str | None:
        first = self.text.splitlines()[0] if self.text.strip() else ""
        return first.removeprefix(SKIP).strip() if first.startswith(SKIP) else None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def commands(self) -> list[str]:
        """Its command lines: continuations joined, comments and blank lines dropped."""
        joined = re.sub(r"\\\n\s*", " ", self.text)
        lines = (line.split(" # ", 1)[0].strip() for line in joined.splitlines())
        return [line for line in lines if line and not line.startswith("#")]


def blocks(page: Path) -> list[Block]:
    """The page's fenced ``bash`` blocks, each with the ``text`` block right after it, if any."""
    text = page.read_text(encoding="utf-8")
    fences = list(_FENCE.finditer(text))
    found = []
    for index, fence in enumerate(fences):
        if fence.group(1) != "bash":
            continue
        following = fences[index + 1] if index + 1 < len(fences) else None
        adjacent = following is not None and not text[fence.end() : following.start()].strip()
        excerpt = following.group(2) if adjacent and following is not None and following.group(1) == "text" else None
        found.append(Block(page, text.count("\n", 0, fence.start()) + 1, fence.group(2), excerpt))
    return found


def inline_commands(page: Path) -> Iterator[tuple[int, str]]:
    """``tapewatch …`` written in the text (outside the fenced blocks): (line, command)."""
    text = _FENCE.sub(lambda fence: "\n" * fence.group(0).count("\n"), page.read_text(encoding="utf-8"))
    for match in _INLINE.finditer(text):
        yield text.count("\n", 0, match.start()) + 1, match.group(1)


def invocations(command_line: str) -> Iterator[list[str]]:
    """The arguments of each ``tapewatch`` call in a shell line (up to the next shell operator); a page's
    placeholders (``[--engine spark]``) are read as what they stand for."""
    tokens = shlex.split(command_line.replace("[", "").replace("]", ""), comments=True)
    for index, token in enumerate(tokens):
        if token == "tapewatch" or token.endswith("bin/tapewatch"):
            args = []
            for arg in tokens[index + 1 :]:
                if arg in _SHELL_OPERATORS or arg.startswith((">", "2>")):
                    break
                args.append(arg)
            yield args


def is_placeholder(command: str) -> bool:
    """A command written with placeholders for alternatives, elisions or optional parts (``train dqn|lstm|cnn``,
    ``FILE…``, ``<token id>``, ``[--kind K]``, ``--calibrate-days N``), which names commands but is not one."""
    upper_case_word = re.search(r"(?<![\w/.-])[A-Z]{1,5}(?![\w/.-])", command) is not None  # N, FILE, URL
    return upper_case_word or any(mark in command for mark in ("|", "…", "<", ">", "["))


def excerpt_matches(excerpt: str, output: str) -> list[str]:
    """The excerpt's lines that no output line matches (digits match any number, ``…`` anything)."""
    outputs = [" ".join(line.split()) for line in output.splitlines()]
    missing = []
    for wanted in filter(None, (" ".join(line.split()) for line in excerpt.splitlines())):
        pattern = re.escape(wanted).replace("…", ".*")
        pattern = re.sub(r"\d+", r"\\d[\\d,.]*", pattern)
        if not any(re.search(pattern, line) for line in outputs):
            missing.append(wanted)
    return missing
