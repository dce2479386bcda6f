"""Window metrics of a model version from hourly summaries: data and prediction drift, latency
and throughput.

``rollup`` summarises the prediction log hour by hour inside Postgres; ``compute_window`` merges
a window's hourly summaries (a month costs what an hour costs: the summaries are of fixed size)
and runs each column's test against its reference summary, writing metric points.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from monitor.db import log_repo, reference_repo, summary_repo
from monitor.db.registry_repo import VersionRow
from monitor.db.summary_repo import ColumnSpec
from monitor.domain.monitoring import MonitoringConfig
from monitor.errors import MonitorError
from monitor.metrics.points import MetricPoint
from monitor.metrics.profiles import (
    LATENCY_EDGES,
    CategoricalSummary,
    NumericSummary,
    Summary,
    drift_from_summaries,
    quantile,
    summary_from_json,
    summary_to_parts,
)
from monitor.metrics.stattests import DriftResult, benjamini_hochberg, dataset_drift
from monitor.services.context import ServiceContext
from monitor.services.metric_store import record_points
from monitor.services.registry import resolve_version

HOUR = timedelta(hours=1)
LATENCY = "latency_ms"
LATENCY_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


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
    """Summarise each hour in [start, end) (re-running an hour replaces it, and drops its day's
    merged summary so the day is merged again when next needed). Returns rows summarised."""
    vrow = resolve_version(ctx, model, version)
    ref_id, ref = _reference(ctx, vrow)
    specs = [ColumnSpec(col, s["edges"] if s["type"] == "numerical" else None) for col, s in ref.items()]
    specs.append(ColumnSpec(LATENCY, LATENCY_EDGES.tolist()))
    total = 0
    for bucket in hours(start, end):
        with ctx.uow() as uow:
            parts, n = summary_repo.summarise_window(
                uow.conn, vrow.model_id, vrow.version_id, bucket, bucket + HOUR, specs
            )
            summary_repo.replace_bucket(uow.conn, vrow.model_id, vrow.version_id, ref_id, bucket, 1, n, parts)
            summary_repo.delete_bucket(uow.conn, vrow.version_id, ref_id, summary_repo.day_of_hour(bucket), 24)
            uow.commit()
        total += n
    return total


class _Accumulator:
    """Adds up a window's bucket summaries column by column."""

    def __init__(self, ref: dict[str, dict[str, Any]]) -> None:
        self._edges = {c: np.asarray(s["edges"], dtype=float) for c, s in ref.items() if s["type"] == "numerical"}
        self._edges[LATENCY] = LATENCY_EDGES
        self.columns: dict[str, Summary] = {}
        self._rows: dict[tuple[datetime, int], int] = {}

    def add(
        self, bucket: datetime, hours_: int, col: str, n_rows: int, stats: dict[str, Any], counts: bytes | None
    ) -> None:
        self._rows[(bucket, hours_)] = n_rows
        s = self.columns.get(col)
        if s is None:
            edges = self._edges.get(col)
            s = self.columns[col] = NumericSummary.empty(edges) if edges is not None else CategoricalSummary()
        if isinstance(s, NumericSummary):
            assert counts is not None
            s.add_parts(stats, counts)
        else:
            s.add_parts(stats)

    @property
    def n_rows(self) -> int:
        return sum(self._rows.values())


def _window_summaries(
    ctx: ServiceContext, vrow: VersionRow, ref_id: int, ref: dict[str, dict[str, Any]], start: datetime, end: datetime
) -> _Accumulator:
    """Whole UTC days inside the window are read as day summaries (merged from their hours on
    first use), the hours around them as hour summaries: a 30-day window reads ~30 rows a column."""
    acc = _Accumulator(ref)
    all_hours = hours(start, end)
    now = datetime.now(UTC)
    day = summary_repo.DAY
    days = sorted({d for d in map(summary_repo.day_of_hour, all_hours) if start <= d and d + day <= min(end, now)})
    day_set = set(days)
    loose_hours = [h for h in all_hours if summary_repo.day_of_hour(h) not in day_set]
    with ctx.uow() as uow:
        have = summary_repo.load_buckets(uow.conn, vrow.version_id, ref_id, 24, days)
        missing_days = day_set - {b for b, *_ in have}
        for d in sorted(missing_days):
            day_acc = _Accumulator(ref)
            for b, col, n, st, ct in summary_repo.load_buckets(
                uow.conn, vrow.version_id, ref_id, 1, hours(d, d + summary_repo.DAY)
            ):
                day_acc.add(b, 1, col, n, st, ct)
            parts = {c: summary_to_parts(s) for c, s in day_acc.columns.items()}
            summary_repo.replace_bucket(uow.conn, vrow.model_id, vrow.version_id, ref_id, d, 24, day_acc.n_rows, parts)
            for col, (st, ct) in parts.items():
                acc.add(d, 24, col, day_acc.n_rows, st, ct)
        uow.commit()
        for b, col, n, st, ct in have:
            acc.add(b, 24, col, n, st, ct)
        for b, col, n, st, ct in summary_repo.load_buckets(uow.conn, vrow.version_id, ref_id, 1, loose_hours):
            acc.add(b, 1, col, n, st, ct)
    return acc


