"""API key management (admin scope)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from monitor.api.deps import get_ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse
from monitor.services import keys
from monitor.services.context import ServiceContext
from monitor.services.keys import Scope

router = APIRouter(
    route_class=GuardedRoute, prefix="/v1/keys", tags=["keys"], dependencies=[Depends(require(Scope.admin))]
)


class KeyRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)


@router.post("", status_code=201)
async def create_key(req: KeyRequest, ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    """Create a key. The key itself is in this response only; only its hash is stored."""
    key, info = await run_in_threadpool(keys.create_key, ctx, req.name, req.scopes)
    return FastJSONResponse({"key": key, **info}, status_code=201)


@router.get("")
async def list_keys(ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    return FastJSONResponse({"keys": await run_in_threadpool(keys.list_keys, ctx)})


@router.delete("/{prefix}", status_code=204)
async def revoke_key(prefix: str, ctx: ServiceContext = Depends(get_ctx)) -> None:
    await run_in_threadpool(keys.revoke_key, ctx, prefix)
