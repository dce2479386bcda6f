"""The SDK against the real API served by uvicorn on loopback."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
from sqlalchemy import text

from monitor.api.app import create_app
from monitor.client import MonitorClient
from monitor.server import ThreadedServer
from tests.integration.helpers import BINARY_SPEC, Api
from tests.servers import free_port
from tests.waiting import wait_until


def test_log_predictions_and_labels_end_to_end(api: Api) -> None:
    server = ThreadedServer(create_app(ctx=api.ctx), "127.0.0.1", free_port()).start()
    try:
        admin = MonitorClient(server.url, api.admin["Authorization"].split()[1])
        admin.register_model(BINARY_SPEC)
        admin.close()
        client = MonitorClient(server.url, api.ingest["Authorization"].split()[1], model="churn", batch_size=50)
        ids = [
            client.log_prediction(
                {"tenure": i, "plan": "pro"},
                "leave",
                scores={"leave": 0.9, "stay": 0.1},
                latency_ms=3.0,
                segments={"country": "NO"},
            )
            for i in range(230)
        ]
        client.log_prediction({"tenure": "bad", "plan": "pro"}, "leave")  # rejected by the server, counted
        # JSON has no infinity: sent as the strings the server keeps, not as null (missing)
        client.log_prediction({"tenure": float("inf"), "plan": "pro"}, "leave", prediction_id="inf+")
        client.log_prediction({"tenure": np.float64("-inf"), "plan": "pro"}, "leave", prediction_id="inf-")
        client.log_prediction({"tenure": float("nan"), "plan": "pro"}, "leave", prediction_id="nan")
        client.log_prediction(  # SHAP values as NumPy scalars; NaN goes as missing
            {"tenure": 3, "plan": "pro"},
            "leave",
            prediction_id="shap",
            attributions={"tenure": np.float32(0.25), "plan": np.float64("nan")},
        )
        for pid in ids[:100]:
            client.log_label(pid, "stay")
        assert client.flush(timeout=30)
        client.close()
        assert client.stats.sent == 334
        assert client.stats.rejected == 1
        assert client.stats.dropped == 0
        assert api.count("SELECT count(*) FROM predictions") == 234
        assert api.count("SELECT count(*) FROM predictions WHERE attributions = '{\"tenure\": 0.25}'") == 1
        with api.ctx.engine.connect() as conn:
            stored = dict(
                conn.execute(
                    text(
                        "SELECT prediction_id, features ->> 'tenure' FROM predictions "
                        "WHERE prediction_id IN ('inf+', 'inf-', 'nan')"
                    )
                ).all()
            )
        assert stored == {"inf+": "Infinity", "inf-": "-Infinity", "nan": None}
        assert api.count("SELECT count(*) FROM labels WHERE prediction_ts IS NOT NULL") == 100
    finally:
        server.stop()


class CountingTransport(httpx.HTTPTransport):
    """The real transport, counting the requests it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return super().handle_request(request)


def test_predictions_and_labels_interleaved_go_in_few_requests(api: Api) -> None:
    """A model server logs each prediction and, as it learns them, the labels of earlier ones: the
    two kinds alternate in the queue. They go as a batch per kind, not a request per record,
    and every label finds its prediction."""
    server = ThreadedServer(create_app(ctx=api.ctx), "127.0.0.1", free_port()).start()
    try:
        api.http.post("/v1/models", json=BINARY_SPEC, headers=api.admin)
        transport = CountingTransport()
        key = api.ingest["Authorization"].split()[1]
        client = MonitorClient(server.url, key, model="churn", transport=transport)
        previous = None
        for i in range(300):
            pid = client.log_prediction({"tenure": i, "plan": "basic"}, "stay")
            if previous is not None:
                client.log_label(previous, "leave")
            previous = pid
        assert client.flush(timeout=30)
        client.close()
        assert client.stats.sent == 599 and client.stats.rejected == 0
        assert transport.requests <= 12, transport.requests  # a request per record was 599
        assert api.count("SELECT count(*) FROM labels WHERE prediction_ts IS NOT NULL") == 299
    finally:
        server.stop()


def test_records_sent_while_the_server_is_down_arrive_once_it_is_up(api: Api) -> None:
    port = free_port()
    key = api.ingest["Authorization"].split()[1]
    client = MonitorClient(
        f"http://127.0.0.1:{port}", key, model="churn", batch_size=20, backoff_base=0.05, backoff_max=0.3
    )
    started = time.monotonic()
    for i in range(100):
        client.log_prediction({"tenure": i, "plan": "basic"}, "stay", prediction_id=f"r{i}")
    assert time.monotonic() - started < 0.5, "logging must not block while the server is down"
    wait_until(lambda: client.stats.retries >= 3, 10, "several failed attempts")
    assert client.stats.sent == 0
    api.http.post("/v1/models", json=BINARY_SPEC, headers=api.admin)
    server = ThreadedServer(create_app(ctx=api.ctx), "127.0.0.1", port).start()
    try:
        assert client.flush(timeout=30)
        client.close()
    finally:
        server.stop()
    assert client.stats.sent == 100
    assert api.count("SELECT count(*) FROM predictions") == 100


