"""/metrics and /metrics/database: the service's numbers and the newest model metrics, in Prometheus's format."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from monitor.metrics.points import MetricPoint
from monitor.services.jobs import job_log
from monitor.services.jobs.metric_store import record_points
from monitor.services.jobs.windows import hour_floor
from tests.integration.helpers import Api, prediction

SCRAPES = ("/metrics", "/metrics/database")  # this process's numbers; the database's


def exposition(api: Api) -> str:
    """Both scrapes, as Prometheus gets them."""
    texts = []
    for path in SCRAPES:
        r = api.http.get(path, headers=api.read)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        texts.append(r.text)
    return "".join(texts)


def scrape(api: Api) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(exposition(api)):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    hits = [v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(hits) == 1, (name, labels, samples.get(name))
    return hits[0]


def test_service_and_model_metrics(churn: Api) -> None:
    for ids in (["a", "b"], ["a"]):  # the second "a" is a duplicate
        r = churn.http.post(
            "/v1/predictions", json={"model": "churn", "records": [prediction(i) for i in ids]}, headers=churn.ingest
        )
        assert r.status_code == 200, r.text
    end = hour_floor(datetime.now(UTC)) + timedelta(hours=1)
    start = end - timedelta(hours=1)
    record_points(
        churn.ctx,
        "churn",
        "1",
        [
            MetricPoint("dataset_drift", start, end, 0.5, sample_size=2, threshold=0.5, drifted=True),
            MetricPoint(
                "feature_drift",
                start,
                end,
                0.2,
                sample_size=2,
                labels={"feature": "tenure", "method": "psi"},
                drifted=True,
            ),
            MetricPoint(  # too few rows for a decision: its score, but no drifted sample (not a 0)
                "feature_drift",
                start,
                end,
                0.3,
                sample_size=2,
                labels={"feature": "plan", "method": "jensenshannon"},
                drifted=None,
            ),
            MetricPoint("quality.accuracy", start, end, 0.9, sample_size=2),
            MetricPoint("latency.p95", start, end, 12.5, sample_size=2),
            MetricPoint("latency.mean", start, end, 8.0, sample_size=2),
            MetricPoint("quality.f1", start, end, 0.7, sample_size=2, labels={"average": "macro"}),
            MetricPoint(
                "dataset_drift", start, end, 0.1, sample_size=1, labels={"segment": "plan", "segment_value": "basic"}
            ),
            MetricPoint("estimated.accuracy", start, end, 0.8, 2, details={"lower": 0.7, "upper": 0.9}),
            MetricPoint("estimated.quality_drop", start, end, 0.1, 2, {"metric": "accuracy"}, drifted=True),
            MetricPoint("multivariate_drift", start, end, 1.4, 2, {"method": "reconstruction_error"}, drifted=False),
            MetricPoint("fairness.demographic_parity_ratio", start, end, 0.7, 900, {"attribute": "plan"}, drifted=True),
            MetricPoint("fairness.selection_rate", start, end, 0.25, 300, {"attribute": "plan", "group": "basic"}),
        ],
    )
    job_log.succeeded(churn.ctx, "churn", "metrics", 1.25)
    with churn.ctx.uow() as uow:
        uow.alerts.add_delivery(
            {
                "message_id": "msg_1",
                "receiver": "oncall",
                "attempt": 1,
                "at": datetime.now(UTC),
                "status_code": 503,
                "latency_ms": 3.0,
                "outcome": "retry",
                "error": "HTTP 503",
            },
        )
        uow.commit()
    m = scrape(churn)
    assert value(m, "monitor_records_total", model="churn", kind="prediction", outcome="accepted") == 2
    assert value(m, "monitor_records_total", model="churn", kind="prediction", outcome="duplicates") == 1
    assert value(m, "monitor_webhook_deliveries_total", receiver="oncall", outcome="retry") == 1
    # labels Prometheus sets on every series of a target would collide (and arrive as exported_job)
    assert not [(name, lab) for name, samples in m.items() for lab, _ in samples if {"job", "instance"} & set(lab)]
    assert value(m, "monitor_job_duration_seconds", model="churn", task="metrics") == 1.25
    assert value(m, "monitor_job_last_success_timestamp_seconds", model="churn", task="metrics") > 0
    assert value(m, "monitor_model_dataset_drift_share", model="churn", window="1h") == 0.5  # the segment's is left out
    assert value(m, "monitor_model_feature_drift_score", model="churn", feature="tenure", method="psi") == 0.2
    assert value(m, "monitor_model_feature_drifted", model="churn", feature="tenure") == 1
    assert value(m, "monitor_model_feature_drift_score", model="churn", feature="plan") == 0.3
    assert not [lab for lab, _ in m["monitor_model_feature_drifted"] if lab.get("feature") == "plan"]
    assert value(m, "monitor_model_quality", model="churn", metric="accuracy", average="", **{"class": ""}) == 0.9
    assert value(m, "monitor_model_quality", model="churn", metric="f1", average="macro") == 0.7
    assert value(m, "monitor_model_estimated_quality", model="churn", metric="accuracy", average="") == 0.8
    assert value(m, "monitor_model_estimated_quality_band", model="churn", metric="accuracy", bound="upper") == 0.9
    assert value(m, "monitor_model_estimated_quality_drop", model="churn", metric="accuracy") == 1
    assert value(m, "monitor_model_multivariate_drift_error", model="churn", window="1h") == 1.4
    assert value(m, "monitor_model_multivariate_drifted", model="churn", window="1h") == 0
    fair = {"model": "churn", "attribute": "plan", "window": "1h"}
    assert value(m, "monitor_model_fairness", measure="demographic_parity_ratio", **fair) == 0.7
    assert value(m, "monitor_model_fairness_violated", measure="demographic_parity_ratio", **fair) == 1
    assert value(m, "monitor_model_fairness_group_rate", group="basic", rate="selection_rate", **fair) == 0.25
    assert value(m, "monitor_model_latency_seconds", model="churn", statistic="p95") == 0.0125
    assert value(m, "monitor_model_latency_seconds", model="churn", statistic="mean") == 0.008
    assert value(m, "monitor_ingest_request_duration_seconds_count", endpoint="predictions", status="2xx") == 2
    assert churn.http.get("/metrics").status_code == churn.http.get("/metrics/database").status_code == 401


def test_the_example_grafana_dashboard_reads_only_exposed_series(api: Api) -> None:
    import json
    import re
    from pathlib import Path

    exposed = set()
    for fam in text_string_to_metric_families(exposition(api)):
        exposed.add(fam.name)
        exposed.update(s.name for s in fam.samples)
        exposed.update({f"{fam.name}_total", f"{fam.name}_bucket"})
    doc = json.loads((Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text())
    used = {name for p in doc["panels"] for t in p["targets"] for name in re.findall(r"monitor_[a-z_]+", t["expr"])}
    assert used and used <= exposed, used - exposed


def test_promtool_accepts_a_real_scrape(churn: Api) -> None:
    """``promtool check metrics`` (Debian's prometheus package) on a scrape holding every family."""
    import shutil
    import subprocess

    import pytest

    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI: apt-get install prometheus")
        pytest.skip("no promtool: apt-get install prometheus to run this test")
    churn.http.post("/v1/predictions", json={"model": "churn", "records": [prediction("p")]}, headers=churn.ingest)
    end = hour_floor(datetime.now(UTC)) + timedelta(hours=1)
    start = end - timedelta(hours=1)
    points = [
        MetricPoint("dataset_drift", start, end, 0.5, sample_size=2, threshold=0.5, drifted=True),
        MetricPoint("feature_drift", start, end, 0.2, 2, {"feature": "tenure", "method": "psi"}, drifted=True),
        MetricPoint("prediction_drift", start, end, 0.1, 2, {"column": "prediction", "method": "psi"}),
        MetricPoint("quality.accuracy", start, end, 0.9, sample_size=2),
        MetricPoint("quality.f1", start, end, 0.7, sample_size=2, labels={"average": "macro"}),
        MetricPoint("quality.label_coverage", start, end, 0.5, sample_size=2),
        MetricPoint("latency.p95", start, end, 12.5, sample_size=2),
        MetricPoint("latency.mean", start, end, 8.0, sample_size=2),
        MetricPoint("throughput.per_minute", start, end, 3.0, sample_size=2),
        MetricPoint("concept_drift.error_stream", start, end, 1.0, sample_size=2, drifted=True),
        MetricPoint("estimated.accuracy", start, end, 0.8, 2, details={"lower": 0.7, "upper": 0.9}),
        MetricPoint("estimated.f1", start, end, 0.6, 2, {"class": "leave"}, details={"lower": 0.5, "upper": 0.7}),
        MetricPoint("estimated.quality_drop", start, end, 0.1, 2, {"metric": "accuracy"}, drifted=True),
        MetricPoint("multivariate_drift", start, end, 1.4, 2, {"method": "reconstruction_error"}, drifted=False),
        MetricPoint("dataset_drift.importance_weighted", start, end, 0.62, sample_size=2),
        MetricPoint("attribution_drift.ndcg", start, end, 0.83, sample_size=2, threshold=0.9, drifted=True),
        MetricPoint("attribution.importance", start, end, 0.4, 2, {"feature": "tenure"}, details={"share": 0.7}),
    ]
    record_points(churn.ctx, "churn", "1", points)
    samples = scrape(churn)
    assert value(samples, "monitor_model_importance_weighted_drift_share", model="churn", window="1h") == 0.62
    assert value(samples, "monitor_model_attribution_ndcg", model="churn", window="1h") == 0.83
    assert value(samples, "monitor_model_feature_importance_share", model="churn", feature="tenure") == 0.7
    job_log.succeeded(churn.ctx, "churn", "metrics", 1.0)
    job_log.failed(churn.ctx, "churn", "rules", "boom")
    for path in SCRAPES:
        text = churn.http.get(path, headers=churn.read).text
        checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, path + checked.stdout + checked.stderr


def test_every_scrape_of_a_multi_worker_api_sees_all_workers_requests(churn: Api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`monitor serve --workers 2`: requests land on both workers, and whichever worker answers a
    scrape reports the latency histogram of them all (prometheus_client's multiprocess mode)."""
    import httpx

    from monitor.services.catalog import keys
    from tests.integration.processes import monitor_process, stop_process, wait_ready
    from tests.servers import free_port

    ingest = keys.create_key(churn.ctx, "multi-ingest", [keys.Scope.ingest])[0]
    read = keys.create_key(churn.ctx, "multi-read", [keys.Scope.read])[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"MONITOR_DATABASE_URL": churn.ctx.settings.database_url or "", "MONITOR_LOG_FORMAT": "text"}
    proc = monitor_process(
        ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"], env, tmp_path / "a.log"
    )
    try:
        wait_ready(url, proc)
        for i in range(24):  # a new connection each: the kernel spreads them over the workers
            body = {"model": "churn", "records": [prediction(f"mw{i}")]}
            r = httpx.post(f"{url}/v1/predictions", json=body, headers={"Authorization": f"Bearer {ingest}"})
            assert r.status_code == 200, r.text
        counts = set()
        for _ in range(8):
            text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {read}"}).text
            families = {s.name: s for fam in text_string_to_metric_families(text) for s in fam.samples}
            counts.add(families["monitor_ingest_request_duration_seconds_count"].value)
        assert counts == {24.0}
    finally:
        stop_process(proc)


def test_replicas_export_the_databases_series_once(churn: Api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two API replicas, scraped as Prometheus scrapes them: each one's ``/metrics`` holds its own
    requests and none of the database's series (so summing over replicas counts each request
    once and each record never twice), and ``/metrics/database`` is the same whichever replica
    answers it, the records counted once."""
    import httpx

    from monitor.services.catalog import keys
    from tests.integration.processes import monitor_process, stop_process, wait_ready
    from tests.servers import free_port

    ingest = keys.create_key(churn.ctx, "replica-ingest", [keys.Scope.ingest])[0]
    read = {"Authorization": f"Bearer {keys.create_key(churn.ctx, 'replica-read', [keys.Scope.read])[0]}"}
    env = {"MONITOR_DATABASE_URL": churn.ctx.settings.database_url or "", "MONITOR_LOG_FORMAT": "text"}
    urls, procs = [], []
    try:
        for i in range(2):
            port = free_port()
            urls.append(f"http://127.0.0.1:{port}")
            procs.append(
                monitor_process(["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / f"{i}.log")
            )
        for url, proc in zip(urls, procs, strict=True):
            wait_ready(url, proc)
        for i in range(5):  # 3 requests to the first replica, 2 to the second
            body = {"model": "churn", "records": [prediction(f"rep{i}")]}
            r = httpx.post(f"{urls[i % 2]}/v1/predictions", json=body, headers={"Authorization": f"Bearer {ingest}"})
            assert r.status_code == 200, r.text
        requests, database = 0.0, []
        for url in urls:
            own = {
                s.name: s
                for f in text_string_to_metric_families(httpx.get(f"{url}/metrics", headers=read).text)
                for s in f.samples
            }
            assert not [name for name in own if name.startswith(("monitor_records", "monitor_model", "monitor_job"))]
            requests += own["monitor_ingest_request_duration_seconds_count"].value
            shared = httpx.get(f"{url}/metrics/database", headers=read).text
            assert "monitor_ingest_request_duration_seconds" not in shared
            database.append(
                {
                    (s.name, tuple(sorted(s.labels.items()))): s.value
                    for f in text_string_to_metric_families(shared)
                    for s in f.samples
                }
            )
        assert requests == 5
        assert database[0] == database[1]
        accepted = database[0][
            ("monitor_records_total", (("kind", "prediction"), ("model", "churn"), ("outcome", "accepted")))
        ]
        assert accepted == 5
    finally:
        for proc in procs:
            stop_process(proc)


def test_a_wide_models_feature_series_stay_bounded_most_drifted_first(churn: Api) -> None:
    """120 features: the per-feature series hold the 50 most drifted (MONITOR_METRICS_MAX_FEATURES),
    the drifted ones among them whatever their names; the counts cover all 120."""
    churn.http.post("/v1/predictions", json={"model": "churn", "records": [prediction("p")]}, headers=churn.ingest)
    end = hour_floor(datetime.now(UTC)) + timedelta(hours=1)
    start = end - timedelta(hours=1)
    drifted = {"f3", "f77", "f119"}
    points = [
        MetricPoint(
            "feature_drift",
            start,
            end,
            0.5 if f"f{i}" in drifted else 0.001 * i,
            1000,
            {"feature": f"f{i}", "method": "wasserstein"},
            threshold=0.1,
            drifted=f"f{i}" in drifted,
            details={"kind": "distance"},
        )
        for i in range(120)
    ]
    record_points(churn.ctx, "churn", "1", points)
    samples = scrape(churn)
    series = {labels["feature"] for labels, _ in samples["monitor_model_feature_drift_score"]}
    assert churn.ctx.settings.metrics_max_features == 50 and len(series) == 50
    assert drifted <= series  # the drifted first
    assert {f"f{i}" for i in range(119, 72, -1)} - {"f119", "f77"} <= series  # then the largest scores
    assert value(samples, "monitor_model_features_drifted", model="churn", window="1h") == 3
    assert value(samples, "monitor_model_features_measured", model="churn", window="1h") == 120


def test_the_champions_series_and_each_challengers_comparison_with_it(churn: Api) -> None:
    """A shadow registered after the champion: the model's series stay the champion's, and the
    shadow's comparison with it is exposed with both versions as labels; promtool accepts it."""
    import shutil
    import subprocess

    from tests.integration.helpers import BINARY_SPEC

    api = churn
    assert api.http.post("/v1/models", json={**BINARY_SPEC, "version": "2"}, headers=api.admin).status_code == 201
    for version, mode in (("1", "champion"), ("2", "shadow")):
        r = api.http.put(f"/v1/models/churn/versions/{version}/deployment", json={"mode": mode}, headers=api.admin)
        assert r.status_code == 200, r.text
    end = hour_floor(datetime.now(UTC)) + timedelta(hours=1)
    start = end - timedelta(hours=1)
    champion = {"champion": "1"}
    record_points(api.ctx, "churn", "1", [MetricPoint("quality.accuracy", start, end, 0.9, sample_size=50)])
    shadow = [
        MetricPoint("quality.accuracy", start, end, 0.5, sample_size=50),
        MetricPoint(
            "comparison.accuracy",
            start,
            end,
            -0.4,
            50,
            champion,
            drifted=True,
            details={"lower": -0.55, "upper": -0.25, "p_value": 1e-6, "paired": True},
        ),
        MetricPoint("comparison.latency_p95_ms", start, end, 3.0, 100, champion),
        MetricPoint("comparison.agreement", start, end, 0.8, 50, champion, details={"lower": 0.7, "upper": 0.87}),
        MetricPoint("comparison.traffic_share", start, end, 0.5, 100, champion),
        MetricPoint("comparison.dataset_drift", start, end, 0.25, 50, champion, drifted=False),
        MetricPoint("comparison.feature_drift", start, end, 0.01, 50, {**champion, "feature": "tenure"}),
    ]
    record_points(api.ctx, "churn", "2", shadow)
    m = scrape(api)
    assert value(m, "monitor_model_quality", model="churn", metric="accuracy") == 0.9  # not the newer shadow's
    pair = {"model": "churn", "challenger": "2", "champion": "1", "window": "1h"}
    assert value(m, "monitor_model_comparison_difference", metric="accuracy", **pair) == -0.4
    assert value(m, "monitor_model_comparison_difference_bound", metric="accuracy", bound="lower", **pair) == -0.55
    assert value(m, "monitor_model_comparison_difference_bound", metric="accuracy", bound="upper", **pair) == -0.25
    assert value(m, "monitor_model_comparison_significant", metric="accuracy", **pair) == 1.0
    assert value(m, "monitor_model_comparison_latency_difference_seconds", statistic="p95", **pair) == 0.003
    assert value(m, "monitor_model_comparison_ratio", ratio="agreement", **pair) == 0.8
    assert value(m, "monitor_model_comparison_ratio", ratio="traffic_share", **pair) == 0.5
    assert value(m, "monitor_model_comparison_dataset_drift_share", **pair) == 0.25
    # per-feature comparisons stay off /metrics (bounded series), as do the shadow's own series
    assert not any(
        "tenure" in lab.values() for name, samples in m.items() for lab, _ in samples if "comparison" in name
    )
    promtool = shutil.which("promtool")
    if promtool is not None:
        text = api.http.get("/metrics/database", headers=api.read).text
        checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_scheduler_processes_and_who_holds_each_model(churn: Api) -> None:
    """Per process: live, leader, models held, lag, runs; per model: its holder and next run.
    A process that stops cleanly leaves the list, and its model shows as held by nobody."""
    import shutil
    import subprocess

    from monitor.scheduler import MetricScheduler

    scheduler = MetricScheduler(churn.ctx, lease_seconds=30)
    try:
        assert scheduler.tick() == ["churn"]
        me = scheduler.process.process_id
        samples = scrape(churn)
        assert value(samples, "monitor_scheduler_process_up", process=me) == 1
        assert value(samples, "monitor_scheduler_process_leader", process=me) == 1
        assert value(samples, "monitor_scheduler_models_held", process=me) == 1
        assert value(samples, "monitor_scheduler_runs_total", process=me) == 1
        assert 0 <= value(samples, "monitor_scheduler_lag_seconds", process=me) < 5
        assert value(samples, "monitor_model_scheduler_owner", model="churn", process=me) == 1
        due = value(samples, "monitor_model_next_run_timestamp_seconds", model="churn")
        assert 0 < due - datetime.now(UTC).timestamp() <= 30  # the default schedule, from the run's start
        assert value(samples, "monitor_scheduler_models_unheld") == 0
        promtool = shutil.which("promtool")
        for path in SCRAPES if promtool is not None else ():
            text = churn.http.get(path, headers=churn.read).text
            checked = subprocess.run(
                [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
            )
            assert checked.returncode == 0, path + checked.stdout + checked.stderr
    finally:
        scheduler.stop()
    samples = scrape(churn)
    assert "monitor_scheduler_process_up" not in samples  # a clean stop leaves the list
    assert "monitor_model_scheduler_owner" not in samples
    assert value(samples, "monitor_scheduler_models_unheld") == 1
