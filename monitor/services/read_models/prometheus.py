"""Prometheus' scrapes: the service's own numbers and the newest model metrics.

What every process shares is read from the database at scrape time — records ingested, webhook
deliveries by outcome, scheduler job durations and last successes, the newest metric points —
so any API replica answers the same, and they are exported apart (``/metrics/database``) from
what is each process's own, request latency (``/metrics``), so that a Prometheus scraping
every replica counts the database's numbers once. Model series are the primary version's (the
champion, or the newest where none is declared) over all predictions (no segment labels), the
newest window of each length, and each live challenger's comparison with the champion: label
sets stay bounded by classes, windows, challengers and, per model and window, the
``metrics_max_features`` most drifted features.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from alerts.evaluate import window_name
from monitor.db import ops_repo, registry_repo
from monitor.db.alert_repo import AlertRepository
from monitor.domain.deployment import Deployment
from monitor.metrics.points import drift_severity
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.leases import FleetStatus
from monitor.services.read_models.scheduler_status import SchedulerView, view_of

MODEL_METRICS = ["dataset_drift", "feature_drift", "prediction_drift", "quality.*", "latency.*", "throughput.*"]
MODEL_METRICS += ["concept_drift.*", "estimated.*", "multivariate_drift", "fairness.*"]
# drift weighed by importance, attribution drift, the window's importances (``_importance``)
IMPORTANCE_METRICS = ("dataset_drift.importance_weighted", "attribution_drift.ndcg", "attribution.importance")
MODEL_METRICS += IMPORTANCE_METRICS
# a challenger's comparison with the champion, over all predictions (not per feature: bounded series)
COMPARISON_METRICS = [f"comparison.{m}" for m in ("accuracy", "recall", "precision", "f1", "roc_auc")]
COMPARISON_METRICS += ["comparison.estimated_accuracy", "comparison.agreement", "comparison.traffic_share"]
COMPARISON_METRICS += ["comparison.latency_*", "comparison.dataset_drift"]
FRESHNESS = timedelta(days=2)


def _ordered(severity: float) -> float:
    return 0.0 if math.isnan(severity) else severity  # no score: last


def _model_metric_families() -> dict[str, GaugeMetricFamily]:
    """The per-model families, empty: one per kind of metric point."""
    fam: dict[str, GaugeMetricFamily] = {
        "drift_share": GaugeMetricFamily(
            "monitor_model_dataset_drift_share", "Share of drifted features", labels=["model", "window"]
        ),
        "feature": GaugeMetricFamily(
            "monitor_model_feature_drift_score",
            "Drift score of a feature (p-value or distance, see method)",
            labels=["model", "feature", "method", "window"],
        ),
        "feature_drifted": GaugeMetricFamily(
            "monitor_model_feature_drifted", "1 when the feature drifted", labels=["model", "feature", "window"]
        ),
        "prediction": GaugeMetricFamily(
            "monitor_model_prediction_drift_score",
            "Drift score of the prediction or a class score",
            labels=["model", "column", "method", "window"],
        ),
        "quality": GaugeMetricFamily(
            "monitor_model_quality",
            "Model quality against labels (class '' = overall or the positive class; average 'macro' = "
            "the unweighted mean over classes)",
            labels=["model", "metric", "class", "average", "window"],
        ),
        "coverage": GaugeMetricFamily(
            "monitor_model_label_coverage_ratio", "Labelled share of predictions", labels=["model", "window"]
        ),
        # not a summary: its percentiles come from the window's histogram, so no "quantile" label
        "latency": GaugeMetricFamily(
            "monitor_model_latency_seconds",
            "Prediction latency over the window: a percentile (p50, p90, p95, p99) or the mean",
            labels=["model", "statistic", "window"],
        ),
        "throughput": GaugeMetricFamily(
            "monitor_model_predictions_per_minute", "Prediction throughput", labels=["model", "window"]
        ),
        "concept": GaugeMetricFamily(
            "monitor_model_concept_drift", "1 when concept drift is detected", labels=["model", "method", "window"]
        ),
    }
    fam["drifted_count"] = GaugeMetricFamily(
        "monitor_model_features_drifted",
        "How many features drifted (all of them, also those past MONITOR_METRICS_MAX_FEATURES)",
        labels=["model", "window"],
    )
    fam["features_total"] = GaugeMetricFamily(
        "monitor_model_features_measured",
        "How many features drift was measured on (the per-feature series hold the most drifted of them)",
        labels=["model", "window"],
    )
    return fam | _importance_families() | _label_free_families() | _fairness_families() | _comparison_families()


class StoreCollector:
    """Reads the shared numbers from the database on every scrape."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        records = CounterMetricFamily(
            "monitor_records", "Records received, by model, kind and outcome", labels=["model", "kind", "outcome"]
        )
        deliveries = CounterMetricFamily(
            "monitor_webhook_deliveries",
            "Webhook delivery attempts by receiver and outcome",
            labels=["receiver", "outcome"],
        )
        last_success = GaugeMetricFamily(
            "monitor_job_last_success_timestamp_seconds",
            "When a scheduler job last succeeded",
            labels=["model", "task"],
        )
        duration = GaugeMetricFamily(
            "monitor_job_duration_seconds",
            "How long a scheduler job's last successful run took",
            labels=["model", "task"],
        )
        failures = CounterMetricFamily(
            "monitor_job_failures",
            "Hours and windows a scheduler job skipped because they failed, and failed runs",
            labels=["model", "task"],
        )
        backlog = GaugeMetricFamily(
            "monitor_scheduler_backlog_rows",
            "Predictions summarised at ingestion that the scheduler has not folded yet",
            labels=["model"],
        )
        backlog_age = GaugeMetricFamily(
            "monitor_scheduler_backlog_age_seconds",
            "How long the oldest of them has waited: the scheduler's lag (0 when none waits)",
            labels=["model"],
        )
        with self.ctx.uow() as uow:
            now = datetime.now(UTC)
            waiting = {b["model"]: b for b in ops_repo.summary_backlog(uow.conn)}
            for name in registry_repo.list_model_names(uow.conn):
                b = waiting.get(name)
                backlog.add_metric([name], float(b["rows"]) if b else 0.0)
                backlog_age.add_metric([name], max(0.0, (now - b["oldest"]).total_seconds()) if b else 0.0)
            for t in ops_repo.ingest_totals(uow.conn):
                for outcome, n in (
                    ("accepted", t["accepted"]),
                    ("duplicates", t["duplicates"]),
                    ("rejected", t["rejected"]),
                ):
                    records.add_metric([t["model"], t["kind"], outcome], float(n))
            for d in ops_repo.delivery_totals(uow.conn):
                deliveries.add_metric([d["receiver"], d["outcome"]], float(d["n"]))
            for j in ops_repo.job_runs(uow.conn):
                if j["last_success_at"] is not None:
                    last_success.add_metric([j["model"], j["job"]], j["last_success_at"].timestamp())
                    duration.add_metric([j["model"], j["job"]], float(j["last_duration_s"] or 0.0))
                failures.add_metric([j["model"], j["job"]], float(j["failures"]))
            points = self._model_points(uow.conn, uow.alerts)
            fleet = view_of(FleetStatus.read(uow.conn, now))
        yield from _scheduler_families(fleet)
        yield from (records, deliveries, last_success, duration, failures, backlog, backlog_age)
        yield from self._model_families(points)

    def _model_points(self, conn: Any, alerts: AlertRepository) -> list[tuple[str, dict[str, Any]]]:
        out = []
        since = datetime.now(UTC) - FRESHNESS
        versions = registry_repo.list_versions(conn)  # by model, oldest first
        by_model: dict[str, list[registry_repo.VersionRow]] = {}
        for vrow in versions:
            by_model.setdefault(vrow.model_name, []).append(vrow)
        primary = {name: registry_repo.primary_of(rows).version_id for name, rows in by_model.items()}
        for vrow in versions:
            if vrow.version_id == primary[vrow.model_name]:
                patterns = MODEL_METRICS
            elif Deployment(vrow.deployment).is_challenger:
                patterns = COMPARISON_METRICS  # a challenger's series: its comparison with the champion
            else:
                continue
            for p in alerts.latest_points(vrow.model_id, vrow.version_id, patterns, since):
                if "segment" not in p["labels"]:
                    out.append((vrow.model_name, p | {"version": vrow.version}))
        return out

    def _bounded_features(
        self, points: list[tuple[str, dict[str, Any]]], fam: dict[str, GaugeMetricFamily]
    ) -> list[tuple[str, dict[str, Any]]]:
        """The points with each model's and window's feature drift cut to the
        ``metrics_max_features`` most drifted features (drifted first, then the furthest past
        their threshold); the counts of drifted and measured features go to their own gauges."""
        limit = self.ctx.settings.metrics_max_features
        by_window: dict[tuple[str, str], list[dict[str, Any]]] = {}
        importance: dict[tuple[str, str], list[dict[str, Any]]] = {}
        rest = []
        for model, p in points:
            key = (model, window_name(p["window_end"] - p["window_start"]))
            if p["metric"] == "feature_drift":
                by_window.setdefault(key, []).append(p)
            elif p["metric"] == "attribution.importance":
                importance.setdefault(key, []).append(p)
            else:
                rest.append((model, p))
        for (model, _), ps in importance.items():  # the most important
            ps.sort(key=lambda p: (-float(p["details"].get("share", 0.0)), p["labels"]["feature"]))
            rest.extend((model, p) for p in ps[:limit])
        for (model, window), ps in by_window.items():
            fam["drifted_count"].add_metric([model, window], float(sum(1 for p in ps if p["drifted"])))
            fam["features_total"].add_metric([model, window], float(len(ps)))
            ps.sort(key=lambda p: (not p["drifted"], -_ordered(drift_severity(p)), p["labels"]["feature"]))
            rest.extend((model, p) for p in ps[:limit])
        return rest

    def _model_families(self, points: list[tuple[str, dict[str, Any]]]) -> Iterator[Metric]:
        fam = _model_metric_families()
        points = self._bounded_features(points, fam)
        for model, p in points:
            metric, labels, value = p["metric"], p["labels"], p["value"]
            if value is None:
                continue
            window = window_name(p["window_end"] - p["window_start"])
            if metric == "dataset_drift":
                fam["drift_share"].add_metric([model, window], value)
            elif metric in IMPORTANCE_METRICS:
                _importance(fam, model, window, p)
            elif metric == "feature_drift":
                fam["feature"].add_metric([model, labels["feature"], labels.get("method", ""), window], value)
                if p["drifted"] is not None:  # too few rows for a decision: no sample, not a 0
                    fam["feature_drifted"].add_metric([model, labels["feature"], window], float(p["drifted"]))
            elif metric == "prediction_drift":
                fam["prediction"].add_metric([model, labels["column"], labels.get("method", ""), window], value)
            elif metric == "quality.label_coverage":
                fam["coverage"].add_metric([model, window], value)
            elif metric.startswith("quality."):
                name, cls, average = metric.removeprefix("quality."), labels.get("class", ""), labels.get("average", "")
                fam["quality"].add_metric([model, name, cls, average, window], value)
            elif metric.startswith("latency."):  # stored in milliseconds; Prometheus's base unit is the second
                fam["latency"].add_metric([model, metric.removeprefix("latency."), window], value / 1000)
            elif metric == "throughput.per_minute":
                fam["throughput"].add_metric([model, window], value)
            elif metric.startswith("comparison."):
                _comparison(fam, model, window, p)
            elif metric.startswith("concept_drift."):
                fam["concept"].add_metric(
                    [model, metric.removeprefix("concept_drift."), window], float(bool(p["drifted"]))
                )
            else:
                _label_free(fam, model, window, p)
        yield from fam.values()


