"""Sample lines of the market-by-order formats and the FIX drop copy, for the readers' tests and the replay's."""

from __future__ import annotations

import simplefix

from tapewatch.generators.lob_market import LobConfig

HEADER = (
    "ts_recv,ts_event,rtype,publisher_id,instrument_id,action,side,price,size,channel_id,order_id,flags,ts_in_delta,"
    "sequence,symbol"
)
ROWS = [
    "1700000000200000000,1700000000123456789,160,2,42,R,N,9223372036854775807,0,0,0,8,0,10,AAPL",
    "1700000000200000000,1700000000123456789,160,2,42,A,B,189500000000,100,0,7,40,0,11,AAPL",
    "1700000000300000000,1700000000250000000,160,2,42,A,A,189510000000,50,0,8,128,0,12,AAPL",
    "1700000000300000000,1700000000251000000,160,2,42,N,N,9223372036854775807,0,0,0,128,0,13,AAPL",
    "1700000000400000000,1700000000300000000,160,2,42,T,B,189510000000,20,0,0,0,0,14,AAPL",
    "1700000000400000000,1700000000300000000,160,2,42,F,A,189510000000,20,0,8,128,0,14,AAPL",
    "1700000000500000000,1700000000400000000,160,2,42,C,B,189500000000,100,0,7,128,0,15,AAPL",
]

MESSAGES = [
    "34200.004241176,1,16113575,18,5853300,1",
    "34200.005000000,1,16113584,10,5854000,-1",
    "34200.025552082,4,16113584,4,5854000,-1",
    "34200.201743415,2,16113575,8,5853300,1",
    "34200.314000000,5,0,100,5853600,-1",
    "34200.400000000,3,16113575,10,5853300,1",
    "34201.000000000,6,-1,5000,5853500,1",
    "34202.000000000,7,0,0,-1,-1",
]


def report(parties: tuple[tuple[str, str], ...] = (), **tags: str | float) -> bytes:
    fields = {
        35: "8",
        49: "VENUE",
        56: "FIRM",
        1: "ACC-7",
        11: "c1",
        37: "V123",
        17: "E1",
        150: "F",
        39: "1",
        55: "2330",
        54: "1",
        38: "1000",
        40: "2",
        44: "580.5",
        32: "200",
        31: "580.5",
        14: "200",
        151: "800",
        60: "20261127-01:02:03.456",
    } | {int(k.removeprefix("t")): str(v) for k, v in tags.items()}
    message = simplefix.FixMessage()
    message.append_pair(8, "FIX.4.4")
    for tag, value in fields.items():
        if value != "":
            message.append_pair(tag, value)
    if parties:
        message.append_pair(453, len(parties))
    for party, role in parties:
        message.append_pair(448, party)
        message.append_pair(452, role)
    return bytes(message.encode())


def firm_market(seed: int, symbols: int, minutes: float, **overrides: object) -> LobConfig:
    """A short order-book market with its orders and every manipulator trading through the firm, episodes from the
    first minute on: small enough for a unit test, with episodes on most symbols."""
    fields: dict[str, object] = {
        "quiet_open_s": 60,
        "episode_gap_s": 60,
        "news": False,
        "orders": True,
        "firm_agents": 1.0,
    } | overrides
    return LobConfig(symbols=symbols, minutes=minutes, seed=seed, **fields)  # type: ignore[arg-type]
