"""Sink mappings without services: rows match the tables, ECS documents, webhook signatures and filters."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Table

from tapewatch.collector import BATCH_GC_THRESHOLD, tuned_for_batches
from tapewatch.deadletter import DeadLetter
from tapewatch.errors import TapewatchError
from tapewatch.records import (
    Action,
    Alert,
    AlertKind,
    Bar,
    Book,
    ExecutionReport,
    Features,
    Fill,
    Forecast,
    NewsItem,
    NewsSignal,
    Order,
    Portfolio,
    Quote,
    Record,
    RecordError,
    Score,
    Severity,
    VenueIndicator,
    WashTest,
    alert_id,
)
from tapewatch.settings import ElasticsearchSettings, Settings
from tapewatch.sinks import db
from tapewatch.sinks.consumer import decode, resolve_topics
from tapewatch.sinks.elastic import (
    FAMILIES,
    FAMILY_PROPERTIES,
    SEVERITY_NUMBER,
    bulk_action,
    bulk_lines,
    index_pattern,
)
from tapewatch.sinks.webhook import AlertFilter, load_subscribers, sign, verify

symbols = st.text(alphabet="ABCDEFGHIJ0123456789", min_size=1, max_size=6)
times = st.integers(min_value=0, max_value=4_000_000_000_000)


@st.composite
def alerts(draw: st.DrawFn) -> Alert:
    symbol = draw(symbols)
    kind = draw(st.sampled_from(list(AlertKind)))
    start = draw(times)
    tenant = draw(st.sampled_from([None, None, "acme", "acme_2"]))
    return Alert(
        alert_id=alert_id(symbol, kind.value, start, tenant),
        tenant=tenant,
        symbol=symbol,
        venue=draw(st.sampled_from(["twse", "sim", "binance"])),
        ts=start + draw(st.integers(0, 60_000)),
        kind=kind,
        severity=draw(st.sampled_from(list(Severity))),
        score=draw(st.floats(0, 1)),
        window_start=start,
        window_end=start + 60_000,
        evidence=draw(st.dictionaries(st.sampled_from(["price", "volume", "z", "note"]), st.floats(-1e6, 1e6))),
        model_version="m1",
        message=draw(st.text(max_size=20)),
    )


def sample_records() -> list[object]:
    return [
        Bar(
            symbol="2330",
            venue="twse",
            start=0,
            end=60_000,
            open=1,
            high=2,
            low=1,
            close=2,
            volume=5,
            vwap=1.5,
            trades=3,
        ),
        Features(symbol="2330", venue="twse", ts=60_000, values={"ret": 0.1, "z": None}, version="v1"),
        Score(
            symbol="2330",
            venue="twse",
            ts=60_000,
            model_version="k1",
            cluster=2,
            distance=1.5,
            score=0.7,
            top_features=[("ret", 0.4)],
        ),
        Alert(
            alert_id="a1",
            symbol="2330",
            venue="twse",
            ts=60_000,
            kind="spoofing",
            severity="high",
            score=0.9,
            window_start=0,
            window_end=60_000,
            model_version="k1",
        ),
        Action(
            symbol="2330",
            venue="twse",
            ts=60_000,
            action="BUY",
            q_values={"HOLD": 0, "BUY": 1, "SELL": -1},
            position=1,
            model_version="d1",
        ),
        ExecutionReport(
            symbol="2330",
            venue="twse",
            ts=60_000,
            exec_id="E1",
            order_id="O1",
            tenant="acme",
            account="A1",
            owner="B1",
            exec_type="trade",
            side="BUY",
            price=10.0,
            quantity=5.0,
            last_qty=5.0,
            last_price=10.0,
            cum_qty=5.0,
        ),
    ]


def paper_trading_records() -> list[tuple[Table, Order | Fill | Portfolio]]:
    common: dict[str, Any] = {"symbol": "2330", "venue": "twse", "ts": 60_000, "account": "paper-1"}
    order = Order(**common, client_order_id="paper-1-2330-0-1", revision=1, event="partially_filled", side="BUY",
                  price=10.0, quantity=2.0, filled=1.0, average_price=10.0, signal_model="dqn", signal_version="d1",
                  signal_ts=0)  # fmt: skip
    fill = Fill(**common, fill_id="paper-1-2330-0-1:1", client_order_id="paper-1-2330-0-1", side="BUY", price=10.0,
                quantity=1.0, fee=0.1, tax=0.0, liquidity="maker", tape_price=10.0, signal_model="dqn", signal_ts=0,
                decision_price=9.95, realized_pnl=-0.1)  # fmt: skip
    portfolio = Portfolio(**common, seq=3, reason="fill", cash=990.0, equity=999.9, gross_exposure=10.0,
                          realized_pnl=-0.1, unrealized_pnl=0.0, day_pnl=-0.1, fees=0.1, taxes=0.0, halted=False,
                          positions={"2330": 1.0})  # fmt: skip
    return [(db.paper_orders, order), (db.paper_fills, fill), (db.paper_portfolio, portfolio)]


def news_records() -> list[tuple[Table, NewsItem | NewsSignal]]:
    item = NewsItem(
        symbol="2330",
        venue="twse",
        item_id="cnyes:1",
        source="cnyes",
        ts=60_000,
        updated_ts=90_000,
        title="台積電法說會",
        language="zh-TW",
        symbols=["2330"],
    )
    signal = NewsSignal(
        symbol="2330",
        venue="twse",
        ts=60_000,
        item_id="cnyes:1",
        source="cnyes",
        title="台積電法說會",
        language="zh-TW",
        sentiment=0.4,
        indicator=40.0,
        count_1h=1,
        model_version="lexicon-x",
    )
    return [(db.news_items, item), (db.news_signals, signal)]


INDICATOR = VenueIndicator(
    symbol="BTCUSD", venue="bitstamp", ts=86_400_000, window_start=0, window_end=86_400_000, complete=True,
    trades=5_000, lot=1e-8, benford=WashTest.CONFORMS, benford_n=5_000, benford_chi2=9.1, benford_p=0.33,
    benford_mad=0.004, benford_band="close", decades=3, rounding=WashTest.CONFORMS, round_at=400, round_near=40,
    round_ratio=100.0, round_share=0.2, round_p=1e-30, version="venue-wash-1",
)  # fmt: skip


def test_every_row_has_exactly_its_table_columns() -> None:
    bar, features, score, alert, action, execution = sample_records()
    book = Book(symbol="2330", venue="twse", ts=60_000, bids=[(9.9, 5.0), (9.8, 1.0)], asks=[(10.1, 2.0)])
    letter = DeadLetter(stage="sink:postgres", reason="bad", field="ts", topic="md.quotes")
    forecast = Forecast(
        symbol="2330",
        venue="twse",
        ts=60_000,
        model="cnn",
        model_version="c1",
        horizon=14,
        target="class",
        prediction=0.2,
        confidence=0.5,
        probabilities={"down": 0.3, "flat": 0.2, "up": 0.5},
    )
    pairs = [
        (db.book_snapshots, book, db.record_doc(book)),
        (db.bars, bar, db.bar_doc(bar, 7)),  # type: ignore[arg-type]
        (db.features, features, db.record_doc(features)),  # type: ignore[arg-type]
        (db.scores, score, db.record_doc(score)),  # type: ignore[arg-type]
        (db.alerts, alert, db.alert_doc(alert)),  # type: ignore[arg-type]
        (db.actions, action, db.record_doc(action)),  # type: ignore[arg-type]
        (db.forecasts, forecast, db.record_doc(forecast)),
        (db.executions, execution, db.record_doc(execution)),  # type: ignore[arg-type]
        *((table, record, db.record_doc(record)) for table, record in paper_trading_records()),
        (db.venue_indicators, INDICATOR, db.record_doc(INDICATOR)),
    ]
    for table, record, doc in pairs:
        # A record's doc is its own fields: they must be exactly the table's columns (a new field needs a
        # migration), and COPY takes the doc's values in column order.
        assert set(doc) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert doc[column.name] == getattr(record, column.name, 7)  # 7: the bar's Kafka offset
        for column in table.primary_key:
            assert doc[column.name] is not None
    for table, record in news_records():
        doc = db.news_doc(record)
        assert set(doc) == {c.name for c in table.columns}, table.name
        assert doc["edition"] == (record.updated_ts or record.ts)
        assert all(doc[c.name] == getattr(record, c.name) for c in table.columns if c.name != "edition")
    dead = db.dead_letter_doc(letter, "dlq.sinks", 2, 41, 1_700_000_000_000, 512)
    assert set(dead) == {c.name for c in db.dead_letters.columns}
    assert (dead["source_topic"], dead["received_at"], dead["offset"]) == ("md.quotes", 1_700_000_000_000, 41)
    assert all(dead[column.name] is not None for column in db.dead_letters.primary_key)


rows_with_keys = st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 5), st.integers()), max_size=30)


@given(rows_with_keys)
def test_newest_per_key_keeps_the_latest_emission_first_of_equals(triples: list[tuple[str, int, int]]) -> None:
    rows: list[dict[str, Any]] = [
        {"alert_id": key, "emission": emission, "arrival": n} for n, (key, emission, _) in enumerate(triples)
    ]
    kept = db.newest_per_key(db.alerts, rows)
    assert sorted(r["alert_id"] for r in kept) == sorted({r["alert_id"] for r in rows})
    for row in kept:
        same_key = [r for r in rows if r["alert_id"] == row["alert_id"]]
        newest = max(r["emission"] for r in same_key)
        assert row["emission"] == newest and row == next(r for r in same_key if r["emission"] == newest)
    assert db.newest_per_key(db.bars, rows) is rows  # facts are never reduced


def sample_payloads() -> list[tuple[type[Record], dict[str, object]]]:
    quote = Quote(symbol="2330", venue="twse", ts=1, price=10.0, size=2.0, bid=9.9, ask=10.1, seq=3)
    book = Book(symbol="2330", venue="twse", ts=1, bids=[(9.9, 5.0), (9.8, 1.0)], asks=[(10.1, 2.0)])
    paper = [record for _, record in paper_trading_records()]
    records = [quote, book, *(r for r in sample_records() if isinstance(r, Record)), *paper]
    return [(type(r), orjson.loads(r.to_json())) for r in records]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@given(st.sampled_from(sample_payloads()), st.data())
def test_sink_decoding_agrees_with_the_record_contract(
    sample: tuple[type[Record], dict[str, object]], data: st.DataObject
) -> None:
    """The sinks' one-step decoding accepts exactly what Record.from_json accepts, as the same record, and
    refuses the rest with the contract's own reason."""
    record_type, payload = sample
    payload = dict(payload)
    for _ in range(data.draw(st.integers(0, 3))):
        field = data.draw(st.sampled_from([*payload, "extra"]))
        if data.draw(st.booleans()) and field in payload:
            del payload[field]
        else:
            payload[field] = data.draw(json_values)
    # The standard library writes integers of any size (orjson refuses those over 64 bits).
    raw = json.dumps(payload).encode() if data.draw(st.integers(0, 9)) else data.draw(st.binary(max_size=30))
    try:
        expected: Record | str = record_type.from_json(raw)
    except RecordError as exc:
        expected = str(exc)
    try:
        got: Record | str = decode(record_type, raw)
    except RecordError as exc:
        got = str(exc)
    assert got == expected


