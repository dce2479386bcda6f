"""The whole service on a Citus coordinator with two workers (see tests/citus/conftest.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text

from monitor import demo_data
from monitor.api.app import create_app
from monitor.client import MonitorClient
from monitor.config import Settings
from monitor.db import record_repo
from monitor.db.citus import BY_REFERENCE, DISTRIBUTED, REFERENCE
from monitor.db.migrate import alembic_config
from monitor.db.prediction_key import key_of
from monitor.domain.schema import ModelSpec
from monitor.server import ThreadedServer
from monitor.services.bootstrap import open_for_writing
from monitor.services.catalog import keys, registry
from monitor.services.infra import citus
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.windows import hour_floor
from tests.citus import workload
from tests.citus.cluster import CitusCluster
from tests.conftest import SECRET_KEYS
from tests.integration import test_log_compaction as compaction_tests
from tests.integration import test_scheduler as scheduler_tests
from tests.integration.conftest import receiver  # noqa: F401  (a fixture)
from tests.integration.helpers import Api, Receiver, bearer
from tests.integration.unanalysed_log import joins_labels, nested_loops_over_the_log, relations, run_on_unanalysed_log
from tests.servers import free_port
from tests.waiting import wait_until

MODEL = demo_data.MODEL_NAME


def _settings(url: str, tmp: str) -> Settings:
    return Settings(
        database_url=url, data_dir=tmp, api_key_cache_seconds=0, allow_loopback_receivers=True, secret_keys=SECRET_KEYS
    )


def test_distribute_lays_out_the_tables_and_is_safe_to_repeat(citus_url: str) -> None:
    env = {**os.environ, "MONITOR_DATABASE_URL": citus_url}
    cmd = [sys.executable, "-m", "monitor.cli", "citus", "distribute"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    laid_out = len(DISTRIBUTED) + len(REFERENCE) + len(BY_REFERENCE)
    assert f"{laid_out} tables distributed or made reference tables, over 2 workers" in first.stdout
    table = dict(line.split() for line in first.stdout.splitlines()[2:])
    assert {t: table[t] for t in DISTRIBUTED} == dict.fromkeys(DISTRIBUTED, "distributed")
    assert {t: table[t] for t in ("models", "model_versions", "reference_datasets")} == dict.fromkeys(
        ("models", "model_versions", "reference_datasets"), "reference"
    )
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "0 tables distributed" in again.stdout, again.stdout + again.stderr
    # a table a later migration adds is laid out by `monitor migrate` (here: one made local again)
    url = citus_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT undistribute_table('prediction_keys')")
    migrate = subprocess.run([sys.executable, "-m", "monitor.cli", "migrate"], env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    with psycopg.connect(url) as conn:
        kind = conn.execute(
            "SELECT partmethod FROM pg_dist_partition WHERE logicalrelid = 'prediction_keys'::regclass"
        ).fetchone()
    assert kind == ("h",)


def test_the_same_input_gives_the_same_results_on_citus_as_on_postgres(
    ctx: ServiceContext,
    cluster: CitusCluster,
    citus_url: str,
    receiver: Receiver,  # noqa: F811  (the fixture imported above)
    tmp_path,
) -> None:
    """Everything the service computes from one workload — every metric point, alert, label join
    and delivered message — is the same on the cluster as on a single Postgres, and the models'
    rows live on both workers."""
    receiver.fail_first = 0
    end = hour_floor(datetime.now(UTC)) - timedelta(hours=1)
    workload.run(ctx, end, receiver)
    single = workload.snapshot(ctx, receiver)
    receiver.requests.clear()
    cctx = open_for_writing(_settings(citus_url, str(tmp_path)))
    log = cluster.base / "node0.log"
    with psycopg.connect(cluster.url(0), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET citus.multi_task_query_log_level = 'warning'")
        conn.execute("SELECT pg_reload_conf()")
    logged = log.stat().st_size
    try:
        citus.distribute(cctx)
        workload.run(cctx, end, receiver)
        distributed = workload.snapshot(cctx, receiver)
        workers = citus.model_workers(cctx)
    finally:
        cctx.close()
        with psycopg.connect(cluster.url(0), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM RESET citus.multi_task_query_log_level")
            conn.execute("SELECT pg_reload_conf()")
    # A model's queries go to its one shard: a query that lost its model_id filter runs on every
    # shard of every worker, once per hour and window (1,528 times in this workload before the
    # summaries' and windows' queries were given theirs; 20 more while the summaries' DELETE was
    # prepared with its model id bound, a generic plan Citus could not prune). What remains is
    # the snapshot's own two queries over every model.
    with log.open() as f:
        f.seek(logged)
        fan_outs = f.read().count("multi-task query about to be executed")
    assert fan_outs <= 2, fan_outs
    assert len(single["points"]) > 1000 and single["messages"], (len(single["points"]), single["alerts"])
    # the shadow's pairs with its champion, summarised by the hour on either database
    compared = {p[1] for p in single["points"] if p[0] == workload.SHADOWED and p[1].startswith("comparison.")}
    assert {"comparison.agreement", "comparison.accuracy", "comparison.roc_auc"} <= compared, compared
    for part in ("points", "alerts", "labels", "messages"):
        assert distributed[part] == single[part], part
    assert len(set(workers.values())) == 2, workers  # the models spread over both workers


def test_a_migration_runs_on_the_distributed_tables(citus_url: str, cluster: CitusCluster, tmp_path) -> None:
    """DDL on a distributed table (what a later migration does) reaches every shard."""
    cctx = open_for_writing(_settings(citus_url, str(tmp_path)))
    try:
        citus.distribute(cctx)
    finally:
        cctx.close()
    url = citus_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE metric_points ADD COLUMN note text")
        shards = conn.execute(
            "SELECT result FROM run_command_on_shards('metric_points', "
            "$$SELECT count(*) FROM information_schema.columns WHERE table_name = '%s' AND column_name = 'note'$$)"
        ).fetchall()
        assert shards and {r[0] for r in shards} == {"1"}


def test_a_worker_stopped_during_ingestion_loses_nothing(citus_url: str, cluster: CitusCluster, tmp_path) -> None:
    """While the worker holding a model is down, its requests get 503 with Retry-After, as with a
    single Postgres down; the client's retries land once it is back, every acknowledged record
    exactly once."""
    cctx = open_for_writing(_settings(citus_url, str(tmp_path)))
    server = None
    try:
        citus.distribute(cctx)
        registry.register_model(cctx, ModelSpec.model_validate(demo_data.SPEC))
        key, _ = keys.create_key(cctx, "ingest", [keys.Scope.ingest])
        server = ThreadedServer(create_app(ctx=cctx), "127.0.0.1", free_port()).start()
        client = MonitorClient(server.url, key, model=MODEL, batch_size=50, backoff_base=0.05, backoff_max=0.5)
        rng = np.random.default_rng(5)
        for rec in demo_data.applicants(200, rng).records():
            client.log_prediction(rec, "repaid")
        assert client.flush(timeout=30)
        worker = citus.model_workers(cctx)[MODEL]
        node = cluster.ports.index(int(worker.split(":")[1]))
        cluster.stop_node(node)
        try:
            probe = httpx.post(
                f"{server.url}/v1/predictions",
                json={"model": MODEL, "features": demo_data.applicants(1, rng).records()[0], "prediction": "repaid"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert probe.status_code == 503 and probe.headers.get("retry-after"), (probe.status_code, probe.text)
            for rec in demo_data.applicants(200, rng).records():
                client.log_prediction(rec, "repaid")
            wait_until(lambda: client.stats.retries >= 2, 30, "the client to retry against the outage")
        finally:
            cluster.start_node(node)
        assert client.flush(timeout=60)
        client.close()
        assert client.stats.sent == 400 and client.stats.dropped == 0
        with cctx.engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*), count(DISTINCT prediction_id) FROM predictions")).one()
        assert tuple(stored) == (400, 400)
    finally:
        if server is not None:
            server.stop()
        cctx.close()


def test_the_workers_plan_no_nested_loop_over_a_log_without_statistics(citus_url: str, tmp_path) -> None:
    """As on a single Postgres (tests/integration/test_unanalysed_log.py), on the workers' shard
    partitions: the setting that keeps a window's join off nested loops goes with the statement
    to the worker that plans it, and the new tables' statistics are looked for on the shards."""
    cctx = open_for_writing(_settings(citus_url, str(tmp_path)))
    try:
        citus.distribute(cctx)
        runs = run_on_unanalysed_log(cctx, 2000)
        with cctx.engine.connect() as conn:
            holding = {
                t
                for t in conn.execute(
                    text("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'predictions'::regclass")
                ).scalars()
                if conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {t})")).scalar()
            }
    finally:
        cctx.close()
    joins = [plan for sql, plan in runs.plans if joins_labels(sql)]
    assert len(joins) >= 3
    shards = {r for plan in joins for r in relations(plan) if re.fullmatch(r"labels_\d+", r)}
    assert shards, "the plans read are the workers' (a shard of labels)"
    bad = {sql[:200]: loops for sql, plan in runs.plans if (loops := nested_loops_over_the_log(plan))}
    assert not bad, bad
    assert set(runs.analysed_tables) == {*holding, "labels", "prediction_keys"}
    assert runs.analysed_again == []


