"""Secrets never reach the logs, even at debug level: API keys (in the Authorization header, in
``?api_key=``, made through the API, wrong ones), webhook signing secrets and a receiver's
credential headers. The API and the scheduler run as real processes with ``-v`` and their whole
output is searched."""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from monitor.config import Settings
from monitor.domain.kserve import REQUEST, RESPONSE
from monitor.logs import JsonFormatter, TextFormatter, log_config, redact
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.catalog import keys
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.metric_store import record_points
from monitor.services.jobs.windows import hour_floor
from tests.conftest import SECRET_KEYS
from tests.integration.helpers import Api, drift_point, prediction
from tests.integration.processes import monitor_process, stop_process, wait_ready
from tests.servers import free_port

pytestmark = pytest.mark.timeout(180)


def secret_part(key: str) -> str:
    """The random part of ``mon_<prefix>_<random>``. Split from the left: the random part is
    url-safe base64, which may itself hold ``_`` (splitting from the right once made this a
    single character, found in any log)."""
    _, _, random_part = key.split("_", 2)
    assert len(random_part) >= 40, key
    return random_part


def test_no_secret_is_written_to_any_log(churn: Api, settings: Settings, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    admin = keys.create_key(churn.ctx, "admin", [keys.Scope.admin])[0]
    env = {
        "MONITOR_DATABASE_URL": settings.database_url or "",
        "MONITOR_LOG_FORMAT": "json",
        "MONITOR_RATE_LIMIT_PER_SECOND": "0",
        "MONITOR_ALLOW_LOOPBACK_RECEIVERS": "true",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api_log = tmp_path / "api.log"
    api = monitor_process(
        ["-v", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "debug"], env, api_log
    )

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):  # fails the first attempt, so the retry path logs too
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            hits.append(self.headers["webhook-id"])
            self.send_response(500 if len(hits) == 1 else 200)
            if len(hits) == 1:
                self.send_header("Retry-After", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    header_token = secrets.token_hex(12)
    signing_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    wrong_key = "mon_" + secrets.token_hex(4) + "_" + secrets.token_urlsafe(24)
    made: list[str] = []
    try:
        wait_ready(url, api)
        with httpx.Client(base_url=url, timeout=30) as http:
            admin_h = {"Authorization": f"Bearer {admin}"}
            r = http.post("/v1/keys", json={"name": "ingest", "scopes": ["ingest", "read"]}, headers=admin_h)
            assert r.status_code == 201, r.text
            made.append(r.json()["key"])
            ingest_h = {"Authorization": f"Bearer {made[0]}"}
            assert (
                http.post(
                    "/v1/predictions", json={"model": "churn", "records": [prediction()]}, headers=ingest_h
                ).status_code
                == 200
            )
            assert http.get("/v1/models", headers={"Authorization": f"Bearer {wrong_key}"}).status_code == 401
            assert http.get("/v1/models", headers={"Authorization": wrong_key}).status_code == 401
            kserve = {"Ce-Id": "k1", "Ce-Inferenceservicename": "churn", "Content-Type": "application/json"}
            body = orjson.dumps({"instances": [{"tenure": 3, "plan": "basic"}]})
            r = http.post(f"/v1/kserve?api_key={made[0]}", content=body, headers={**kserve, "Ce-Type": REQUEST})
            assert r.status_code in (200, 202), r.text
            r = http.post(
                f"/v1/kserve?api_key={made[0]}",
                content=orjson.dumps({"predictions": ["stay"]}),
                headers={**kserve, "Ce-Type": RESPONSE},
            )
            assert r.status_code in (200, 202), r.text
            hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
            r = http.put(
                "/v1/receivers/oncall",
                json={
                    "url": hook,
                    "secret": signing_secret,
                    "headers": {"Authorization": f"Bearer {header_token}"},
                    "group_wait": "0s",
                },
                headers=admin_h,
            )
            assert r.status_code == 200, r.text
            rule = {"name": "drift", "metric": "dataset_drift", "condition": {"drifted": True}, "receivers": ["oncall"]}
            assert http.post("/v1/rules", json=rule, headers=admin_h).status_code == 201
            assert http.get("/v1/receivers", headers=admin_h).status_code == 200
    finally:
        stop_process(api)

    record_points(churn.ctx, "churn", "1", [drift_point(hour_floor(datetime.now(UTC)), True, 0.7)])
    evaluate_model(churn.ctx, "churn")
    sched_log = tmp_path / "scheduler.log"
    scheduler = monitor_process(["-v", "scheduler", "--tick", "3600"], env, sched_log)
    try:
        deadline = time.monotonic() + 60
        while len(hits) < 2:  # the first attempt failed, the retry got through
            assert time.monotonic() < deadline, sched_log.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        stop_process(scheduler)
        receiver.shutdown()

    logs = api_log.read_text(errors="replace") + sched_log.read_text(errors="replace")
    assert "monitor.access" in logs and "delivery" in logs.lower()  # the processes did log what they did
    for name, secret in {
        "admin key": admin,
        "key made through the API": made[0],
        "wrong key": wrong_key,
        "signing secret": signing_secret,
        "signing key bytes": signing_secret.removeprefix("whsec_"),
        "credential header of a receiver": header_token,
        "key that encrypts receiver secrets": SECRET_KEYS,
    }.items():
        assert secret not in logs, f"the {name} was written to a log"
    # nor the secret part of a key on its own
    assert secret_part(made[0]) not in logs and secret_part(admin) not in logs


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_database_errors_are_logged_without_row_values(ctx: ServiceContext, fmt: str) -> None:
    """A failed statement, logged with its traceback (as the API logs an unexpected error): the
    values bound to it (SQLAlchemy's hide_parameters) and the row Postgres quotes in its error
    detail are both left out. Receiver secrets and headers travel as such values."""
    secret = "whsec_" + secrets.token_hex(16)
    with pytest.raises(DBAPIError) as err, ctx.engine.connect() as conn:
        conn.execute(text("INSERT INTO receivers (name, secret) VALUES (:n, :s)"), {"n": "r", "s": secret})
    assert secret in str(err.value.orig)  # Postgres does quote the row...
    config = log_config("INFO", fmt)["formatters"]["main"]
    formatter = JsonFormatter() if fmt == "json" else TextFormatter(config["format"])
    record = logging.LogRecord("monitor.api", logging.ERROR, __file__, 1, "failed: %s", (err.value,), None)
    record.exc_info = (type(err.value), err.value, err.value.__traceback__)
    line = formatter.format(record)
    assert "null value in column" in line and "Failing row contains (<values hidden>)" in line
    assert secret not in line  # ...and the log does not
    with pytest.raises(DBAPIError) as dup, ctx.engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE t (k text PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (:s), (:s)"), {"s": secret})
    assert secret in str(dup.value)
    assert "Key (k)=(<values hidden>) already exists" in redact(str(dup.value)) and secret not in redact(str(dup.value))


def test_dashboard_logins_leave_no_key_in_its_log(churn: Api, settings: Settings, tmp_path: Path) -> None:
    """``monitor dashboard`` at debug level: a good and a wrong key posted to the login form, then
    pages under the session cookie; neither key is in its output."""
    reader = keys.create_key(churn.ctx, "analyst", [keys.Scope.read])[0]
    wrong = "mon_" + secrets.token_hex(4) + "_" + secrets.token_urlsafe(24)
    env = {"MONITOR_DATABASE_URL": settings.database_url or "", "MONITOR_LOG_FORMAT": "json"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "dashboard.log"
    proc = monitor_process(["-v", "dashboard", "--host", "127.0.0.1", "--port", str(port)], env, log_path)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                try:
                    if http.get("/login").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(0.2)
            refused = http.post("/login", data={"key": wrong, "next": "/"})
            assert refused.status_code == 200 and 'id="error"' in refused.text
            r = http.post("/login", data={"key": reader, "next": "/"})
            assert r.status_code == 302, r.text
            assert http.get("/").status_code == 200  # a page under the session cookie
    finally:
        stop_process(proc)
    log = log_path.read_text(errors="replace")
    # It writes no line per request (werkzeug is kept quiet); what it does write is captured here,
    # so a login failure or success logged with its key would fail this test.
    assert f"dashboard on {url}/" in log
    for secret in (reader, wrong, secret_part(reader)):
        assert secret not in log
