"""A window's drift, operational and data-quality points from its merged column summaries and
the reference's. Pure: the services load the summaries and store the points; the time is
passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from monitor.domain.monitoring import MonitoringConfig
from monitor.metrics.drift_decision import ColumnTest, decide, rule_for
from monitor.metrics.importance import by_importance, importance_values, weighted_drift_share
from monitor.metrics.points import MetricPoint, segment_labels
from monitor.metrics.profiles import NumericSummary, Summary, quantile, summary_from_json
from monitor.metrics.stattests import dataset_drift

LATENCY = "latency_ms"  # the column the latency summary is kept under
LATENCY_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
Segment = tuple[str, str] | None  # (column, value), or None for all predictions


def segment_points(
    ref: dict[str, dict[str, Any]],
    current: dict[str, Summary],
    n_rows: int,
    segment: Segment,
    cfg: MonitoringConfig,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
) -> list[MetricPoint]:
    """Drift (feature, prediction, dataset), latency, throughput and data quality of one segment
    (``segment`` None: all predictions) from the window's merged column summaries (``current``,
    ``n_rows`` predictions) and the reference's (``ref``), as of ``now``."""
    points = drift_points(ref, current, n_rows, cfg, window_start, window_end)
    points += operational_points(current.get(LATENCY), n_rows, window_start, window_end, now)
    points += data_quality_points(ref, current, window_start, window_end)
    if segment is None:
        return points
    return [replace(p, labels={**p.labels, **segment_labels(segment)}) for p in points]


def drift_points(
    ref: dict[str, dict[str, Any]],
    current: dict[str, Summary],
    n_rows: int,
    cfg: MonitoringConfig,
    window_start: datetime,
    window_end: datetime,
) -> list[MetricPoint]:
    """Each column's drift against the reference (the model's drift rule, ``decide``), and the
    dataset drift: the share of features drifted."""
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
    decisions = decide(columns, features, rule_for(cfg), overrides)

    points = []
    for col, d in decisions.items():
        is_feature = col in features
        labels = {"feature": col.removeprefix("features.")} if is_feature else {"column": col}
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
        decided = {c: bool(decisions[c].drifted) for c in features if decisions[c].drifted is not None}
        share, drifted = dataset_drift(list(decided.values()), cfg.drift_share)
        points.append(
            MetricPoint(
                "dataset_drift",
                window_start,
                window_end,
                share,
                sample_size=n_rows,
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
    return points


def operational_points(
    latency: Summary | None, n_rows: int, window_start: datetime, window_end: datetime, now: datetime
) -> list[MetricPoint]:
    """Latency percentiles, mean and max (ms), and throughput per minute over the part of the
    window elapsed at ``now``."""
    elapsed = min(window_end, now) - window_start
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


def data_quality_points(
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
            new = {k: c for k, c in cur.counts.items() if k not in known}
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


def with_importance(importance: dict[str, Any] | None, group: list[MetricPoint]) -> list[MetricPoint]:
    """A group's points where the reference knows each feature's importance
    (``monitor.metrics.importance``): its ``dataset_drift`` point lists the drifted features most
    important first with their shares (``by_importance``: what a notification and a retraining
    request name), and beside it ``dataset_drift.importance_weighted``, the share of the model's
    importance whose features drifted. The group as it is without an estimate."""
    if not importance:
        return group
    weights = importance_values(importance)
    out = []
    for p in group:
        if p.metric != "dataset_drift":
            out.append(p)
            continue
        ordered = by_importance(weights, p.details.get("drifted_features", []))
        ranked = [[f, round(share, 6)] for f, share in ordered]
        out.append(replace(p, details={**p.details, "by_importance": ranked}))
        out.append(
            MetricPoint(
                "dataset_drift.importance_weighted",
                p.window_start,
                p.window_end,
                weighted_drift_share(weights, [f for f, _ in ordered]),
                sample_size=p.sample_size,
                labels=p.labels,
                details={
                    "drifted_features": ranked,
                    "importance": importance["method"],
                    "output": importance["output"],
                },
            )
        )
    return out
