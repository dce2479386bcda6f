"""Headless Chromium from Debian's packages (``chromium``, ``chromium-driver``), as the browser
tests, the dashboard benchmark and the screenshot script drive it. Selenium is a test extra: it is
imported only when a browser is started, never by the dashboard itself."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Quiet and self-contained: no sandbox (containers, root), no GPU, nothing fetched in the background.
_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def available() -> bool:
    return os.path.exists(CHROMIUM) and bool(shutil.which(CHROMEDRIVER) or os.path.exists(CHROMEDRIVER))


def start_chromium(
    window: str = "1400,1600", extra_flags: tuple[str, ...] = (), capabilities: dict[str, Any] | None = None
) -> Chrome:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (*_FLAGS, f"--window-size={window}", *extra_flags):
        opts.add_argument(arg)
    for name, value in (capabilities or {}).items():
        opts.set_capability(name, value)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
