"""The dashboard in a real browser: login, every page without console errors, the charts hold
the stored numbers, a heatmap click opens the distributions, a silence made on the Alerts page
is stored."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from sqlalchemy import text

from alerts.silences import Matcher, SilenceSpec
from dashboards.sample_data import MODEL
from monitor.services.alerting import alert_ops
from monitor.services.infra.context import ServiceContext

Dashboard = tuple[str, dict[str, str], ServiceContext]


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "the page") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # the element is not there yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def submit_key(driver: webdriver.Chrome, key: str) -> None:
    """Type a key into the login form and wait for the next page: the marker on the old
    document is gone and the new one has loaded. (Waiting for the old button to go stale can
    raise Chrome's 'node does not belong to the document' while the page is being replaced.)"""
    driver.execute_script("document.body.dataset.submitted = '1'")
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.ID, "login").click()
    wait_for(
        lambda: driver.execute_script(
            "return document.readyState === 'complete' && document.body && !document.body.dataset.submitted"
        ),
        timeout=30,
        what="the page after the login form",
    )


def login(driver: webdriver.Chrome, url: str, key: str) -> None:
    driver.delete_all_cookies()
    driver.get(url + "/login")
    submit_key(driver, key)
    wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "nav"), what="the dashboard after login")


# The width of an element a reader sees: its box cut by every ancestor that clips its overflow
# (Dash wraps each input in a container that clips; a container shrunk to 2 px hid a 224 px input).
VISIBLE_WIDTH = """
const visibleWidth = el => {
  let {left, right} = el.getBoundingClientRect();
  for (let a = el.parentElement; a; a = a.parentElement) {
    if (getComputedStyle(a).overflowX !== 'visible') {
      const r = a.getBoundingClientRect();
      left = Math.max(left, r.left);
      right = Math.min(right, r.right);
    }
  }
  return Math.max(0, right - left);
};
"""


def open_page(driver: webdriver.Chrome, url: str, path: str, ready_selector: str) -> None:
    driver.get(url + path)
    wait_for(lambda: driver.find_element(By.CSS_SELECTOR, ready_selector), what=ready_selector)
    wait_for(
        lambda: not driver.execute_script("return document.querySelector('._dash-loading') !== null"),
        what="Dash to finish loading",
    )


def plot_data(driver: webdriver.Chrome, graph_id: str) -> list[dict[str, Any]]:
    return wait_for(
        lambda: driver.execute_script(
            f"const g = document.querySelector('#{graph_id} .js-plotly-plot'); return g && g.data && g.data.length ? "
            "g.data.map(t => ({name: t.name, x: t.x, y: t.y, z: t.z, text: t.text, colorscale: t.colorscale})) : null"
        ),
        what=f"the {graph_id} chart",
    )


def test_the_dashboard_needs_a_login(driver: webdriver.Chrome, dashboard: Dashboard) -> None:
    url, made, _ = dashboard
    driver.delete_all_cookies()
    driver.get(url + f"/models/{quote(MODEL)}?range=24h")
    assert "/login" in driver.current_url  # sent to log in, with the page to come back to
    submit_key(driver, "mon_00000000_wrong")
    assert "invalid or revoked" in driver.find_element(By.ID, "error").text
    submit_key(driver, made["ingest"])  # no read scope
    assert "lacks the 'read' scope" in driver.find_element(By.ID, "error").text
    submit_key(driver, made["read"])
    wait_for(lambda: driver.find_element(By.ID, "drift-heatmap"), what="the model page after login")
    assert f"/models/{quote(MODEL)}" in driver.current_url


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        ("/", "#models .model-row"),
        (f"/models/{quote(MODEL)}?range=24h&window=1h", "#drift-heatmap .js-plotly-plot"),
        ("/alerts", "#alerts-table"),
        ("/reports", "#report-build"),
    ],
)
def test_every_page_loads_without_console_errors(
    driver: webdriver.Chrome, dashboard: Dashboard, path: str, ready: str
) -> None:
    url, made, _ = dashboard
    login(driver, url, made["read"])
    driver.get_log("browser")  # drop what the login page logged
    open_page(driver, url, path, ready)
    assert console_errors(driver) == []
    # Every character the page draws is one the common fonts carry (DejaVu, Liberation): an emoji
    # or a symbol from the higher blocks renders as a box where no font has it.
    drawn = driver.execute_script(
        "const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); let s = '', n;"
        "while ((n = w.nextNode())) { if (!['SCRIPT', 'STYLE'].includes(n.parentNode.nodeName)) s += n.data; }"
        "return s;"
    )
    assert sorted({c for c in drawn if ord(c) >= 0x2500}) == [], path
    # every input a reader types in has room to show what is typed (inputs in flex labels used
    # to collapse to a few pixels); a dropdown's own search box sizes itself and is not one
    narrow = driver.execute_script(
        VISIBLE_WIDTH
        + "return [...document.querySelectorAll('input:not([type=hidden]):not([type=checkbox]):not([type=radio])')]"
        ".filter(i => i.offsetParent !== null && !i.closest('.dash-dropdown'))"
        ".filter(i => visibleWidth(i) < 80).map(i => i.id || i.outerHTML.slice(0, 80))"
    )
    assert narrow == [], (path, narrow)


