"""Full Evidently reports for a window, built on demand from bounded random samples.

The drift job answers "did it drift" for any window in milliseconds; a report is for the analyst
who wants Evidently's full picture. It rests on a random sample of the window (and of the
reference), and says how large, so nobody mistakes it for the whole window.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

import orjson
import pandas as pd

from monitor.db import audit_repo, reference_repo, report_repo
from monitor.db.registry_repo import VersionRow
from monitor.db.report_repo import ReportRow
from monitor.domain.audit import SYSTEM, Actor
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.records import NEG_INF, POS_INF
from monitor.domain.schema import FeatureType, ModelSchema, Task, schema_from_json
from monitor.errors import MonitorError, NotFound, TooManyRequests
from monitor.metrics.fairness import counts_of_rows, fairness_points, thresholds_for
from monitor.metrics.points import MetricPoint
from monitor.services.catalog.registry import get_monitoring, model_id_or_404, resolve_version
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.summary_plan import load_reference
from monitor.services.read_models.report_importance import importance_entry, importance_html
from monitor.web_security import escape_embedded_json

BUILD_RETRY_SECONDS = 10.0  # what a second request of the same key is told to wait


def _frame(rows: list[dict[str, Any]], schema: ModelSchema) -> pd.DataFrame:
    data: dict[str, list[Any]] = {}
    for f in schema.features:
        values = [r["features"].get(f.name) for r in rows]
        if f.type is FeatureType.boolean:
            values = [None if v is None else str(v).lower() for v in values]
        elif f.type is FeatureType.numerical:  # ±inf left out, as the drift metrics leave it out
            values = [None if v in (POS_INF, NEG_INF) else v for v in values]
        data[f.name] = values
    data["prediction"] = [r["prediction"] for r in rows]
    data["target"] = [r["label"] for r in rows]
    return pd.DataFrame(data)


def _definition(schema: ModelSchema, kind: str) -> Any:
    from evidently import BinaryClassification, DataDefinition, MulticlassClassification, Regression

    numerical = [f.name for f in schema.features if f.type is FeatureType.numerical]
    categorical = [f.name for f in schema.features if f.type is not FeatureType.numerical]
    extra: dict[str, Any] = {}
    if kind == "quality":
        if schema.task is Task.regression:
            extra["regression"] = [Regression(target="target", prediction="prediction")]
        elif schema.task is Task.binary_classification:
            extra["classification"] = [
                BinaryClassification(target="target", prediction_labels="prediction", pos_label=schema.positive_class)
            ]
        else:
            extra["classification"] = [MulticlassClassification(target="target", prediction_labels="prediction")]
    return DataDefinition(numerical_columns=numerical, categorical_columns=categorical, **extra)


def _strict_json(text: str) -> str:
    """Evidently writes NaN for metrics it cannot compute (recall with no positives); JSON and
    Postgres have no NaN, so those become null."""
    return orjson.dumps(json.loads(text)).decode()  # orjson writes NaN and infinities as null


def _fairness(
    schema: ModelSchema, cfg: MonitoringConfig, rows: list[dict[str, Any]], start: datetime, end: datetime
) -> list[MetricPoint]:
    """Fairlearn's measures on the report's sample, per protected attribute (binary classifiers)."""
    if schema.task is not Task.binary_classification or schema.positive_class is None:
        return []
    out = []
    for attribute in cfg.protected_attributes:
        groups = counts_of_rows(schema.positive_class, attribute, rows)
        out += [
            p for p in fairness_points(attribute, groups, thresholds_for(cfg), start, end) if "group" not in p.labels
        ]
    return out


def _fairness_entry(p: MetricPoint) -> dict[str, Any]:
    return {
        "attribute": p.labels["attribute"],
        "measure": p.metric.removeprefix("fairness."),
        "value": p.value,
        "lower": p.details["lower"],
        "upper": p.details["upper"],
        "threshold": p.threshold,
        "violated": p.drifted,
        "groups": p.details["groups"],
    }


def _fairness_html(points: list[MetricPoint]) -> str:
    """The sample's fairness measures as a table (every value escaped: group names are data)."""
    if not points:
        return ""
    cells = []
    for p in points:
        e = _fairness_entry(p)
        groups = "; ".join(
            f"{html.escape(rate)}: "
            + ", ".join(f"{html.escape(g)} {v['rate']:.3f} (n={v['rows']:,})" for g, v in by.items())
            for rate, by in e["groups"].items()
        )
        verdict = {True: "violated", False: "within", None: "too few rows to decide"}[e["violated"]]
        cells.append(
            f"<tr><td>{html.escape(e['attribute'])}</td><td>{html.escape(e['measure'])}</td>"
            f"<td>{e['value']:.3f}</td><td>{e['lower']:.3f} to {e['upper']:.3f}</td><td>{e['threshold']}</td>"
            f"<td>{verdict}</td><td>{groups}</td></tr>"
        )
    return (
        '<div style="font-family:sans-serif;padding:12px"><h3>Fairness across protected attributes</h3>'
        "<p>Fairlearn's definitions, on this report's sample; 95 % intervals.</p>"
        '<table border="1" cellpadding="4" style="border-collapse:collapse"><tr><th>attribute</th><th>measure</th>'
        "<th>value</th><th>95 % interval</th><th>threshold</th><th>decision</th><th>groups</th></tr>"
        + "".join(cells)
        + "</table></div>"
    )


