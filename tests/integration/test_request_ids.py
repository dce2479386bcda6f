"""Every request gets an id, echoed as X-Request-ID and carried by its log lines (JSON)."""

from __future__ import annotations

import io
import logging

import orjson

from monitor.logs import JsonFormatter
from tests.integration.helpers import Api


def test_request_ids_in_headers_and_json_logs(api: Api) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("monitor.access")
    access.addHandler(handler)
    old_level = access.level
    access.setLevel(logging.INFO)
    try:
        r = api.http.get("/v1/models", headers={**api.read, "X-Request-ID": "trace-42"})
        generated = api.http.get("/v1/models", headers={**api.read, "X-Request-ID": "bad id with spaces"})
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    assert r.headers["x-request-id"] == "trace-42"
    assert len(generated.headers["x-request-id"]) == 32  # an unusable id is replaced
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["request_id"] == "trace-42" and lines[0]["message"].startswith("GET /v1/models 200")
    assert lines[1]["request_id"] == generated.headers["x-request-id"]
    assert {"ts", "level", "logger", "message"} <= set(lines[0])
    assert "Bearer" not in out.getvalue() and "mon_" not in out.getvalue()  # keys never reach the logs