def test_overview_shows_health_and_numbers_with_sample_sizes(driver: webdriver.Chrome, dashboard: Dashboard) -> None:
    url, made, _ = dashboard
    login(driver, url, made["read"])
    open_page(driver, url, "/", "#models .model-row")
    row = driver.find_element(By.ID, f"model-row-{MODEL}").text
    assert "firing" in row  # the seeded drift fired the dataset-drift rule
    assert "n = " in row and "label coverage" in row
    # who computes the models: nobody here (the seeded model was never run by a scheduler process)
    assert "No scheduler process is running" in driver.find_element(By.ID, "scheduler").text


def _heatmap_and_stored_drift(
    driver: webdriver.Chrome, dashboard: Dashboard, column: str
) -> tuple[dict[str, Any], list[Any]]:
    """The model page's heatmap as drawn over the last 24 h of 1 h windows, and the stored
    feature drift points of those windows: (feature, window end, ``column``)."""
    url, made, ctx = dashboard
    login(driver, url, made["read"])
    open_page(driver, url, f"/models/{quote(MODEL)}?range=24h&window=1h", "#drift-heatmap .js-plotly-plot")
    heatmap = plot_data(driver, "drift-heatmap")[0]
    with ctx.engine.connect() as conn:
        stored = conn.execute(
            text(
                f"SELECT labels->>'feature', window_end, {column} FROM metric_points WHERE metric = 'feature_drift' "
                "AND window_end - window_start = interval '1 hour' AND NOT labels ? 'segment'"
            )
        ).all()
    return heatmap, list(stored)


def test_model_charts_hold_the_stored_points(driver: webdriver.Chrome, dashboard: Dashboard) -> None:
    heatmap, stored = _heatmap_and_stored_drift(driver, dashboard, "value")
    ctx = dashboard[2]
    with ctx.engine.connect() as conn:
        drift = conn.execute(
            text(
                "SELECT value FROM metric_points WHERE metric = 'dataset_drift' "
                "AND window_end - window_start = interval '1 hour' AND NOT labels ? 'segment' ORDER BY window_end"
            )
        ).scalars()
        drift_values = list(drift)
    assert sorted(heatmap["y"]) == sorted({f for f, _, _ in stored})
    assert len(heatmap["x"]) == len({e for _, e, _ in stored})
    series = plot_data(driver, "dataset-drift")[0]
    assert series["y"] == pytest.approx(drift_values)
    quality = {t["name"]: t for t in plot_data(driver, "quality")}
    assert set(quality) >= {"accuracy, realized", "accuracy, estimated", "95 % band of the estimate", "label coverage"}
    with ctx.engine.connect() as conn:
        estimated = conn.execute(
            text(
                "SELECT value, (details->>'upper')::float8 FROM metric_points WHERE metric = 'estimated.accuracy' "
                "AND window_end - window_start = interval '1 hour' AND labels = '{}'::jsonb ORDER BY window_end"
            )
        ).all()
    assert quality["accuracy, estimated"]["y"] == pytest.approx([v for v, _ in estimated])
    assert quality["95 % band of the estimate"]["y"] == pytest.approx([u for _, u in estimated])
    errors = plot_data(driver, "multivariate-drift")
    assert any(t["name"] == "reconstruction error" and len(t["y"]) >= 2 for t in errors)


