"""What the dashboard reads: monitor's query functions for its pages. Everything comes from
metric points, alerts, hourly counts and summaries — never from the raw prediction log — so a
page costs the same whatever the log holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from alerts.state import State
from monitor.db import metrics_repo, ops_repo, reference_repo, registry_repo, schedule_repo, summary_repo
from monitor.db.registry_repo import VersionRow
from monitor.domain.deployment import Deployment
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import Task, schema_from_json
from monitor.errors import NotFound
from monitor.metrics.feature_digest import FeaturePeak
from monitor.metrics.importance import IMPORTANCE_COLUMN, importance_shares, importance_values
from monitor.metrics.profiles import CategoricalSummary, NumericSummary, summary_from_json
from monitor.services.alerting import alert_config, alert_ops
from monitor.services.catalog import registry
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.summary_plan import load_reference, parse_segment
from monitor.services.jobs.windows import ColumnAccumulator, merged_window

DISPLAY_BINS = 30
# Windows end every hour; a page draws at most this many (a month of hourly windows is thinned).
MAX_WINDOWS = 200
TOP_CATEGORIES = 25


def main_quality_metric(task: str) -> str:
    return "quality.mae" if task == Task.regression else "quality.accuracy"


def overview(ctx: ServiceContext, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every model: health (ok / warning / firing), newest dataset drift share, main quality
    metric with its label coverage and its estimate from the scores, p95 latency, hourly volume
    over the last week, firing alerts."""
    now = now or datetime.now(UTC)
    out = []
    with ctx.uow() as uow:
        names = registry_repo.list_model_names(uow.conn)
    for name in names:
        vrow = registry.primary_version(ctx, name)
        cfg = registry.get_monitoring(ctx, name)
        length = min(cfg.window_lengths())
        quality = main_quality_metric(vrow.task)
        estimated = "estimated." + quality.removeprefix("quality.")
        with ctx.uow() as uow:
            latest = {
                p["metric"]: p
                for p in uow.alerts.latest_points(
                    vrow.model_id,
                    vrow.version_id,
                    ["dataset_drift", quality, estimated, "quality.label_coverage", "latency.p95"],
                    now - timedelta(days=7),
                )
                if "segment" not in p["labels"] and p["window_end"] - p["window_start"] == length
            }
            alerts = uow.alerts.list_alerts(None, name)
            # by the predictions' own hours, as the windows count them: by arrival, a backfill or a
            # late batch would be one bar
            volume = summary_repo.hourly_rows(uow.conn, vrow.model_id, now - timedelta(days=7))
        firing = [a for a in alerts if a["state"] is State.firing]
        pending = [a for a in alerts if a["state"] is State.pending]
        drift = latest.get("dataset_drift")
        health = "firing" if firing else ("warning" if pending or (drift and drift["drifted"]) else "ok")
        out.append(
            {
                "model": name,
                "version": vrow.version,
                "task": vrow.task,
                "window": cfg.windows[cfg.window_lengths().index(length)],
                "health": health,
                "drift": drift,
                "quality_metric": quality,
                "quality": latest.get(quality),
                "estimated_quality": latest.get(estimated),  # from the scores, before labels
                "label_coverage": latest.get("quality.label_coverage"),
                "latency_p95": latest.get("latency.p95"),
                "volume": volume,
                "firing": [
                    {"rule": a["rule"], "summary": a["annotations"].get("summary", ""), "since": a["fired_at"]}
                    for a in firing
                ],
                "pending": len(pending),
            }
        )
    return out


def model_info(ctx: ServiceContext, model: str) -> dict[str, Any]:
    """The model's primary version (its champion, or the newest), its features, windows and tracked segments."""
    return version_info(ctx, registry.primary_version(ctx, model))


