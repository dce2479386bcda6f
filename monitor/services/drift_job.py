"""Window metrics of a model version from hourly summaries: data and prediction drift, latency,
throughput, data quality, and (through ``quality_job``) quality and concept drift — for all
predictions and per tracked segment.

``rollup`` summarises the prediction log hour by hour (each hour's rows read once, see
``summary_repo.summarise_columns``); ``compute_window`` merges
a window's hourly summaries (a month costs what an hour costs: the summaries are of fixed size)
and runs each column's test against its reference summary, writing metric points.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from monitor.db import log_repo, reference_repo, summary_repo
from monitor.db.registry_repo import VersionRow
from monitor.db.summary_repo import Segment
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSchema, schema_from_json
from monitor.errors import MonitorError
from monitor.metrics.drift_decision import ColumnTest, decide
from monitor.metrics.log_summary import Column
from monitor.metrics.points import MetricPoint
from monitor.metrics.profiles import (
    LATENCY_EDGES,
    CategoricalSummary,
    NumericSummary,
    Summary,
    quantile,
    summary_from_json,
    summary_to_parts,
)
from monitor.metrics.stattests import dataset_drift
from monitor.services import job_log, quality_job
from monitor.services.context import ServiceContext
from monitor.services.metric_store import record_points
from monitor.services.registry import resolve_version
from monitor.services.windows import HOUR, hours, merged_window

LATENCY = "latency_ms"
LATENCY_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


@dataclass(frozen=True)
class ReferenceView:
    """The reference in use: per segment ('' for all rows) its drift columns' summaries and its
    quality extras (its own quality and residuals, when it has labels)."""

    reference_id: int
    columns: dict[str, dict[str, dict[str, Any]]]
    extras: dict[str, dict[str, dict[str, Any]]]

    @property
    def segments(self) -> list[str]:
        return [s for s in self.columns if s]


def load_reference(ctx: ServiceContext, vrow: VersionRow) -> ReferenceView:
    with ctx.uow() as uow:
        ref_id = reference_repo.active_reference_id(uow.conn, vrow.version_id)
    if ref_id is None:
        raise MonitorError(
            f"model {vrow.model_name!r} version {vrow.version!r} has no reference dataset to measure drift against"
        )
    return ctx.cached_reference(ref_id, lambda: _read_reference(ctx, ref_id))


def _read_reference(ctx: ServiceContext, ref_id: int) -> ReferenceView:
    with ctx.uow() as uow:
        by_segment = reference_repo.all_summaries(uow.conn, ref_id)
    by_segment.setdefault("", {})
    segments = ["", *sorted(s for s in by_segment if s)]
    columns = {seg: {c: v for c, v in by_segment[seg].items() if not c.startswith("_")} for seg in segments}
    extras = {seg: {c: v for c, v in by_segment[seg].items() if c.startswith("_")} for seg in segments}
    return ReferenceView(ref_id, columns, extras)


def parse_segment(key: str, schema: ModelSchema) -> Segment:
    """'region=EU' -> ('region', 'EU'), reading the column by the declared names (a column name
    may itself hold '=')."""
    if not key:
        return None
    for column in sorted(schema.segments, key=len, reverse=True):
        if key.startswith(column + "="):
            return column, key[len(column) + 1 :]
    raise MonitorError(f"segment {key!r} is not one of the model's segment columns")


def _specs(columns: dict[str, dict[str, Any]]) -> list[Column]:
    specs = [
        Column(col, np.asarray(s["edges"], dtype=float) if s["type"] == "numerical" else None)
        for col, s in columns.items()
    ]
    specs.append(Column(LATENCY, LATENCY_EDGES))
    return specs


def rollup(
    ctx: ServiceContext,
    model: str,
    version: str | None,
    start: datetime,
    end: datetime,
    *,
    quality_only: bool = False,
    only: list[datetime] | None = None,
    failures: list[str] | None = None,
) -> int:
    """Summarise each hour in [start, end) — its columns and its labelled predictions, for all
    rows and for each tracked segment. Re-running an hour replaces it and drops its day's merged
    summary, merged again when next needed. ``quality_only``: the labels changed, the log did
    not. ``only``: these hours of the range, not all. ``failures``: an hour that fails on its data
    is skipped and recorded there (``job_log.isolated``) instead of failing the rollup. Returns
    predictions summarised."""
    vrow = resolve_version(ctx, model, version)
    schema = schema_from_json(vrow.schema)
    ref = load_reference(ctx, vrow)
    specs = {seg: _specs(cols) for seg, cols in ref.columns.items()}
    groups = summary_repo.Groups({seg: parse_segment(seg, schema) for seg in ref.columns})
    residual_edges = {seg: quality_job.residual_edges(ref.extras[seg]) for seg in ref.columns}
    total = [0]

    def summarise(bucket: datetime) -> None:
        with ctx.uow() as uow:
            window = (uow.conn, vrow.model_id, vrow.version_id, bucket, bucket + HOUR)
            counts = summary_repo.count_rows(*window, groups)
            if not quality_only:
                parts = summary_repo.summarise_columns(*window, specs, groups, counts)
                for seg in groups.keys:
                    summary_repo.replace_bucket(
                        uow.conn,
                        vrow.model_id,
                        vrow.version_id,
                        ref.reference_id,
                        bucket,
                        1,
                        counts[seg],
                        parts[seg],
                        seg,
                    )
                    summary_repo.drop_merged(uow.conn, vrow.version_id, ref.reference_id, bucket, seg)
            quality_job.summarise_hour(uow.conn, vrow, schema, ref.reference_id, residual_edges, bucket, groups, counts)
            uow.commit()
            if not quality_only:
                total[0] += counts[""]

    for bucket in only if only is not None else hours(start, end):
        job_log.isolated(f"summary of the hour {bucket.isoformat()}", failures, summarise, bucket)
    return total[0]


class ColumnAccumulator:
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

    def parts(self) -> dict[str, summary_repo.Parts]:
        return {c: summary_to_parts(s) for c, s in self.columns.items()}

    @property
    def n_rows(self) -> int:
        return sum(self._rows.values())


def compute_window(
    ctx: ServiceContext,
    model: str,
    version: str | None,
    window_start: datetime,
    window_end: datetime,
    config: MonitoringConfig | None = None,
    *,
    quality_only: bool = False,
) -> list[MetricPoint]:
    """The window's metric points — feature, prediction and dataset drift; latency, throughput;
    data quality; quality against labels and concept drift — for all predictions and for each
    tracked segment, stored (replacing an earlier run's) and returned. ``quality_only``: just
    the quality and concept-drift points, what late labels change."""
    cfg = config or MonitoringConfig()
    vrow = resolve_version(ctx, model, version)
    schema = schema_from_json(vrow.schema)
    ref = load_reference(ctx, vrow)
    points: list[MetricPoint] = []
    for seg in ref.columns:
        segment = parse_segment(seg, schema)
        if not quality_only:
            points += _window_points(ctx, vrow, ref, seg, segment, cfg, window_start, window_end)
        points += quality_job.quality_points(
            ctx, vrow, schema, ref.reference_id, ref.extras[seg], cfg, window_start, window_end, segment
        )
    if not quality_only:
        points.extend(_violation_points(ctx, vrow.model_id, window_start, window_end))
    record_points(ctx, model, vrow.version, points)
    return points


def _window_points(
    ctx: ServiceContext,
    vrow: VersionRow,
    view: ReferenceView,
    seg: str,
    segment: Segment,
    cfg: MonitoringConfig,
    window_start: datetime,
    window_end: datetime,
) -> list[MetricPoint]:
    """Drift, latency, throughput and data quality of one segment ('' for all predictions)."""
    ref = view.columns[seg]
    acc = merged_window(
        ctx, vrow, view.reference_id, window_start, window_end, lambda: ColumnAccumulator(ref), segment=seg
    )
    current, n_rows = acc.columns, acc.n_rows
    seg_labels = {} if segment is None else {"segment": segment[0], "segment_value": segment[1]}

    columns = {}
    for col, ref_json in ref.items():
        cur = current.get(col)
        if cur is not None and cur.n > 0:
            columns[col] = (summary_from_json(ref_json), cur, ref_json.get("distinct"))
    features = {c for c in columns if c.startswith("features.")}
    overrides = {
        col: ColumnTest(t.test, t.threshold)
        for col in columns
        if (t := cfg.feature_tests.get(col.removeprefix("features."))) is not None
    }
    decisions = decide(columns, features, cfg.drift_rule(), overrides)

    points = []
    for col, d in decisions.items():
        is_feature = col in features
        labels = {"feature": col.removeprefix("features.")} if is_feature else {"column": col}
        labels.update(seg_labels)
        points.append(
            MetricPoint(
                "feature_drift" if is_feature else "prediction_drift",
                window_start,
                window_end,
                d.value,
                sample_size=d.n_current,
                labels={**labels, "method": d.method},
                reference_size=d.n_reference,
                threshold=d.threshold,
                drifted=d.drifted,
                details=d.details,
            )
        )
    if features:
        decided = {c: decisions[c].drifted for c in features if decisions[c].drifted is not None}
        share, drifted = dataset_drift(list(decided.values()), cfg.drift_share)
        points.append(
            MetricPoint(
                "dataset_drift",
                window_start,
                window_end,
                share,
                sample_size=n_rows,
                labels=seg_labels,
                threshold=cfg.drift_share,
                drifted=drifted if decided else None,
                details={
                    "drifted_features": sorted(c.removeprefix("features.") for c, x in decided.items() if x),
                    "n_features": len(features),
                    "profile": cfg.stattest_profile,
                    "fdr": cfg.fdr or cfg.stattest_profile == "calibrated",
                },
            )
        )
    points.extend(_operational_points(current.get(LATENCY), n_rows, window_start, window_end))
    points.extend(_quality_of_data_points(ref, current, window_start, window_end))
    if seg_labels:
        points = [replace(p, labels={**p.labels, **seg_labels}) for p in points]
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
    """Per feature: share of missing values; numerical, share of ±inf values and share outside
    the reference's range (its edges run from the reference's minimum to its maximum, so this is
    exact; of the finite values); categorical, share of values in categories the reference never
    had."""
    points = []
    for col, ref_json in ref.items():
        cur = current.get(col)
        if not col.startswith("features.") or cur is None:
            continue
        labels = {"feature": col.removeprefix("features.")}
        non_finite = cur.non_finite if isinstance(cur, NumericSummary) else 0
        total = cur.n + cur.missing + non_finite
        if total and isinstance(cur, NumericSummary):
            points.append(
                MetricPoint(
                    "data_quality.non_finite_share",
                    window_start,
                    window_end,
                    non_finite / total,
                    sample_size=total,
                    labels=labels,
                    details={"non_finite": non_finite},
                )
            )
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
