"""Monitored data that holds script, logged with an ingest key, never runs as the dashboard.

A category value closes Evidently's data block and opens a script of its own. The report built
over it is opened by an admin in a real browser, inside the dashboard's report frame and on its
own; a report stored before the escaping (raw script in its HTML) too. Nothing runs as the
dashboard: its title and DOM stay as they were, no request of the script reaches the server, no
silence appears, and the report's document has no access to the dashboard's cookies.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from flask import request
from selenium import webdriver
from selenium.webdriver.common.by import By
from sqlalchemy import text

from dashboards.app import create_dashboard
from dashboards.serve import DashboardServer
from monitor.db import report_repo
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.catalog import keys, registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.catalog.registry import resolve_version
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.read_models import reports
from tests.browser.test_dashboard import login, open_page, wait_for

MODEL = "hostile-data"
PAYLOAD = (
    "document.title='pwned';try{parent.document.title='pwned';parent.document.body.dataset.pwned='1'}catch(e){}"
    "fetch('/canary-fetch',{method:'POST'}).catch(()=>0);new Image().src='/canary-img';"
    "try{fetch('/canary-cookie?c='+document.cookie)}catch(e){}"
)
HOSTILE = f"</script><script>{PAYLOAD}</script>"
OLD_REPORT = (
    f"<!doctype html><html><body><div id='old-report'>an old report</div><script>{PAYLOAD}</script></body></html>"
)


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, str | None]] = []

    def record(self) -> None:
        with self.lock:
            self.seen.append((request.method, request.path, request.headers.get("Origin")))

    def canaries(self) -> list[tuple[str, str, str | None]]:
        with self.lock:
            return [s for s in self.seen if s[1].startswith("/canary") or s[2] == "null"]


@pytest.fixture(scope="module")
def hostile(seeded: tuple[ServiceContext, datetime]) -> Iterator[tuple[str, str, Recorder, ServiceContext, dict]]:
    ctx, _ = seeded
    spec = {
        "name": MODEL,
        "version": "1",
        "task": "binary_classification",
        "classes": ["no", "yes"],
        "features": [{"name": "plan", "type": "categorical"}, {"name": "x", "type": "numerical"}],
    }
    registry.register_model(ctx, ModelSpec.model_validate(spec))
    plans = ["basic", "pro", HOSTILE]
    ref = pd.DataFrame(
        {"plan": [plans[i % 3] for i in range(300)], "x": [i % 17 for i in range(300)], "prediction": "no"}
    )
    buf = io.StringIO()
    ref.to_csv(buf, index=False)
    upload_reference(ctx, MODEL, buf.getvalue().encode(), TableFormat.csv)
    now = datetime.now(UTC)
    records = [
        {
            "prediction_id": f"h{i}",
            "timestamp": (now - timedelta(minutes=i % 50)).isoformat(),
            "features": {"plan": HOSTILE if i % 2 else "basic", "x": i % 13},
            "prediction": "yes",
        }
        for i in range(200)
    ]
    ingestion.ingest_predictions(ctx, records, model=MODEL)  # what an ingest key may send
    built = reports.build_report(ctx, MODEL, None, now - timedelta(hours=2), now + timedelta(minutes=1))
    vrow = resolve_version(ctx, MODEL, None)
    with ctx.uow() as uow:  # a report stored before the escaping existed: raw script in its page
        old_id = report_repo.insert_report(
            uow.conn,
            model_id=vrow.model_id,
            model_version_id=vrow.version_id,
            kind="drift",
            window_start=now - timedelta(hours=2),
            window_end=now,
            sample_size=1,
            window_rows=1,
            reference_sample_size=1,
            summary="{}",
            html=OLD_REPORT,
        )
        uow.commit()
    admin = keys.create_key(ctx, "hostile-admin", [keys.Scope.admin])[0]
    recorder = Recorder()
    app = create_dashboard(ctx)
    app.server.before_request(recorder.record)
    server = DashboardServer(app, "127.0.0.1", 0).start()
    yield server.url, admin, recorder, ctx, {"new": built["id"], "old": old_id}
    server.stop()


def _silences(ctx: ServiceContext) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM silences")).scalar_one()


def test_stored_report_html_keeps_no_live_script_from_the_data(hostile) -> None:  # type: ignore[no-untyped-def]
    _, _, _, ctx, ids = hostile
    page = reports.get_report(ctx, MODEL, ids["new"], with_html=True)["html"]
    assert "pwned" in page  # the value is in the report ...
    assert "</script><script>document.title" not in page  # ... but cannot close the data block
    assert "\\u003c/script\\u003e\\u003cscript\\u003edocument.title" in page


@pytest.mark.parametrize("which", ["new", "old"])
def test_a_report_opened_in_the_dashboard_frame_cannot_act_as_the_dashboard(
    driver: webdriver.Chrome,
    hostile,  # type: ignore[no-untyped-def]
    which: str,
) -> None:
    url, admin, recorder, ctx, ids = hostile
    silences = _silences(ctx)
    login(driver, url, admin)
    open_page(driver, url, "/reports", "#report-frame")
    frame = driver.find_element(By.ID, "report-frame")
    assert frame.get_attribute("sandbox") == "allow-scripts"
    wait_for(lambda: driver.title == "Reports · Model Monitor", what="the page's own title")
    driver.execute_script("arguments[0].src = arguments[1]", frame, f"/report-html/{MODEL}/{ids[which]}")
    driver.switch_to.frame(frame)
    try:
        if which == "new":  # Evidently's page still draws, from its escaped data
            wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "[id^=root_] *"), what="the report to render")
        else:
            wait_for(lambda: driver.find_element(By.ID, "old-report"), what="the old report")
        driver.execute_script("return new Promise(r => setTimeout(r, 500))")
        report_title = driver.execute_script("return document.title")
    finally:
        driver.switch_to.default_content()
    driver.execute_script("return new Promise(r => setTimeout(r, 1500))")  # time for anything to fire
    assert driver.title == "Reports · Model Monitor"  # the report set its own document's title only
    assert driver.execute_script("return document.body.dataset.pwned") is None
    assert recorder.canaries() == []
    assert _silences(ctx) == silences
    # the old report's script ran, in its own opaque document only
    assert (report_title == "pwned") is (which == "old")


def test_a_report_opened_on_its_own_has_no_origin_to_act_as(driver: webdriver.Chrome, hostile) -> None:  # type: ignore[no-untyped-def]
    url, admin, recorder, _, ids = hostile
    login(driver, url, admin)
    driver.get(f"{url}/report-html/{MODEL}/{ids['old']}")
    wait_for(lambda: driver.find_element(By.ID, "old-report"), what="the old report")
    driver.execute_script("return new Promise(r => setTimeout(r, 1000))")
    cookie = driver.execute_script("try { return 'read:' + document.cookie } catch (e) { return 'blocked:' + e.name }")
    assert cookie == "blocked:SecurityError"
    assert recorder.canaries() == []