def version_info(ctx: ServiceContext, vrow: VersionRow) -> dict[str, Any]:
    """``model_info`` of a version already read (``registry.primary_version``)."""
    model = vrow.model_name
    cfg: MonitoringConfig = registry.get_monitoring(ctx, model)
    schema = schema_from_json(vrow.schema)
    try:
        ref = load_reference(ctx, vrow)
        segments, importance = ref.segments, ref.extras[""].get(IMPORTANCE_COLUMN)
    except Exception:  # no reference yet: nothing tracked
        segments, importance = [], None
    with ctx.uow() as uow:
        jobs = ops_repo.model_job_runs(uow.conn, model)
        waiting = ops_repo.summary_backlog(uow.conn, model)
        lease = schedule_repo.lease_of(uow.conn, vrow.model_id)
    now = datetime.now(UTC)
    metrics = next((j for j in jobs if j["job"] == "metrics"), None)
    # a job that skipped or failed on something in the last day: what the page warns about
    since = now - timedelta(days=1)
    failing = [j for j in jobs if j["last_error_at"] is not None and j["last_error_at"] >= since]
    return {
        "model": model,
        "version": vrow.version,
        "task": vrow.task,
        "job_errors": failing,
        # how fresh the windows are: the scheduler's last run, and what arrived since, not yet in them
        "scheduler": {
            "last_run_at": None if metrics is None else metrics["last_success_at"],
            "last_duration_s": None if metrics is None else metrics["last_duration_s"],
            "waiting_rows": int(waiting[0]["rows"]) if waiting else 0,
            "waiting_since": waiting[0]["oldest"] if waiting else None,
            # which scheduler process holds the model (None: none does, or its lease lapsed) and
            # when the model is next due
            "owner": lease["owner"] if lease and lease["owner"] and lease["expires_at"] > now else None,
            "due_at": lease["due_at"] if lease else None,
            "last_run_by": lease["last_run_by"] if lease else None,
        },
        "features": schema.feature_names(),
        "windows": cfg.windows,
        "segments": segments,
        # each feature's importance on the reference ({method, output, features: {name: {value,
        # low, high}}}), None where it has none
        "importance": importance,
        "classes": schema.classes,
        "positive_class": schema.positive_class,
    }


def window_points(
    ctx: ServiceContext,
    model: str,
    start: datetime,
    end: datetime,
    window: timedelta,
    segment: str = "",
    max_windows: int = MAX_WINDOWS,
    features: Mapping[str, Collection[str]] | None = None,
) -> list[dict[str, Any]]:
    """Every point of the primary version for windows of length ``window`` ending in (start, end],
    for all predictions or one tracked segment ('column=value'). Windows end every hour, and the
    newest sliding window at its minute; a range holding more than ``max_windows`` hourly windows
    is thinned to every k-th hour (``window_step``); ``features``: of the per-feature metrics,
    those it names, of each the features it lists."""
    vrow = registry.primary_version(ctx, model)
    seg = parse_segment(segment, schema_from_json(vrow.schema))
    where = metrics_repo.WindowFilter.of(vrow, window, start, end, seg, window_step(start, end, max_windows))
    with ctx.uow() as uow:
        return metrics_repo.window_points(uow.conn, where, features=features)


