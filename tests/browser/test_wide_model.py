"""The model page of a wide model (300 features) in a real browser: the heatmap shows the most
drifted features first, a page at a time, says how many more there are, and filters by name."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboards.app import create_dashboard
from dashboards.figures import HEATMAP_ROWS
from dashboards.serve import DashboardServer
from monitor.domain.schema import ModelSpec
from monitor.metrics.points import MetricPoint
from monitor.services.catalog import keys, registry
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.metric_store import record_points
from tests.browser.test_dashboard import console_errors, login, open_page, plot_data, wait_for
from tests.conftest import empty_database

WIDTH = 300
MODEL = "wide-browser"
# the most drifted: feature f7 (score 10x its threshold), then f123 (5x), then f250 (2x); the rest below
DRIFTED = {"f7": 1.0, "f123": 0.5, "f250": 0.2}


@pytest.fixture(scope="module")
def wide(session_ctx: ServiceContext) -> Iterator[tuple[str, str, ServiceContext]]:
    empty_database(session_ctx)
    spec = {
        "name": MODEL,
        "task": "binary_classification",
        "classes": ["no", "yes"],
        "features": [{"name": f"f{i}", "type": "numerical"} for i in range(WIDTH)],
    }
    registry.register_model(session_ctx, ModelSpec.model_validate(spec))
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    points = [
        MetricPoint(
            "feature_drift",
            end - timedelta(hours=h + 1),
            end - timedelta(hours=h),
            DRIFTED.get(f"f{i}", 0.001 * (i % 50)),
            sample_size=1000,
            labels={"feature": f"f{i}", "method": "wasserstein"},
            reference_size=5000,
            threshold=0.1,
            drifted=f"f{i}" in DRIFTED,
            details={"kind": "distance"},
        )
        for h in range(6)
        for i in range(WIDTH)
    ]
    record_points(session_ctx, MODEL, None, points)
    read_key = keys.create_key(session_ctx, "wide-read", [keys.Scope.read])[0]
    server = DashboardServer(create_dashboard(session_ctx), "127.0.0.1", 0).start()
    yield server.url, read_key, session_ctx
    server.stop()
    empty_database(session_ctx)


def _title(driver: webdriver.Chrome) -> str:
    return driver.execute_script("return document.querySelector('#drift-heatmap .js-plotly-plot').layout.title.text")


def test_a_wide_models_heatmap_pages_most_drifted_first_and_filters(
    driver: webdriver.Chrome, wide: tuple[str, str, ServiceContext]
) -> None:
    url, key, _ = wide
    login(driver, url, key)
    open_page(driver, url, f"/models/{quote(MODEL)}?range=24h&window=1h", "#drift-heatmap .js-plotly-plot")
    heatmap = plot_data(driver, "drift-heatmap")[0]
    assert len(heatmap["y"]) == HEATMAP_ROWS
    assert heatmap["y"][:3] == ["f7", "f123", "f250"]  # the most drifted on top
    assert f"{WIDTH} features" in _title(driver) and f"{WIDTH - HEATMAP_ROWS} more on other pages" in _title(driver)

    box = driver.find_element(By.ID, "feature-filter")
    box.send_keys("f12", Keys.ENTER)  # f12, f120-f129
    wait_for(lambda: "matching 'f12'" in _title(driver), what="the filtered heatmap")
    filtered = plot_data(driver, "drift-heatmap")[0]
    assert filtered["y"][0] == "f123" and sorted(filtered["y"]) == sorted(["f12", *[f"f12{d}" for d in range(10)]])
    assert "features=f12" in driver.current_url

    open_page(driver, url, f"/models/{quote(MODEL)}?range=24h&window=1h&page=8", "#drift-heatmap .js-plotly-plot")
    last = plot_data(driver, "drift-heatmap")[0]
    assert len(last["y"]) == WIDTH - 7 * HEATMAP_ROWS  # the last page holds the rest
    assert not {"f7", "f123", "f250"} & set(last["y"])
    assert console_errors(driver) == []