def _banner(meta: dict[str, Any]) -> str:
    text = (
        f"Model {meta['model']} version {meta['version']}, {meta['kind']} report for "
        f"[{meta['window_start'].isoformat()}, {meta['window_end'].isoformat()}): a random sample of "
        f"{meta['sample_size']:,} of the window's {meta['window_rows']:,} predictions"
        f"{' with labels' if meta['kind'] == 'quality' else ''}, against a random sample of "
        f"{meta['reference_sample_size']:,} reference rows."
    )
    return (
        '<div style="font-family:sans-serif;padding:12px;background:#fff3cd;border:1px solid #e0c36c">'
        f"{html.escape(text)}</div>"
    )


def build_report(
    ctx: ServiceContext,
    model: str,
    version: str | None,
    window_start: datetime,
    window_end: datetime,
    *,
    kind: str = "drift",
    sample_size: int = 10_000,
    actor: Actor = SYSTEM,
) -> dict[str, Any]:
    """Build, store and describe an Evidently report: data drift, or quality on labelled rows.

    A report costs seconds of CPU and megabytes of storage, and a read key may ask for one: the
    sample is bounded by ``report_max_sample_size``, and the key ``key_id`` builds one report at
    a time, across every API and dashboard process (a Postgres advisory lock)."""
    key_id = actor.key_id or 0
    if kind not in ("drift", "quality"):
        raise MonitorError("kind must be 'drift' or 'quality'")
    if window_end <= window_start:
        raise MonitorError("the window must end after it starts")
    most = ctx.settings.report_max_sample_size
    if sample_size > most:
        raise MonitorError(
            f"sample_size {sample_size} is over the limit of {most} rows (MONITOR_REPORT_MAX_SAMPLE_SIZE)",
            [{"field": "sample_size", "reason": f"at most {most}"}],
        )
    with ctx.engine.connect() as lock_conn:
        if not report_repo.try_lock_builder(lock_conn, key_id):
            lock_conn.rollback()
            raise TooManyRequests("a report is being built for this key already; one at a time", BUILD_RETRY_SECONDS)
        lock_conn.commit()  # the lock is the session's: no transaction stays open during the build
        try:
            return _build(ctx, model, version, window_start, window_end, kind, max(1, sample_size), actor)
        finally:
            report_repo.unlock_builder(lock_conn, key_id)
            lock_conn.commit()