def test_the_key_migration_carries_distributed_keys_down_and_up(citus_url: str, tmp_path) -> None:
    """The keys' change of layout (ids to their digests, and back) runs on the distributed tables,
    on every shard, and a prediction is found and joined to its label by its key afterwards."""
    cctx = open_for_writing(_settings(citus_url, str(tmp_path)))
    try:
        citus.distribute(cctx)
        registry.register_model(cctx, ModelSpec.model_validate(demo_data.SPEC))
        records = demo_data.applicants(40, np.random.default_rng(3)).records()
        ids = [f"p-{i}-é" for i in range(40)]
        logged = [
            {"prediction_id": pid, "features": r, "prediction": "repaid"} for pid, r in zip(ids, records, strict=True)
        ]
        assert not ingestion.ingest_predictions(cctx, logged, model=MODEL).errors
        keys_sql = "SELECT replace(CAST(key AS text), '-', '') FROM prediction_keys ORDER BY 1"
        with cctx.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0028")
            assert sorted(conn.execute(text("SELECT prediction_id FROM prediction_keys")).scalars()) == sorted(ids)
            command.upgrade(cfg, "head")
            assert conn.execute(text(keys_sql)).scalars().all() == sorted(key_of(pid) for pid in ids)
        labelled = ingestion.ingest_labels(cctx, [{"prediction_id": ids[7], "label": "default"}], model=MODEL)
        assert labelled.matched == 1, labelled
        model_id = registry.resolve_cached(cctx, [(MODEL, None)])[(MODEL, None)].model_id
        with cctx.engine.connect() as conn:
            found = record_repo.prediction(conn, model_id, ids[7])
        assert found is not None and found["label"] == "default"
    finally:
        cctx.close()


