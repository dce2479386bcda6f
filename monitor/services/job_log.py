"""The scheduler's record of its jobs per model (read by /metrics/database), and the isolation of one
hour's or one window's failure from the rest of a run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DataError

from monitor.db import ops_repo
from monitor.services.context import ServiceContext

log = logging.getLogger(__name__)


# What the data a job computes on can cause: a value out of range in a sum (Postgres' DataError),
# maths that fails on it, a shape the code did not expect. Anything else (the database away, a
# deadlock, a concurrent write) is not about the data: the run fails and is retried whole.
DATA_ERRORS = (DataError, ArithmeticError, ValueError, TypeError, LookupError)


def isolated(what: str, failures: list[str] | None, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Run ``fn``; if it fails on the data it computes on (``DATA_ERRORS``), record ``what`` and
    why in ``failures`` and return False, so that the run goes on with the other hours and windows
    instead of failing whole on every tick for ever. ``failures`` None: nothing isolated."""
    if failures is None:
        fn(*args, **kwargs)
        return True
    try:
        fn(*args, **kwargs)
        return True
    except DATA_ERRORS as exc:
        log.error("%s failed, skipped: %s", what, exc, exc_info=exc)
        failures.append(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
        return False


def succeeded(ctx: ServiceContext, model: str, job: str, duration_s: float) -> None:
    with ctx.uow() as uow:
        ops_repo.record_job_success(uow.conn, model, job, datetime.now(UTC), duration_s)
        uow.commit()


def failed(ctx: ServiceContext, model: str, job: str, error: BaseException | str, count: int = 1) -> None:
    """Record ``count`` failures of ``job`` (the message of the last one is kept)."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    with ctx.uow() as uow:
        ops_repo.record_job_failure(uow.conn, model, job, datetime.now(UTC), message, count)
        uow.commit()
