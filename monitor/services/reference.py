"""Uploading the reference dataset that drift is measured against."""

from __future__ import annotations

from typing import Any

from monitor.db import reference_repo
from monitor.domain.records import RecordError, ReferenceRow
from monitor.domain.schema import FeatureType, ModelSchema, Task
from monitor.domain.tabular import TableFormat, UnreadableTable, read_reference
from monitor.errors import InvalidRecords, MonitorError
from monitor.metrics.profiles import reference_summary
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


def column_summaries(schema: ModelSchema, rows: list[ReferenceRow]) -> dict[str, dict[str, Any]]:
    """Summaries of every reference column drift is measured on: each feature, the prediction,
    each class's score. Their edges are what hourly summaries of the log are counted on."""
    out = {}
    for f in schema.features:
        out[f"features.{f.name}"] = reference_summary(
            [r.features.get(f.name) for r in rows], numerical=f.type is FeatureType.numerical
        )
    predictions = [r.prediction for r in rows]
    if any(p is not None for p in predictions):
        out["prediction"] = reference_summary(predictions, numerical=schema.task is Task.regression)
    for cls in schema.classes or []:
        scores = [r.scores.get(cls) if r.scores else None for r in rows]
        if any(s is not None for s in scores):
            out[f"scores.{cls}"] = reference_summary(scores, numerical=True)
    return out


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
    summaries = column_summaries(validator.schema, rows)
    with ctx.uow() as uow:
        ref_id = reference_repo.replace_active_reference(
            uow.conn, uow.raw, vrow.model_id, vrow.version_id, name, fmt.value, rows
        )
        reference_repo.insert_summaries(uow.conn, ref_id, vrow.model_id, summaries)
        uow.commit()
    return {"model": model, "version": vrow.version, "reference_id": ref_id, "rows": len(rows), "format": fmt.value}