def test_sink_decoding_of_a_tombstone() -> None:
    with pytest.raises(RecordError, match="tombstone"):
        decode(Alert, None)


@given(alerts())
def test_alert_document_is_ecs_and_indexed_by_its_own_month(alert: Alert) -> None:
    settings = Settings(es=ElasticsearchSettings(index_prefix="tw"))
    meta, doc = bulk_action(settings, alert)
    assert meta["_id"] == alert.alert_id
    assert meta["version"] == alert.emission and meta["version_type"] == "external"
    month = datetime.fromtimestamp(alert.ts / 1000, tz=UTC).strftime("%Y.%m")
    # a tenant's own alert goes to that tenant's index, which the shared pattern never matches
    shared, own = f"tw-alerts-{month}", f"tw-tenant-alerts-{alert.tenant}-{month}"
    assert meta["_index"] == (shared if alert.tenant is None else own)
    assert fnmatch(meta["_index"], index_pattern(settings, "alerts")) == (alert.tenant is None)
    for tenant in ("acme", "acme_2"):
        mine = fnmatch(meta["_index"], index_pattern(settings, f"tenant-alerts-{tenant}"))
        assert mine == (alert.tenant == tenant)
    assert doc["tapewatch"]["tenant"] == alert.tenant
    meta_line, doc_line, end = bulk_lines(settings, alert).split(b"\n")
    assert orjson.loads(meta_line) == {"index": meta} and orjson.loads(doc_line) == doc and end == b""
    assert doc["@timestamp"] == alert.ts and doc["event"]["start"] == alert.window_start
    assert doc["event"]["kind"] == "alert" and doc["event"]["id"] == alert.alert_id
    assert doc["event"]["severity"] == SEVERITY_NUMBER[alert.severity]
    assert 0 <= doc["event"]["risk_score"] <= 100
    assert doc["rule"]["id"] == alert.kind.value
    assert doc["tapewatch"]["symbol"] == alert.symbol
    if isinstance(alert.evidence.get("price"), float):
        assert doc["tapewatch"]["price"] == alert.evidence["price"]


