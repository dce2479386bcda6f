"""The scheduler's record of its jobs per model (read by /metrics)."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.db import ops_repo
from monitor.services.context import ServiceContext


def succeeded(ctx: ServiceContext, model: str, job: str, duration_s: float) -> None:
    with ctx.uow() as uow:
        ops_repo.record_job_success(uow.conn, model, job, datetime.now(UTC), duration_s)
        uow.commit()


def failed(ctx: ServiceContext, model: str, job: str, error: BaseException) -> None:
    with ctx.uow() as uow:
        ops_repo.record_job_failure(uow.conn, model, job, datetime.now(UTC), f"{type(error).__name__}: {error}")
        uow.commit()
