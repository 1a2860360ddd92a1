"""TWSE daily history (``STOCK_DAY``, one stock-month per request) → a Parquet file of daily bars.

The answer's ``fields`` name the columns, and their number changed over the years (9, later 10 with a
notes column), so rows are read by field name, never by position. Dates are ROC (year − 1911), numbers
carry thousands commas, and the change column may be marked ``X`` (not comparable with the previous close,
e.g. on an ex-rights day), which becomes NaN rather than a change nobody can use.

Same politeness as the MIS poller: at least 5 s between requests (from the previous answer, with jitter) and
exponential back-off on errors, because the exchange blocks clients that fetch faster.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
import pandas as pd
from yarl import URL

from tapewatch.backoff import Backoff
from tapewatch.errors import TapewatchError
from tapewatch.producers.framework import Pacer, sleep_or_stop
from tapewatch.producers.twse import TAIPEI, polite_session, request_interval
from tapewatch.settings import Settings

log = logging.getLogger(__name__)

STOCK_DAY_PATH: Final = "/exchangeReport/STOCK_DAY"
COLUMNS: Final = ("symbol", "date", "open", "high", "low", "close", "volume", "turnover", "trades", "change")
#: Field names as the exchange spells them (Chinese site, and the English site's equivalents).
FIELD_NAMES: Final[dict[str, str]] = {
    "日期": "date",
    "成交股數": "volume",
    "成交金額": "turnover",
    "開盤價": "open",
    "最高價": "high",
    "最低價": "low",
    "收盤價": "close",
    "漲跌價差": "change",
    "成交筆數": "trades",
    "Date": "date",
    "Trade Volume": "volume",
    "Trade Value": "turnover",
    "Opening Price": "open",
    "Highest Price": "high",
    "Lowest Price": "low",
    "Closing Price": "close",
    "Change": "change",
    "Transaction": "trades",
}
REQUIRED: Final = ("date", "volume", "turnover", "open", "high", "low", "close", "change", "trades")
NO_DATA_MARK: Final = "沒有符合條件"  # in "很抱歉，沒有符合條件的資料!": a month without trading, not an error

_DATE = re.compile(r"(\d{2,4})/(\d{1,2})/(\d{1,2})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_TAG = re.compile(r"<[^>]*>")
_CODE = re.compile(r"[0-9A-Za-z]{4,6}")
_CHANNEL = re.compile(r"(tse|otc)_([0-9A-Za-z]+)\.tw")


class StockDayError(ValueError):
    """An answer we cannot use. ``retryable`` is False when asking again cannot help (a layout we do not know)."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__(reason)


@dataclass(slots=True)
class StockDayMonth:
    frame: pd.DataFrame
    no_data: bool = False
    #: rows that did not fit (wrong length, unparseable number or date), with why
    skipped: list[str] = field(default_factory=list)


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": pd.Series([], dtype="object"),
            "date": pd.Series([], dtype="datetime64[ns]"),
            "open": pd.Series([], dtype="float64"),
            "high": pd.Series([], dtype="float64"),
            "low": pd.Series([], dtype="float64"),
            "close": pd.Series([], dtype="float64"),
            "volume": pd.Series([], dtype="int64"),
            "turnover": pd.Series([], dtype="int64"),
            "trades": pd.Series([], dtype="int64"),
            "change": pd.Series([], dtype="float64"),
        }
    )


def roc_date(text: str) -> date:
    """``"115/02/02"`` → 2026-02-02. A four-digit year is taken as Gregorian already."""
    match = _DATE.search(text)
    if match is None:
        raise ValueError(f"not a date: {text!r}")
    year, month, day = (int(part) for part in match.groups())
    return date(year + 1911 if year < 1911 else year, month, day)


def _clean(text: str) -> str:
    return _TAG.sub("", text).replace(",", "").strip()


def parse_float(text: str) -> float:
    """``"1,750.00"`` → 1750.0; ``"--"`` (no trade that day) and ``""`` → NaN."""
    cleaned = _clean(text)
    if cleaned in ("", "--", "---", "-"):
        return math.nan
    return float(cleaned)


def parse_int(text: str) -> int:
    cleaned = _clean(text)
    if not cleaned.isdigit():
        raise ValueError(f"not a whole number: {text!r}")
    return int(cleaned)


def parse_change(text: str) -> float:
    """``"+35.00"`` → 35.0, ``"-10.00"`` → -10.0, ``" 0.00"`` → 0.0, ``"X0.00"`` (not comparable) → NaN."""
    cleaned = _clean(text)
    if cleaned.upper().startswith("X"):
        return math.nan
    return parse_float(cleaned)