def _scheduler_families(view: SchedulerView) -> Iterator[Metric]:
    """Per scheduler process: live or not, the leader or not, its models, its lag, its runs; per
    model: the process holding it (an info gauge, 1) and when it is next due."""
    up = GaugeMetricFamily(
        "monitor_scheduler_process_up",
        "1 while a scheduler process's heartbeat is within its lease",
        labels=["process"],
    )
    leader = GaugeMetricFamily(
        "monitor_scheduler_process_leader", "1 for the process doing the fleet-wide chores", labels=["process"]
    )
    held = GaugeMetricFamily(
        "monitor_scheduler_models_held", "Models whose lease a scheduler process holds", labels=["process"]
    )
    lag = GaugeMetricFamily(
        "monitor_scheduler_lag_seconds",
        "How long the process's most overdue model had been due at its last tick (about a tick when it keeps up)",
        labels=["process"],
    )
    runs = CounterMetricFamily("monitor_scheduler_runs", "Model runs a scheduler process did", labels=["process"])
    for p in view.processes:
        up.add_metric([p.process_id], 1.0 if p.live else 0.0)
        leader.add_metric([p.process_id], 1.0 if p.leader else 0.0)
        held.add_metric([p.process_id], float(p.models_held) if p.live else 0.0)
        lag.add_metric([p.process_id], p.lag_seconds)
        runs.add_metric([p.process_id], float(p.runs))
    owner = GaugeMetricFamily(
        "monitor_model_scheduler_owner",
        "1 for the scheduler process holding the model's lease; none while no live process holds it",
        labels=["model", "process"],
    )
    due = GaugeMetricFamily(
        "monitor_model_next_run_timestamp_seconds", "When the model's next run is due", labels=["model"]
    )
    unheld = GaugeMetricFamily(
        "monitor_scheduler_models_unheld", "Models no live scheduler process holds: nobody computes them"
    )
    for lease in view.leases:
        if lease.owner is not None:
            owner.add_metric([lease.model, lease.owner], 1.0)
        due.add_metric([lease.model], view.at.timestamp() + lease.due_in_seconds)
    unheld.add_metric([], float(len(view.unheld)))
    yield from (up, leader, held, lag, runs, owner, due, unheld)