ATTRIBUTIONS_IN_SAMPLE = re.compile(r"^\[\('attributions', (None|\{[^}]*\})\), ")


def _without_attributions(reads: dict[str, Any]) -> dict[str, Any]:
    """Reads of the log without what attributions gave them: the look-ups' explanations, their
    summaries and the report sample's."""
    out = dict(reads)
    out["report sample"] = sorted(ATTRIBUTIONS_IN_SAMPLE.sub("[", row) for row in reads["report sample"])
    out["look-ups"] = {
        pid: {k: v for k, v in found.items() if k != "explanation"} for pid, found in reads["look-ups"].items()
    }
    out["summaries"] = [row for row in reads["summaries"] if row[2] != "_attributions"]
    return out


def test_compacted_hours_on_the_cluster_read_as_rows_and_erase(citus_url: str, tmp_path) -> None:
    """Compaction on the distributed log: blocks on the model's shard, every read of the log the
    same before and after, a day's partition given back, and a subject erased from its blocks."""
    cctx = open_for_writing(_settings(citus_url, str(tmp_path)))
    try:
        citus.distribute(cctx)
        made = {s: keys.create_key(cctx, s.value, [s])[0] for s in keys.Scope}
        with TestClient(create_app(ctx=cctx)) as http:
            api = Api(http, *(bearer(made[s]) for s in (keys.Scope.admin, keys.Scope.ingest, keys.Scope.read)), cctx)
            api.data = bearer(made[keys.Scope.data])
            compaction_tests._register(api, compaction_tests.COMPACTED)
            start = hour_floor(datetime.now(UTC)) - timedelta(days=2)
            end = start + timedelta(hours=compaction_tests.HOURS)
            records = compaction_tests._records(start, 1_200, "c")
            compaction_tests._post(api, "/v1/predictions", compaction_tests.COMPACTED, records)
            labels = compaction_tests._labels(end, {f"c{i}": "leave" for i in range(0, 1_200, 5)})
            compaction_tests._post(api, "/v1/labels", compaction_tests.COMPACTED, labels)
            ids = ["c0", "c3", "c13", "c600", "c1199"]
            before = compaction_tests._reads(api, compaction_tests.COMPACTED, start, end, ids)
            report = compaction_tests.compact_log(cctx, now=end + timedelta(days=1))
            assert report.rows == 1_200 and report.emptied == [start.date()], report
            compaction_tests._equal(before, compaction_tests._reads(api, compaction_tests.COMPACTED, start, end, ids))
            r = http.post("/v1/erasures", json={"subject": "person-3"}, headers=api.admin)
            assert r.status_code == 200 and r.json()["predictions"] == 60, r.text
            assert compaction_tests._stored(api, compaction_tests.COMPACTED) == (0, 1_140)
            after = compaction_tests._reads(api, compaction_tests.COMPACTED, start, end, ids)
        # the migration down puts the blocks' rows back one a row, on the shards; up again
        with cctx.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0029")
            assert conn.execute(text("SELECT count(*) FROM predictions")).scalar_one() == 1_140
            command.upgrade(cfg, "head")
        citus.distribute(cctx)  # the blocks' table made again, distributed again
        with TestClient(create_app(ctx=cctx)) as http:
            api.http = http
            again = compaction_tests._reads(api, compaction_tests.COMPACTED, start, end, ids)
            # down past the attributions' migration drops them, as its downgrade says: the rest as it was
            compaction_tests._equal(_without_attributions(after), _without_attributions(again))
    finally:
        cctx.close()


def _on_cluster(citus_url: str, tmp_path: Any, test: Any, *args: Any) -> None:
    """A test of the scheduler's, on the distributed layout: the leases on the coordinator, the
    runs on the models' shards."""
    cctx = open_for_writing(_settings(citus_url, str(tmp_path)))
    try:
        citus.distribute(cctx)
        test(cctx, *args)
    finally:
        cctx.close()


def test_scheduler_processes_share_the_models_on_the_cluster(citus_url: str, tmp_path) -> None:
    _on_cluster(
        citus_url,
        tmp_path,
        scheduler_tests.test_two_schedulers_share_the_fleet_one_leads_and_a_clean_stop_hands_over_at_once,
    )


def test_a_dead_schedulers_models_move_on_the_cluster_with_every_window_once(
    citus_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = scheduler_tests.test_a_dead_schedulers_models_move_within_a_lease_and_no_window_is_lost_or_computed_twice
    _on_cluster(citus_url, tmp_path, test, monkeypatch)


def test_two_schedulers_never_run_one_model_at_once_on_the_cluster(
    citus_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on_cluster(citus_url, tmp_path, scheduler_tests.test_two_schedulers_never_run_one_model_at_once, monkeypatch)
