from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.services.catalog import keys
from monitor.services.infra.context import ServiceContext
from tests.integration.helpers import BINARY_SPEC, Api, Receiver, bearer


@pytest.fixture
def api(ctx: ServiceContext) -> Iterator[Api]:
    made = {s: keys.create_key(ctx, s.value, [s])[0] for s in keys.Scope}
    with TestClient(create_app(ctx=ctx)) as http:
        yield Api(
            http,
            bearer(made[keys.Scope.admin]),
            bearer(made[keys.Scope.ingest]),
            bearer(made[keys.Scope.read]),
            ctx,
            bearer(made[keys.Scope.data]),
        )


@pytest.fixture
def churn(api: Api) -> Api:
    r = api.http.post("/v1/models", json=BINARY_SPEC, headers=api.admin)
    assert r.status_code == 201, r.text
    return api


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(fail_first=2)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            with rec.lock:
                tries = sum(1 for r in rec.requests if r["headers"].get("webhook-id") == self.headers["webhook-id"])
                status = 503 if tries < rec.fail_first else 200
                status = rec.status_by_path.get(self.path, status)
                rec.requests.append({"path": self.path, "headers": dict(self.headers), "body": body, "status": status})
            self.send_response(status)
            if status == 503:
                self.send_header("Retry-After", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield rec
    server.shutdown()


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Half past the current hour, for ingestion and for the scheduler runs alike (the hour never
    turns mid-test)."""
    from monitor.services.ingest import ingestion
    from monitor.services.jobs.windows import hour_floor

    pinned = hour_floor(datetime.now(UTC)) + timedelta(minutes=30)
    monkeypatch.setattr(ingestion, "_now", lambda: pinned)
    return pinned