def test_an_indicator_document_is_a_metric_of_its_window() -> None:
    meta, document = bulk_action(Settings(), INDICATOR)
    assert meta["_id"] == "bitstamp:BTCUSD:0:venue-wash-1" and "version" not in meta
    assert document["event"] == {
        "kind": "metric", "dataset": "tapewatch.venue_indicators", "start": 0, "end": 86_400_000
    }  # fmt: skip
    assert document["tapewatch"]["benford"] == "conforms" and document["tapewatch"]["verdict"] == "consistent"


def test_documents_only_use_mapped_top_level_fields() -> None:
    settings = Settings()
    for record in [*sample_records(), INDICATOR]:
        if type(record) not in FAMILIES:
            continue
        meta, document = bulk_action(settings, record)  # type: ignore[arg-type]
        family = FAMILIES[type(record)]  # type: ignore[index]
        tenant = None if family.tenant_of is None else family.tenant_of(record)
        index_family = family.name if tenant is None else f"tenant-{family.name}"
        assert meta["_index"].startswith(f"{settings.es.index_prefix}-{index_family}-")
        mapped = set(FAMILY_PROPERTIES[index_family]["tapewatch"]["properties"])
        assert set(document["tapewatch"]) <= mapped, family.name
    assert bulk_action(settings, sample_records()[-1])[0]["_index"].startswith(  # type: ignore[arg-type]
        f"{settings.es.index_prefix}-tenant-executions-acme-"
    )