def parse_stock_day(body: bytes, symbol: str, month: date | None = None) -> StockDayMonth:
    """One STOCK_DAY answer → the month's daily bars of ``symbol``.

    Rows outside ``month`` (when given) are skipped: the exchange answers for the month of the date asked,
    so anything else is a stale or misrouted answer. Raises :class:`StockDayError` for an unusable answer.
    """
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise StockDayError(f"non-JSON body ({len(body)} bytes; throttled?)") from None
    if not isinstance(answer, dict):
        raise StockDayError(f"answer is a JSON {type(answer).__name__}, not an object")
    stat = answer.get("stat")
    if isinstance(stat, str) and NO_DATA_MARK in stat:
        return StockDayMonth(empty_frame(), no_data=True)
    if stat != "OK":
        raise StockDayError(f"stat {stat!r}")
    fields = answer.get("fields")
    rows = answer.get("data", [])
    if not isinstance(fields, list) or not all(isinstance(name, str) for name in fields):
        raise StockDayError("fields: missing or not a list of names", retryable=False)
    if not isinstance(rows, list):
        raise StockDayError("data: not a list", retryable=False)
    position = {FIELD_NAMES[name.strip()]: i for i, name in enumerate(fields) if name.strip() in FIELD_NAMES}
    missing = [name for name in REQUIRED if name not in position]
    if missing:
        raise StockDayError(f"fields: no column for {', '.join(missing)} in {fields}", retryable=False)

    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != len(fields) or not all(isinstance(v, str) for v in row):
            skipped.append(f"row does not match the {len(fields)} fields: {str(row)[:120]}")
            continue
        try:
            day = roc_date(row[position["date"]])
            record = {
                "symbol": symbol,
                "date": pd.Timestamp(day),
                "open": parse_float(row[position["open"]]),
                "high": parse_float(row[position["high"]]),
                "low": parse_float(row[position["low"]]),
                "close": parse_float(row[position["close"]]),
                "volume": parse_int(row[position["volume"]]),
                "turnover": parse_int(row[position["turnover"]]),
                "trades": parse_int(row[position["trades"]]),
                "change": parse_change(row[position["change"]]),
            }
        except ValueError as exc:
            skipped.append(f"{exc}: {str(row)[:120]}")
            continue
        if month is not None and (day.year, day.month) != (month.year, month.month):
            skipped.append(f"date {day} outside the month asked for ({month:%Y-%m})")
            continue
        records.append(record)
    if not records:
        return StockDayMonth(empty_frame(), skipped=skipped)
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return StockDayMonth(frame.astype(empty_frame().dtypes.to_dict()), skipped=skipped)


