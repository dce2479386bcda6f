"""The metric point: one number about one model version, one window and one label set."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class MetricPoint:
    metric: str  # e.g. "feature_drift", "dataset_drift", "quality.accuracy", "latency.p95"
    window_start: datetime
    window_end: datetime
    value: float | None
    sample_size: int
    labels: dict[str, str] = field(default_factory=dict)  # feature, segment, segment_value, method, class...
    reference_size: int | None = None
    threshold: float | None = None
    drifted: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.window_end <= self.window_start:
            raise ValueError(f"{self.metric}: window_end must be after window_start")
        if self.value is not None and not math.isfinite(self.value):
            # JSON (and so the API and the dashboard) has no NaN: a value that cannot be computed is None.
            object.__setattr__(self, "value", None)


def segment_labels(segment: tuple[str, str] | None) -> dict[str, str]:
    """The labels that put a point in a segment ('column', 'value'); none for all predictions."""
    return {} if segment is None else {"segment": segment[0], "segment_value": segment[1]}


def drift_severity(point: dict[str, Any]) -> float:
    """How far a stored drift point's score is past its threshold, on one scale for both kinds of
    test: 1 = at the threshold, above 1 = drifted. Distances: score / threshold; p-values (drift
    when small): log(p) / log(threshold). NaN when the point has no score or threshold."""
    score, threshold = point["value"], point["threshold"]
    if score is None or not threshold:
        return float("nan")
    if (point.get("details") or {}).get("kind") == "p_value":
        return math.log(max(score, 1e-300)) / math.log(threshold) if 0 < threshold < 1 else float("nan")
    return float(score / threshold)
