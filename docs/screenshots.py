"""Regenerate the README's dashboard screenshots (docs/img/*.png) from the demo's data.

    python docs/screenshots.py [--drift-after 30] [--timeout 600]

Runs ``monitor demo`` (a fresh embedded Postgres, two days of history with its incident, live
traffic), waits until the live drift it injects has fired an alert, and photographs every page of
its dashboard in Debian's headless Chromium (apt-get install chromium chromium-driver).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from dashboards.headless import start_chromium
from monitor.demo_data import MODEL_NAME

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "img"
PAGES = [
    ("overview.png", "/", "#models .model-row"),
    ("model.png", "", "#drift-heatmap .main-svg"),  # the demo's two days: see model_page()
    ("alerts.png", "/alerts", "#alerts-table"),
]


def model_page() -> str:
    """The model page over the demo's two days of history and its live hour."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    span = {"from": (end - timedelta(hours=49)).isoformat(), "to": end.isoformat(), "window": "1h"}
    return f"/models/{quote(MODEL_NAME)}?{urlencode(span)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(driver: webdriver.Chrome, selector: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not driver.execute_script(
        "return document.querySelector(arguments[0]) !== null && document.querySelector('._dash-loading') === null"
        " && [...document.querySelectorAll('#page .dash-graph')].every(g => g.querySelector('.main-svg'))",
        selector,
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(selector)
        time.sleep(0.1)
    time.sleep(0.5)  # transitions settle


def start_demo(drift_after: float, timeout: float) -> tuple[subprocess.Popen[str], str]:
    """``monitor demo`` on free ports; returns it and its dashboard's URL once the live drift has
    fired an alert (the pages then show history, incident and the live drift)."""
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_DATABASE_URL"}  # the embedded database
    cmd = [
        sys.executable, "-m", "dashboards.cli", "demo", "--drift-after", str(drift_after),
        "--metrics-every", "10", "--port", str(_free_port()), "--dashboard-port", str(_free_port()),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    url = None
    injected = False
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        print(line, end="", flush=True)
        found = re.search(r"dashboard\s+(http://\S+?)/?\s", line)
        url = url or (found.group(1) if found else None)
        injected = injected or "[story] drift injected" in line
        if url and injected and "[on-call] FIRING" in line:
            # keep reading the console, or the demo blocks on a full pipe
            threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
            return proc, url
        if time.monotonic() > deadline:
            break
    proc.terminate()
    raise TimeoutError("the demo did not fire an alert on its live drift in time")


def photograph(url: str) -> None:
    driver = start_chromium("1400,1000", ("--hide-scrollbars",))
    OUT.mkdir(exist_ok=True)
    try:
        for filename, path, ready in PAGES:
            driver.get(url + (path or model_page()))
            _ready(driver, ready)
            driver.save_screenshot(str(OUT / filename))
            print("wrote", OUT / filename)
        driver.get(url + "/reports")
        _ready(driver, "#report-build")
        driver.find_element(By.ID, "report-build").click()
        _ready(driver, "#report-built", timeout=180)
        time.sleep(5)  # the report draws its charts in its frame
        driver.save_screenshot(str(OUT / "reports.png"))
        print("wrote", OUT / "reports.png")
        driver.get(url + model_page())
        _ready(driver, PAGES[1][2])
        heatmap = driver.find_element(By.CSS_SELECTOR, "#drift-heatmap .nsewdrag")
        ActionChains(driver).move_to_element(heatmap).click().perform()
        _ready(driver, "#distribution-graph .main-svg")
        driver.execute_script("document.querySelector('#distribution').scrollIntoView()")
        time.sleep(0.5)
        driver.save_screenshot(str(OUT / "distribution.png"))
        print("wrote", OUT / "distribution.png")
    finally:
        driver.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drift-after", type=float, default=30.0, help="seconds of live traffic before the drift")
    ap.add_argument("--timeout", type=float, default=600.0, help="give up if no alert fires by then")
    args = ap.parse_args()
    proc, url = start_demo(args.drift_after, args.timeout)
    try:
        photograph(url)
    finally:
        proc.terminate()
        proc.wait(60)


if __name__ == "__main__":
    main()
