"""The drop copy's detectors on a labelled order-book market: each episode traded through the firm found, by the
account that traded it, and `tapewatch eval orders` prints the table."""

from __future__ import annotations

import heapq
import math
import random

import orjson
import pytest
from typer.testing import CliRunner

from tapewatch.cli.app import cli
from tapewatch.detectors.orders.book import OrderBook
from tapewatch.detectors.orders.firm_desk import FirmDesk
from tapewatch.evaluation.order_level import firm_alerts, judge
from tapewatch.generators.lob_market import LobSession, generate
from tapewatch.records import ExecutionReport, OrderBookEvent
from tests.order_samples import firm_market

#: four symbols, half an hour, every manipulator through the firm, one symbol clean
CONFIG = firm_market(10, symbols=4, minutes=30, clean_fraction=0.25)


@pytest.fixture(scope="module")
def session() -> LobSession:
    return generate(CONFIG)


def test_every_episode_through_the_firm_is_found_naming_its_account(session: LobSession) -> None:
    episodes = session.episodes_frame()
    alerts = firm_alerts(session)
    results = {r.kind: r for r in judge(alerts, episodes, session.lookalikes_frame())}
    for kind in ("spoofing", "wash_trading"):
        r = results[kind]
        assert r.episodes >= 1 and r.firm_episodes == r.episodes
        assert (r.firm_detected, r.true_alerts, r.named_right) == (r.firm_episodes, r.alerts, r.alerts), r
    clean = set(session.tapes) - set(episodes["symbol"])
    assert clean and not [a for a in alerts if a.symbol in clean]


#: (when read, 0 for the public feed and 1 for the drop copy, the record)
Entry = tuple[float, int, OrderBookEvent | ExecutionReport]


def interleaved(session: LobSession, symbol: str, seed: int) -> list[OrderBookEvent | ExecutionReport]:
    """The symbol's public feed and drop copy, each in its order, interleaved: seed 0, every report first (the drop
    copy read far ahead); seed 1, in time order; others, each report read up to half a minute before or after
    its time (within the minute the detector keeps placements for)."""
    public, reports = list(session.order_events(symbol)), list(session.execution_reports(symbol))
    if seed == 0:
        return [*reports, *public]
    rng = random.Random(seed)
    keys, last = [], -math.inf
    for report in reports:
        last = max(last, report.ts + (rng.uniform(-30_000, 30_000) if seed > 1 else 0.5))
        keys.append(last)
    public_entries: list[Entry] = [(float(e.ts), 0, e) for e in public]
    report_entries: list[Entry] = [(k, 1, r) for k, r in zip(keys, reports, strict=True)]
    return [item for _, _, item in heapq.merge(public_entries, report_entries, key=lambda entry: entry[:2])]


def run_detector(
    session: LobSession, symbol: str, inputs: list[OrderBookEvent | ExecutionReport], cut: int | None = None
) -> list[bytes]:
    """The detector's alerts over ``inputs`` (restored from its JSON state at ``cut``), then its flush."""
    venue = session.config.venue
    detector, book, alerts = FirmDesk(symbol, venue), OrderBook(), []
    for n, item in enumerate(inputs):
        if n == cut:
            detector = FirmDesk.from_state(orjson.loads(orjson.dumps(detector.to_state())), symbol, venue)
        if isinstance(item, OrderBookEvent):
            alerts += detector.on_order(item, book.visible_depth(item.side))
            book.on_order(item)
        else:
            alerts += detector.on_execution(item)
    return [alert.to_json() for alert in [*alerts, *detector.flush()]]


def test_the_firms_alerts_do_not_depend_on_how_the_two_feeds_interleave(session: LobSession) -> None:
    raised = 0
    for symbol in session.tapes:
        reference = run_detector(session, symbol, interleaved(session, symbol, seed=1))
        raised += len(reference)
        for seed in (0, 2):
            inputs = interleaved(session, symbol, seed)
            cut = len(inputs) // 3 if seed else None  # restored from its state a third of the way in
            assert run_detector(session, symbol, inputs, cut) == reference, (symbol, seed)
    assert raised >= 2


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_eval_orders_prints_its_table() -> None:
    command = ["eval", "orders", "--seeds", "10", "--symbols", "1", "--minutes", "10"]
    result = CliRunner().invoke(cli(), command, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "spoofing" in result.output and "wash_trading" in result.output and "clean symbols" in result.output


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_eval_orders_and_the_public_feeds_detectors_score_the_simulator_too() -> None:
    common = ["--seeds", "10", "--symbols", "2", "--minutes", "10", "--generator", "sim"]
    result = CliRunner().invoke(cli(), ["eval", "orders", *common], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "firm drop copy, simulator" in result.output and "wash_trading" in result.output
    for command, kind in (("public-spoofing", "spoofing"), ("public-wash", "wash_trading")):
        result = CliRunner().invoke(cli(), ["eval", command, *common], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "public feed alone, simulator" in result.output and kind in result.output
    refused = CliRunner().invoke(cli(), ["eval", "orders", "--generator", "abm"])
    assert refused.exit_code != 0 and "one of lob, sim" in refused.output
