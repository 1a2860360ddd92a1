"""`tapewatch bench peers`, its pure parts: the expected bar count, the peers' bar arithmetic against tapewatch's
``BarBuilder``, the results (ratios, JSON, table) and the peers' venv stamp. Nothing here installs the venv or
touches Kafka."""

from __future__ import annotations

import ast
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from tapewatch.bench import peers_env
from tapewatch.bench.peer_scripts import ohlcv
from tapewatch.bench.peers import (
    BAR_FIELDS,
    BENCH_DIR,
    PeerRun,
    PeersResult,
    bar_keys,
    compare,
    expected_bars,
    print_peers_bench,
)
from tapewatch.detectors.bars import MultiBarBuilder, bars_from_quotes, quotes_to_frame
from tapewatch.records import Quote

GRACE = 2_000


def _quotes(seed: int, n: int = 3_000) -> list[Quote]:
    """Three symbols' quotes, a third without a trade, some out of order (within the grace and beyond it)."""
    rng = random.Random(seed)
    clocks = {"AAA": 0, "BBB": 30_000, "CCC": 0}
    quotes = []
    for _ in range(n):
        symbol = rng.choice(list(clocks))
        clocks[symbol] += rng.randint(0, 1_500)
        ts = max(0, clocks[symbol] - (rng.randint(0, 8_000) if rng.random() < 0.1 else 0))
        trade = rng.random() < 0.66
        price = round(rng.uniform(99, 101), 2) if trade else None
        size = float(rng.choice([0, 1, 5, 1000])) if trade else 0.0
        quotes.append(Quote(symbol=symbol, venue=rng.choice(["v1", "v2"]), ts=ts, price=price, size=size))
    return quotes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_expected_count_is_the_bar_builders(seed: int) -> None:
    quotes = _quotes(seed)
    closed, still_open = expected_bars(quotes, GRACE)
    frame = quotes_to_frame(quotes)
    assert closed == len(bars_from_quotes(frame, grace_ms=GRACE)) > 0
    assert closed + still_open == len(bars_from_quotes(frame, include_open=True, grace_ms=GRACE))


def test_the_expected_count_leaves_each_symbols_last_minutes_open() -> None:
    rows = [("A", 0, True), ("A", 61_000, True), ("A", 62_000, False), ("B", 1_000, True), ("B", 119_999, False)]
    quotes = [
        Quote(symbol=s, venue="v", ts=ts, price=10.0 if trade else None, size=1.0 if trade else 0.0)
        for s, ts, trade in rows
    ]
    # A's minute 0 and B's minute 0 close; A's minute 1 stays open; B's minute 1 has no trade: no bar
    assert expected_bars(quotes, GRACE) == (2, 1)
    assert expected_bars([], GRACE) == (0, 0)


@pytest.mark.parametrize("seed", [4, 5])
def test_the_peers_bars_are_the_bar_builders(seed: int) -> None:
    """The arithmetic both peers run (a key's watermark, the accumulator, the change against the previous bar) gives
    tapewatch's bars, field for field, late records dropped alike."""
    quotes = _quotes(seed)
    builder = MultiBarBuilder(GRACE)
    expected = [bar.model_dump() for quote in quotes for bar in builder.on_quote(quote)]
    states: dict[str, dict[str, Any]] = {}
    got, late = [], 0
    for quote in quotes:
        state = states.setdefault(quote.symbol, ohlcv.new_key_state())
        closed, was_late = ohlcv.on_record(state, quote.symbol, orjson.loads(quote.to_json()), GRACE)
        got.extend(closed)
        late += was_late
    assert got == expected
    assert late == len(builder.late) > 0
    assert set(got[0]) == set(BAR_FIELDS)


def test_a_windows_accumulator_starts_at_its_first_trade() -> None:
    """Quix's window starts from whatever record opens it (``initial``): a snapshot without a trade counts nothing."""
    snapshot = {"symbol": "A", "venue": "v", "ts": 1_000, "price": None, "size": 0.0}
    trade = {"symbol": "A", "venue": "v", "ts": 1_500, "price": 10.0, "size": 2.0}
    assert ohlcv.initial(snapshot) == {"trades": 0}
    assert ohlcv.add(ohlcv.initial(snapshot), trade) == ohlcv.initial(trade)
    previous: dict[str, Any] = {}
    bar = ohlcv.to_bar("A", 0, ohlcv.add(ohlcv.initial(trade), {**trade, "ts": 900, "price": 9.0}), previous)
    assert (bar["open"], bar["close"], bar["volume"], bar["vwap"], bar["trades"]) == (9.0, 10.0, 4.0, 9.5, 2)
    assert previous == {"close": 10.0, "volume": 4.0}


def test_the_peer_scripts_import_no_tapewatch() -> None:
    scripts = sorted((BENCH_DIR / "peer_scripts").glob("*.py"))
    assert {p.name for p in scripts} >= {"quix_bars.py", "faust_bars.py", "ohlcv.py"}
    for path in scripts:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not [n for n in names if n.split(".")[0] == "tapewatch"], path.name


def _result() -> PeersResult:
    result = PeersResult(
        symbols=2,
        minutes=10.0,
        records=10_000,
        trades=6_000,
        grace_ms=GRACE,
        expected_bars=18,
        open_at_end=2,
        raw_consume_per_s=200_000.0,
        load_before=(1.0, 0.5, 0.25),
    )
    result.runs = [
        PeerRun("tapewatch", records=10_000, seconds=0.2, bars_reported=18, bars_in_topic=18),
        PeerRun("quix", records=10_000, seconds=1.0, bars_reported=18, bars_in_topic=18, differ_from_tapewatch=0),
        PeerRun("faust", error="exit 1, no result; boom", missing_from_tapewatch=18),
    ]
    return result


