"""Writes docs/grafana-dashboard.json: an example Grafana dashboard over the series of /metrics and /metrics/database.

python docs/make_grafana_dashboard.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The database's totals and the models' newest metrics come from ``/metrics/database``, scraped
# once; scraped on every replica instead, each series would come once per replica, so the panels
# take the max across targets (``ONCE``), never the sum. Only the request-latency histogram
# (``/metrics``, every replica) is per process.
ONCE = "max without (instance, pod)"

PANELS: list[tuple[str, str, str]] = [
    (
        "Records ingested per second",
        f"sum by (model, kind, outcome) ({ONCE} (rate(monitor_records_total[5m])))",
        "reqps",
    ),
    (
        "Ingestion latency p99 (all API processes)",
        "histogram_quantile(0.99, sum by (le, endpoint) (rate(monitor_ingest_request_duration_seconds_bucket[5m])))",
        "s",
    ),
    ("Seconds since each job last succeeded", f"time() - {ONCE} (monitor_job_last_success_timestamp_seconds)", "s"),
    ("Models held by each scheduler process", f"{ONCE} (monitor_scheduler_models_held)", "short"),
    ("Scheduler lag (most overdue model, per process)", f"{ONCE} (monitor_scheduler_lag_seconds)", "s"),
    ("Models held by no live scheduler process", f"{ONCE} (monitor_scheduler_models_unheld)", "short"),
    (
        "Webhook attempts by outcome",
        f"sum by (receiver, outcome) ({ONCE} (increase(monitor_webhook_deliveries_total[1h])))",
        "short",
    ),
    ("Dataset drift share", f'{ONCE} (monitor_model_dataset_drift_share{{window="$window"}})', "percentunit"),
    ("Drifted features", f'sum by (model) ({ONCE} (monitor_model_feature_drifted{{window="$window"}}))', "short"),
    (
        "Share of the model's importance drifted",
        f'{ONCE} (monitor_model_importance_weighted_drift_share{{window="$window"}})',
        "percentunit",
    ),
    (
        "Attribution drift: NDCG (below 0.9: drifted)",
        f'{ONCE} (monitor_model_attribution_ndcg{{window="$window"}})',
        "short",
    ),
    ("Quality", f'{ONCE} (monitor_model_quality{{window="$window", class="", average=""}})', "short"),
    ("Label coverage", f'{ONCE} (monitor_model_label_coverage_ratio{{window="$window"}})', "percentunit"),
    ("Latency p95", f'{ONCE} (monitor_model_latency_seconds{{window="$window", statistic="p95"}})', "s"),
    ("Concept drift detected", f'{ONCE} (monitor_model_concept_drift{{window="$window"}})', "short"),
    (
        "Challenger minus champion: accuracy",
        f'{ONCE} (monitor_model_comparison_difference{{window="$window", metric="accuracy"}})',
        "percentunit",
    ),
    (
        "Challenger minus champion: accuracy, lower bound of the interval",
        f'{ONCE} (monitor_model_comparison_difference_bound{{window="$window", metric="accuracy", bound="lower"}})',
        "percentunit",
    ),
]


def dashboard() -> dict[str, Any]:
    panels = []
    for i, (title, expr, unit) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [{"expr": expr, "refId": "A", "legendFormat": "__auto"}],
            }
        )
    return {
        "title": "Model Monitor",
        "uid": "model-monitor",
        "schemaVersion": 39,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "window",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(monitor_model_dataset_drift_share, window)",
                },
            ]
        },
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).parent / "grafana-dashboard.json"
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print("wrote", out)
