"""No credential is ever printed or logged: every form in every URL setting, masked in `config show`, in
`tapewatch run`'s hints, in error lines and in both log formats."""

from __future__ import annotations

import io
import logging

import pytest
from typer.testing import CliRunner

from tapewatch.cli.app import cli, query_hints
from tapewatch.logs import JsonFormatter, RedactingFormatter
from tapewatch.secrets import redact
from tapewatch.settings import ElasticsearchSettings, PostgresSettings, Settings

SECRET = "Sup3r-S3cret"
FORMS = {
    "user-info": f"postgresql+psycopg2://tw:{SECRET}@db.internal:5432/tw",
    "percent-encoded": f"postgresql+psycopg2://tw:{SECRET}%40%2F@db:5432/tw",
    "query password": f"postgresql+psycopg2://tw@db/tw?sslmode=require&password={SECRET}",
    "query sslpassword": f"postgresql+psycopg2://tw@db/tw?sslpassword={SECRET}",
    "query token (case)": f"https://search.internal:9200/?Token={SECRET}",
    "api key": f"https://search.internal:9200/x?api_key={SECRET}&pretty",
    "bare token user-info": f"https://{SECRET}@search.internal:9200",
    "es user-info": f"https://elastic:{SECRET}@search.internal:9200",
    "websocket": f"wss://u:{SECRET}@stream.example:9443/ws",
}


@pytest.mark.parametrize("form", FORMS)
def test_every_form_is_masked_and_the_rest_stays_readable(form: str) -> None:
    url = FORMS[form]
    shown = redact(url)
    assert SECRET not in shown and "********" in shown
    assert url.split("://")[0] in shown and ("internal" in shown or "example" in shown or "db" in shown)


def test_lists_of_urls_are_masked_each() -> None:
    proxies = f"http://u1:{SECRET}@p1:3128,http://u2:{SECRET}x@p2:3128,http://p3:3128"
    shown = redact(proxies)
    assert SECRET not in shown and shown.count("********") == 2 and "http://p3:3128" in shown


def test_config_show_masks_every_url_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAPEWATCH_POSTGRES_URL", FORMS["query password"].replace("tw@", f"tw:{SECRET}@"))
    monkeypatch.setenv("TAPEWATCH_ES_URL", FORMS["es user-info"])
    monkeypatch.setenv("TAPEWATCH_TWSE_PROXIES", f"http://u:{SECRET}@proxy:3128")
    monkeypatch.setenv("TAPEWATCH_BINANCE_WS_URL", FORMS["websocket"])
    monkeypatch.setenv("TAPEWATCH_ES_PASSWORD", SECRET)
    from tapewatch import settings as settings_module

    settings_module.get_settings.cache_clear()
    shown = Settings().masked()
    assert not [name for name, text in shown.items() if SECRET in text]
    assert "search.internal" in shown["es_url"] and "proxy:3128" in shown["twse_proxies"]
    # the command itself, wide enough that no value is wrapped (a wrapped secret would hide from the check)
    result = CliRunner().invoke(cli(), ["config", "show"], env={"COLUMNS": "400"})
    settings_module.get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "search.internal" in result.output and "proxy:3128" in result.output


def test_run_prints_no_password() -> None:
    cfg = Settings(
        postgres=PostgresSettings(url=FORMS["user-info"]), es=ElasticsearchSettings(url=FORMS["es user-info"])
    )
    hints = "\n".join(query_hints(cfg))
    assert SECRET not in hints and "db.internal" in hints and "search.internal" in hints


@pytest.mark.parametrize("formatter", [RedactingFormatter("%(message)s"), JsonFormatter()])
def test_logs_mask_credentials_in_messages_and_tracebacks(formatter: logging.Formatter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tapewatch.test.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("cannot reach %s", FORMS["es user-info"])
        try:
            raise ConnectionError(f"connection to {FORMS['user-info']} failed")
        except ConnectionError:
            logger.exception("sink down")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text
    assert "search.internal" in text and "db.internal" in text