CHART_METRICS = {
    "dataset-drift": "dataset_drift",
    "prediction-drift": "prediction_drift",
    "multivariate-drift": "multivariate_drift",
    "quality": "quality.accuracy",
    "latency": "latency.p95",
    "missing": "data_quality.missing_share",
    "out-of-range": "data_quality.out_of_range_share",
}


def test_every_chart_draws_a_line_where_there_are_several_windows(
    driver: webdriver.Chrome, dashboard: Dashboard
) -> None:
    """A chart whose metric has several windows in the range shows them all: a line, not one dot
    at the right edge (what a page showing only the newest window would draw)."""
    url, made, ctx = dashboard
    login(driver, url, made["read"])
    open_page(driver, url, f"/models/{quote(MODEL)}?range=24h&window=1h", "#dataset-drift .js-plotly-plot")
    for graph_id, metric in CHART_METRICS.items():
        with ctx.engine.connect() as conn:
            windows = conn.execute(
                text(
                    "SELECT count(DISTINCT window_end) FROM metric_points WHERE metric = :m "
                    "AND window_end - window_start = interval '1 hour' AND NOT labels ? 'segment' "
                    "AND window_end > now() - interval '24 hours'"
                ),
                {"m": metric},
            ).scalar_one()
        assert windows > 1, metric  # the seeded data has a day of hourly windows
        longest = max(len(t["x"] or []) for t in plot_data(driver, graph_id))
        assert longest == windows, (graph_id, longest, windows)  # every window of the range, as a line


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        (f"/models/{quote(MODEL)}?range=24h&window=1h", "#dataset-drift .js-plotly-plot"),
        (f"/models/{quote(MODEL)}?range=7d&window=6h", "#dataset-drift .js-plotly-plot"),
        ("/alerts", "#alert-timeline .js-plotly-plot"),
    ],
)
def test_no_axis_repeats_a_tick_label(driver: webdriver.Chrome, dashboard: Dashboard, path: str, ready: str) -> None:
    """Each tick of an axis reads differently: a format too coarse for the axis's range wrote
    '0 %' five times over a share below one percent."""
    url, made, _ = dashboard
    login(driver, url, made["read"])
    open_page(driver, url, path, ready)
    wait_for(
        lambda: driver.execute_script(
            "return [...document.querySelectorAll('.dash-graph')].every(g => g.querySelector('.main-svg'))"
        ),
        what="every chart to draw",
    )
    axes = driver.execute_script(
        "const out = {};"
        "for (const g of document.querySelectorAll('.js-plotly-plot')) {"
        "  for (const t of g.querySelectorAll('.xtick text, .ytick text, .y2tick text')) {"
        "    const key = (g.parentNode.id || g.id) + ' ' + t.parentNode.getAttribute('class');"
        "    (out[key] = out[key] || []).push(t.textContent);"
        "  } }"
        "return out;"
    )
    assert axes, "no chart drew ticks"
    repeated = {axis: ticks for axis, ticks in axes.items() if len(set(ticks)) != len(ticks)}
    assert repeated == {}, path


def test_a_heatmap_click_opens_the_distributions(driver: webdriver.Chrome, dashboard: Dashboard) -> None:
    url, made, _ = dashboard
    login(driver, url, made["read"])
    open_page(driver, url, f"/models/{quote(MODEL)}?range=24h&window=1h", "#drift-heatmap .js-plotly-plot")
    target = driver.find_element(By.CSS_SELECTOR, "#drift-heatmap .nsewdrag")
    ActionChains(driver).move_to_element(target).click().perform()
    bars = plot_data(driver, "distribution-graph")
    assert [t["name"].split(" (")[0] for t in bars] == ["reference", "current"]
    assert all("n = " in t["name"] for t in bars)
    title = driver.execute_script(
        "return document.querySelector('#distribution-graph .js-plotly-plot').layout.title.text"
    )
    assert "threshold" in title and ("DRIFTED" in title or "no drift" in title)
    assert console_errors(driver) == []


