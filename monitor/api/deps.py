"""Request dependencies: the service context and scope checks."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from monitor.services.context import ServiceContext
from monitor.services.keys import Authenticator, Principal, Scope

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")


def get_ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def require(scope: Scope, *, query_key: bool = False) -> Callable[..., Principal]:
    """A dependency that lets the request through only with a key holding ``scope`` (or admin).
    ``query_key``: the key may also come as ``?api_key=`` (for senders that cannot set headers,
    such as KServe's payload logger)."""

    # The HTTPBearer dependency only documents the scheme in OpenAPI; the header is read as sent
    # so that a malformed one gets a precise message.
    def check(request: Request, _: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        auth: Authenticator = request.app.state.authenticator
        header = request.headers.get("authorization")
        if header is None and query_key and request.query_params.get("api_key"):
            header = f"Bearer {request.query_params['api_key']}"
        principal = auth.require(header, scope)
        request.app.state.rate_limiter.acquire(principal.key_id)
        return principal

    return check
