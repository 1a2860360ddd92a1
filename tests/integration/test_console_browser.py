"""The console in a real headless Chromium (Debian's, through Selenium and its chromedriver): sign in, watch a
new alert arrive in the open queue, open the case, see its charts and replay the book, take it and close it
with a disposition; an analyst's forbidden close is refused. Screenshots of the key pages go to
``reports/console/`` (docs/console.md shows copies)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import Engine, select, update

from tapewatch.console.app import create_app
from tapewatch.console.schema import accounts, cases
from tapewatch.records import Alert, AlertKind, ExecutionReport, NewsRef, Severity
from tapewatch.settings import PROJECT_ROOT, Settings
from tapewatch.sinks import db
from tests.browser import chromium, served
from tests.console_support import (
    PASSWORD,
    TENANT,
    add_user,
    console_schema,
    make_alert,
    seed_market,
    store_alerts,
)
from tests.stream_runs import private_topics

pytestmark = pytest.mark.integration
SHOTS = PROJECT_ROOT / "reports" / "console"
START = 1_763_000_000_000  # the alert's episode start (epoch ms)


@pytest.fixture
def console(services: Settings) -> Iterator[tuple[str, Engine]]:
    with console_schema(services) as settings:
        engine = db.make_engine(settings)
        add_user(engine, "ann")
        add_user(engine, "bob")
        add_user(engine, "sue", "supervisor")
        seed_market(engine, "ACME", "sim", START - 15 * 60_000, START + 16 * 60_000)
        store_alerts(engine, [with_news(make_alert("ACME", start=START, severity=Severity.HIGH))])
        with served(create_app(settings)) as url:
            yield url, engine
        engine.dispose()


def with_news(alert: Alert) -> Alert:
    """``alert`` with two items of news at its onset: one linked, one whose link is a script (never a link)."""
    news = [
        NewsRef(item_id="wire:2", ts=alert.window_start - 60_000, source="wire",
                title="ACME <b>wins</b> a supply contract", url="https://news.example/2", sentiment=0.4),
        NewsRef(item_id="wire:1", ts=alert.window_start - 600_000, source="wire", title="ACME names a new CFO",
                url="javascript:alert(1)", sentiment=None),
    ]  # fmt: skip
    evidence = {**alert.evidence, "news_at_onset": True, "news_count": 2}
    return alert.model_copy(update={"news": news, "evidence": evidence})


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def _wait(driver: WebDriver, seconds: float = 10) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, seconds)


def _load_by(driver: WebDriver, control: WebElement) -> None:
    """Click a link or submit button and wait until its page has replaced this one. Read too early, an element
    of the page being replaced fails in Chrome with an inspector error ("Node with given id does not belong to
    the document"), not as a stale element: while the old page is torn down, any error of it means "not yet",
    and the wait still fails if no new page comes."""
    old_page = driver.find_element(By.TAG_NAME, "html")
    control.click()
    WebDriverWait(driver, 10, ignored_exceptions=(WebDriverException,)).until(
        expected_conditions.staleness_of(old_page)
    )


def _sign_in(driver: WebDriver, url: str, name: str) -> None:
    driver.get(f"{url}/login")
    driver.find_element(By.NAME, "username").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    _load_by(driver, driver.find_element(By.CSS_SELECTOR, "form.login button"))
    _wait(driver).until(expected_conditions.presence_of_element_located((By.ID, "queue-rows")))


def _shot(driver: WebDriver, name: str) -> None:
    """The whole page (the window grown to its height, then restored)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = driver.get_window_size()
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(size["width"], min(max(height, 600), 4000))
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(SHOTS / f"{name}.png"))
    driver.set_window_size(size["width"], size["height"])


def _case_state(engine: Engine, symbol: str) -> tuple[str, str | None, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(cases.c.state, cases.c.assignee, cases.c.disposition).where(cases.c.symbol == symbol)
        ).one()
    return row.state, row.assignee, row.disposition