def _importance_families() -> dict[str, GaugeMetricFamily]:
    """Drift weighed by importance, attribution drift and the window's importances."""
    return {
        "weighted_share": GaugeMetricFamily(
            "monitor_model_importance_weighted_drift_share",
            "Share of the model's importance whose features drifted",
            labels=["model", "window"],
        ),
        "ndcg": GaugeMetricFamily(
            "monitor_model_attribution_ndcg",
            "NDCG of the window's feature importance ranking against the reference's (attribution drift below 0.9)",
            labels=["model", "window"],
        ),
        "importance": GaugeMetricFamily(
            "monitor_model_feature_importance_share",
            "A feature's share of the window's mean absolute attribution (the most important, at most "
            "MONITOR_METRICS_MAX_FEATURES)",
            labels=["model", "feature", "window"],
        ),
    }


def _importance(fam: dict[str, GaugeMetricFamily], model: str, window: str, p: dict[str, Any]) -> None:
    """Drift weighed by importance, attribution drift and the window's importances."""
    if p["metric"] == "dataset_drift.importance_weighted":
        fam["weighted_share"].add_metric([model, window], p["value"])
    elif p["metric"] == "attribution_drift.ndcg":
        fam["ndcg"].add_metric([model, window], p["value"])
    else:
        share = float(p["details"].get("share", 0.0))
        fam["importance"].add_metric([model, p["labels"]["feature"], window], share)


