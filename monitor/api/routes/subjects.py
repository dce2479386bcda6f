"""Data subjects: everything stored of one person erased on request (``admin``).

A POST with the subject in its body, not ``DELETE /v1/subjects/{subject}``: a path lands in
access logs, proxies' logs and browser histories, and the point is that the identity does not.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from monitor.api import schemas
from monitor.api.deps import Caller, Ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse
from monitor.domain.records import MAX_ID_LENGTH
from monitor.services.catalog.keys import Scope
from monitor.services.ingest import erasure

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["records"])
admin = [Depends(require(Scope.admin))]


class ErasureRequest(BaseModel):
    subject: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="as the records named it")


@router.post("/erasures", dependencies=admin, response_model=schemas.ErasureOut)
def erase_subject(body: ErasureRequest, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """Erase every prediction that named ``subject`` (in every model), with its labels and the
    labels they replaced; audited under the subject's keyed hash. Look-ups and exports never
    return them again; the summaries, which hold no row, stay."""
    return FastJSONResponse(asdict(erasure.erase_subject(ctx, body.subject, actor)))
