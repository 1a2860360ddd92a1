"""Market-by-order files and drop copies read into records: Databento MBO (CSV and DBN), LOBSTER message files and
FIX 4.4 execution reports; a line that is not a record is one :class:`Unreadable` with its reason, never an
exception, whatever its bytes."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import databento_dbn as dbn
import pytest
import simplefix
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.producers.orders import databento, lobster
from tapewatch.producers.orders.fix_drop_copy import read_drop_copy
from tapewatch.producers.orders.unreadable import Unreadable
from tapewatch.records import ExecutionReport, OrderBookEvent
from tests.order_samples import HEADER, MESSAGES, ROWS, report

# --- Databento ----------------------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_databento_csv_reads_into_the_events_it_describes(tmp_path: Path) -> None:
    read = list(databento.read_csv(write(tmp_path, "mbo.csv", [HEADER, *ROWS]), "xnas"))
    assert all(isinstance(r, OrderBookEvent) for r in read)
    events = [r for r in read if isinstance(r, OrderBookEvent)]
    assert [(e.action, e.order_id, e.side, e.price, e.size) for e in events] == [
        ("clear", None, None, None, 0.0),
        ("add", "7", "BUY", pytest.approx(189.5), 100.0),
        ("add", "8", "SELL", pytest.approx(189.51), 50.0),
        ("trade", None, "BUY", pytest.approx(189.51), 20.0),
        ("fill", "8", "SELL", pytest.approx(189.51), 20.0),
        ("cancel", "7", "BUY", pytest.approx(189.5), 100.0),
    ]
    assert [e.snapshot for e in events[:3]] == [False, True, False]
    assert events[1].ts == 1_700_000_000_123 and events[1].sequence == 11 and events[1].symbol == "AAPL"


def test_pretty_prices_and_times_read_the_same(tmp_path: Path) -> None:
    pretty = [
        "2023-11-14T22:13:20.200000000Z,2023-11-14T22:13:20.123456789Z,160,2,42,A,B,189.500000000,100,0,7,40,0,11,AAPL"
    ]
    [plain] = databento.read_csv(write(tmp_path, "a.csv", [HEADER, ROWS[1]]), "xnas")
    [nice] = databento.read_csv(write(tmp_path, "b.csv", [HEADER, *pretty]), "xnas")
    assert nice == plain


def test_a_bad_databento_line_is_unreadable_with_its_line_and_reason(tmp_path: Path) -> None:
    rows = [ROWS[1], ROWS[2].replace(",A,A,", ",Z,A,"), "garbage", ROWS[2].replace(",50,", ",-5,")]
    read = list(databento.read_csv(write(tmp_path, "mbo.csv", [HEADER, *rows]), "xnas"))
    bad = [r for r in read if isinstance(r, Unreadable)]
    assert [r.line for r in bad] == [3, 4, 5]
    assert "action 'Z'" in bad[0].reason and bad[2].field == "size"
    with pytest.raises(ValueError, match="no column ts_event"):
        list(databento.read_csv(write(tmp_path, "x.csv", ["a,b,c", "1,2,3"]), "xnas"))


def test_a_dbn_file_reads_as_its_csv_does(tmp_path: Path) -> None:
    interval = SimpleNamespace(start_date=date(2023, 11, 14), end_date=date(2023, 11, 15), symbol="42")
    metadata = dbn.Metadata(
        dataset="XNAS.ITCH",
        schema=dbn.Schema("mbo"),
        start=1_700_000_000_000_000_000,
        stype_in=dbn.SType("raw_symbol"),
        stype_out=dbn.SType("instrument_id"),
        symbols=["AAPL"],
        mappings=[SimpleNamespace(raw_symbol="AAPL", intervals=[interval])],
    )
    encoded = metadata.encode()
    for row in ROWS:
        f = row.split(",")
        encoded += bytes(
            dbn.MBOMsg(
                publisher_id=2,
                instrument_id=42,
                ts_event=int(f[1]),
                order_id=int(f[10]),
                price=int(f[7]),
                size=int(f[8]),
                action=dbn.Action(f[5]),
                side=dbn.Side(f[6]),
                ts_recv=int(f[0]),
                flags=int(f[11]),
                sequence=int(f[13]),
            )
        )
    path = tmp_path / "mbo.dbn"
    path.write_bytes(encoded)
    from_dbn = list(databento.read_dbn(path, "xnas"))
    from_csv = list(databento.read_csv(write(tmp_path, "mbo.csv", [HEADER, *ROWS]), "xnas"))
    assert from_dbn == from_csv and len(from_dbn) == 6


# --- LOBSTER ------------------------------------------------------------------------------------------------------


def test_a_lobster_file_reads_into_adds_cancels_trades_and_fills(tmp_path: Path) -> None:
    path = write(tmp_path, "AAPL_2012-06-21_34200000_57600000_message_10.csv", MESSAGES)
    read = list(lobster.read_messages(path, "nasdaq"))
    assert all(isinstance(r, OrderBookEvent) for r in read)
    events = [r for r in read if isinstance(r, OrderBookEvent)]
    assert [(e.action, e.order_id, e.side, e.size) for e in events] == [
        ("add", "16113575", "BUY", 18.0),
        ("add", "16113584", "SELL", 10.0),
        ("trade", None, "BUY", 4.0),  # the aggressor is the other side of the resting order
        ("fill", "16113584", "SELL", 4.0),
        ("cancel", "16113575", "BUY", 8.0),
        ("trade", None, "BUY", 100.0),  # hidden: no displayed order filled
        ("cancel", "16113575", "BUY", 0.0),  # a deletion: whatever rests
        ("trade", None, None, 5000.0),  # the cross
    ]
    assert [e.sequence for e in events] == list(range(1, 9))
    # 09:30 in New York on 2012-06-21 (EDT) is 13:30 UTC
    assert events[0].ts == 1_340_285_400_004 and events[0].price == 585.33 and events[0].symbol == "AAPL"


def test_a_bad_lobster_line_is_unreadable_and_an_unnamed_file_needs_its_symbol_and_day(tmp_path: Path) -> None:
    path = write(tmp_path, "AAPL_2012-06-21_0_0_message_1.csv", [MESSAGES[0], "34200.1,9,1,1,1,1", "x", MESSAGES[1]])
    read = list(lobster.read_messages(path, "nasdaq"))
    assert [type(r).__name__ for r in read] == ["OrderBookEvent", "Unreadable", "Unreadable", "OrderBookEvent"]
    assert [r.sequence for r in read if isinstance(r, OrderBookEvent)] == [1, 2]
    unnamed = write(tmp_path, "messages.csv", MESSAGES[:1])
    with pytest.raises(ValueError, match="give the symbol and the day"):
        list(lobster.read_messages(unnamed, "nasdaq"))
    [named] = lobster.read_messages(unnamed, "nasdaq", symbol="MSFT", day=date(2012, 6, 21))
    assert isinstance(named, OrderBookEvent) and named.symbol == "MSFT"


# --- FIX drop copy ------------------------------------------------------------------------------------------------


def test_an_execution_report_reads_with_its_account_trader_and_owner() -> None:
    message = report(parties=(("TRADER-1", "12"), ("OWNER-9", "5")))
    [record] = read_drop_copy(io.BytesIO(message + b"\n"), "twse", "acme")
    assert isinstance(record, ExecutionReport)
    assert (record.account, record.trader, record.owner, record.exec_type) == ("ACC-7", "TRADER-1", "OWNER-9", "trade")
    assert (record.order_id, record.exec_id, record.side, record.last_qty, record.leaves_qty) == (
        "V123",
        "E1",
        "BUY",
        200.0,
        800.0,
    )
    assert record.ts == 1_795_741_323_456 and record.displayed


def test_pipes_for_soh_pegs_and_session_messages() -> None:
    pegged = report(t150="0", t39="0", t32="", t31="", t14="0", t151="1000", t40="P", t18="M").replace(b"\x01", b"|")
    heartbeat = simplefix.FixMessage()
    heartbeat.append_pair(8, "FIX.4.4")
    heartbeat.append_pair(35, "0")
    read = list(read_drop_copy(io.BytesIO(pegged + b"\n" + heartbeat.encode() + b"\n\n"), "twse", "acme"))
    assert len(read) == 1 and isinstance(read[0], ExecutionReport)
    assert (read[0].exec_type, read[0].order_kind, read[0].displayed) == ("new", "pegged", False)


def test_a_wrong_checksum_or_length_or_a_missing_account_is_unreadable() -> None:
    good = report()
    wrong_sum = good.replace(b"ACC-7", b"ACC-8")
    wrong_length = good.replace(b"\x019=", b"\x019=1")
    no_account = report(t1="")
    lines = b"\n".join([wrong_sum, wrong_length, no_account, b"not fix at all", good]) + b"\n"
    read = list(read_drop_copy(io.BytesIO(lines), "twse", "acme"))
    reasons = [r.reason for r in read if isinstance(r, Unreadable)]
    assert len(reasons) == 4 and isinstance(read[-1], ExecutionReport)
    assert "CheckSum (10)" in reasons[0] and "BodyLength (9)" in reasons[1] and "no Account (1)" in reasons[2]


# --- nothing crashes on any bytes ---------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=len(ROWS) - 1))
def test_any_line_is_read_or_refused_never_raised(
    tmp_path_factory: pytest.TempPathFactory, noise: bytes, i: int
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    good, mangled = report(), bytearray(report())
    for k, b in enumerate(noise[:8]):
        mangled[(k * 37 + b) % len(mangled)] = b
    fix = list(
        read_drop_copy(io.BytesIO(bytes(mangled) + b"\n" + noise.replace(b"\n", b" ") + b"\n" + good), "v", "acme")
    )
    assert isinstance(fix[-1], ExecutionReport)
    csv = folder / "mbo.csv"
    csv.write_bytes(HEADER.encode() + b"\n" + noise.replace(b"\n", b" ") + b"\n" + ROWS[i].encode() + b"\n")
    assert len([r for r in databento.read_csv(csv, "v") if isinstance(r, Unreadable)]) <= 1
    lob = folder / "X_2020-01-02_0_0_message_1.csv"
    lob.write_bytes(noise.replace(b"\n", b" ") + b"\n" + MESSAGES[0].encode() + b"\n")
    assert isinstance(list(lobster.read_messages(lob, "v"))[-1], OrderBookEvent)
