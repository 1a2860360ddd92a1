"""``tapewatch eval scorecard``: both generators × feed shapes × kinds, the look-alikes, the false alerts on clean
symbol-days and the real tapes, against the desk's bars (:mod:`tapewatch.evaluation.scorecard`); then what the news
context does to the generators' alerts."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.cli.detect import _seed_list
from tapewatch.errors import TapewatchError
from tapewatch.settings import load_settings

if TYPE_CHECKING:
    from tapewatch.evaluation.scorecard import Scorecard

console = Console(stderr=True)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def eval_scorecard(
    out: Annotated[Path | None, typer.Option("--out", help="Directory for scorecard.json and scorecard.png")] = None,
    generators: Annotated[str, typer.Option(help="Labelled generators, comma-separated: sim, lob")] = "sim,lob",
    feeds: Annotated[
        str,
        typer.Option(
            help="Feed shapes, comma-separated (mbo: the public market-by-order feed; mbo+firm: with a drop copy)"
        ),
    ] = "trades,twse-mis,snapshot-1s,mbo,mbo+firm",
    seeds: Annotated[str, typer.Option(help="Evaluated seeds (never tuned on): 300-301 or 300,302")] = "300-301",
    symbols: Annotated[int, typer.Option(help="Symbols per session")] = 16,
    minutes: Annotated[float, typer.Option(help="Session minutes (ends at 13:30 Taipei)")] = 210.0,
    tapes: Annotated[
        str, typer.Option(help="Real tapes, comma-separated (empty: none)")
    ] = "es-futures,bitstamp-btcusd,bitstamp-btcusd-2013,us-stocks-1m",
    jobs: Annotated[int, typer.Option(help="Cells simulated and detected in parallel")] = 1,
) -> None:
    """Both labelled generators × feed shapes × kinds (P, R, F1, delay), look-alikes alerted, false alerts per clean
    symbol-day, and the real tapes, each against its bar: one table, a PNG and a JSON; beside them, what the news
    context does to the generators' alerts (look-alike alerts out of the queue, true pumps demoted)."""
    from tapewatch.detectors.flow import FlowConfig
    from tapewatch.evaluation.scorecard import ScorecardSpec, plot_scorecard, run_scorecard
    from tapewatch.producers.real_tapes import TAPES, load_tape

    settings = load_settings()
    names = _names(tapes)
    unknown = [n for n in names if n not in TAPES]
    if unknown:
        raise TapewatchError(f"eval scorecard: no tape {', '.join(unknown)}; choose {', '.join(TAPES)}")
    try:
        spec = ScorecardSpec(
            generators=_names(generators),
            feeds=_names(feeds),
            seeds=_seed_list(seeds),
            symbols=symbols,
            minutes=minutes,
            tapes=names,
            flow=FlowConfig.from_settings(settings),
            profiles=settings.venues.feeds(),
        )
        for generator in spec.generators:  # refuses bad session parameters before any work
            matrix = spec.matrix(generator)
            matrix.simulation("trades", matrix.seeds[0])
    except ValueError as exc:
        raise TapewatchError(f"eval scorecard: {exc}") from None
    with console.status("running the scorecard…") as status:
        card = run_scorecard(spec, load_tape, progress=status.update, jobs=jobs)
    print_scorecard(card)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "scorecard.json").write_bytes(card.to_json())
        plot_scorecard(out / "scorecard.png", card)
        console.print(f"wrote {out / 'scorecard.json'} and {out / 'scorecard.png'}")


def _num(value: float, digits: int = 2) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _met(met: bool) -> str:
    return "met" if met else "[red]not met[/]"


def print_scorecard(card: Scorecard) -> None:
    wide = Console(width=max(150, Console().width))
    table = Table(
        "generator", "feed", "kind", "episodes", "P", "R", "F1", "bar", "median delay s", "account named", "met"
    )
    for k in card.kinds:
        named = "–" if math.isnan(k.account_named) else f"{k.account_named:.0%}"
        table.add_row(
            k.generator, k.feed, k.kind, str(k.episodes), _num(k.precision), _num(k.recall), _num(k.f1),
            f"≥ {k.bar:.2f}", _num(k.delay_median_s, 0), named, _met(k.met),
        )  # fmt: skip
    wide.print(table)
    for (generator, feed), kinds in _by_feed(card.unseen).items():
        wide.print(f"{generator} · {feed}: not judged, the feed shape cannot show them: {', '.join(kinds)}")
    feeds = Table("generator", "feed", "false / clean symbol-day", "all kinds", "look-alikes alerted", "met")
    for f in card.feeds:
        looks = "–" if not f.lookalikes else f"{f.lookalikes_alerted} of {f.lookalikes} ({f.lookalike_share:.0%})"
        feeds.add_row(f.generator, f.feed, _num(f.false_alerts), _num(f.false_alerts_all), looks, _met(f.met))
    wide.print(feeds)
    tapes = Table("real tape", "sessions", "alerts", "per session", "high+critical", "met")
    for t in card.tapes:
        tapes.add_row(t.name, str(t.sessions), str(t.alerts), _num(t.per_session, 1), str(t.serious), _met(t.meets_bar))
    if card.tapes:
        wide.print(tapes)
    if card.news:
        wide.print(news_table(card))
    met, judged = card.bars
    wide.print(f"bars met: {met} of {judged}")


def _by_feed(unseen: list[tuple[str, str, str]]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for generator, feed, kind in unseen:
        out.setdefault((generator, feed), []).append(kind)
    return out


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole}" if whole else "–"


def _before_after(before: float, after: float) -> str:
    return f"{_num(before)} → {_num(after)}"


def _later(delays: list[tuple[float, float | None]]) -> str:
    """How many pumps still queued with the news context reach the queue later, by how much (median)."""
    later = [after - before for before, after in delays if after is not None and after > before]
    return f"{len(later)} (+{statistics.median(later):.0f} s)" if later else "0"


def news_table(card: Scorecard) -> Table:
    """What the news context does to each generator × feed's alerts: look-alike alerts at medium+ (the queue) and at
    high+ without → with it, those it removed from the queue, true pumps it demoted, pump P and R at medium+."""
    table = Table(
        "generator", "feed", "look-alike alerts", "medium+", "high+", "removed from queue", "pumps demoted",
        "pumps out of queue", "pumps queued later", "demoted by", "pump P medium+", "pump R medium+",
        title="With the news context (the tables above are without it)",
    )  # fmt: skip
    for line in card.news:
        e = line.effect
        table.add_row(
            line.generator, line.feed, str(e.lookalike_alerts), f"{e.lookalike_medium} → {e.lookalike_medium_news}",
            f"{e.lookalike_high} → {e.lookalike_high_news}", _share(e.lookalike_removed, e.lookalike_medium),
            _share(e.pumps_demoted, e.pump_episodes), _share(e.pumps_demoted_below_medium, e.pump_episodes),
            _later(e.queue_delays),
            ", ".join(f"{label} {n}" for label, n in e.pumps_demoted_by.items()) or "–",
            _before_after(e.pumps_medium.precision, e.pumps_medium_news.precision),
            _before_after(e.pumps_medium.recall, e.pumps_medium_news.recall),
        )  # fmt: skip
    return table