def test_the_alerts_page_fits_a_narrow_window(driver: webdriver.Chrome, dashboard: Dashboard) -> None:
    """Tables with many columns or long unbroken values (a ticket URL in a silence's comment)
    wrap or scroll in their own box; the page never gets wider than the window."""
    url, made, ctx = dashboard
    ticket = "https://tickets.example.com/browse/" + "ML-" + "0123456789" * 30
    spec = SilenceSpec(
        matchers=[Matcher(name="model", value=MODEL)],
        ends_at=datetime.now(UTC) + timedelta(hours=1),
        created_by="width-test",
        comment=ticket,
    )
    made_silence = alert_ops.create_silence(ctx, spec)
    login(driver, url, made["read"])
    size = driver.get_window_size()
    # opened at that width (charts redraw for a resize some time after it, which is not the claim)
    # and given time to settle: an over-wide page never settles
    driver.set_window_size(800, size["height"])
    try:
        open_page(driver, url, "/alerts", "#silences-table")
        assert ticket[:60] in driver.find_element(By.ID, "silences-table").text
        wait_for(
            lambda: driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"),
            timeout=5,
            what="the page to fit an 800 px window",
        )
    finally:
        driver.set_window_size(size["width"], size["height"])
        with ctx.engine.begin() as conn:
            conn.execute(text("DELETE FROM silences WHERE id = :id"), {"id": made_silence["id"]})


def test_a_silence_made_on_the_alerts_page_is_stored(driver: webdriver.Chrome, dashboard: Dashboard) -> None:
    url, made, ctx = dashboard
    login(driver, url, made["admin"])
    open_page(driver, url, "/alerts", "#silence-button")
    # every input of the form is wide enough to type in (they used to collapse to 16 px)
    widths = driver.execute_script(
        VISIBLE_WIDTH + "return ['silence-hours', 'silence-by', 'silence-comment', 'silence-matchers', 'ack-by']"
        ".map(id => visibleWidth(document.getElementById(id)))"
    )
    assert min(widths) >= 80 and max(widths) <= 400, widths
    # the form's own default is a value it accepts (min and step agree)
    assert driver.execute_script("return document.querySelector('#silence-hours').checkValidity()") is True
    rules = driver.find_element(By.ID, "rules-table").text
    assert "{" not in rules and ("drifted" in rules or "value" in rules)  # conditions as read, not dicts
    driver.find_element(By.ID, "silence-by").send_keys("on-call engineer")
    driver.find_element(By.ID, "silence-comment").send_keys("looking into the drift")
    driver.find_element(By.ID, "silence-matchers").send_keys("feature=~inc.*")
    driver.find_element(By.ID, "silence-button").click()
    wait_for(lambda: driver.find_element(By.ID, "silence-created"), what="the silence to be created")
    with ctx.engine.connect() as conn:
        row = conn.execute(text("SELECT matchers, created_by, comment FROM silences")).one()
    assert row.matchers == [
        {"name": "model", "value": MODEL, "op": "="},
        {"name": "feature", "value": "inc.*", "op": "=~"},
    ]
    assert (row.created_by, row.comment) == ("on-call engineer", "looking into the drift")


def test_a_read_only_key_cannot_silence(driver: webdriver.Chrome, dashboard: Dashboard) -> None:
    url, made, _ = dashboard
    login(driver, url, made["read"])
    open_page(driver, url, "/alerts", "#silence-button")
    driver.find_element(By.ID, "silence-by").send_keys("someone")
    driver.find_element(By.ID, "silence-comment").send_keys("try")
    driver.find_element(By.ID, "silence-button").click()
    assert "admin scope" in wait_for(lambda: driver.find_element(By.ID, "silence-result").text, what="the refusal")


