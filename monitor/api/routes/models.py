"""Model registry and reference data routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from monitor.api import schemas
from monitor.api.body import media_type, read_body
from monitor.api.deps import Ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat, format_from
from monitor.errors import MonitorError
from monitor.services import reference, registry
from monitor.services.keys import Scope

router = APIRouter(route_class=GuardedRoute, prefix="/v1/models", tags=["models"])


@router.post(
    "",
    status_code=201,
    dependencies=[Depends(require(Scope.admin))],
    response_model=schemas.ModelView,
    responses={
        200: {"description": "The version was registered already with the same schema", "model": schemas.ModelView},
        409: {"description": "The version exists with a different schema"},
    },
)
def register_model(spec: ModelSpec, ctx: Ctx) -> FastJSONResponse:
    """Register a model, or a new version of it, with its schema. Idempotent for an identical schema."""
    view, created = registry.register_model(ctx, spec)
    return FastJSONResponse(view, status_code=201 if created else 200)


@router.get("", dependencies=[Depends(require(Scope.read))], response_model=schemas.ModelList)
def list_models(ctx: Ctx) -> FastJSONResponse:
    return FastJSONResponse({"models": registry.list_models(ctx)})


@router.get("/{name}", dependencies=[Depends(require(Scope.read))], response_model=schemas.ModelView)
def get_model(name: str, ctx: Ctx) -> FastJSONResponse:
    return FastJSONResponse(registry.get_model(ctx, name))


_REFERENCE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The reference dataset: one column per feature, plus optional `prediction`, `label` "
        "(or `target`), `score` / `score.<class>` and segment columns.",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


@router.post(
    "/{name}/reference",
    dependencies=[Depends(require(Scope.admin))],
    openapi_extra=_REFERENCE_BODY,
    status_code=201,
    response_model=schemas.ReferenceStored,
)
async def upload_reference(
    name: str,
    request: Request,
    ctx: Ctx,
    version: str | None = Query(None, description="Model version (default: the newest)"),
    format: TableFormat | None = Query(None, description="Overrides the Content-Type"),
    dataset_name: str = Query("", alias="name", description="A name to remember the dataset by"),
) -> FastJSONResponse:
    """Upload the reference dataset for a model version; it replaces the one in use."""
    fmt = format or format_from(media_type(request))
    if fmt is None:
        raise MonitorError(
            "send CSV (text/csv), Parquet (application/vnd.apache.parquet) or JSON "
            "(application/json), or say which with ?format="
        )
    body = await read_body(request)
    result = await run_in_threadpool(
        reference.upload_reference, ctx, name, body, fmt, version=version, name=dataset_name
    )
    return FastJSONResponse(result, status_code=201)


@router.get("/{name}/monitoring", dependencies=[Depends(require(Scope.read))], response_model=MonitoringConfig)
def get_monitoring(name: str, ctx: Ctx) -> FastJSONResponse:
    """How the model is monitored: schedule, windows, drift tests."""
    return FastJSONResponse(registry.get_monitoring(ctx, name).model_dump(mode="json"))


@router.put("/{name}/monitoring", dependencies=[Depends(require(Scope.admin))], response_model=MonitoringConfig)
def put_monitoring(name: str, config: MonitoringConfig, ctx: Ctx) -> FastJSONResponse:
    """Replace the model's monitoring settings; the scheduler picks them up on its next run."""
    return FastJSONResponse(registry.set_monitoring(ctx, name, config).model_dump(mode="json"))
