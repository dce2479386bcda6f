"""JSON responses encoded with orjson (datetimes as ISO 8601)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse

from monitor.errors import MonitorError


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


MAX_ERROR_TEXT = 1000  # characters of a message or a detail echoed back


def bounded(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """``text``, cut to ``limit`` characters and saying how long it was: an error quoting a 10 MB
    model name answers with its first kilobyte, not the 10 MB."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def error_response(exc: MonitorError, headers: dict[str, str] | None = None) -> FastJSONResponse:
    """The answer to a ``MonitorError``: its status, the one error shape, its own headers."""
    return FastJSONResponse(
        error_body(exc.code, exc.message, exc.details), exc.status_code, headers=(headers or {}) | exc.headers()
    )


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The one error shape of the API, with every text in it bounded."""
    shown = [{k: bounded(v) if isinstance(v, str) else v for k, v in d.items()} for d in details or []]
    return {"error": {"code": code, "message": bounded(message), "details": shown}}
