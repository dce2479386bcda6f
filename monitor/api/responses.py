"""JSON responses encoded with orjson (datetimes as ISO 8601), and a stream that always ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from monitor.errors import MonitorError


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class ClosingStreamingResponse(StreamingResponse):
    """A streamed body with an end that always runs: ``on_close`` (in a worker thread) once the
    response is over, finished or not. Starlette leaves a body its client abandoned suspended,
    and skips background tasks when the client went away; what the body holds (a lock, a
    connection) was then freed only when the garbage collector found it."""

    def __init__(self, content: Any, *, on_close: Callable[[], None], **kw: Any) -> None:
        super().__init__(content, **kw)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await run_in_threadpool(self._on_close)


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
