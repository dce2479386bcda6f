"""``/docs`` works without internet: Swagger UI renders every operation from assets this process
serves. The page's Content-Security-Policy allows this origin only, so an asset fetched from
anywhere else would be blocked (and the page would stay blank); the browser log shows none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from monitor.api.app import create_app
from monitor.server import ThreadedServer
from monitor.services.infra.context import ServiceContext
from tests.browser.test_dashboard import wait_for
from tests.servers import free_port


@pytest.fixture(scope="module")
def api_url(session_ctx: ServiceContext) -> Iterator[str]:
    server = ThreadedServer(create_app(ctx=session_ctx), "127.0.0.1", free_port()).start()
    yield server.url
    server.stop()


def test_the_api_docs_render_every_operation_from_this_origin_only(driver: webdriver.Chrome, api_url: str) -> None:
    driver.get_log("browser")  # start from an empty log
    driver.get(f"{api_url}/docs")
    documented = sum(len(methods) for methods in create_app().openapi()["paths"].values())
    shown = wait_for(
        lambda: len(ops) if len(ops := driver.find_elements(By.CSS_SELECTOR, ".opblock")) >= documented else 0,
        what="Swagger UI's operations",
    )
    assert shown == documented
    requested = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])"
    )
    assert requested and all(url.startswith(api_url) for url in requested), requested
    refused = [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not refused, refused
