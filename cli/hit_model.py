"""``tapewatch eval hit-model``: the calibrated hit model trained on one labelled generator and judged on the
other, against the rules on the same alerts (:mod:`tapewatch.training.hit_model`); ``--publish`` trains it on both and
publishes it for the kinds where it beat the rules both ways."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from tapewatch.cli.detect import _seed_list
from tapewatch.errors import TapewatchError
from tapewatch.settings import load_settings

if TYPE_CHECKING:
    from tapewatch.training.hit_model import Direction, Pool

console = Console(stderr=True)


def eval_hit_model(
    out: Annotated[Path | None, typer.Option("--out", help="Directory for hit_model.json")] = None,
    train_seeds: Annotated[str, typer.Option(help="Seeds the model trains on (never judged)")] = "400-401",
    test_seeds: Annotated[str, typer.Option(help="Seeds it is judged on")] = "300-301",
    feeds: Annotated[str, typer.Option(help="Feed shapes, comma-separated")] = "trades,twse-mis,snapshot-1s",
    symbols: Annotated[int, typer.Option(help="Symbols per session")] = 16,
    minutes: Annotated[float, typer.Option(help="Session minutes (ends at 13:30 Taipei)")] = 210.0,
    publish: Annotated[
        bool, typer.Option("--publish", help="Train on both generators and publish it where it beat the rules")
    ] = False,
) -> None:
    """Leave one generator out: the model trained on the simulator and judged on the order-book market, and the
    reverse, beside the rules (F1 per kind, false alerts per clean symbol-day, look-alikes alerted, Brier score)."""
    from tapewatch.detectors.flow import FlowConfig
    from tapewatch.evaluation import matrix as em
    from tapewatch.training import hit_model as hm

    settings = load_settings()
    train, test = _seed_list(train_seeds), _seed_list(test_seeds)
    if set(train) & set(test):
        raise TapewatchError("eval hit-model: the training and the judged seeds must differ")
    pools: dict[tuple[str, str], hm.Pool] = {}
    with console.status("simulating and detecting…") as status:
        for generator in em.GENERATORS:
            try:
                spec = em.MatrixSpec(
                    feeds=tuple(f.strip() for f in feeds.split(",") if f.strip()),
                    seeds=test,
                    symbols=symbols,
                    minutes=minutes,
                    flow=FlowConfig.from_settings(settings),
                    profiles=settings.venues.feeds(),
                    generator=generator,
                )
            except ValueError as exc:
                raise TapewatchError(f"eval hit-model: {exc}") from None
            for role, seeds in (("train", train), ("test", test)):
                pools[generator, role] = hm.Pool.of(hm.collect(spec, seeds, status.update))
    try:
        directions = [
            hm.one_direction(pools[a, "train"], pools[b, "test"], a, b) for a, b in (("sim", "lob"), ("lob", "sim"))
        ]
    except ValueError as exc:  # too few alerts to learn from: more symbols, minutes or seeds
        raise TapewatchError(f"eval hit-model: {exc}") from None
    kept = hm.kept_kinds(directions)
    print_directions(directions, kept)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        report = {"directions": [asdict(d) for d in directions], "kept": kept, "train": train, "test": test}
        (out / "hit_model.json").write_bytes(orjson.dumps(report, option=orjson.OPT_SERIALIZE_NUMPY))
        console.print(f"wrote {out / 'hit_model.json'}")
    if publish:
        _publish(pools, kept, settings.local.models_path)


def _publish(pools: dict[tuple[str, str], Pool], kept: list[str], models: Path) -> None:
    import pandas as pd

    from tapewatch.artifacts import ArtifactStore
    from tapewatch.training.hit_model import fit

    if not kept:
        console.print("the rules beat the model on every kind somewhere: nothing published, the rules stay")
        return
    frames = [pool.candidates for (_, role), pool in pools.items() if role == "train"]
    model = fit(pd.concat(frames, ignore_index=True), kinds=kept)
    artifact = model.save(ArtifactStore(models), {"trained_on": ["sim", "lob"]})
    console.print(f"published hit-model {artifact.version} for {', '.join(kept)}")


def _num(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def print_directions(directions: list[Direction], kept: list[str]) -> None:
    wide = Console(width=max(140, Console().width))
    table = Table(
        "trained on → judged on", "kind", "training alerts true/false", "scored", "rules F1 (P, R)", "model F1 (P, R)",
        "model better",
    )  # fmt: skip
    for d in directions:
        for kind in sorted(d.rules.f1):
            r, m = d.rules, d.model
            true, false = d.training.get(kind, (0, 0))
            table.add_row(
                f"{d.trained_on} → {d.judged_on}",
                kind,
                f"{true}/{false}",
                "yes" if kind in d.scored else "no (rules)",
                f"{_num(r.f1[kind])} ({_num(r.precision[kind])}, {_num(r.recall[kind])})",
                f"{_num(m.f1[kind])} ({_num(m.precision[kind])}, {_num(m.recall[kind])})",
                "yes" if d.beats(kind) else "no",
            )
    wide.print(table)
    totals = Table("trained on → judged on", "candidates (true)", "false / clean symbol-day", "look-alikes", "Brier")
    for d in directions:
        totals.add_row(
            f"{d.trained_on} → {d.judged_on}",
            f"{d.candidates} ({d.true_candidates})",
            f"rules {_num(d.rules.false_alerts)}, model {_num(d.model.false_alerts)}",
            f"rules {d.rules.lookalikes_alerted}/{d.rules.lookalikes}, model {d.model.lookalikes_alerted}",
            f"rules {_num(d.rules.brier)}, model {_num(d.model.brier)}",
        )
    wide.print(totals)
    wide.print(f"model kept for: {', '.join(kept) if kept else 'no kind (the rules stay)'}")
