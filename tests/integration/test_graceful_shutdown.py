"""SIGTERM (docker stop, a Kubernetes rollout) on the real processes: the API finishes the
requests it has begun and refuses new ones; the scheduler finishes the webhook it is sending."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pytest

from monitor.config import Settings
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.catalog import keys
from monitor.services.jobs.metric_store import record_points
from monitor.services.jobs.windows import hour_floor
from tests.integration.helpers import Api, drift_point, prediction
from tests.integration.processes import monitor_process, stop_process, wait_ready
from tests.servers import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(180)


def _env(settings: Settings) -> dict[str, str]:
    return {
        "MONITOR_DATABASE_URL": settings.database_url or "",
        "MONITOR_LOG_FORMAT": "text",
        "MONITOR_RATE_LIMIT_PER_SECOND": "0",
        "MONITOR_ALLOW_LOOPBACK_RECEIVERS": "true",
    }


def test_the_api_finishes_a_request_in_flight_and_refuses_new_ones(
    churn: Api, settings: Settings, tmp_path: Path
) -> None:
    key = keys.create_key(churn.ctx, "graceful", [keys.Scope.ingest])[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "api.log"
    api = monitor_process(
        ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"], _env(settings), log_path
    )
    try:
        wait_ready(url, api)
        body = orjson.dumps({"model": "churn", "records": [prediction(f"g{i}") for i in range(2000)]})
        first_half_sent, finish = threading.Event(), threading.Event()

        def slow_body() -> Iterator[bytes]:  # a client on a slow link: half the body, then a pause
            yield body[: len(body) // 2]
            first_half_sent.set()
            finish.wait(30)
            yield body[len(body) // 2 :]

        answer: dict[str, httpx.Response] = {}

        def post() -> None:
            answer["r"] = httpx.post(
                f"{url}/v1/predictions",
                content=slow_body(),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                timeout=60,
            )

        sender = threading.Thread(target=post)
        sender.start()
        assert first_half_sent.wait(10)
        time.sleep(0.5)  # the server has the request's headers and half its body
        api.send_signal(signal.SIGTERM)

        def refused() -> bool:  # shutting down: a new request is not served
            try:
                httpx.get(f"{url}/healthz", timeout=2)
            except httpx.HTTPError:
                return True
            return False

        wait_until(refused, 10, "the server to stop taking new requests")
        finish.set()
        sender.join(60)
        assert api.wait(60) == 0, log_path.read_text()[-3000:]
    finally:
        stop_process(api)
    r = answer["r"]
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2000
    assert churn.count("SELECT count(*) FROM predictions WHERE prediction_id LIKE 'g%'") == 2000  # and stored


class SlowReceiver:
    """Holds each webhook for ``hold`` seconds before answering 200."""

    def __init__(self, hold: float) -> None:
        self.arrived = threading.Event()
        self.ids: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                receiver.ids.append(self.headers["webhook-id"])
                receiver.arrived.set()
                time.sleep(hold)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_scheduler_finishes_the_webhook_it_is_sending(churn: Api, settings: Settings, tmp_path: Path) -> None:
    receiver = SlowReceiver(hold=3.0)
    try:
        r = churn.http.put("/v1/receivers/oncall", json={"url": receiver.url, "group_wait": "0s"}, headers=churn.admin)
        assert r.status_code == 200, r.text
        rule = {"name": "drift", "metric": "dataset_drift", "condition": {"drifted": True}, "receivers": ["oncall"]}
        assert churn.http.post("/v1/rules", json=rule, headers=churn.admin).status_code == 201
        record_points(churn.ctx, "churn", "1", [drift_point(hour_floor(datetime.now(UTC)), True, 0.7)])
        evaluate_model(churn.ctx, "churn")
        log_path = tmp_path / "scheduler.log"
        proc = monitor_process(["scheduler", "--tick", "3600"], _env(settings), log_path)
        try:
            assert receiver.arrived.wait(60), log_path.read_text()
            proc.send_signal(signal.SIGTERM)  # while the receiver holds the webhook
            assert proc.wait(60) == 0, log_path.read_text()[-3000:]
        finally:
            stop_process(proc)
    finally:
        receiver.server.shutdown()
    messages = churn.http.get("/v1/outbox", headers=churn.read).json()["messages"]
    deliveries = churn.http.get("/v1/deliveries", headers=churn.read).json()["deliveries"]
    assert [m["message_id"] for m in messages] == receiver.ids  # sent once...
    assert [(m["status"], m["attempts"]) for m in messages] == [("delivered", 1)]  # ...and recorded as delivered
    assert [(d["outcome"], d["status_code"]) for d in deliveries] == [("delivered", 200)]