def test_the_ratios_are_taken_within_the_run() -> None:
    result = _result()
    tapewatch, quix, faust = result.runs
    assert (tapewatch.rate, quix.rate, faust.rate) == (50_000.0, 10_000.0, 0.0)
    assert result.ratio_to_raw(tapewatch) == 0.25
    assert result.ratio_to_raw(quix) == 0.05
    assert result.tapewatch_over(quix) == 5.0
    assert result.tapewatch_over(tapewatch) == 1.0
    assert result.ratio_to_raw(faust) is None and result.tapewatch_over(faust) is None
    result.runs[0].error = "failed"
    assert result.tapewatch_over(quix) is None  # no ratio against a failed tapewatch run


def test_the_json_holds_every_run_and_its_ratios() -> None:
    body = orjson.loads(_result().to_json())
    assert body["benchmark"] == "peers"
    assert (body["records"], body["expected_bars"], body["raw_consume_per_s"]) == (10_000, 18, 200_000.0)
    runs = {run["framework"]: run for run in body["runs"]}
    assert runs["quix"]["records_per_s"] == 10_000.0
    assert runs["quix"]["tapewatch_over_it"] == 5.0
    assert runs["tapewatch"]["ratio_to_raw"] == 0.25
    assert runs["faust"]["records_per_s"] is None and runs["faust"]["error"].startswith("exit 1")


def test_the_table_shows_rates_counts_and_failures() -> None:
    console = Console(record=True, width=250)
    print_peers_bench(console, _result())
    text = console.export_text()
    assert "raw confluent-kafka consume" in text and "200,000" in text
    assert "50,000" in text and "10,000" in text and "5.00" in text
    assert "18 / 18" in text and "0 / 18" in text
    assert "faust failed: exit 1, no result; boom" in text


def test_bars_are_compared_field_by_field() -> None:
    bar = dict.fromkeys(BAR_FIELDS, 1.0) | {"symbol": "A", "venue": "v", "start": 0, "end": 60_000, "trades": 1}
    same, other = orjson.dumps(bar), orjson.dumps({**bar, "volume": 2.0})
    assert compare(bar_keys([same]), bar_keys([same])) == (0, 0)
    assert compare(bar_keys([same]), bar_keys([other])) == (1, 1)
    assert compare(bar_keys([same]), bar_keys([same, same])) == (1, 0)  # a duplicate shows


def test_the_stamp_names_the_pins() -> None:
    assert peers_env.stamp_name(["a==1", "b==2"]) == peers_env.stamp_name(["b==2", "a==1"])
    assert peers_env.stamp_name(["a==1"]) != peers_env.stamp_name(["a==2"])
    assert "quixstreams==3.28.1" in peers_env.PEER_REQUIREMENTS
    assert "faust-streaming==0.15.3" in peers_env.PEER_REQUIREMENTS


def test_the_install_is_the_makefiles_uv_pip() -> None:
    command = peers_env.uv_pip_install(Path("/m/bin/uv"), Path("/p/bin/python"), {"PIP_FIND_LINKS": "/wheels"})
    assert command == [
        *("/m/bin/uv", "pip", "install", "--python", "/p/bin/python", "-q", "--system-certs", "--compile-bytecode"),
        *("--find-links", "/wheels"),
    ]
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text(encoding="utf-8")
    assert "uv pip install --python $(BIN)/python -q --system-certs --compile-bytecode" in makefile


def _fake_venv(venv: Path) -> None:
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()


def test_a_stamped_venv_is_not_installed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = tmp_path / "peers"
    _fake_venv(venv)
    (venv / peers_env.stamp_name(["x==1"])).touch()

    def refuse(argv: list[str]) -> None:
        raise AssertionError(f"ran {argv}")

    monkeypatch.setattr(peers_env, "_run", refuse)
    assert peers_env.ensure_peers_venv(venv, ["x==1"], report=False) == venv / "bin" / "python"


def test_new_pins_install_again_and_restamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = tmp_path / "peers"
    _fake_venv(venv)
    old = venv / peers_env.stamp_name(["x==1"])
    old.touch()
    ran: list[list[str]] = []
    monkeypatch.setattr(peers_env, "_run", ran.append)
    peers_env.ensure_peers_venv(venv, ["x==2"], report=False)
    assert len(ran) == 1 and ran[0][1:4] == ["pip", "install", "--python"] and ran[0][-1] == "x==2"
    assert not old.exists()
    assert peers_env.is_current(venv, ["x==2"]) and not peers_env.is_current(venv, ["x==1"])
    ran.clear()
    peers_env.ensure_peers_venv(venv, ["x==2"], report=False)
    assert ran == []


def test_a_missing_venv_is_created_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []
    venv = tmp_path / "peers"

    def run(argv: list[str]) -> None:
        ran.append(argv)
        if "venv" in argv:
            _fake_venv(venv)

    monkeypatch.setattr(peers_env, "_run", run)
    peers_env.ensure_peers_venv(venv, ["x==1"], report=False)
    assert ran[0][1:] == ["-m", "venv", "--without-pip", str(venv)]
    assert ran[1][-1] == "x==1"