def page_count(n: int, per_page: int) -> int:
    """Pages of ``per_page`` that ``n`` items take (one at least)."""
    return max(1, -(-n // per_page))


def page_start(n: int, page: int, per_page: int) -> int:
    """The index of the first of ``n`` items on ``page`` (1-based, brought within the pages)."""
    return (min(max(page, 1), page_count(n, per_page)) - 1) * per_page


def rank_features(
    worst: dict[str, float], drifted: dict[str, int], match: str = "", importance: Mapping[str, float] | None = None
) -> list[str]:
    """Features most drifted first — the highest severity in the range (``worst``), then the most
    windows decided drifted, then the name — keeping those whose name holds ``match`` (ignoring
    case). With ``importance`` (each feature's share of the model's), by importance times severity
    first: what drifted most in what the model uses most."""
    needle = match.strip().lower()
    names = [f for f in worst if not needle or needle in f.lower()]
    weight = importance or {}
    return sorted(
        names,
        key=lambda f: (-(weight.get(f, 0.0) * worst[f]) if importance else 0.0, -worst[f], -drifted.get(f, 0), f),
    )


def importance_shares_of(info: dict[str, Any]) -> dict[str, float] | None:
    """Each feature's share of the model's importance on the reference (``version_info``), or None."""
    found = info.get("importance")
    return importance_shares(importance_values(found)) if found else None


@dataclass(frozen=True)
class ModelPagePoints:
    points: list[dict[str, Any]]  # the model's series, and the per-feature ones the page draws
    ranked: list[str]  # every feature with drift points (holding the filter), most drifted first
    features: dict[str, int]  # per-feature metric -> how many features it has in the range


def model_page_points(
    ctx: ServiceContext,
    vrow: VersionRow,
    start: datetime,
    end: datetime,
    window: timedelta,
    segment: str,
    match: str,
    page: int,
    per_page: int,
    max_lines: int,
    importance: Mapping[str, float] | None = None,
) -> ModelPagePoints:
    """What the model page draws (``window_points``' windows): every series of the model as a
    whole, and of the per-feature series only those it shows — the heatmap page's features and
    each data-quality chart's ``max_lines`` highest. Their order comes from a summary of every
    feature over the windows' digests: a 1,000-feature model's week of windows is half a million
    points, and reading them all took 6 s. ``vrow``: the model's primary version
    (``registry.primary_version``), read once by the page."""
    seg = parse_segment(segment, schema_from_json(vrow.schema))
    where = metrics_repo.WindowFilter.of(vrow, window, start, end, seg, window_step(start, end))
    with ctx.uow() as uow:
        peaks = metrics_repo.feature_peaks(uow.conn, where, vrow.feature_names)
        drift = [p for p in peaks if p.metric == "feature_drift"]
        ranked = rank_features(
            {p.feature: max(p.peak, 0.0) for p in drift}, {p.feature: p.drifted for p in drift}, match, importance
        )
        first = page_start(len(ranked), page, per_page)
        others: dict[str, list[FeaturePeak]] = defaultdict(list)
        for p in peaks:
            if p.metric != "feature_drift":
                others[p.metric].append(p)
        shown = {"feature_drift": ranked[first : first + per_page]}
        for metric, ps in others.items():
            shown[metric] = [p.feature for p in sorted(ps, key=lambda p: (-p.peak, p.feature))[:max_lines]]
        points = metrics_repo.window_points(uow.conn, where, features=shown)
    return ModelPagePoints(points, ranked, {m: len(ps) for m, ps in others.items()})


def comparison_page(
    ctx: ServiceContext, model: str, challenger: str | None, start: datetime, end: datetime, window: timedelta
) -> dict[str, Any]:
    """A challenger against the champion: its comparison points, and both versions' accuracy and
    p95 latency, for windows of length ``window`` ending in (start, end]. ``challenger`` None:
    the newest version deployed canary, ab or shadow."""
    with ctx.uow() as uow:
        versions = registry_repo.list_versions(uow.conn, model)
        if not versions:
            raise NotFound(f"model {model!r} is not registered")
        champion = next((v for v in reversed(versions) if v.deployment == Deployment.champion.value), None)
        rivals = [v for v in versions if Deployment(v.deployment).is_challenger]
        chosen = next((v for v in reversed(rivals) if challenger in (None, v.version)), None)
        out: dict[str, Any] = {
            "champion": champion.version if champion else None,
            "challengers": [{"version": v.version, "deployment": v.deployment} for v in rivals],
            "challenger": chosen.version if chosen else None,
            "deployment": chosen.deployment if chosen else None,
            "comparison": [],
            "sides": {},
            "own_reference": None,  # whether the challenger has a reference of its own
        }
        if champion is None or chosen is None:
            return out
        out["own_reference"] = reference_repo.active_reference_id(uow.conn, chosen.version_id) is not None
        step = window_step(start, end)

        def of(v: VersionRow) -> metrics_repo.WindowFilter:
            return metrics_repo.WindowFilter.of(v, window, start, end, None, step)

        out["comparison"] = metrics_repo.window_points(uow.conn, of(chosen), ["comparison.%"])
        for v in (champion, chosen):
            out["sides"][v.version] = metrics_repo.window_points(uow.conn, of(v), ["quality.accuracy", "latency.p95"])
    return out


def window_step(start: datetime, end: datetime, max_windows: int = MAX_WINDOWS) -> int:
    """Seconds between the windows shown: an hour, or whole hours so that at most ``max_windows`` show."""
    hours = max(1, int((end - start).total_seconds() // 3600))
    return 3600 * -(-hours // max_windows)


def feature_distribution(
    ctx: ServiceContext,
    model: str,
    column: str,
    window_start: datetime,
    window_end: datetime,
    segment: str = "",
) -> dict[str, Any]:
    """Reference and current distributions of one column ('features.age', 'prediction',
    'scores.<class>') in a window, as display bins with shares, from the stored summaries."""
    vrow = registry.primary_version(ctx, model)
    view = load_reference(ctx, vrow)
    ref_cols = view.columns.get(segment)
    if ref_cols is None or column not in ref_cols:
        raise NotFound(f"no reference summary of {column!r} for segment {segment or 'all'!r}")
    series = summary_repo.Series.of(vrow, view.reference_id)
    acc = merged_window(ctx, series, window_start, window_end, lambda: ColumnAccumulator(ref_cols), segment=segment)
    ref = summary_from_json(ref_cols[column])
    cur = acc.columns.get(column)
    if isinstance(ref, CategoricalSummary):
        cur_c = cur if isinstance(cur, CategoricalSummary) else CategoricalSummary()
        keys = sorted(
            set(ref.counts) | set(cur_c.counts), key=lambda k: -(ref.counts.get(k, 0) + cur_c.counts.get(k, 0))
        )
        keys = keys[:TOP_CATEGORIES]
        return {
            "kind": "categorical",
            "labels": keys,
            "reference": [ref.counts.get(k, 0) / max(ref.n, 1) for k in keys],
            "current": [cur_c.counts.get(k, 0) / max(cur_c.n, 1) for k in keys],
            "n_reference": ref.n,
            "n_current": cur_c.n,
        }
    assert isinstance(ref, NumericSummary)
    cur_n = cur if isinstance(cur, NumericSummary) else NumericSummary.empty(ref.edges)
    bounds, ref_shares = _display_bins(ref)
    _, cur_shares = _display_bins(cur_n, bounds)
    return {
        "kind": "numerical",
        "bins": bounds,
        "reference": ref_shares,
        "current": cur_shares,
        "n_reference": ref.n,
        "n_current": cur_n.n,
        "reference_range": [float(ref.edges[0]), float(ref.edges[-1])],
    }


def _display_bins(s: NumericSummary, bounds: list[float] | None = None) -> tuple[list[float], list[float]]:
    """Collapse a summary's 2k+1 buckets onto at most DISPLAY_BINS intervals between reference
    edges (values below the first edge and above the last join the outer bins)."""
    e = s.edges
    if bounds is None:
        idx = np.unique(np.linspace(0, len(e) - 1, min(DISPLAY_BINS, len(e) - 1) + 1).round().astype(int))
        bounds = [float(e[i]) for i in idx] if len(e) > 1 else [float(e[0]) - 0.5, float(e[0]) + 0.5]
    counts = np.zeros(max(len(bounds) - 1, 1))
    # each bucket's representative position: the edge itself, or the middle of its interval
    pos = np.empty(2 * len(e) + 1)
    pos[1::2] = e
    if len(e) > 1:
        pos[2:-1:2] = (e[:-1] + e[1:]) / 2
    pos[0], pos[-1] = e[0], e[-1]
    which = np.clip(np.searchsorted(bounds, pos, side="right") - 1, 0, len(counts) - 1)
    np.add.at(counts, which, s.counts)
    total = counts.sum()
    return bounds, (counts / total).tolist() if total else counts.tolist()


def alerts_page(ctx: ServiceContext, model: str | None = None) -> dict[str, Any]:
    """Alerts (firing, pending, resolved) with their history, the rules, silences, deliveries
    and retraining triggers."""
    return {
        "alerts": alert_ops.list_alerts(ctx, None, model),
        "history": alert_ops.alert_history(ctx, model, 1000),
        "rules": alert_config.list_rules(ctx),
        "silences": alert_ops.list_silences(ctx, active_only=False),
        "deliveries": alert_ops.list_deliveries(ctx, None, None, 200),
        "outbox": alert_ops.list_outbox(ctx, None, None, 200),
        "triggers": alert_ops.list_retrain_triggers(ctx, model, 200),
        "models": sorted(m["name"] for m in registry.list_models(ctx)),
    }