def _label_free_families() -> dict[str, GaugeMetricFamily]:
    """Estimated quality (before labels) and multivariate drift."""
    return {
        "estimated": GaugeMetricFamily(
            "monitor_model_estimated_quality",
            "Model quality estimated from the scores of all predictions, before labels (as monitor_model_quality)",
            labels=["model", "metric", "class", "average", "window"],
        ),
        "estimated_band": GaugeMetricFamily(
            "monitor_model_estimated_quality_band",
            "The 95 % band of the estimated quality (bound: lower, upper)",
            labels=["model", "metric", "class", "average", "bound", "window"],
        ),
        "estimated_drop": GaugeMetricFamily(
            "monitor_model_estimated_quality_drop",
            "1 when the estimated main metric is worse than the reference's beyond tolerance and chance",
            labels=["model", "metric", "window"],
        ),
        "multivariate": GaugeMetricFamily(
            "monitor_model_multivariate_drift_error",
            "Mean reconstruction error of the window's rows under the reference's principal components",
            labels=["model", "window"],
        ),
        "multivariate_drifted": GaugeMetricFamily(
            "monitor_model_multivariate_drifted",
            "1 when the reconstruction error left the reference's band",
            labels=["model", "window"],
        ),
    }


def _fairness_families() -> dict[str, GaugeMetricFamily]:
    """Fairness across protected attributes (a group label holds one of the attribute's tracked
    values: at most segment_top_values of them)."""
    return {
        "fairness": GaugeMetricFamily(
            "monitor_model_fairness",
            "Fairlearn's fairness measures between the groups of a protected attribute "
            "(demographic_parity_ratio, equalized_odds_difference, ...)",
            labels=["model", "attribute", "measure", "window"],
        ),
        "fairness_violated": GaugeMetricFamily(
            "monitor_model_fairness_violated",
            "1 when the measure's 95 % interval lies wholly past its threshold (0.8 for ratios: the four-fifths rule)",
            labels=["model", "attribute", "measure", "window"],
        ),
        "fairness_group": GaugeMetricFamily(
            "monitor_model_fairness_group_rate",
            "A group's selection, true positive or false positive rate",
            labels=["model", "attribute", "group", "rate", "window"],
        ),
    }


