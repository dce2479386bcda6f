"""The request guard: who may send a body, how big, and how slowly, decided before it is read.

FastAPI reads and parses a route's JSON body before it runs the route's dependencies, so a
scope check written as a dependency comes after the body: an anonymous 200 MB body to
``/v1/silences`` would be read, held and parsed before the 401. Every API route is therefore a
``GuardedRoute`` (FastAPI's documented way to wrap a route's handler), whose handler, before the
route's own one reads anything,

1. checks the API key and the scope that route's ``require(...)`` dependency names (the same
   dependency, found once per route in its dependency tree, router-level ones included), counts
   a failed key against the client's address (too many: 429 before any lookup), and applies the
   per-key rate limit;
2. refuses a declared ``Content-Length`` over the route's limit with 413;
3. and ``BoundedBodies``, the innermost middleware, lets the route read the body only within the
   limit and within ``body_timeout_seconds`` (413 or 408 past them).

A refusal made before the body was read closes the connection after the answer, so an unread
body is never taken for the next request and a sender still trickling it is let go. The
principal found is handed to the route's ``require`` dependency as ``request.state.principal``:
the key is looked up once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from monitor.api.encoding import (
    CLOSE,
    GZIP,
    IDENTITY,
    Gunzip,
    Message,
    Receive,
    Unsupported,
    content_encoding,
    without_encoding_headers,
)
from monitor.api.responses import error_response
from monitor.domain.unstorable import text_problem
from monitor.errors import MonitorError, PayloadTooLarge, Unauthorized, UnstorableValue
from monitor.services.catalog.keys import Authenticator, Principal, Scope

Send = Callable[[Message], Awaitable[None]]

# Routes whose bodies may be larger than a batch of predictions (a path, or a route's path
# format): (the limit's setting, its variable).
LARGE_BODIES = [
    (re.compile(r"^/v1/models/[^/]+/reference$"), ("max_reference_bytes", "MONITOR_MAX_REFERENCE_BYTES")),
]
DEFAULT_BODY = ("max_body_bytes", "MONITOR_MAX_BODY_BYTES")


def body_limit(path: str) -> tuple[str, str]:
    return next((limit for pattern, limit in LARGE_BODIES if pattern.match(path)), DEFAULT_BODY)


def required_scope(route: APIRoute) -> tuple[Scope | None, bool]:
    """The scope named by a ``require(...)`` dependency anywhere in the route's dependency tree,
    and whether its key may come as ``?api_key=``; (None, False) for a route without one."""
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        scope = getattr(dependant.call, "required_scope", None)
        if scope is not None:
            return scope, bool(getattr(dependant.call, "query_key", False))
        stack.extend(dependant.dependencies)
    return None, False


class GuardedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        scope, query_key = required_scope(self)
        setting, variable = body_limit(self.path_format)

        async def guarded(request: Request) -> Response:
            try:
                if scope is not None:
                    request.state.principal = await _authenticate(request, scope, query_key)
                limit: int = getattr(request.app.state.ctx.settings, setting)
                declared = request.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise PayloadTooLarge.over(limit, variable)
                _refuse_unstorable(request)
            except MonitorError as exc:
                return error_response(exc, CLOSE)
            return await handler(request)

        return guarded


def _refuse_unstorable(request: Request) -> None:
    """Every path and query parameter is text a query may bind: one Postgres cannot hold (a NUL,
    an unpaired surrogate) is refused here, named, for every route at once (a NUL in an export's
    ``after`` reached the database as a 500)."""
    params = (("path", list(request.path_params.items())), ("query", request.query_params.multi_items()))
    for where, values in params:
        for name, value in values:
            reason = text_problem(name) or (text_problem(value) if isinstance(value, str) else None)
            if reason:
                raise UnstorableValue.at(f"{where}.{name}", reason)


async def _authenticate(request: Request, scope: Scope, query_key: bool) -> Principal:
    state = request.app.state
    auth: Authenticator = state.authenticator
    header = request.headers.get("authorization")
    if header is None and query_key and request.query_params.get("api_key"):
        header = f"Bearer {request.query_params['api_key']}"
    principal = auth.cached(header)
    if principal is None:
        client = request.client.host if request.client else "unknown"
        if header:
            state.auth_failures.check(client)
        try:
            principal = await run_in_threadpool(auth.authenticate, header)
        except Unauthorized:
            if header:
                state.auth_failures.charge(client)
            raise
    auth.check_scope(principal, scope)
    state.rate_limiter.acquire(principal.key_id)
    return principal


class BoundedBodies:
    """ASGI middleware: every request's body within its route's limit and the body timeout, its
    Content-Encoding decoded (``monitor.api.encoding``), as the app receives it (before any
    Request object exists, so all of them read the same stream)."""

    def __init__(self, app: Callable[[Message, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        ctx = getattr(scope["app"].state, "ctx", None) if scope["type"] == "http" else None
        if ctx is None:
            await self.app(scope, receive, send)
            return
        setting, variable = body_limit(scope["path"])
        limit: int = getattr(ctx.settings, setting)
        bounded: Receive = _BoundedBody(receive, limit, variable, ctx.settings.body_timeout_seconds)
        encoding = content_encoding(scope["headers"])
        if encoding in GZIP:
            bounded, scope = Gunzip(bounded, limit, variable), without_encoding_headers(scope)
        elif encoding not in IDENTITY:
            bounded = Unsupported(bounded, encoding)
        await self.app(scope, bounded, send)


class _BoundedBody:
    """``receive`` for the route: the body within ``limit`` bytes and ``timeout`` seconds, then
    whatever comes after it (a disconnect) unbounded."""

    def __init__(self, receive: Receive, limit: int, variable: str, timeout: float) -> None:
        self._receive, self._limit, self._variable, self._timeout = receive, limit, variable, timeout
        self._deadline = time.monotonic() + timeout
        self._size = 0
        self._done = False

    async def __call__(self) -> Message:
        if self._done:
            return await self._receive()
        remaining = self._deadline - time.monotonic()
        try:
            with anyio.fail_after(max(remaining, 0.001)):
                message = await self._receive()
        except TimeoutError:
            raise HTTPException(
                408,
                f"the request body did not arrive within {self._timeout:g} s (MONITOR_BODY_TIMEOUT_SECONDS)",
                headers=CLOSE,
            ) from None
        if message["type"] != "http.request":
            self._done = True
            return message
        self._size += len(message.get("body", b""))
        if self._size > self._limit:
            raise HTTPException(413, PayloadTooLarge.over(self._limit, self._variable).message, CLOSE)
        if not message.get("more_body", False):
            self._done = True
        return message
