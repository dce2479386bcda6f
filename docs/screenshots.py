"""Regenerate the README's dashboard screenshots (docs/img/*.png).

    python docs/screenshots.py

Seeds a fresh database with ``dashboards.sample_data`` (MONITOR_DATABASE_URL's server, else an
embedded Postgres in a temporary folder), serves the dashboard, and photographs its pages in
Debian's headless Chromium (apt-get install chromium chromium-driver).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from dashboards.app import create_dashboard
from dashboards.headless import start_chromium
from dashboards.sample_data import MODEL, seed
from dashboards.serve import DashboardServer
from monitor.config import Settings
from monitor.services.bootstrap import open_context

OUT = Path(__file__).parent / "img"
PAGES = [
    ("overview.png", "/", "#models .model-row"),
    ("model.png", f"/models/{quote(MODEL)}?range=24h&window=1h", "#drift-heatmap .main-svg"),
    ("alerts.png", "/alerts", "#alerts-table"),
]


def _ready(driver: webdriver.Chrome, selector: str) -> None:
    deadline = time.monotonic() + 30
    while not driver.execute_script(
        "return document.querySelector(arguments[0]) !== null && document.querySelector('._dash-loading') === null"
        " && [...document.querySelectorAll('#page .dash-graph')].every(g => g.querySelector('.main-svg'))",
        selector,
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(selector)
        time.sleep(0.1)
    time.sleep(0.5)  # transitions settle


def main() -> None:
    server_url = os.environ.get("MONITOR_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        if server_url:  # a fresh database on that server, dropped afterwards
            name = f"screenshots_{uuid.uuid4().hex[:8]}"
            admin = server_url.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = admin.rsplit("/", 1)[0] + f"/{name}"
        else:
            url = None
        ctx = open_context(Settings(database_url=url, data_dir=Path(tmp)), migrate=True)
        seed(ctx)
        server = DashboardServer(create_dashboard(ctx, open_access=True), "127.0.0.1", 0).start()
        driver = start_chromium("1400,1000", ("--hide-scrollbars",))
        OUT.mkdir(exist_ok=True)
        try:
            for filename, path, ready in PAGES:
                driver.get(server.url + path)
                _ready(driver, ready)
                driver.save_screenshot(str(OUT / filename))
                print("wrote", OUT / filename)
            driver.get(server.url + PAGES[1][1])
            _ready(driver, PAGES[1][2])
            ActionChains(driver).move_to_element(
                driver.find_element(By.CSS_SELECTOR, "#drift-heatmap .nsewdrag")
            ).click().perform()
            _ready(driver, "#distribution-graph .main-svg")
            driver.execute_script("document.querySelector('#distribution').scrollIntoView()")
            time.sleep(0.5)
            driver.save_screenshot(str(OUT / "distribution.png"))
            print("wrote", OUT / "distribution.png")
        finally:
            driver.quit()
            server.stop()
            ctx.close()
        if server_url:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
