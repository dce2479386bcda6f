"""Ingestion and rollup for many models on one Postgres and on a Citus coordinator with two
workers, side by side in one run, on this machine: what distribution costs here, and where the
work goes (CPU seconds per node), which says how it grows with workers on machines of their own.

    .venv/bin/python benchmarks/citus.py [--models 8] [--rows 12000] [--threads 4]

Both set-ups use the same Postgres 16 binaries (the Citus build, MONITOR_CITUS_HOME, made by the
build script CI uses); the single Postgres is one node of it without the extension. Each model
gets ``--rows`` predictions over 24 hours, sent by ``--threads`` threads in batches of 1,000
through the ingestion service (as the API does after parsing); then every model's hours are
summarised and its hourly windows computed (``backfill``), the models in parallel as the
scheduler runs them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import demo_data
from monitor.config import Settings
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.bootstrap import open_for_writing
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra import citus
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.monitoring_run import backfill
from tests.citus.cluster import CitusCluster, available, citus_home

BATCH = 1000


def node_cpu(cluster: CitusCluster, node: int) -> float:
    """CPU seconds used so far by a node's postmaster and its backends."""
    pid = int((cluster.data_dir(node) / "postmaster.pid").read_text().split()[0])
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def cluster_cpu(cluster: CitusCluster, nodes: list[int]) -> list[float]:
    return [node_cpu(cluster, n) for n in nodes]


def batches(models: list[str], rows: int, start: datetime) -> list[tuple[str, list[dict[str, Any]]]]:
    out = []
    for m, name in enumerate(models):
        rng = np.random.default_rng(m)
        a = demo_data.applicants(rows, rng)
        scores = demo_data.model_scores(a)
        recs = [
            {
                "prediction_id": f"{name}-{i}",
                "timestamp": (start + timedelta(seconds=86400 * i / rows)).isoformat(),
                "features": rec,
                "prediction": "default" if scores[i] >= 0.5 else "repaid",
                "scores": round(float(scores[i]), 5),
                "segments": {"channel": demo_data.CHANNELS[i % 3]},
            }
            for i, rec in enumerate(a.records())
        ]
        out += [(name, recs[k : k + BATCH]) for k in range(0, rows, BATCH)]
    return out


def run(
    ctx: ServiceContext, models: list[str], rows: int, threads: int, cpu: Callable[[], list[float]]
) -> dict[str, Any]:
    """Ingest, then roll up; rows per second of each, and each node's CPU seconds in each."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(hours=24)
    for m, name in enumerate(models):
        registry.register_model(ctx, ModelSpec.model_validate({**demo_data.SPEC, "name": name}))
        registry.set_monitoring(ctx, name, MonitoringConfig(windows=["1h"]))
        upload_reference(
            ctx, name, demo_data.reference_frame(2000, seed=m).to_csv(index=False).encode(), TableFormat.csv
        )
    work = batches(models, rows, start)
    cpu0, t0 = cpu(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda b: ingestion.ingest_predictions(ctx, b[1], model=b[0]), work))
    ingest_s = time.perf_counter() - t0
    cpu1 = cpu()
    assert all(r.accepted == len(b[1]) for r, b in zip(results, work, strict=True))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda name: backfill(ctx, name, start, end), models))
    rollup_s = time.perf_counter() - t0
    cpu2 = cpu()
    total = rows * len(models)
    return {
        "ingest_rows_s": total / ingest_s,
        "rollup_rows_s": total / rollup_s,
        "ingest_cpu": [b - a for a, b in zip(cpu0, cpu1, strict=True)],
        "rollup_cpu": [b - a for a, b in zip(cpu1, cpu2, strict=True)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=8)
    ap.add_argument("--rows", type=int, default=12_000, help="predictions per model")
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    if not available():
        sys.exit(f"no Citus build at {citus_home()}: build it with the build script CI uses")
    models = [f"bench-{k}" for k in range(args.models)]
    print(f"{args.models} models x {args.rows:,} predictions over 24 h, {args.threads} threads, batches of {BATCH:,}")
    rows_fmt = "{:>24} {:>14} {:>14}   {}"
    print(rows_fmt.format("set-up", "ingest rows/s", "rollup rows/s", "CPU s per node: ingest / rollup"))
    for label, workers in (("one Postgres 16", 0), ("Citus: coordinator + 2", 2)):
        cluster = CitusCluster(workers=workers).start()
        try:
            if workers:
                url = cluster.create_database("bench")
            else:  # the same binaries, no extension: a plain Postgres
                import psycopg

                with psycopg.connect(cluster.url(0), autocommit=True) as conn:
                    conn.execute("DROP EXTENSION citus")
                    conn.execute('CREATE DATABASE "bench"')
                url = cluster.url(0, "bench").replace("postgresql://", "postgresql+psycopg://")
            with tempfile.TemporaryDirectory() as tmp:
                ctx = open_for_writing(Settings(database_url=url, data_dir=Path(tmp)))
                if workers:
                    citus.distribute(ctx)
                nodes = list(range(workers + 1))
                figures = run(ctx, models, args.rows, args.threads, partial(cluster_cpu, cluster, nodes))
                if workers:
                    spread = sorted(citus.model_workers(ctx).values())
                ctx.close()
        finally:
            cluster.stop()
        names = ["coordinator"] + [f"worker {n}" for n in range(1, workers + 1)] if workers else ["postgres"]
        per_node = ", ".join(
            f"{n} {i:.1f} / {r:.1f}"
            for n, i, r in zip(names, figures["ingest_cpu"], figures["rollup_cpu"], strict=True)
        )
        print(rows_fmt.format(label, f"{figures['ingest_rows_s']:,.0f}", f"{figures['rollup_rows_s']:,.0f}", per_node))
    print("models per worker:", {w: spread.count(w) for w in sorted(set(spread))})


if __name__ == "__main__":
    main()
