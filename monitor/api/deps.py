"""Request dependencies: the service context and scope checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from monitor.domain.audit import Actor
from monitor.logs import request_id
from monitor.services.catalog.keys import Authenticator, Principal, Scope
from monitor.services.infra.context import ServiceContext

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


# A route's service context: ``ctx: Ctx``.
Ctx = Annotated[ServiceContext, Depends(get_ctx)]


def require(scope: Scope, *, query_key: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets the request through only with a key holding ``scope`` (or admin).
    ``query_key``: the key may also come as ``?api_key=`` (for senders that cannot set headers,
    such as KServe's payload logger).

    The check itself is made by the route (``monitor.api.guard.GuardedRoute``) before the body is
    read, from the scope recorded on this dependency; here the route's function receives the
    principal it found. A route that is not guarded fails closed (500), never unchecked."""

    # The HTTPBearer dependency only documents the scheme in OpenAPI.
    async def check(request: Request, _: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            raise RuntimeError(f"{request.url.path} is not served by a GuardedRoute: its key was not checked")
        return Authenticator.check_scope(principal, scope)

    check.required_scope = scope  # type: ignore[attr-defined]
    check.query_key = query_key  # type: ignore[attr-defined]
    return check


async def get_actor(request: Request) -> Actor:
    """Who acts through this request, for the audit log: the key the guard checked, the client's
    address (behind a proxy, the one uvicorn's ``--forwarded-allow-ips`` lets it trust) and the
    request id."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise RuntimeError(f"{request.url.path} is not served by a GuardedRoute: its key was not checked")
    client = request.client.host if request.client else None
    return Actor("api", principal.key_id, principal.name, principal.prefix or None, client, request_id.get())


# The actor of an administrative route: ``actor: Caller``.
Caller = Annotated[Actor, Depends(get_actor)]