def compute_window(
    ctx: ServiceContext,
    model: str,
    version: str | None,
    window_start: datetime,
    window_end: datetime,
    config: MonitoringConfig | None = None,
) -> list[MetricPoint]:
    """The window's metric points — feature, prediction and dataset drift; latency, throughput;
    data quality — stored (replacing an earlier run's) and returned."""
    cfg = config or MonitoringConfig()
    vrow = resolve_version(ctx, model, version)
    ref_id, ref = _reference(ctx, vrow)
    acc = _window_summaries(ctx, vrow, ref_id, ref, window_start, window_end)
    current, n_rows = acc.columns, acc.n_rows

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
    points.extend(_operational_points(current.get(LATENCY), n_rows, window_start, window_end))
    points.extend(_quality_of_data_points(ref, current, window_start, window_end))
    points.extend(_violation_points(ctx, vrow.model_id, window_start, window_end))
    record_points(ctx, model, vrow.version, points)
    return points


def _operational_points(
    latency: Summary | None, n_rows: int, window_start: datetime, window_end: datetime
) -> list[MetricPoint]:
    """Latency percentiles, mean and max (ms), and throughput per minute over the elapsed window."""
    elapsed = min(window_end, datetime.now(UTC)) - window_start
    minutes = max(elapsed.total_seconds() / 60, 1 / 60)
    points = [
        MetricPoint(
            "throughput.per_minute",
            window_start,
            window_end,
            n_rows / minutes,
            sample_size=n_rows,
            details={"elapsed_minutes": round(minutes, 3)},
        )
    ]
    if isinstance(latency, NumericSummary) and latency.n:
        details = {"missing": latency.missing}
        for name, q in LATENCY_QUANTILES.items():
            points.append(
                MetricPoint(
                    f"latency.{name}",
                    window_start,
                    window_end,
                    quantile(latency, q),
                    sample_size=latency.n,
                    details=details,
                )
            )
        points.append(MetricPoint("latency.mean", window_start, window_end, latency.mean, sample_size=latency.n))
        points.append(MetricPoint("latency.max", window_start, window_end, latency.maximum, sample_size=latency.n))
    return points


def _quality_of_data_points(
    ref: dict[str, dict[str, Any]], current: dict[str, Summary], window_start: datetime, window_end: datetime
) -> list[MetricPoint]:
    """Per feature: share of missing values; numerical, share outside the reference's range
    (its edges run from the reference's minimum to its maximum, so this is exact); categorical,
    share of values in categories the reference never had."""
    points = []
    for col, ref_json in ref.items():
        cur = current.get(col)
        if not col.startswith("features.") or cur is None:
            continue
        labels = {"feature": col.removeprefix("features.")}
        total = cur.n + cur.missing
        if total:
            points.append(
                MetricPoint(
                    "data_quality.missing_share",
                    window_start,
                    window_end,
                    cur.missing / total,
                    sample_size=total,
                    labels=labels,
                    details={"missing": cur.missing},
                )
            )
        if not cur.n:
            continue
        if isinstance(cur, NumericSummary):
            outside = int(cur.counts[0] + cur.counts[-1])
            points.append(
                MetricPoint(
                    "data_quality.out_of_range_share",
                    window_start,
                    window_end,
                    outside / cur.n,
                    sample_size=cur.n,
                    labels=labels,
                    details={
                        "outside": outside,
                        "reference_min": float(cur.edges[0]),
                        "reference_max": float(cur.edges[-1]),
                    },
                )
            )
        else:
            known = ref_json["counts"]
            new = {k: c for k, c in cur.counts.items() if k not in known}  # type: ignore[union-attr]
            top = sorted(new.items(), key=lambda kv: -kv[1])[:10]
            points.append(
                MetricPoint(
                    "data_quality.new_category_share",
                    window_start,
                    window_end,
                    sum(new.values()) / cur.n,
                    sample_size=cur.n,
                    labels=labels,
                    details={"new_categories": dict(top), "n_new": len(new)},
                )
            )
    return points


def _violation_points(
    ctx: ServiceContext, model_id: int, window_start: datetime, window_end: datetime
) -> list[MetricPoint]:
    """Records rejected at ingestion in the window (by arrival hour), in total and per field."""
    with ctx.uow() as uow:
        rejected, by_field = log_repo.violations_between(uow.conn, model_id, window_start, window_end)
    points = [
        MetricPoint(
            "data_quality.rejected_records",
            window_start,
            window_end,
            float(rejected),
            sample_size=rejected,
            details={"counted_by": "arrival hour"},
        )
    ]
    points += [
        MetricPoint(
            "data_quality.schema_violations", window_start, window_end, float(n), sample_size=n, labels={"field": field}
        )
        for field, n in by_field.items()
    ]
    return points
