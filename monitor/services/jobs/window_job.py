"""A window's metric points: loaded (``monitor.services.jobs.window_inputs``), made by a pure function
(``monitor.metrics.window_metrics``), stored (``monitor.services.jobs.metric_store``). A window costs
what its buckets cost: whole weeks, days and hours, and the minutes of its part-hours, merged from
summaries of fixed size, whatever its length and its rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.db.registry_repo import VersionRow
from monitor.domain.monitoring import MonitoringConfig
from monitor.metrics.points import MetricPoint
from monitor.metrics.window_metrics import Window, window_points
from monitor.services.catalog.registry import resolve_version
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.metric_store import store_points
from monitor.services.jobs.summary_plan import ReferenceView
from monitor.services.jobs.window_inputs import load_window_inputs


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
    data quality; quality against labels and concept drift; fairness; a challenger's comparison
    with its champion — for all predictions and for each tracked segment, stored (replacing an
    earlier run's) and returned. ``quality_only``: just the quality and concept-drift points
    (and a challenger's comparison), what late labels change."""
    vrow = resolve_version(ctx, model, version)
    window = Window(window_start, window_end)
    return compute_version_window(ctx, vrow, window, config or MonitoringConfig(), quality_only=quality_only)


def compute_version_window(
    ctx: ServiceContext,
    vrow: VersionRow,
    window: Window,
    cfg: MonitoringConfig,
    *,
    ref: ReferenceView | None = None,
    quality_only: bool = False,
) -> list[MetricPoint]:
    """``compute_window`` of a version already read, with its reference where the caller has it
    (a scheduled run reads both once for all its windows)."""
    now = datetime.now(UTC)  # the one reading of the clock: how much of the window has passed
    inputs = load_window_inputs(ctx, vrow, cfg, window, quality_only=quality_only, ref=ref)
    points = window_points(inputs, cfg, now)
    store_points(ctx, vrow, points)
    return points