def test_an_alerts_dashboard_link_opens_the_model_page_at_its_window(
    driver: webdriver.Chrome, dashboard: Dashboard
) -> None:
    url, made, ctx = dashboard
    with ctx.engine.connect() as conn:
        link, window_end = conn.execute(
            text("SELECT annotations->>'dashboard', evidence->>'window_end' FROM alerts WHERE state = 'firing' LIMIT 1")
        ).one()
    assert link.startswith(ctx.settings.dashboard_url)
    login(driver, url, made["read"])
    path = link.removeprefix(ctx.settings.dashboard_url)
    open_page(driver, url, path, "#drift-heatmap .js-plotly-plot")
    text_ = driver.find_element(By.ID, "range-text").text
    # how fresh the windows are, said above them (the seeded model was never run by a scheduler)
    assert driver.find_element(By.ID, "scheduler-status").text.startswith("Metrics not computed yet")
    end = window_end[:16].replace("T", " ")
    assert f"to {end} UTC" in text_  # the range ends at the alert's window
    heatmap = plot_data(driver, "drift-heatmap")[0]
    assert any(str(x).replace("T", " ").startswith(end) for x in heatmap["x"])


def _many_alerts(now: datetime) -> list[Any]:
    """24 firing alerts of one rule (long summaries and links) and 24 resolved of another."""
    link = "http://127.0.0.1:8050/models/" + MODEL + "?from=2026-12-05T12%3A00%3A00%2B00%3A00&metric=feature_drift"
    out = []
    for i in range(48):
        firing = i < 24
        rule = "wide-feature-drift" if firing else "old-latency"
        out.append(
            {
                "fingerprint": f"browser-many-{i:02d}",
                "rule": rule,
                "model": MODEL,
                "labels": {"alertname": rule, "severity": "warning" if firing else "critical", "feature": f"f{i:02d}"},
                "annotations": {
                    "summary": f"{MODEL}: feature f{i:02d} drifted far past its threshold in every window "
                    "of the last hour, which on-call must read in full",
                    "dashboard": link,
                },
                "state": "firing" if firing else "resolved",
                "active_at": now - timedelta(hours=2),
                "fired_at": now - timedelta(hours=2),
                "last_true_at": now,
                "resolved_at": None if firing else now - timedelta(hours=1),
                "value": 0.5,
                "threshold": 0.1,
                "evidence": {"sample_size": 1000},
                "updated_at": now,
            }
        )
    return out


@pytest.mark.parametrize("width", [800, 1385])
def test_fifty_alerts_are_grouped_by_rule_and_model_and_fit_the_window(
    driver: webdriver.Chrome, dashboard: Dashboard, width: int
) -> None:
    """48 alerts more: two groups, the firing one first and open, the resolved one closed; no
    column pushes the page wider than the window and the summary keeps room to be read (it was
    squeezed to ~120 px beside the link and fingerprint columns, in a 9,000 px flat table)."""
    url, made, ctx = dashboard
    added = _many_alerts(datetime.now(UTC))
    with ctx.uow() as uow:
        for a in added:
            uow.alerts.save_alert(a)
        uow.commit()
    login(driver, url, made["read"])
    size = driver.get_window_size()
    driver.set_window_size(width, size["height"])
    try:
        open_page(driver, url, "/alerts", "#alerts-table .alert-group")
        wait_for(
            lambda: driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"),
            timeout=5,
            what=f"the page to fit a {width} px window",
        )
        groups = driver.find_elements(By.CSS_SELECTOR, "#alerts-table .alert-group")
        headings = [g.find_element(By.TAG_NAME, "summary").text for g in groups]
        wide = headings.index(f"wide-feature-drift · {MODEL} — 24 alerts: 24 firing · warning")
        old = headings.index(f"old-latency · {MODEL} — 24 alerts: 24 resolved · critical")
        assert wide < old
        assert groups[wide].get_attribute("open") is not None and groups[old].get_attribute("open") is None
        summary = groups[wide].find_element(By.CSS_SELECTOR, "td.summary")
        assert summary.size["width"] >= 200, summary.size
        assert "fingerprint" not in groups[wide].find_element(By.TAG_NAME, "thead").text
        # the resolved group, closed, takes one line of the page
        assert groups[old].size["height"] < 60
        if width == 1385:  # the state filter keeps the resolved groups only
            driver.find_element(By.CSS_SELECTOR, "#alert-state").click()
            option = wait_for(
                lambda: next(
                    e for e in driver.find_elements(By.CSS_SELECTOR, "[role=option]") if e.text.strip() == "resolved"
                ),
                what="the state filter's options",
            )
            option.click()
            wait_for(
                lambda: (
                    not any(
                        "firing" in g.find_element(By.TAG_NAME, "summary").text
                        for g in driver.find_elements(By.CSS_SELECTOR, "#alerts-table .alert-group")
                    )
                ),
                what="the firing groups to be filtered out",
            )
            shown = [
                g.find_element(By.TAG_NAME, "summary").text
                for g in driver.find_elements(By.CSS_SELECTOR, "#alerts-table .alert-group")
            ]
            assert f"old-latency · {MODEL} — 24 alerts: 24 resolved · critical" in shown
    finally:
        driver.set_window_size(size["width"], size["height"])
        with ctx.engine.begin() as conn:
            conn.execute(text("DELETE FROM alerts WHERE fingerprint LIKE 'browser-many-%'"))


