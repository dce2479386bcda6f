"""Full Evidently reports for a window."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from monitor.api import schemas
from monitor.api.deps import Caller, Ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse
from monitor.services.catalog.keys import Scope
from monitor.services.read_models import reports
from monitor.web_security import REPORT_HEADERS

READ = require(Scope.read)
router = APIRouter(route_class=GuardedRoute, prefix="/v1/models", tags=["reports"], dependencies=[Depends(READ)])


class ReportRequest(BaseModel):
    start: datetime
    end: datetime
    version: str | None = None
    kind: Literal["drift", "quality"] = "drift"
    sample_size: int = Field(
        10_000, ge=100, le=1_000_000, description="rows sampled from the window; at most MONITOR_REPORT_MAX_SAMPLE_SIZE"
    )


@router.post("/{name}/reports", status_code=201, response_model=schemas.ReportInfo)
def create_report(name: str, req: ReportRequest, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """Build an Evidently report (data drift, or quality on labelled rows) from random samples.
    One at a time per key (429 with Retry-After meanwhile); reports are kept
    MONITOR_REPORT_RETENTION_DAYS."""
    meta = reports.build_report(
        ctx, name, req.version, req.start, req.end, kind=req.kind, sample_size=req.sample_size, actor=actor
    )
    return FastJSONResponse(meta, status_code=201)


@router.get("/{name}/reports", response_model=schemas.ReportList)
def list_reports(name: str, ctx: Ctx) -> FastJSONResponse:
    return FastJSONResponse({"reports": reports.list_reports(ctx, name)})


@router.get("/{name}/reports/{report_id}", response_model=schemas.ReportInfo)
def get_report(name: str, report_id: int, ctx: Ctx) -> FastJSONResponse:
    """The report's description and Evidently's JSON result."""
    return FastJSONResponse(reports.get_report(ctx, name, report_id))


@router.get("/{name}/reports/{report_id}/html", response_class=HTMLResponse)
def get_report_html(name: str, report_id: int, ctx: Ctx) -> HTMLResponse:
    report = reports.get_report(ctx, name, report_id, with_html=True)
    # Served sandboxed (an opaque origin, no network), also reports stored before their JSON was escaped.
    return HTMLResponse(report["html"], headers=REPORT_HEADERS)
