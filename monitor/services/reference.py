"""Uploading the reference dataset that drift is measured against."""

from __future__ import annotations

from typing import Any

from monitor.db import reference_repo
from monitor.domain.records import RecordError
from monitor.domain.tabular import TableFormat, UnreadableTable, read_reference
from monitor.errors import InvalidRecords, MonitorError
from monitor.services.context import ServiceContext
from monitor.services.registry import resolve_version

MAX_REPORTED_ERRORS = 1000


def _reject(errors: list[RecordError], total: int) -> InvalidRecords:
    bad_rows = len({e.index for e in errors})
    shown = errors[:MAX_REPORTED_ERRORS]
    more = f"; the first {len(shown)} problems are listed" if len(errors) > len(shown) else ""
    what = (
        "the columns do not match the model schema"
        if errors[0].index is None
        else (f"{bad_rows} of {total} rows are invalid")
    )
    return InvalidRecords(f"reference rejected: {what}; nothing was stored{more}", shown)


def upload_reference(
    ctx: ServiceContext, model: str, data: bytes, fmt: TableFormat, *, version: str | None = None, name: str = ""
) -> dict[str, Any]:
    vrow = resolve_version(ctx, model, version)
    validator = ctx.validator(vrow.version_id, vrow.schema)
    try:
        records, errors = read_reference(data, fmt, validator.schema)
    except UnreadableTable as exc:
        raise MonitorError(str(exc)) from exc
    if errors:
        raise _reject(errors, 0)
    if not records:
        raise MonitorError("the reference dataset has no rows")
    rows = []
    for i, rec in enumerate(records):
        row = validator.reference(i, rec, errors)
        if row is not None:
            rows.append(row)
    if errors:
        raise _reject(errors, len(records))
    with ctx.uow() as uow:
        ref_id = reference_repo.replace_active_reference(
            uow.conn, uow.raw, vrow.model_id, vrow.version_id, name, fmt.value, rows
        )
        uow.commit()
    return {"model": model, "version": vrow.version, "reference_id": ref_id, "rows": len(rows), "format": fmt.value}