def _build(
    ctx: ServiceContext,
    model: str,
    version: str | None,
    window_start: datetime,
    window_end: datetime,
    kind: str,
    n: int,
    actor: Actor,
) -> dict[str, Any]:
    """Sample the window and the reference, run Evidently on them, store the report."""
    vrow = resolve_version(ctx, model, version)
    schema = schema_from_json(vrow.schema).stored()  # what the samples hold
    rows, current, reference = _samples(ctx, vrow, window_start, window_end, kind, n)
    meta = {
        "model": model,
        "version": vrow.version,
        "kind": kind,
        "window_start": window_start,
        "window_end": window_end,
        "sample_size": len(current),
        "window_rows": rows,
        "reference_sample_size": len(reference),
    }
    summary, page = _run_evidently(schema, kind, current, reference)
    fairness = _fairness(schema, get_monitoring(ctx, model), current, window_start, window_end)
    extras = load_reference(ctx, vrow).extras[""]
    importance = importance_entry(schema.feature_names(), extras, current, window_start, window_end)
    head = _banner(meta) + _fairness_html(fairness) + importance_html(importance)
    page = page.replace("<body>", "<body>" + head, 1) if "<body>" in page else head + page
    meta["fairness"] = [_fairness_entry(p) for p in fairness]
    meta["importance"] = importance
    with ctx.uow() as uow:
        report_id = report_repo.insert_report(
            uow.conn,
            model_id=vrow.model_id,
            model_version_id=vrow.version_id,
            kind=kind,
            window_start=window_start,
            window_end=window_end,
            sample_size=len(current),
            window_rows=rows,
            reference_sample_size=len(reference),
            summary=summary,
            html=page,
        )
        audit_repo.append(uow.conn, actor, "report.built", report_id, model=model, details=meta)
        uow.commit()
    return {"id": report_id, **meta}


def _samples(
    ctx: ServiceContext, vrow: VersionRow, window_start: datetime, window_end: datetime, kind: str, n: int
) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    """The window's row count, and random samples of at most ``n`` rows of the window and of the
    reference (labelled ones for a quality report). Of a model keeping summaries only, the rows
    kept whole: its sample."""
    labelled = kind == "quality"
    personal = ctx.personal_data(vrow.version_id, vrow.schema)
    whole = personal.sample if personal.summaries_only else None
    with ctx.uow() as uow:
        ref = reference_repo.measured_reference_summaries(uow.conn, vrow.version_id)
        if ref is None:
            raise MonitorError(f"model {vrow.model_name!r} version {vrow.version!r} has no reference dataset")
        window = (uow.conn, vrow.model_id, vrow.version_id, window_start, window_end)
        rows = report_repo.window_rows(*window, whole)
        current = report_repo.sample_window(*window, n, labelled, whole)
        reference = report_repo.sample_reference(uow.conn, ref[0], n, labelled)
    if not current:
        what = "labelled predictions" if labelled else "predictions"
        if personal.summaries_only:
            what += " kept whole (the model keeps summaries only; its personal_data.sample_rate is the share kept)"
        raise MonitorError(f"no {what} in the window to report on")
    if not reference:
        raise MonitorError(
            "the reference has no labelled rows to compare quality with" if labelled else "the reference is empty"
        )
    return rows, current, reference


def _run_evidently(
    schema: ModelSchema, kind: str, current: list[dict[str, Any]], reference: list[dict[str, Any]]
) -> tuple[str, str]:
    """Evidently's report on the two samples: its JSON result (strict JSON) and its HTML page."""
    from evidently import Dataset, Report
    from evidently.presets import ClassificationPreset, DataDriftPreset, RegressionPreset

    definition = _definition(schema, kind)
    presets = (
        [DataDriftPreset()]
        if kind == "drift"
        else [RegressionPreset() if schema.task is Task.regression else ClassificationPreset()]
    )
    snapshot = Report(presets).run(
        Dataset.from_pandas(_frame(current, schema), data_definition=definition),
        Dataset.from_pandas(_frame(reference, schema), data_definition=definition),
    )
    return _strict_json(snapshot.json()), escape_embedded_json(snapshot.get_html_str(as_iframe=False))


def list_reports(ctx: ServiceContext, model: str) -> list[ReportRow]:
    with ctx.uow() as uow:
        return report_repo.list_reports(uow.conn, model_id_or_404(uow.conn, model))


def get_report(ctx: ServiceContext, model: str, report_id: int, *, with_html: bool = False) -> ReportRow:
    with ctx.uow() as uow:
        report = report_repo.get_report(uow.conn, model_id_or_404(uow.conn, model), report_id, with_html)
    if report is None:
        raise NotFound(f"model {model!r} has no report {report_id}")
    return report
