"""Every error leaves the API in one JSON shape: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from monitor.api.responses import FastJSONResponse, error_body, error_response
from monitor.domain.unstorable import NUL_REASON, SURROGATE_REASON, find_unstorable
from monitor.errors import MonitorError
from monitor.services.infra.database_status import is_outage

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _field(loc: tuple) -> str:  # type: ignore[type-arg]
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


def _is_unstorable(exc: BaseException | None) -> bool:
    """psycopg refusing a NUL in text, Postgres one in jsonb, or a string that is not Unicode."""
    return isinstance(exc, UnicodeEncodeError | psycopg.errors.UntranslatableCharacter) or (
        isinstance(exc, psycopg.DataError) and "NUL" in str(exc)
    )


async def _find_unstorable(request: Request) -> tuple[str, str]:
    for where, values in (("path", request.path_params), ("query", dict(request.query_params))):
        found = find_unstorable(values)
        if found:
            return f"{where}.{found[0]}", found[1]
    try:
        found = find_unstorable(orjson.loads(await request.body()))
    except Exception:  # no body, or not JSON, or no longer readable
        found = None
    if found:
        return found
    return "", f"{NUL_REASON}, or {SURROGATE_REASON}"


async def _client_gone(request: Request, _: Exception) -> FastJSONResponse:
    """The client went away before its body had arrived: nothing of it was stored and nobody
    reads an answer. Its doing, not the service's error (it was logged at ERROR, twice)."""
    log.info("the client disconnected before its request's body arrived: %s %s", request.method, request.url.path)
    return FastJSONResponse(error_body("client_disconnected", "the request's body did not arrive"), 400)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MonitorError)
    async def monitor_error(_: Request, exc: MonitorError) -> FastJSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, exc: RequestValidationError) -> FastJSONResponse:
        details = [{"index": None, "field": _field(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return FastJSONResponse(error_body("malformed_json", "the request body is not valid JSON", details), 400)
        return FastJSONResponse(error_body("validation_error", "the request is invalid", details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> FastJSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return FastJSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    async def database_away(_: Request, exc: Exception) -> FastJSONResponse:
        # The database is down or unreachable: nothing was acknowledged, the client should retry.
        log.warning("database unavailable: %s", exc)
        return FastJSONResponse(
            error_body("database_unavailable", "the database is unavailable; retry later"),
            503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    async def internal_error(_: Request, exc: Exception) -> FastJSONResponse:
        log.error("unhandled error", exc_info=exc)
        return FastJSONResponse(error_body("internal_error", "internal server error"), 500)

    async def unstorable(request: Request, exc: Exception) -> FastJSONResponse:
        # A NUL or an unpaired surrogate reached the database (the ingestion paths catch theirs
        # per record before): refuse with the field named, found again in the request.
        field, reason = await _find_unstorable(request)
        return FastJSONResponse(
            error_body("unstorable_value", f"{field or 'a value'}: {reason}", [{"field": field, "reason": reason}]),
            400,
        )

    async def dbapi_error(request: Request, exc: DBAPIError) -> FastJSONResponse:
        if exc.connection_invalidated or is_outage(exc.orig):
            return await database_away(request, exc)
        if _is_unstorable(exc.orig):
            return await unstorable(request, exc)
        return await internal_error(request, exc)

    async def driver_error(request: Request, exc: psycopg.Error) -> FastJSONResponse:
        # raised by the driver itself, where a repository works on the raw connection (COPY)
        if is_outage(exc):
            return await database_away(request, exc)
        return await internal_error(request, exc)

    async def statement_error(request: Request, exc: StatementError) -> FastJSONResponse:
        # raised before the driver had the statement (a value it could not encode); a DBAPIError,
        # though a StatementError too, goes to its own handler above
        if _is_unstorable(exc.orig):
            return await unstorable(request, exc)
        return await internal_error(request, exc)

    app.add_exception_handler(OperationalError, database_away)
    app.add_exception_handler(PoolTimeout, database_away)
    app.add_exception_handler(psycopg.Error, driver_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, dbapi_error)  # type: ignore[arg-type]
    app.add_exception_handler(StatementError, statement_error)  # type: ignore[arg-type]
    app.add_exception_handler(UnicodeEncodeError, unstorable)

    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, internal_error)
