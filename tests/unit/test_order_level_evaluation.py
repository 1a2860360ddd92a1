"""The drop copy's detectors on a labelled order-book market: each episode traded through the firm found, by the
account that traded it, and `tapewatch eval orders` prints the table."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.evaluation.order_level import firm_alerts, judge, visible_shares
from tapewatch.generators.lob_market import LobSession, generate
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


def test_a_placements_share_of_the_visible_depth_is_read_from_the_public_feed(session: LobSession) -> None:
    symbol = next(iter(session.tapes))
    shares = visible_shares(session, symbol)
    adds = [e for e in session.order_events(symbol) if e.action == "add" and not e.snapshot]
    assert len(shares) == len(adds) and all(share > 0 for share in shares.values())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_eval_orders_prints_its_table() -> None:
    command = ["eval", "orders", "--seeds", "10", "--symbols", "1", "--minutes", "10"]
    result = CliRunner().invoke(app, command, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "spoofing" in result.output and "wash_trading" in result.output and "clean symbols" in result.output
