"""A window's per-feature series in one row: what ranks a wide model's features over a range.

A 1,000-feature model's week of hourly windows is half a million per-feature points; the page
that orders its features by how far they drifted needs only each feature's highest severity
and how often it was decided drifted. One digest per (metric, segment, window) holds, for each
feature of the schema in schema order, the number that ranks it — a drift point's severity (1
at its threshold, ``drift_severity``), any other point's value, 0 for a point without one, NaN
where the window has no point for the feature — and its decision. Peaks over a range are then
an element-wise maximum over a few hundred rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from monitor.metrics.points import MetricPoint, drift_severity

FEATURE_DRIFT = "feature_drift"
# labels that name the feature's series within a window; the rest (the segment) keys the digest
_SERIES_LABELS = ("feature", "method")


@dataclass(frozen=True)
class FeatureDigest:
    metric: str
    labels: dict[str, str]  # the points' labels less feature and method: their segment
    window_start: datetime
    window_end: datetime
    peaks: list[float]  # per feature of the schema, in its order; NaN: no point
    drifted: list[bool]


@dataclass(frozen=True)
class FeaturePeak:
    metric: str
    feature: str
    peak: float  # feature_drift: the highest severity; else the highest value
    drifted: int  # windows decided drifted


def point_peak(p: MetricPoint) -> float:
    """The number that ranks a point's feature: 0 when the point has none."""
    if p.metric == FEATURE_DRIFT:
        severity = drift_severity({"value": p.value, "threshold": p.threshold, "details": p.details})
        return 0.0 if math.isnan(severity) else severity
    return 0.0 if p.value is None else float(p.value)


def feature_digests(points: Iterable[MetricPoint], features: Sequence[str]) -> list[FeatureDigest]:
    """The digests of ``points``' per-feature series (points of features outside ``features``,
    the schema's names in order, are left out: they have no place)."""
    position = {name: i for i, name in enumerate(features)}
    groups: dict[tuple[str, str, datetime, datetime], FeatureDigest] = {}
    for p in points:
        i = position.get(p.labels.get("feature", ""))
        if i is None:
            continue
        labels = {k: v for k, v in p.labels.items() if k not in _SERIES_LABELS}
        key = (p.metric, repr(sorted(labels.items())), p.window_start, p.window_end)
        digest = groups.get(key)
        if digest is None:
            n = len(features)
            digest = groups[key] = FeatureDigest(
                p.metric, labels, p.window_start, p.window_end, [math.nan] * n, [False] * n
            )
        digest.peaks[i] = point_peak(p)
        digest.drifted[i] = bool(p.drifted)
    return list(groups.values())


def range_peaks(rows: Iterable[tuple[str, np.ndarray, np.ndarray]], features: Sequence[str]) -> list[FeaturePeak]:
    """Each feature's peak and drifted windows over digests (metric, peaks, drifted), per metric:
    the features with a point in at least one of them."""
    by_metric: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for metric, peaks, drifted in rows:
        if len(peaks) != len(features):  # a digest of another schema: not this version's
            continue
        seen = by_metric.get(metric)
        if seen is None:
            by_metric[metric] = (peaks.astype(np.float64), drifted.astype(np.int64))
        else:
            np.fmax(seen[0], peaks, out=seen[0])
            np.add(seen[1], drifted, out=seen[1])
    out = []
    for metric, (peaks, drifted) in by_metric.items():
        for i in np.flatnonzero(~np.isnan(peaks)):
            out.append(FeaturePeak(metric, features[int(i)], float(peaks[i]), int(drifted[i])))
    return out