def test_a_full_queue_drops_and_counts(api: Api) -> None:
    # Nothing listens on the port: the sender holds one batch (at most batch_size records) and
    # retries it until close(), so what the queue took is bounded whatever the machine's speed.
    client = MonitorClient(
        f"http://127.0.0.1:{free_port()}", "mon_x_y", model="churn", max_queue=10, batch_size=5, backoff_base=0.05
    )
    for i in range(50):
        client.log_prediction({"tenure": i, "plan": "basic"}, "stay")
    client.close(timeout=0.5)
    wait_until(lambda: not client._thread.is_alive(), 10, "the sender to stop")  # the counts are final
    # Nothing was sent: every record is dropped exactly once, either when the queue was full or when
    # close() gave up on it (a record counted twice, or not at all, breaks the sum).
    assert client.stats.sent == 0
    assert client.stats.dropped == 50
    # 10 fit in the queue, plus the one batch the sender holds out of it; the rest were refused
    assert 10 <= client.stats.queued <= 15


class _FussyServer:
    """A real HTTP server on loopback that answers 500 to any batch holding a poisoned record (as
    a server with a bug on one value would), and 200 to the rest, counting what it took."""

    def __init__(self, always: int | None = None) -> None:
        import orjson

        self.stored: list[str] = []
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = orjson.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.requests += 1
                ids = [r["prediction_id"] for r in body["records"]]
                if always is not None or any(i.startswith("poison") for i in ids):
                    code, payload = always or 500, b'{"error": {"code": "internal_error"}}'
                else:
                    outer.stored += ids
                    code, payload = 200, orjson.dumps({"accepted": len(ids), "duplicates": 0, "rejected": 0})
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_one_record_the_server_fails_on_is_isolated_and_dropped_alone() -> None:
    server = _FussyServer()
    client = MonitorClient(server.url, "k", model="m", batch_size=120, max_attempts=2, backoff_base=0.01)
    try:
        for i in range(120):
            client.log_prediction({"x": i}, "a", prediction_id="poison-7" if i == 7 else f"ok-{i}")
        client.log_prediction({"x": 0}, "a", prediction_id="after")  # queued behind the poisoned batch
        assert client.flush(timeout=30)
        client.close(timeout=5)
    finally:
        server.stop()
    assert sorted(server.stored) == sorted([f"ok-{i}" for i in range(120) if i != 7] + ["after"])
    assert (client.stats.sent, client.stats.dropped, client.stats.rejected) == (120, 1, 0)


def test_close_returns_within_its_timeout_and_counts_what_was_not_sent() -> None:
    server = _FussyServer(always=503)  # the service away for good
    client = MonitorClient(server.url, "k", model="m", batch_size=10, backoff_base=0.5, backoff_max=5)
    try:
        for i in range(35):
            client.log_prediction({"x": i}, "a")
        wait_until(lambda: server.requests >= 1, 10, "the first refused attempt")
        started = time.monotonic()
        client.close(timeout=1.0)
        took = time.monotonic() - started
    finally:
        server.stop()
    assert took < 1.6, took
    assert not client._thread.is_alive()
    assert client.stats.dropped == 35 and client.stats.sent == 0


def test_close_counts_the_batch_in_flight_to_a_server_that_never_answers() -> None:
    """A request already waiting on a server that accepted it and went silent when close() is
    called: close() returns within its timeout, and that batch is counted dropped with the rest
    (it was counted in neither sent nor dropped)."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def hold() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)  # read nothing, answer nothing

    threading.Thread(target=hold, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    client = MonitorClient(url, "k", model="m", batch_size=10, timeout=30)
    try:
        for i in range(35):
            client.log_prediction({"x": i}, "a")
        wait_until(lambda: len(accepted) >= 1, 10, "the first request to be in flight")
        time.sleep(0.2)
        started = time.monotonic()
        client.close(timeout=1.0)
        took = time.monotonic() - started
        stats = client.stats
        assert took < 1.8, took
        assert (stats.sent, stats.rejected, stats.dropped) == (0, 0, 35)
        time.sleep(0.5)  # the abandoned request, ending later, counts nothing twice
        assert client.stats.dropped == 35
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
