"""What the offline reports share: number cells, markdown tables and saving a matplotlib chart (Agg: files only)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

#: what a cell shows for a number there is none of (NaN)
MISSING = "–"


def pct(value: float) -> str:
    """A fraction as a percentage cell.

    >>> pct(0.25), pct(float("nan"))
    ('25.0 %', '–')
    """
    return MISSING if math.isnan(value) else f"{100 * value:.1f} %"


def _row(cells: Sequence[str]) -> str:
    # free text (a rejection's reason) may hold the column separator or a line break
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table's lines; a ``|`` in a cell is escaped, a line break becomes a space.

    >>> markdown_table(["a", "b"], [["1", "x|y"]])
    ['| a | b |', '|---|---|', '| 1 | x\\\\|y |']
    """
    return [_row(header), "|" + "---|" * len(header), *(_row(row) for row in rows)]


def save_chart(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Lay the figure out, write it to ``path`` (the format from its suffix) and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
