"""The comparison page in headless Chromium: a shadow against the champion, its table and charts
holding the stored comparison points, and a model without a challenger saying so."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from dashboards.sample_data import MODEL
from monitor.demo_data import SPEC
from monitor.domain.deployment import Deployment
from monitor.domain.schema import ModelSpec
from monitor.metrics.points import MetricPoint
from monitor.services.catalog import registry
from monitor.services.jobs import metric_store
from tests.browser.test_dashboard import Dashboard, login, open_page, plot_data, wait_for


@pytest.fixture(scope="module")
def compared(dashboard: Dashboard) -> Dashboard:
    """The seeded model's v1 as champion and a v2 shadowing it, with three hourly windows of
    comparison points and each version's accuracy."""
    url, made, ctx = dashboard
    registry.register_model(ctx, ModelSpec.model_validate({**SPEC, "version": "2"}))
    registry.set_deployment(ctx, MODEL, "1", Deployment.champion)
    registry.set_deployment(ctx, MODEL, "2", Deployment.shadow)
    points = metric_store.query_metrics(ctx, MODEL, metric="quality.accuracy", version="1")
    ends = sorted({p["window_end"] for p in points if p["window_end"] - p["window_start"] == timedelta(hours=1)})[-3:]
    for i, end in enumerate(ends):
        start = end - timedelta(hours=1)
        details = {"lower": 0.01 * i, "upper": 0.04 + 0.01 * i, "p_value": 0.02, "paired": True}
        challenger = [
            MetricPoint(
                "comparison.accuracy",
                start,
                end,
                0.025 + 0.01 * i,
                800,
                {"champion": "1"},
                drifted=True,
                details=details,
            ),
            MetricPoint(
                "comparison.agreement", start, end, 0.9, 800, {"champion": "1"}, details={"lower": 0.88, "upper": 0.92}
            ),
            MetricPoint("comparison.traffic_share", start, end, 0.5, 1600, {"champion": "1"}),
            MetricPoint(
                "comparison.feature_drift",
                start,
                end,
                0.3 + i,
                800,
                {"champion": "1", "feature": "<b>odd</b>", "method": "psi"},
                drifted=True,
                details={"champion_value": 0.02, "champion_drifted": False, "coverage": 1.0},
            ),
            MetricPoint("quality.accuracy", start, end, 0.8 + 0.01 * i, 800),
        ]
        metric_store.record_points(ctx, MODEL, "2", challenger)
    return url, made, ctx


def test_the_comparison_page_holds_the_stored_comparison(driver: webdriver.Chrome, compared: Dashboard) -> None:
    url, made, ctx = compared
    login(driver, url, made["read"])
    open_page(driver, url, f"/compare/{quote(MODEL)}?range=24h&window=1h", "#comparison-accuracy .js-plotly-plot")
    assert "v2 (shadow) against v1 (champion)" in driver.find_element(By.ID, "compare-title").text
    stored = sorted(
        metric_store.query_metrics(ctx, MODEL, metric="comparison.accuracy", version="2"), key=lambda p: p["window_end"]
    )
    newest = driver.find_element(By.ID, "value-comparison-accuracy").text
    assert float(newest) == pytest.approx(stored[-1]["value"], abs=1e-4)
    table = driver.find_element(By.ID, "comparison-table").text
    assert "significant (paired)" in table and "1,600" in table
    drift = driver.find_element(By.ID, "comparison-drift")
    (row,) = [r.text for r in drift.find_elements(By.TAG_NAME, "tr")[1:]]
    assert row.split() == ["<b>odd</b>", "2.3", "drifted", "0.02", "800", "psi"]  # the newest window's, as text
    assert not drift.find_elements(By.TAG_NAME, "b")
    traces = {t["name"]: t for t in plot_data(driver, "comparison-accuracy")}
    assert traces["difference"]["y"] == pytest.approx([p["value"] for p in stored])
    assert traces["95 % band"]["y"] == pytest.approx([p["details"]["upper"] for p in stored])
    both = {t["name"] for t in plot_data(driver, "versions-accuracy")}
    assert both == {"v1", "v2"}
    agreement = plot_data(driver, "comparison-shares")
    assert agreement[0]["y"] == pytest.approx([0.9, 0.9, 0.9])


def test_a_model_without_a_challenger_says_what_to_declare(driver: webdriver.Chrome, dashboard: Dashboard) -> None:
    url, made, _ = dashboard
    login(driver, url, made["read"])
    driver.get(url + "/compare/no-such-model")
    wait_for(lambda: "not registered" in driver.find_element(By.ID, "page").text, what="the not-found message")
