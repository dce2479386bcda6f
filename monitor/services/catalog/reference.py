"""Uploading the reference dataset that drift is measured against."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from monitor.db import audit_repo, reference_repo
from monitor.db.registry_repo import VersionRow
from monitor.db.summary_repo import segment_key
from monitor.domain.audit import SYSTEM, Actor
from monitor.domain.records import ReferenceRow, stored_number
from monitor.domain.schema import FeatureType, ModelSchema, Task, category_key, schema_from_json
from monitor.domain.tabular import ColumnMapping, TableFormat, UnreadableTable, read_reference
from monitor.errors import InvalidRecords, MonitorError, RecordError
from monitor.metrics.attribution import ATTRIBUTIONS_COLUMN, AttributionSummary
from monitor.metrics.estimation import CALIBRATION_COLUMN, fit_calibration, score_matrix
from monitor.metrics.importance import IMPORTANCE_COLUMN, estimate_importance
from monitor.metrics.multivariate import (
    BASELINE_COLUMN,
    MAX_FEATURES,
    RECONSTRUCTION_COLUMN,
    Baseline,
    fit_reconstruction,
)
from monitor.metrics.profiles import reference_summary
from monitor.metrics.quality import classification_quality, regression_quality
from monitor.metrics.quality_summary import QUALITY_COLUMN, RESIDUALS_COLUMN
from monitor.metrics.score_layout import SCORE_LAYOUT_COLUMN, ScoreLayout
from monitor.services.catalog.registry import get_monitoring, resolve_version
from monitor.services.infra.context import ServiceContext

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
        numerical = f.type is FeatureType.numerical
        values = [r.features.get(f.name) for r in rows]
        out[f"features.{f.name}"] = reference_summary(
            [stored_number(v) for v in values] if numerical else values, numerical=numerical
        )
    predictions = [r.prediction for r in rows]
    if any(p is not None for p in predictions):
        out["prediction"] = reference_summary(predictions, numerical=schema.task is Task.regression)
    for cls in schema.classes or []:
        scores = [r.scores.get(cls) if r.scores else None for r in rows]
        if any(s is not None for s in scores):
            out[f"scores.{cls}"] = reference_summary(scores, numerical=True)
    return out


def quality_summaries(schema: ModelSchema, rows: list[ReferenceRow]) -> dict[str, dict[str, Any]]:
    """The reference's own quality on its labelled rows (the baseline of the quality-drop check)
    and, for regression, its residuals (what a window's residuals are tested against)."""
    labelled = [r for r in rows if r.label is not None and r.prediction is not None]
    if not labelled:
        return {}
    y = [r.label for r in labelled]
    yhat = [r.prediction for r in labelled]
    out: dict[str, dict[str, Any]] = {}
    if schema.task is Task.regression:
        q = regression_quality(y, yhat)
        residuals = np.asarray(yhat, dtype=float) - np.asarray(y, dtype=float)
        out[RESIDUALS_COLUMN] = reference_summary(residuals.tolist(), numerical=True)
    else:
        classes = list(schema.classes or [])
        scores = np.array([[(r.scores or {}).get(c, np.nan) for c in classes] for r in labelled], dtype=float)
        if schema.task is Task.binary_classification and schema.positive_class:
            pos = classes.index(schema.positive_class)
            scores[:, 1 - pos] = np.where(np.isnan(scores[:, 1 - pos]), 1 - scores[:, pos], scores[:, 1 - pos])
            scores[:, pos] = np.where(np.isnan(scores[:, pos]), 1 - scores[:, 1 - pos], scores[:, pos])
        has_scores = bool((~np.isnan(scores).any(axis=1)).any())
        q = classification_quality(
            y, yhat, classes, scores=scores if has_scores else None, positive_class=schema.positive_class
        )
    out[QUALITY_COLUMN] = {"type": "quality", "values": q.values, "n_labelled": q.n_labelled, "notes": q.notes}
    return out


def calibration(schema: ModelSchema, rows: list[ReferenceRow]) -> dict[str, dict[str, Any]]:
    """A classifier's score calibration, fitted on the rows with scores, a prediction and a label
    (what label-free estimation needs); empty for regression or without such rows."""
    classes = list(schema.classes or [])
    if schema.task is Task.regression or not classes:
        return {}
    index = {c: i for i, c in enumerate(classes)}
    usable = [r for r in rows if r.label is not None and r.prediction is not None and r.scores]
    p = score_matrix([r.scores for r in usable], classes)
    ok = ~np.isnan(p).any(axis=1)
    if ok.sum() < 2:
        return {}
    truth = np.array([index[str(r.label)] for r in usable])[ok]
    predicted = np.array([index[str(r.prediction)] for r in usable])[ok]
    return {CALIBRATION_COLUMN: fit_calibration(p[ok], truth, predicted, classes).to_json()}


def score_layout(schema: ModelSchema, rows: list[ReferenceRow]) -> dict[str, dict[str, Any]]:
    """Where a classifier's score bins go (``monitor.metrics.score_layout``), from the rows with
    a usable score for every class, labelled or not; empty without such rows."""
    classes = list(schema.classes or [])
    if schema.task is Task.regression or not classes:
        return {}
    p = score_matrix([r.scores for r in rows if r.scores], classes)
    if not (~np.isnan(p).any(axis=1)).any():
        return {}
    return {SCORE_LAYOUT_COLUMN: ScoreLayout.of_scores(p).to_json()}


def reconstruction(
    schema: ModelSchema, rows: list[ReferenceRow], slices: dict[str, list[ReferenceRow]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """The reference's reconstruction model (under '') and each slice's baseline error, from every
    row's error under components fitted without it; empty with fewer than two features."""
    features = schema.features[:MAX_FEATURES]
    numerical = [f.name for f in features if f.type is FeatureType.numerical]
    categorical = [f.name for f in features if f.type is not FeatureType.numerical]
    numbers = np.array([[stored_number(r.features.get(f)) for f in numerical] for r in rows], dtype=float).reshape(
        len(rows), len(numerical)
    )
    categories = [[category_key(r.features.get(f)) for r in rows] for f in categorical]
    fitted = fit_reconstruction(numerical, numbers, categorical, categories)
    if fitted is None:
        return {}
    model, errors = fitted
    position = {id(r): i for i, r in enumerate(rows)}
    out: dict[str, dict[str, dict[str, Any]]] = {seg: {} for seg in slices}
    for seg, part in slices.items():
        out[seg][BASELINE_COLUMN] = Baseline.of(errors[[position[id(r)] for r in part]]).to_json()
    out[""][RECONSTRUCTION_COLUMN] = model.to_json()
    return out


def attributions(schema: ModelSchema, rows: list[ReferenceRow]) -> dict[str, dict[str, Any]]:
    """The summary of the attributions the rows carry (``monitor.metrics.attribution``), what a
    window's are compared with; empty when none does."""
    summary = AttributionSummary.of_records([r.attributions for r in rows], schema.feature_names())
    return {} if summary is None else {ATTRIBUTIONS_COLUMN: summary.to_parts()[0]}


def importance(
    schema: ModelSchema, rows: list[ReferenceRow], logged: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Each feature's importance to the model's output on the reference: its mean absolute
    attribution where the rows carry attributions (with a 95 % interval), else an estimate
    (``importance.estimate_importance``) of a regression's prediction, a binary classifier's
    score of its positive class (or its prediction of it, without scores). Empty for a
    multiclass model without attributions or a reference without the output. ``logged``: the
    rows' attributions' summary (``attributions``), where they carry some."""
    if logged is not None:
        features = {f: i.to_json() for f, i in AttributionSummary.from_parts(logged).importances().items()}
        return {
            IMPORTANCE_COLUMN: {"method": "mean absolute attribution", "output": "attributions", "features": features}
        }
    if schema.task is Task.regression:
        output = [stored_number(r.prediction) if r.prediction is not None else None for r in rows]
        what = "prediction"
    elif schema.task is Task.binary_classification and schema.positive_class is not None:
        positive = schema.positive_class
        if any(r.scores for r in rows):
            output = [(r.scores or {}).get(positive) for r in rows]
            what = f"score of {positive}"
        else:
            output = [None if r.prediction is None else float(category_key(r.prediction) == positive) for r in rows]
            what = f"prediction of {positive}"
    else:
        return {}
    y = np.array([np.nan if v is None else v for v in output], dtype=float)
    numerical = {
        f.name: np.array([stored_number(r.features.get(f.name)) for r in rows], dtype=float)
        for f in schema.features
        if f.type is FeatureType.numerical
    }
    categorical = {
        f.name: [category_key(r.features.get(f.name)) for r in rows]
        for f in schema.features
        if f.type is not FeatureType.numerical
    }
    found = estimate_importance(numerical, categorical, y)
    if not found:
        return {}
    features = {name: i.to_json() for name, i in found.items()}
    return {IMPORTANCE_COLUMN: {"method": "permutation of a surrogate", "output": what, "features": features}}


def segment_slices(schema: ModelSchema, rows: list[ReferenceRow], top_values: int) -> dict[str, list[ReferenceRow]]:
    """The reference's rows of each tracked segment ('column=value'): per segment column, its
    ``top_values`` most frequent values in the reference."""
    out: dict[str, list[ReferenceRow]] = {}
    for column in schema.segments:
        counts = Counter(v for r in rows if (v := (r.segments or {}).get(column)) is not None)
        for value, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_values]:
            out[segment_key((column, value))] = [r for r in rows if (r.segments or {}).get(column) == value]
    return out


def _validated_rows(
    ctx: ServiceContext, vrow: VersionRow, data: bytes, fmt: TableFormat, mapping: ColumnMapping | None
) -> list[ReferenceRow]:
    """The dataset's rows, each validated (every bad one named, or none taken), as the log keeps
    rows: personal values hashed or dropped, so drift compares like with like."""
    validator = ctx.validator(vrow.version_id, vrow.schema)
    try:
        records, errors = read_reference(data, fmt, validator.schema, mapping)
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
    personal = ctx.personal_data(vrow.version_id, vrow.schema)
    return [personal.reference(r, ctx.secrets.value_hash) for r in rows]


def upload_reference(
    ctx: ServiceContext,
    model: str,
    data: bytes,
    fmt: TableFormat,
    *,
    version: str | None = None,
    name: str = "",
    mapping: ColumnMapping | None = None,
    actor: Actor = SYSTEM,
) -> dict[str, Any]:
    vrow = resolve_version(ctx, model, version)
    rows = _validated_rows(ctx, vrow, data, fmt, mapping)
    schema = schema_from_json(vrow.schema)
    slices = {"": rows, **segment_slices(schema, rows, get_monitoring(ctx, model).segment_top_values)}
    summaries = {
        seg: {**column_summaries(schema, part), **quality_summaries(schema, part)} for seg, part in slices.items()
    }
    for seg, part in slices.items():
        summaries[seg] |= attributions(schema, part)
    logged = summaries[""].get(ATTRIBUTIONS_COLUMN)
    summaries[""] |= calibration(schema, rows) | score_layout(schema, rows) | importance(schema, rows, logged)
    for seg, extras in reconstruction(schema, rows, slices).items():
        summaries[seg] |= extras
    with ctx.uow() as uow:
        personal = ctx.personal_data(vrow.version_id, vrow.schema)  # summarised whole, stored without some
        ref_id = reference_repo.replace_active_reference(
            uow.conn,
            uow.raw,
            vrow.model_id,
            vrow.version_id,
            name,
            fmt.value,
            [personal.stored_reference(r) for r in rows],
        )
        for seg, cols in summaries.items():
            reference_repo.insert_summaries(uow.conn, ref_id, vrow.model_id, cols, seg)
        stored = {
            "model": model,
            "version": vrow.version,
            "reference_id": ref_id,
            "rows": len(rows),
            "format": fmt.value,
            "segments": {seg: len(part) for seg, part in slices.items() if seg},
            "labelled": QUALITY_COLUMN in summaries[""],
            "calibrated": CALIBRATION_COLUMN in summaries[""],
            "reconstruction": RECONSTRUCTION_COLUMN in summaries[""],
            "importance": IMPORTANCE_COLUMN in summaries[""],
            "attributions": ATTRIBUTIONS_COLUMN in summaries[""],
        }
        audit_repo.append(
            uow.conn,
            actor,
            "reference.uploaded",
            ref_id,
            model=model,
            details={"name": name, "bytes": len(data)} | stored,
        )
        uow.commit()
    ctx.forget_active_reference(vrow.version_id)  # this process's next batches summarise against it
    return stored