def test_an_analyst_works_a_case_from_queue_to_close(console: tuple[str, Engine], browser: WebDriver) -> None:
    url, engine = console
    _sign_in(browser, url, "ann")
    _wait(browser).until(lambda d: d.find_element(By.ID, "live").text == "live")
    store_alerts(
        engine, [make_alert("NEWCO", kind=AlertKind.PUMP_AND_DUMP, start=START + 3_600_000, severity=Severity.CRITICAL)]
    )
    _wait(browser, 5).until(lambda d: "NEWCO" in d.find_element(By.ID, "queue-rows").text)  # no reload
    _shot(browser, "queue")
    _load_by(browser, browser.find_element(By.LINK_TEXT, "ACME"))
    for kind in ("price", "volume", "book"):
        chart = _wait(browser).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, f"svg.chart-{kind}"))
        )
        assert int(chart.get_attribute("data-points") or 0) > 0, kind
    evidence = browser.find_element(By.ID, "evidence").text
    assert "≥ 6" in evidence and "✔" in evidence  # each value beside its rule's bar
    news = browser.find_element(By.ID, "news")
    assert "ACME <b>wins</b> a supply contract" in news.text and "+0.40" in news.text  # text, not markup
    links = [a.get_attribute("href") for a in news.find_elements(By.TAG_NAME, "a")]
    assert links == ["https://news.example/2"]  # the script link is shown as text only
    replay = browser.find_element(By.ID, "replay")
    _wait(browser).until(lambda d: replay.get_attribute("data-shown") is not None)
    shown = int(replay.get_attribute("data-shown") or 0)
    replay.find_element(By.CSS_SELECTOR, "button[data-step='10']").click()
    assert int(replay.get_attribute("data-shown") or 0) == shown + 10
    assert len(replay.find_elements(By.CSS_SELECTOR, ".ladder tbody tr")) == 5
    _shot(browser, "case")
    _load_by(browser, browser.find_element(By.ID, "take"))
    _wait(browser).until(lambda d: d.find_element(By.ID, "case-assignee").text == "ann")
    Select(browser.find_element(By.ID, "disposition")).select_by_value("true_positive")
    browser.find_element(By.ID, "close-note").send_keys(
        "Layers pulled 4 times as the bid moved; <script>alert(1)</script>"
    )
    _load_by(browser, browser.find_element(By.ID, "close"))
    _wait(browser).until(lambda d: "closed" in d.find_element(By.ID, "case-state").text)
    assert "<script>alert(1)</script>" in browser.find_element(By.ID, "notes").text  # shown as text, not run
    assert _case_state(engine, "ACME") == ("closed", "ann", "true_positive")


def test_a_forbidden_close_is_refused(console: tuple[str, Engine], browser: WebDriver) -> None:
    url, engine = console
    with engine.begin() as conn:
        conn.execute(update(cases).values(assignee="ann", state="in_review"))
    _sign_in(browser, url, "bob")
    _load_by(browser, browser.find_element(By.LINK_TEXT, "ACME"))
    Select(_wait(browser).until(lambda d: d.find_element(By.ID, "disposition"))).select_by_value("false_positive")
    browser.find_element(By.ID, "close-note").send_keys("not mine to close")
    _load_by(browser, browser.find_element(By.ID, "close"))
    refusal = _wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, ".error-page"))
    assert "403" in refusal.text and "assignee" in refusal.text
    assert _case_state(engine, "ACME") == ("in_review", "ann", None)
    browser.get(f"{url}/supervisor")
    assert "403" in browser.find_element(By.CSS_SELECTOR, ".error-page").text


def test_the_supervisor_sees_workload_and_false_positive_rates(console: tuple[str, Engine], browser: WebDriver) -> None:
    url, engine = console
    with engine.begin() as conn:
        conn.execute(update(cases).values(state="closed", disposition="false_positive", assignee="ann"))
    store_alerts(engine, [make_alert("OPEN1", start=START + 60_000)])
    _sign_in(browser, url, "sue")
    browser.get(f"{url}/supervisor")
    rates = _wait(browser).until(lambda d: d.find_element(By.ID, "fp-rates"))
    assert "spoofing" in rates.text and "100.0 %" in rates.text
    _shot(browser, "supervisor")