@given(st.binary(max_size=200), st.binary(min_size=1, max_size=40))
def test_signature_verifies_only_the_signed_body(body: bytes, secret: bytes) -> None:
    header = sign(secret, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify(secret, body, header)
    assert not verify(secret, body + b"x", header)
    assert not verify(secret + b"x", body, header)


@given(alerts(), st.frozensets(st.sampled_from(list(AlertKind))), st.frozensets(st.sampled_from(list(Severity))))
def test_filters_pass_exactly_what_they_name(
    alert: Alert, kinds: frozenset[AlertKind], sev: frozenset[Severity]
) -> None:
    # a tenant's own alert passes only a filter of that tenant
    sealed = {"tenant": alert.tenant}
    assert AlertFilter(**sealed).accepts(alert)
    assert AlertFilter().accepts(alert) == (alert.tenant is None)
    assert AlertFilter(tenant="other").accepts(alert) == (alert.tenant is None)
    chosen = AlertFilter(kinds=kinds, severities=sev, **sealed)
    assert chosen.accepts(alert) == ((not kinds or alert.kind in kinds) and (not sev or alert.severity in sev))
    assert AlertFilter(symbols=frozenset({alert.symbol}), **sealed).accepts(alert)
    assert not AlertFilter(symbols=frozenset({alert.symbol + "X"}), **sealed).accepts(alert)


def test_subscribers_from_json_and_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3")
    as_json = tmp_path / "subs.json"
    as_json.write_text(
        '{"subscribers": [{"name": "a", "url": "http://127.0.0.1:1/h", "secret": "s1", "kinds": ["spoofing"]}]}'
    )
    as_yaml = tmp_path / "subs.yaml"
    as_yaml.write_text(
        "subscribers:\n"
        "  - {name: b, url: 'https://x.example/h', secret_env: HOOK_SECRET, severities: [high, critical]}\n"
    )
    (a,) = load_subscribers(as_json)
    (b,) = load_subscribers(as_yaml)
    assert a.kinds == {AlertKind.SPOOFING} and a.secret_bytes() == b"s1"
    assert b.severities == {Severity.HIGH, Severity.CRITICAL} and b.secret_bytes() == b"s3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"subscribers": [{"name": "a", "url": "ftp://x", "secret": "s"}]}', "url"),
        ('{"subscribers": [{"name": "a", "url": "http://x"}]}', "needs a secret"),
        (
            '{"subscribers": [{"name": "a", "url": "http://x", "secret": "s"}, '
            '{"name": "a", "url": "http://y", "secret": "s"}]}',
            "unique",
        ),
        ("{not json", "not valid"),
    ],
)
def test_bad_subscriber_files_fail_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "subs.json"
    path.write_text(text)
    with pytest.raises(TapewatchError, match=message):
        load_subscribers(path)


def test_collector_tuning_is_undone_on_exit() -> None:
    before = gc.get_threshold()
    with tuned_for_batches():
        assert gc.get_threshold()[0] == BATCH_GC_THRESHOLD and gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_sink_refuses_reference_data() -> None:
    with pytest.raises(TapewatchError, match=r"ref\.accounts is reference data"):
        resolve_topics(["alerts", "ref.accounts"])
