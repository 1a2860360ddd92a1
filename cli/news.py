"""``tapewatch train news``: the news sentiment classifier trained on the labelled headlines, published to the model
store, and its held-out table against the majority class and the plain lexicon
(:mod:`tapewatch.training.news_sentiment`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.settings import load_settings

if TYPE_CHECKING:
    from tapewatch.training.news_sentiment import Trained

console = Console()


def train_news(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Labelled CSV: language,label,title,summary (default: the shipped set)"),
    ] = None,
    buckets: Annotated[int, typer.Option(help="Hashed token buckets of the classifier")] = 4096,
    publish: Annotated[bool, typer.Option("--publish/--no-publish", help="Publish the model to the store")] = True,
) -> None:
    """Train the news sentiment classifier, publish it as a new `news-sentiment` version, and print accuracy and
    macro-F1 on the held-out split: majority class, plain lexicon, trained model, per language and overall."""
    from tapewatch.artifacts import ArtifactStore
    from tapewatch.training import news_sentiment as ns

    settings = load_settings()
    store = ArtifactStore(settings.local.models_path) if publish else None
    with console.status("reading the headlines (jieba's dictionary loads once) and training…"):
        trained = ns.train_news(store, data or ns.LABELLED_SET, buckets)
    print_table(trained)
    if trained.artifact is not None:
        console.print(f"published news-sentiment {trained.artifact.version} in {settings.local.models_path}")
    else:
        console.print("not published (--no-publish)")


def print_table(trained: Trained) -> None:
    table = Table(
        "model", "language", "items (positive)", "accuracy", "macro-F1", "score ≠ 0",
        title=f"held-out split: {trained.test_items} items (trained on {trained.train_items})",
    )  # fmt: skip
    for row in trained.rows:
        coverage = "–" if row.model == "majority" else f"{row.coverage:.0%}"
        table.add_row(
            row.model,
            row.language,
            f"{row.items} ({row.positive})",
            f"{row.accuracy:.3f}",
            f"{row.macro_f1:.3f}",
            coverage,
            end_section=row.language == "all",
        )
    console.print(table)