def test_the_heatmap_colours_each_cell_by_the_decision_stored(driver: webdriver.Chrome, dashboard: Dashboard) -> None:
    """Red (at or past 1 on the decision scale) exactly where the service stored drifted, green
    below it where it stored no drift, grey where it could not decide; the hover says which. A
    cell three times past its threshold but not significant was drawn red."""
    from dashboards.figures import DECISION_COLOURS, UNDECIDED

    heatmap, stored = _heatmap_and_stored_drift(driver, dashboard, "drifted")
    column = {str(x).replace("T", " ")[:16]: j for j, x in enumerate(heatmap["x"])}
    row = {f: i for i, f in enumerate(heatmap["y"])}
    seen = {True: 0, False: 0}
    for feature, end, drifted in stored:
        i, j = row[feature], column[f"{end.astimezone(UTC):%Y-%m-%d %H:%M}"]
        z, hover = heatmap["z"][i][j], heatmap["text"][i][j]
        if drifted is None:
            assert z == UNDECIDED and "not decided" in hover
        elif drifted:
            assert z >= 1 and "DRIFTED: significant (p = " in hover and ", material" in hover, (feature, end, hover)
        else:
            assert 0 <= z < 1 and "no drift: " in hover, (feature, end, z, hover)
        if drifted is not None:
            seen[drifted] += 1
    assert seen[True] and seen[False]  # the seeded data has both
    assert [list(c) for c in heatmap["colorscale"]] == [list(c) for c in DECISION_COLOURS]


def test_the_log_out_button_ends_the_session(driver: webdriver.Chrome, dashboard: Dashboard) -> None:
    """Logging out is a POST from the page's own button (a GET that logged out could be sent by
    any site); after it the dashboard asks for a key again."""
    url, made, _ = dashboard
    login(driver, url, made["read"])
    open_page(driver, url, "/alerts", "#alerts-table")
    driver.find_element(By.ID, "logout").click()
    wait_for(lambda: "/login" in driver.current_url, what="the login page after logging out")
    driver.get(url + "/alerts")
    wait_for(lambda: "/login" in driver.current_url, what="the login page, asked again")


