"""Model registry and reference data routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from monitor.api import schemas
from monitor.api.body import media_type, read_body
from monitor.api.deps import Caller, Ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse
from monitor.domain.deployment import DeploymentSpec
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import ColumnMapping, TableFormat, format_from
from monitor.errors import MonitorError
from monitor.services.catalog import reference, registry
from monitor.services.catalog.keys import Scope
from monitor.services.read_models import importance

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
def register_model(spec: ModelSpec, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """Register a model, or a new version of it, with its schema. Idempotent for an identical schema."""
    view, created = registry.register_model(ctx, spec, actor)
    return FastJSONResponse(view, status_code=201 if created else 200)


@router.get("", dependencies=[Depends(require(Scope.read))], response_model=schemas.ModelList)
def list_models(ctx: Ctx) -> FastJSONResponse:
    return FastJSONResponse({"models": registry.list_models(ctx)})


@router.get("/{name}", dependencies=[Depends(require(Scope.read))], response_model=schemas.ModelView)
def get_model(name: str, ctx: Ctx) -> FastJSONResponse:
    return FastJSONResponse(registry.get_model(ctx, name))


@router.get("/{name}/importance", dependencies=[Depends(require(Scope.read))], response_model=schemas.ImportanceOut)
def get_importance(
    name: str,
    ctx: Ctx,
    version: str | None = Query(None, description="Model version (default: the champion, or the newest)"),
) -> FastJSONResponse:
    """Each feature's importance to the model on its reference: the rows' mean absolute
    attribution, or an estimate made at the upload; what drift is weighed by."""
    return FastJSONResponse(importance.reference_importance(ctx, name, version))


_REFERENCE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The reference dataset: one column per feature, plus optional `prediction`, `label` "
        "(or `target`), `score` / `score.<class>`, `attribution.<feature>` and segment columns.",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


def _pairs(param: str, values: list[str]) -> dict[str, str]:
    """'name:column' query values as a mapping; 400 naming the parameter for a malformed one."""
    out = {}
    for v in values:
        key, sep, column = v.partition(":")
        if not sep or not key or not column:
            raise MonitorError(
                f"{param}={v!r} must look like name:column", [{"field": param, "reason": "expected name:column"}]
            )
        out[key] = column
    return out


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
    actor: Caller,
    version: str | None = Query(
        None, description="Model version (default: the champion, or the newest where no champion is declared)"
    ),
    format: TableFormat | None = Query(None, description="Overrides the Content-Type"),
    dataset_name: str = Query("", alias="name", description="A name to remember the dataset by"),
    prediction: str | None = Query(None, description="the prediction's column, if not `prediction`"),
    label: str | None = Query(None, description="the ground truth's column, if not `label` or `target`"),
    score: str | None = Query(None, description="binary: the positive class's probability column, if not `score`"),
    scores: list[str] = Query([], description="class:column, repeatable: each class's probability column"),
    feature: list[str] = Query([], description="feature:column, repeatable, where a feature's column differs"),
    attribution: list[str] = Query(
        [], description="feature:column, repeatable: a feature's attribution column, if not `attribution.<feature>`"
    ),
    timestamp: str | None = Query(None, description="a time column, read past"),
    id: str | None = Query(None, description="a row id column, read past"),
    ignore: list[str] = Query([], description="a column to leave out, repeatable"),
    ignore_unknown: bool = Query(False, description="leave out every column that is not mapped or named like one"),
) -> FastJSONResponse:
    """Upload the reference dataset for a model version; it replaces the one in use. Columns are
    read by name (features, segments, `prediction`, `label`/`target`, `score`/`score.<class>`,
    `attribution.<feature>`);
    the query's column mapping names the file's own columns instead."""
    mapping = ColumnMapping(
        prediction=prediction,
        label=label,
        score=score,
        scores=_pairs("scores", scores),
        features=_pairs("feature", feature),
        attributions=_pairs("attribution", attribution),
        timestamp=timestamp,
        id=id,
        ignore=ignore,
        ignore_unknown=ignore_unknown,
    )
    fmt = format or format_from(media_type(request))
    if fmt is None:
        raise MonitorError(
            "send CSV (text/csv), Parquet (application/vnd.apache.parquet) or JSON "
            "(application/json), or say which with ?format="
        )
    body = await read_body(request)
    result = await run_in_threadpool(
        lambda: reference.upload_reference(
            ctx, name, body, fmt, version=version, name=dataset_name, mapping=mapping, actor=actor
        )
    )
    return FastJSONResponse(result, status_code=201)


@router.put(
    "/{name}/versions/{version}/deployment",
    dependencies=[Depends(require(Scope.admin))],
    response_model=schemas.ModelView,
)
def put_deployment(name: str, version: str, spec: DeploymentSpec, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """Say how a version serves when several are live: champion (making one retires the one
    before), canary, ab (a split's arm) or shadow (scores the champion's requests too), retired."""
    return FastJSONResponse(registry.set_deployment(ctx, name, version, spec.mode, actor))


@router.get("/{name}/monitoring", dependencies=[Depends(require(Scope.read))], response_model=MonitoringConfig)
def get_monitoring(name: str, ctx: Ctx) -> FastJSONResponse:
    """How the model is monitored: schedule, windows, drift tests."""
    return FastJSONResponse(registry.get_monitoring(ctx, name).model_dump(mode="json"))


@router.put("/{name}/monitoring", dependencies=[Depends(require(Scope.admin))], response_model=MonitoringConfig)
def put_monitoring(name: str, config: MonitoringConfig, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """Replace the model's monitoring settings; the scheduler picks them up on its next run."""
    return FastJSONResponse(registry.set_monitoring(ctx, name, config, actor).model_dump(mode="json"))
