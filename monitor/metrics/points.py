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
