"""API key management (admin scope)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from monitor.api import schemas
from monitor.api.deps import Caller, Ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse
from monitor.services.catalog import keys
from monitor.services.catalog.keys import Scope

router = APIRouter(
    route_class=GuardedRoute, prefix="/v1/keys", tags=["keys"], dependencies=[Depends(require(Scope.admin))]
)


class KeyRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)


@router.post("", status_code=201, response_model=schemas.KeyCreated)
def create_key(req: KeyRequest, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """Create a key. The key itself is in this response only; only its hash is stored."""
    key, info = keys.create_key(ctx, req.name, req.scopes, actor)
    return FastJSONResponse({"key": key, **info}, status_code=201)


@router.get("", response_model=schemas.KeyList)
def list_keys(ctx: Ctx) -> FastJSONResponse:
    return FastJSONResponse({"keys": keys.list_keys(ctx)})


@router.delete("/{prefix}", status_code=204)
def revoke_key(prefix: str, ctx: Ctx, actor: Caller) -> None:
    keys.revoke_key(ctx, prefix, actor)
