"""Request dependencies: the service context and scope checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from monitor.api.guard import PRINCIPAL
from monitor.services.context import ServiceContext
from monitor.services.keys import Authenticator, Principal, Scope

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")


def get_ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def require(scope: Scope, *, query_key: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets the request through only with a key holding ``scope`` (or admin).
    ``query_key``: the key may also come as ``?api_key=`` (for senders that cannot set headers,
    such as KServe's payload logger).

    The check itself is made by the request guard (``monitor.api.guard``) before the body is
    read, from the scope recorded on this dependency; here the route receives the principal it
    found. Without the guard (an app assembled otherwise) the check is made here."""

    # The HTTPBearer dependency only documents the scheme in OpenAPI.
    async def check(request: Request, _: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        principal: Principal | None = getattr(request.state, PRINCIPAL, None)
        if principal is not None:
            return Authenticator.check_scope(principal, scope)
        auth: Authenticator = request.app.state.authenticator
        header = request.headers.get("authorization")
        if header is None and query_key and request.query_params.get("api_key"):
            header = f"Bearer {request.query_params['api_key']}"
        principal = await run_in_threadpool(auth.require, header, scope)
        request.app.state.rate_limiter.acquire(principal.key_id)
        return principal

    check.required_scope = scope  # type: ignore[attr-defined]
    check.query_key = query_key  # type: ignore[attr-defined]
    return check
