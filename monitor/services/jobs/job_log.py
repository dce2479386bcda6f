"""The scheduler's record of its jobs per model (read by /metrics/database), and the isolation of one
hour's or one window's failure from the rest of a run."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy.exc import DataError

from monitor.db import ops_repo
from monitor.services.infra.context import ServiceContext

log = logging.getLogger(__name__)


# What the data a job computes on can cause: a value out of range in a sum (Postgres' DataError),
# arithmetic that fails on it (a division by zero, an overflow), a value the maths refuses
# (numpy's and scipy's ValueError). Anything else is not about the data: the database away, a
# deadlock or a concurrent write fail the run, retried whole on the next tick; a TypeError or a
# LookupError is a bug in the code, which must fail loudly, not become a skipped window.
DATA_ERRORS: tuple[type[Exception], ...] = (DataError, ArithmeticError, ValueError)


@contextmanager
def isolated(what: str, failures: list[str] | None) -> Iterator[None]:
    """Run the block; if it fails on the data it computes on (``DATA_ERRORS``), record ``what``
    and why in ``failures`` and go on, so that the run computes the other hours and windows
    instead of failing whole on every tick for ever. ``failures`` None: nothing is isolated."""
    if failures is None:
        yield
        return
    try:
        yield
    except DATA_ERRORS as exc:
        log.error("%s failed, skipped: %s", what, exc, exc_info=exc)
        first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
        failures.append(f"{what}: {type(exc).__name__}: {first_line}")


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