def test_each_address_shows_what_it_names_and_titles_the_tab(driver: webdriver.Chrome, dashboard: Dashboard) -> None:
    """Dash Pages merges a query's parameters over the path's variables: ``?name=`` must not
    turn one model's address into another's page. Each page titles the browser tab."""
    url, made, _ = dashboard
    login(driver, url, made["read"])
    open_page(driver, url, f"/models/{quote(MODEL)}?range=24h&name=elsewhere", "#drift-heatmap .js-plotly-plot")
    assert MODEL in driver.find_element(By.TAG_NAME, "h2").text
    assert "elsewhere" not in driver.find_element(By.ID, "page").text
    wait_for(lambda: driver.title == f"{MODEL} · Model · Model Monitor", what="the model page's title")
    open_page(driver, url, "/models/elsewhere", "#page h2")
    assert driver.find_element(By.TAG_NAME, "h2").text == "Not available"
    assert "elsewhere" in driver.find_element(By.ID, "page").text
    open_page(driver, url, "/nowhere?x=1", "#page h2")
    assert driver.find_element(By.TAG_NAME, "h2").text == "Not found"
    assert "No page at /nowhere." in driver.find_element(By.ID, "page").text
    wait_for(lambda: driver.title == "Not found · Model Monitor", what="the not-found page's title")
    open_page(driver, url, "/alerts", "#alerts-table")
    wait_for(lambda: driver.title == "Alerts · Model Monitor", what="the alerts page's title")


def test_the_importance_chart_shows_the_reference_and_the_window_as_stored(
    driver: webdriver.Chrome, dashboard: Dashboard
) -> None:
    url, made, ctx = dashboard
    login(driver, url, made["read"])
    open_page(driver, url, f"/models/{quote(MODEL)}?range=24h&window=1h", "#importance .js-plotly-plot")
    bars = {t["name"]: t for t in plot_data(driver, "importance")}
    reference, window = bars["reference (mean absolute attribution)"], bars["newest window (logged attributions)"]
    with ctx.engine.connect() as conn:
        newest = conn.execute(
            text(
                "SELECT labels->>'feature', value FROM metric_points WHERE metric = 'attribution.importance' "
                "AND window_end - window_start = interval '1 hour' AND NOT labels ? 'segment' "
                "AND window_end = (SELECT max(window_end) FROM metric_points WHERE metric = 'attribution.importance' "
                "AND window_end - window_start = interval '1 hour')"
            )
        ).all()
        ndcg = conn.execute(
            text(
                "SELECT value FROM metric_points WHERE metric = 'attribution_drift.ndcg' AND NOT labels ? 'segment' "
                "AND window_end - window_start = interval '1 hour' ORDER BY window_end DESC LIMIT 1"
            )
        ).scalar_one()
    total = sum(v for _, v in newest)
    assert dict(zip(window["y"], window["x"], strict=True)) == pytest.approx({f: v / total for f, v in newest})
    assert reference["y"] == window["y"] and sum(reference["x"]) == pytest.approx(1.0)
    assert reference["y"][0] == "late_payments"  # the demo model's largest term
    title = driver.execute_script("return document.querySelector('#importance .js-plotly-plot').layout.title.text")
    assert f"NDCG {ndcg:.3f}" in title
    assert len(plot_data(driver, "attribution-drift")[0]["y"]) >= 2


def test_the_heatmap_orders_by_importance_times_drift_when_asked(
    driver: webdriver.Chrome, dashboard: Dashboard
) -> None:
    url, made, _ = dashboard
    login(driver, url, made["read"])
    open_page(driver, url, f"/models/{quote(MODEL)}?range=24h&window=1h", "#drift-heatmap .js-plotly-plot")
    by_drift = plot_data(driver, "drift-heatmap")[0]["y"]
    driver.find_element(By.CSS_SELECTOR, "#feature-order").click()
    wait_for(lambda: driver.find_element(By.XPATH, "//*[contains(text(), 'importance × drift')]")).click()  # noqa: RUF001
    wait_for(lambda: "order=importance" in driver.current_url, what="the order in the address")
    wait_for(lambda: plot_data(driver, "drift-heatmap")[0]["y"] != by_drift, what="the heatmap reordered")
    by_importance = plot_data(driver, "drift-heatmap")[0]["y"]
    assert sorted(by_importance) == sorted(by_drift)
    # features the model gives no weight (the demo model ignores these two) go after every other
    assert set(by_importance[-2:]) == {"credit_lines", "region"}
