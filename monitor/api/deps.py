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


def require(scope: Scope) -> Callable[..., Principal]:
    """A dependency that lets the request through only with a key holding ``scope`` (or admin)."""

    # The HTTPBearer dependency only documents the scheme in OpenAPI; the header is read as sent
    # so that a malformed one gets a precise message.
    def check(request: Request, _: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        auth: Authenticator = request.app.state.authenticator
        return auth.require(request.headers.get("authorization"), scope)

    return check