def _label_free(fam: dict[str, GaugeMetricFamily], model: str, window: str, p: dict[str, Any]) -> None:
    """Estimated quality (with its band and its drop), multivariate drift and fairness."""
    metric, labels, details = p["metric"], p["labels"], p.get("details") or {}
    if metric.startswith("fairness."):
        measure, attribute = metric.removeprefix("fairness."), labels.get("attribute", "")
        if "group" in labels:
            fam["fairness_group"].add_metric([model, attribute, labels["group"], measure, window], p["value"])
            return
        fam["fairness"].add_metric([model, attribute, measure, window], p["value"])
        if p["drifted"] is not None:
            fam["fairness_violated"].add_metric([model, attribute, measure, window], float(p["drifted"]))
    elif metric == "estimated.quality_drop":
        if p["drifted"] is not None:
            fam["estimated_drop"].add_metric([model, labels.get("metric", ""), window], float(p["drifted"]))
    elif metric.startswith("estimated."):
        key = [model, metric.removeprefix("estimated."), labels.get("class", ""), labels.get("average", "")]
        fam["estimated"].add_metric([*key, window], p["value"])
        for bound in ("lower", "upper"):
            if details.get(bound) is not None:
                fam["estimated_band"].add_metric([*key, bound, window], float(details[bound]))
    elif metric == "multivariate_drift":
        fam["multivariate"].add_metric([model, window], p["value"])
        if p["drifted"] is not None:
            fam["multivariate_drifted"].add_metric([model, window], float(p["drifted"]))


