"""Malformed and adversarial market-data records: a fixed corpus of shapes, and seeded random mutants.

Every record here must end in ``dlq.streams`` (the contract, the venue's plausibility bounds or the skew check
refuse it), except the mutants the contract happens to accept, which are only ever for symbols of their own
(``FUZZ…``) so that they can never change what the valid symbols produce.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

#: bytes: as large as the broker takes (its default limit is 1,048,588 per batch), so its dead letter with
#: headers would not fit a producer's default 1,000,000-byte message limit unless it is cut
BIG = 999_900


@dataclass(frozen=True, slots=True)
class Poison:
    name: str
    topic: str  # "quotes" or "books"
    key: bytes | None
    value: bytes


def _quote(symbol: str, ts: int, **fields: object) -> dict[str, object]:
    return {"symbol": symbol, "venue": "sim", "ts": ts, "price": 100.0, "size": 1000.0, "side": "B", **fields}


def _book(symbol: str, ts: int, **fields: object) -> dict[str, object]:
    return {"symbol": symbol, "venue": "sim", "ts": ts, "bids": [[99.9, 1000.0]], "asks": [[100.1, 1000.0]], **fields}


def _j(data: object) -> bytes:
    # the standard library's encoder: it writes integers beyond 64 bits, NaN and Infinity as a careless
    # producer would (orjson refuses the first and writes the others as null)
    return json.dumps(data, separators=(",", ":")).encode()


def corpus(symbol: str, ts: int) -> list[Poison]:
    """51 shapes of bad quotes and books for ``symbol`` (a symbol of the session) around event time ``ts``."""
    key = symbol.encode()
    q, b = _quote(symbol, ts), _book(symbol, ts)
    far = ts + 300 * 86_400_000  # valid for the contract, ten months ahead of the partition
    shapes: list[tuple[str, str, bytes | None, bytes]] = [
        ("empty payload", "quotes", key, b""),
        ("not JSON", "quotes", key, b"garbage<>"),
        ("JSON array", "quotes", key, b"[1,2,3]"),
        ("JSON string", "quotes", key, b'"quote"'),
        ("JSON null", "quotes", key, b"null"),
        ("JSON number", "quotes", key, b"42"),
        ("truncated JSON", "quotes", key, _j(q)[:-7]),
        ("invalid UTF-8", "quotes", key, b'{"symbol":"\xff\xfe","venue":"sim","ts":1}'),
        ("missing symbol", "quotes", key, _j({k: v for k, v in q.items() if k != "symbol"})),
        ("missing ts", "quotes", key, _j({k: v for k, v in q.items() if k != "ts"})),
        ("missing venue", "quotes", key, _j({k: v for k, v in q.items() if k != "venue"})),
        ("negative ts", "quotes", key, _j({**q, "ts": -5})),
        ("ts 2**70", "quotes", key, b'{"symbol":"%s","venue":"sim","ts":%d,"price":1.0}' % (key, 2**70)),
        ("ts as text", "quotes", key, _j({**q, "ts": str(ts)})),
        ("ts as float", "quotes", key, _j({**q, "ts": ts + 0.5})),
        ("ts in 2100", "quotes", key, _j({**q, "ts": 4_102_444_800_000 + 1})),
        ("ts months ahead", "quotes", key, _j({**q, "ts": far})),
        ("book ts months ahead", "books", key, _j({**b, "ts": far})),
        ("price 1e308", "quotes", key, _j({**q, "price": 1e308})),
        ("price NaN", "quotes", key, _j(q).replace(b"100.0", b"NaN", 1)),
        ("price Infinity", "quotes", key, _j(q).replace(b"100.0", b"Infinity", 1)),
        ("price negative", "quotes", key, _j({**q, "price": -1.0})),
        ("price zero", "quotes", key, _j({**q, "price": 0.0})),
        ("price as text", "quotes", key, _j({**q, "price": "100"})),
        ("size 1e300", "quotes", key, _j({**q, "size": 1e300})),
        ("size negative", "quotes", key, _j({**q, "size": -3.0})),
        ("size without price", "quotes", key, _j({**q, "price": None})),
        ("bid 1e308", "quotes", key, _j({**q, "bid": 1e308})),
        ("side X", "quotes", key, _j({**q, "side": "X"})),
        ("symbol of 10,000 characters", "quotes", b"A" * 10_000, _j(_quote("A" * 10_000, ts))),
        ("symbol with NUL", "quotes", b"A\x00B", _j(_quote("A\x00B", ts))),
        ("symbol with RTL mark", "quotes", "A\u200fB".encode(), _j(_quote("A\u200fB", ts))),
        ("symbol a space", "quotes", b" ", _j(_quote(" ", ts))),
        ("symbol empty", "quotes", b"", _j(_quote("", ts))),
        ("lone surrogate symbol", "quotes", key, b'{"symbol":"\\ud800","venue":"sim","ts":1}'),
        ("venue with a space", "quotes", key, _j({**q, "venue": "a venue"})),
        ("no key", "quotes", None, _j(q)),
        ("key of another symbol", "quotes", b"ZZZZ", _j(q)),
        ("1 MB of junk", "quotes", key, b"x" * BIG),
        ("1 MB symbol", "quotes", key, _j(_quote("S" * BIG, ts))),
        ("deep nesting", "quotes", key, b"[" * 100_000 + b"]" * 100_000),
        ("bids not a list", "books", key, _j({**b, "bids": 5})),
        ("level of three numbers", "books", key, _j({**b, "bids": [[99.9, 1.0, 3.0]]})),
        ("level price negative", "books", key, _j({**b, "bids": [[-1.0, 1.0]]})),
        ("six levels", "books", key, _j({**b, "bids": [[99.9 - i / 10, 1.0] for i in range(6)]})),
        ("bids out of order", "books", key, _j({**b, "bids": [[99.0, 1.0], [99.9, 1.0]]})),
        ("level size 1e300", "books", key, _j({**b, "asks": [[100.1, 1e300]]})),
        ("a book on the quotes topic", "quotes", key, _j(b)),
        ("a quote on the books topic", "books", key, _j(q)),
        ("crossed book", "books", key, _j({**b, "bids": [[100.2, 1000.0]]})),
        ("locked book", "books", key, _j({**b, "bids": [[100.1, 1000.0]]})),
    ]
    return [Poison(name, topic, k, v) for name, topic, k, v in shapes]


def mutants(rng: random.Random, ts: int, count: int) -> list[Poison]:
    """``count`` random mutations of plausible records of symbols ``FUZZ000``–``FUZZ049``: bytes flipped,
    cut, duplicated, fields set to extreme values."""
    out = []
    for i in range(count):
        symbol = f"FUZZ{rng.randrange(50):03d}"
        books = rng.random() < 0.3
        data = _book(symbol, ts + rng.randrange(-5_000, 5_000)) if books else _quote(symbol, ts)
        raw = _mutate(rng, data)
        out.append(Poison(f"mutant {i}", "books" if books else "quotes", symbol.encode(), raw))
    return out


_EXTREMES: tuple[object, ...] = (
    0,
    -1,
    2**63,
    2**64 + 1,
    1e308,
    -1e308,
    5e-324,
    "",
    "x" * 300,
    None,
    [],
    {},
    True,
    "\u0000",
    "\u202e",
)


def _mutate(rng: random.Random, data: dict[str, object]) -> bytes:
    how = rng.randrange(4)
    if how == 0:  # a field set to an extreme value
        field = rng.choice(list(data))
        return _j({**data, field: rng.choice(_EXTREMES)}) if rng.random() < 0.95 else _j(data)[:-1]
    raw = bytearray(_j(data))
    if how == 1:  # bytes flipped
        for _ in range(rng.randrange(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    if how == 2:  # cut
        return bytes(raw[: rng.randrange(len(raw))])
    return bytes(raw) + bytes(raw)  # two objects