def combine(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Months → one frame, sorted by symbol and date, a day fetched twice kept once."""
    parts = [frame for frame in frames if not frame.empty]
    if not parts:
        return empty_frame()
    combined = pd.concat(parts, ignore_index=True)
    combined = combined.drop_duplicates(subset=["symbol", "date"], keep="last")
    return combined.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


# --- months and symbols -------------------------------------------------------------------------------------
def parse_month(text: str) -> date:
    match = _MONTH.fullmatch(text.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"month must look like 2024-01, got {text!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def month_range(start: str, end: str, today: date | None = None) -> list[date]:
    """First days of the months ``start``..``end`` inclusive (``YYYY-MM``); none may lie in the future."""
    first, last = parse_month(start), parse_month(end)
    if last < first:
        raise ValueError(f"end {end} is before start {start}")
    current = (today or datetime.now(UTC).astimezone(TAIPEI).date()).replace(day=1)
    if last > current:
        raise ValueError(f"end {end} is after the current month {current:%Y-%m}")
    months: list[date] = []
    cursor = first
    while cursor <= last:
        months.append(cursor)
        cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
    return months


def parse_symbols(items: Iterable[str]) -> list[str]:
    """Stock codes from ``2330``, ``2330,2317`` or MIS channels ``tse_2330.tw``; deduplicated, in order."""
    codes: list[str] = []
    for item in items:
        for part in item.split(","):
            text = part.strip()
            if not text:
                continue
            channel = _CHANNEL.fullmatch(text)
            if channel is not None:
                if channel.group(1) == "otc":
                    raise ValueError(f"{text}: STOCK_DAY covers TWSE-listed (tse) stocks only")
                text = channel.group(2)
            if not _CODE.fullmatch(text):
                raise ValueError(f"not a stock code: {text!r} (expected e.g. 2330)")
            if text not in codes:
                codes.append(text)
    return codes


# --- fetching -----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class FetchReport:
    frame: pd.DataFrame
    requests: int = 0
    empty_months: int = 0
    skipped_rows: int = 0
    errors: int = 0
    backoffs: int = 0
    backoff_seconds: float = 0.0


MonthDone = Callable[[str, date, int], None]


class TwseDailyFetcher:
    """Sequential, polite STOCK_DAY downloads.

    ``test_interval_s`` lowers the 5 s spacing for tests against a local server only: it is refused unless
    ``settings.sources.twse_www_url`` is a loopback address.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        timeout_s: float = 20.0,
        max_attempts: int = 5,
        max_backoff_s: float = 120.0,
        rng: random.Random | None = None,
        test_interval_s: float | None = None,
    ) -> None:
        self.settings = settings
        base = settings.sources.twse_www_url.rstrip("/")
        self.interval_s = interval = request_interval(base, settings, test_interval_s)
        self.url = URL(base + STOCK_DAY_PATH)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, 5.0))
        self.max_attempts = max(1, max_attempts)
        self.rng = rng or random.Random()
        self.pacer = Pacer(interval, jitter_s=0.1 * interval, rng=self.rng)
        self.backoff = Backoff(base_s=interval, cap_s=max(max_backoff_s, interval), rng=self.rng)

    def month_url(self, symbol: str, month: date) -> URL:
        return self.url.with_query({"response": "json", "date": f"{month:%Y%m}01", "stockNo": symbol})

    async def _get(self, session: aiohttp.ClientSession, symbol: str, month: date) -> bytes:
        try:
            async with session.get(self.month_url(symbol, month)) as response:
                body = await response.read()
                if response.status != 200:
                    raise StockDayError(f"HTTP {response.status}")
                return body
        finally:
            self.pacer.done()  # the server saw this request before now: space the next one from here

    async def _fetch_month(
        self, session: aiohttp.ClientSession, symbol: str, month: date, report: FetchReport, stop: asyncio.Event
    ) -> StockDayMonth | None:
        """The month's answer after retries; None when asked to stop meanwhile."""
        last_error = ""
        for attempt in range(1, self.max_attempts + 1):
            if await self.pacer.wait(stop):
                return None
            report.requests += 1
            try:
                parsed = parse_stock_day(await self._get(session, symbol, month), symbol, month)
            except StockDayError as exc:
                if not exc.retryable:
                    raise TapewatchError(f"STOCK_DAY {symbol} {month:%Y-%m}: {exc}") from None
                last_error = str(exc)
            except TimeoutError:
                last_error = "timeout"
            except (aiohttp.ClientError, OSError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                self.backoff.reset()
                return parsed
            report.errors += 1
            if attempt == self.max_attempts:
                break
            delay = self.backoff.next_delay()
            report.backoffs += 1
            report.backoff_seconds += delay
            log.warning(
                "back-off",
                extra={
                    "fields": {
                        "stage": "fetch:twse-daily",
                        "symbol": symbol,
                        "month": f"{month:%Y-%m}",
                        "reason": last_error,
                        "delay_s": round(delay, 2),
                    }
                },
            )
            if await sleep_or_stop(stop, delay):
                return None
        raise TapewatchError(
            f"STOCK_DAY {symbol} {month:%Y-%m}: {last_error} (gave up after {self.max_attempts} attempts)"
        )

    async def fetch(
        self,
        symbols: Sequence[str],
        months: Sequence[date],
        on_month: MonthDone | None = None,
        stop: asyncio.Event | None = None,
    ) -> FetchReport:
        """Every month of every symbol, one request at a time; ``on_month(symbol, month, rows)`` after each.

        When ``stop`` is set the report holds the months fetched so far.
        """
        stop = stop or asyncio.Event()
        report = FetchReport(empty_frame())
        frames: list[pd.DataFrame] = []
        headers = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) tapewatch/0.1", "Accept": "application/json"}
        async with polite_session(headers, self.timeout) as session:
            for symbol in symbols:
                if stop.is_set():
                    break
                for month in months:
                    parsed = await self._fetch_month(session, symbol, month, report, stop)
                    if parsed is None:
                        break
                    if parsed.no_data:
                        report.empty_months += 1
                    for reason in parsed.skipped:
                        log.warning("STOCK_DAY %s %s: skipped a row: %s", symbol, f"{month:%Y-%m}", reason)
                    report.skipped_rows += len(parsed.skipped)
                    frames.append(parsed.frame)
                    if on_month is not None:
                        on_month(symbol, month, len(parsed.frame))
        report.frame = combine(frames)
        return report


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write atomically: a reader never sees half a file, and a failed run leaves the old one in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    frame.to_parquet(partial, index=False)
    partial.replace(path)
    return path


def output_path(out: Path, start: date, end: date) -> Path:
    """``*.parquet`` is the file itself; anything else is a directory to put a file named by the range in."""
    if out.suffix == ".parquet":
        return out
    return out / f"twse_daily_{start:%Y%m}_{end:%Y%m}.parquet"