def _comparison_families() -> dict[str, GaugeMetricFamily]:
    """A challenger (canary, A/B arm, shadow) against the champion: one label set per live
    challenger, metric and window."""
    pair = ["model", "challenger", "champion"]
    return {
        "comparison": GaugeMetricFamily(
            "monitor_model_comparison_difference",
            "The challenger's quality minus the champion's over the same window (accuracy, recall, precision, "
            "f1, roc_auc of the positive class; estimated_accuracy before labels)",
            labels=[*pair, "metric", "window"],
        ),
        "comparison_bound": GaugeMetricFamily(
            "monitor_model_comparison_difference_bound",
            "A bound of the difference's interval (at the model's comparison_confidence; bound: lower, upper)",
            labels=[*pair, "metric", "bound", "window"],
        ),
        "comparison_significant": GaugeMetricFamily(
            "monitor_model_comparison_significant",
            "1 when the interval of the difference excludes 0",
            labels=[*pair, "metric", "window"],
        ),
        "comparison_latency": GaugeMetricFamily(
            "monitor_model_comparison_latency_difference_seconds",
            "The challenger's latency minus the champion's (statistic: p95, mean)",
            labels=[*pair, "statistic", "window"],
        ),
        "comparison_share": GaugeMetricFamily(
            "monitor_model_comparison_ratio",
            "agreement: a shadow's share of requests both versions predicted alike; traffic_share: the "
            "challenger's share of both versions' predictions",
            labels=[*pair, "ratio", "window"],
        ),
        "comparison_drift": GaugeMetricFamily(
            "monitor_model_comparison_dataset_drift_share",
            "Share of the challenger's features drifted against the champion's reference",
            labels=[*pair, "window"],
        ),
    }


def _comparison(fam: dict[str, GaugeMetricFamily], model: str, window: str, p: dict[str, Any]) -> None:
    metric, details = p["metric"].removeprefix("comparison."), p.get("details") or {}
    pair = [model, p["version"], p["labels"].get("champion", "")]
    if metric in ("agreement", "traffic_share"):
        fam["comparison_share"].add_metric([*pair, metric, window], p["value"])
    elif metric.startswith("latency_"):  # latency_p95_ms: stored in milliseconds
        statistic = metric.removeprefix("latency_").removesuffix("_ms")
        fam["comparison_latency"].add_metric([*pair, statistic, window], p["value"] / 1000)
    elif metric == "dataset_drift":
        fam["comparison_drift"].add_metric([*pair, window], p["value"])
    else:
        fam["comparison"].add_metric([*pair, metric, window], p["value"])
        for bound in ("lower", "upper"):
            if details.get(bound) is not None:
                fam["comparison_bound"].add_metric([*pair, metric, bound, window], float(details[bound]))
        if p["drifted"] is not None:
            fam["comparison_significant"].add_metric([*pair, metric, window], float(p["drifted"]))


@dataclass(frozen=True)
class Registries:
    """What an API process exports, in two scrapes: ``process``, this process's own numbers
    (``GET /metrics``: scrape every replica), and ``database``, the numbers every process reads
    alike from the database (``GET /metrics/database``: scrape once, through any replica).
    Exported by every replica on one endpoint, the database's series arrived once per replica,
    and every ``sum`` over them counted each record as many times."""

    process: CollectorRegistry
    database: CollectorRegistry
    ingest_latency: Histogram


def new_registries(ctx: ServiceContext) -> Registries:
    """The registries of one API process.

    Under ``monitor serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set by it before the workers
    start) every worker writes its latency samples to files there and a scrape, whichever worker
    answers it, adds up all of them (prometheus_client's multiprocess mode): a histogram per worker
    would make each scrape see a different process and ``rate()`` meaningless."""
    database = CollectorRegistry()
    database.register(StoreCollector(ctx))
    process = CollectorRegistry()
    shared = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    if shared:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(process)  # type: ignore[no-untyped-call]
    latency = Histogram(
        "monitor_ingest_request_duration_seconds",
        "Ingestion request latency, until the answer (after the commit), over every API worker of this host",
        ["endpoint", "status"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        registry=None if shared else process,  # shared: its values live in the directory's files
    )
    return Registries(process, database, latency)
