"""Data and prediction drift of a model version over a window, from hourly summaries.

``rollup`` summarises the prediction log hour by hour inside Postgres; ``compute_drift`` merges
a window's hourly summaries (a month costs what an hour costs: the summaries are of fixed size)
and runs each column's test against its reference summary, writing metric points.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.db import reference_repo, summary_repo
from monitor.db.registry_repo import VersionRow
from monitor.db.summary_repo import ColumnSpec
from monitor.domain.monitoring import MonitoringConfig
from monitor.errors import MonitorError
from monitor.metrics.points import MetricPoint
from monitor.metrics.profiles import Summary, drift_from_summaries, summary_from_json
from monitor.metrics.stattests import DriftResult, benjamini_hochberg, dataset_drift
from monitor.services.context import ServiceContext
from monitor.services.metric_store import record_points
from monitor.services.registry import resolve_version

HOUR = timedelta(hours=1)


def hour_floor(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hours(start: datetime, end: datetime) -> list[datetime]:
    out, t = [], hour_floor(start)
    while t < end:
        out.append(t)
        t += HOUR
    return out


def _reference(ctx: ServiceContext, vrow: VersionRow) -> tuple[int, dict[str, dict[str, Any]]]:
    with ctx.uow() as uow:
        ref = reference_repo.active_reference_summaries(uow.conn, vrow.version_id)
    if ref is None or not ref[1]:
        raise MonitorError(
            f"model {vrow.model_name!r} version {vrow.version!r} has no reference dataset to measure drift against"
        )
    return ref


def rollup(ctx: ServiceContext, model: str, version: str | None, start: datetime, end: datetime) -> int:
    """Summarise each hour in [start, end) (re-running an hour replaces it). Returns rows summarised."""
    vrow = resolve_version(ctx, model, version)
    ref_id, ref = _reference(ctx, vrow)
    specs = [ColumnSpec(col, s["edges"] if s["type"] == "numerical" else None) for col, s in ref.items()]
    total = 0
    for bucket in hours(start, end):
        with ctx.uow() as uow:
            summaries, n = summary_repo.summarise_window(
                uow.conn, vrow.model_id, vrow.version_id, bucket, bucket + HOUR, specs
            )
            summary_repo.replace_bucket(uow.conn, vrow.model_id, vrow.version_id, ref_id, bucket, n, summaries)
            uow.commit()
        total += n
    return total


def _merged(
    buckets: list[tuple[datetime, str, int, dict[str, Any]]],
) -> tuple[dict[str, Summary], int]:
    merged: dict[str, Summary] = {}
    rows_per_bucket: dict[datetime, int] = {}
    for bucket, col, n, s in buckets:
        rows_per_bucket[bucket] = n
        summary = summary_from_json(s)
        merged[col] = merged[col].merge(summary) if col in merged else summary  # type: ignore[arg-type]
    return merged, sum(rows_per_bucket.values())


def compute_drift(
    ctx: ServiceContext,
    model: str,
    version: str | None,
    window_start: datetime,
    window_end: datetime,
    config: MonitoringConfig | None = None,
) -> list[MetricPoint]:
    """Feature drift, dataset drift and prediction drift for the window; stored and returned."""
    cfg = config or MonitoringConfig()
    vrow = resolve_version(ctx, model, version)
    ref_id, ref = _reference(ctx, vrow)
    with ctx.uow() as uow:
        buckets = summary_repo.load_buckets(uow.conn, vrow.version_id, ref_id, window_start, window_end)
    current, n_rows = _merged(buckets)

    results: dict[str, DriftResult] = {}
    for col, ref_json in ref.items():
        cur = current.get(col)
        if cur is None or cur.n == 0:
            continue
        name = col.removeprefix("features.")
        override = cfg.feature_tests.get(name)
        results[col] = drift_from_summaries(
            summary_from_json(ref_json),
            cur,
            ref_distinct=ref_json.get("distinct"),
            test=override.test if override else None,
            threshold=override.threshold if override else None,
        )

    features = [c for c in results if c.startswith("features.")]
    decisions = {c: results[c].drifted for c in results}
    if cfg.fdr:
        tested = [c for c in features if results[c].kind == "p_value"]
        for c, rejected in zip(
            tested, benjamini_hochberg([results[c].score for c in tested], cfg.fdr_alpha), strict=True
        ):
            decisions[c] = rejected

    points = []
    for col, r in results.items():
        is_feature = col.startswith("features.")
        labels = {"feature": col.removeprefix("features.")} if is_feature else {"column": col}
        details: dict[str, Any] = {"stattest": r.test, "kind": r.kind}
        if cfg.fdr and is_feature and r.kind == "p_value":
            details["fdr"] = {"alpha": cfg.fdr_alpha, "unadjusted_drifted": r.drifted}
        points.append(
            MetricPoint(
                "feature_drift" if is_feature else "prediction_drift",
                window_start,
                window_end,
                r.score,
                sample_size=r.n_current,
                labels={**labels, "method": r.test},
                reference_size=r.n_reference,
                threshold=r.threshold,
                drifted=decisions[col],
                details=details,
            )
        )
    if features:
        share, drifted = dataset_drift([decisions[c] for c in features], cfg.drift_share)
        points.append(
            MetricPoint(
                "dataset_drift",
                window_start,
                window_end,
                share,
                sample_size=n_rows,
                threshold=cfg.drift_share,
                drifted=drifted,
                details={
                    "drifted_features": sorted(c.removeprefix("features.") for c in features if decisions[c]),
                    "n_features": len(features),
                    "fdr": cfg.fdr,
                },
            )
        )
    record_points(ctx, model, vrow.version, points)
    return points
