"""Browser tests: headless Chromium from Debian's packages (``chromium``, ``chromium-driver``)
driven by Selenium against the dashboard served over a seeded real Postgres.

Without /usr/bin/chromium these tests are skipped, loudly — unless MONITOR_REQUIRE_BROWSER=1
(CI sets it), where a missing browser fails them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime

import pytest
from selenium import webdriver

from dashboards.app import create_dashboard
from dashboards.headless import available, start_chromium
from dashboards.sample_data import seed
from dashboards.serve import DashboardServer
from monitor.services.catalog import keys
from monitor.services.infra.context import ServiceContext
from tests.conftest import empty_database


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    if not available():
        if os.environ.get("MONITOR_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here: apt-get install chromium chromium-driver")
        pytest.skip("no Chromium: apt-get install chromium chromium-driver to run the browser tests")
    d = start_chromium(capabilities={"goog:loggingPrefs": {"browser": "ALL"}})
    d.set_page_load_timeout(30)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def seeded(session_ctx: ServiceContext) -> Iterator[tuple[ServiceContext, datetime]]:
    empty_database(session_ctx)
    end = seed(session_ctx)
    yield session_ctx, end
    empty_database(session_ctx)


@pytest.fixture(scope="module")
def dashboard(seeded: tuple[ServiceContext, datetime]) -> Iterator[tuple[str, dict[str, str], ServiceContext]]:
    """The dashboard with its login, and keys to log in with."""
    ctx, _ = seeded
    made = {s.value: keys.create_key(ctx, f"browser-{s.value}", [s])[0] for s in keys.Scope}
    server = DashboardServer(create_dashboard(ctx), "127.0.0.1", 0).start()
    yield server.url, made, ctx
    server.stop()