def test_a_firms_own_alert_shows_its_accounts_orders_and_their_other_cases(
    console: tuple[str, Engine], browser: WebDriver
) -> None:
    """A wash alert from the tenant's drop copy names accounts A1 and A2: its case page lists their execution reports
    on the symbol in the window (not another account's, not another tenant's) and the tenant's other case that names
    A1."""
    url, engine = console
    evidence = {"owner": "O1", "accounts": "A1;A2", "prints": 3, "volume": 1500.0, "hits": 1}
    wash = make_alert("ACME", kind=AlertKind.WASH_TRADING, start=START, tenant=TENANT)
    earlier = make_alert("ACME", kind=AlertKind.SPOOFING, start=START - 3_600_000, tenant=TENANT)
    earlier = earlier.model_copy(update={"evidence": {"account": "A1", "cycles": 2, "hits": 1}})
    store_alerts(engine, [wash.model_copy(update={"evidence": evidence}), earlier])

    def report(n: int, account: str, tenant: str = TENANT) -> ExecutionReport:
        return ExecutionReport(symbol="ACME", venue="sim", ts=START + n * 1_000, exec_id=f"E{n}", order_id=f"ORD-{n}",
                               tenant=tenant, account=account, exec_type="trade", side=("BUY", "SELL")[n % 2],
                               price=10.0, quantity=500.0, last_qty=500.0, last_price=10.0, cum_qty=500.0)  # fmt: skip

    # A1's bid rests at the first replayed snapshot's best bid (100.74 at START) and is cancelled before the next
    placed = ExecutionReport(symbol="ACME", venue="sim", ts=START - 500, exec_id="E9", order_id="ORD-9", tenant=TENANT,
                             account="A1", exec_type="new", side="BUY", price=100.74, quantity=400.0,
                             leaves_qty=400.0)  # fmt: skip
    pulled = ExecutionReport.from_dict(
        placed.model_dump() | {"ts": START + 1_500, "exec_id": "E9c", "exec_type": "canceled", "leaves_qty": 0.0}
    )
    reports = [report(1, "A1"), report(2, "A2"), report(3, "A3"), report(4, "A1", tenant="rival"), placed, pulled]
    with engine.begin() as conn:
        db.copy_rows(conn, db.executions, [db.record_doc(r) for r in reports])
    _sign_in(browser, url, "ann")
    browser.get(f"{url}/case?id={wash.alert_id}")
    table = _wait(browser).until(lambda d: d.find_element(By.ID, "firm-orders"))
    rows = [row.text for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    expected = [["A1", "ORD-9"], ["A1", "ORD-1"], ["A1", "ORD-9"], ["A2", "ORD-2"]]
    assert [row.split()[1:3] for row in rows] == expected, rows
    replay = browser.find_element(By.ID, "replay")
    _wait(browser).until(lambda d: replay.get_attribute("data-shown"))
    shown = int(replay.get_attribute("data-shown") or 0)
    assert [td.text for td in replay.find_elements(By.CSS_SELECTOR, ".ladder td.mine")] == ["100.74 ◆"]
    assert "ORD-9 new BUY @ 100.74" in replay.find_element(By.CSS_SELECTOR, ".replay-orders").text
    replay.find_element(By.CSS_SELECTOR, "button[data-step='1']").click()
    _wait(browser).until(lambda d: replay.get_attribute("data-shown") == str(shown + 1))
    assert not replay.find_elements(By.CSS_SELECTOR, ".ladder td.mine")
    since = replay.find_element(By.CSS_SELECTOR, ".replay-orders").text
    assert "ORD-9 canceled" in since and "ORD-1 trade" in since and "A3" not in since, since
    _shot(browser, "firm-case")
    others = browser.find_element(By.ID, "account-cases").text
    assert "spoofing" in others and "ACME" in others
    browser.get(f"{url}/case?id={make_alert('ACME', start=START).alert_id}")  # the public alert names no account
    assert not browser.find_elements(By.ID, "firm-orders")


@pytest.fixture
def console_with_topics(services: Settings) -> Iterator[tuple[str, Engine]]:
    """A console whose accounts page publishes to topics of its own."""
    with private_topics(services) as topical, console_schema(topical) as settings:
        engine = db.make_engine(settings)
        add_user(engine, "ada", "admin")
        add_user(engine, "ann")
        with served(create_app(settings)) as url:
            yield url, engine
        engine.dispose()


def test_an_admin_keeps_the_tenants_accounts(console_with_topics: tuple[str, Engine], browser: WebDriver) -> None:
    """The admin opens Accounts from the menu, adds an account with its owner and group, sees it listed and removes
    it; an analyst has no such menu entry."""
    url, engine = console_with_topics
    _sign_in(browser, url, "ada")
    _load_by(browser, browser.find_element(By.LINK_TEXT, "Accounts"))
    form = browser.find_element(By.CSS_SELECTOR, "form.account-form")
    for name, value in (("account", "ACC-7"), ("owner", "OWNER-7"), ("group", "RING-1")):
        form.find_element(By.NAME, name).send_keys(value)
    _load_by(browser, form.find_element(By.CSS_SELECTOR, "button"))
    assert "the stream has it" in browser.find_element(By.CSS_SELECTOR, ".outcome").text
    rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "table.accounts tbody tr")]
    assert len(rows) == 1 and rows[0].split()[:3] == ["ACC-7", "OWNER-7", "RING-1"], rows
    with engine.connect() as conn:
        assert conn.execute(select(accounts.c.owner, accounts.c.account_group)).all() == [("OWNER-7", "RING-1")]
    _shot(browser, "accounts")
    _load_by(browser, browser.find_element(By.CSS_SELECTOR, "table.accounts tbody tr button"))
    assert "forgotten" in browser.find_element(By.CSS_SELECTOR, ".outcome").text
    assert "No accounts yet." in browser.find_element(By.CSS_SELECTOR, "table.accounts").text
    browser.delete_all_cookies()
    _sign_in(browser, url, "ann")
    assert not browser.find_elements(By.LINK_TEXT, "Accounts")
