"""A fleet of small models on one scheduler process: what one model's run costs, and where it goes.

    python benchmarks/fleet.py [--models 100] [--profile 15]

Each model has 5 numerical features, a 200-row reference and 200 predictions in the hour before
now; windows 1h and 1d. Every model is run once with its rows new (the first run: its hours
summarised, every window computed), then again with nothing new (a steady-state run, what a
30-second schedule repeats), as the scheduler runs them (``run_model``, then ``evaluate_model``).
It prints each run's median and 90th percentile, the models one process serves at a 30 s and a
300 s schedule (30 s or 300 s over a model's steady run and rule evaluation), and the functions
a steady run spends its time in (cProfile, by cumulative time, this project's code only).
Uses ``MONITOR_DATABASE_URL``, or the embedded Postgres.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.config import Settings
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.bootstrap import open_context
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.monitoring_run import run_model

FEATURES = [f"f{i}" for i in range(5)]


def seed(ctx: ServiceContext, n_models: int, now: datetime) -> list[str]:
    rng = np.random.default_rng(0)
    names = []
    for m in range(n_models):
        name = f"fleet-{m:04d}"
        spec = {"name": name, "task": "regression", "features": [{"name": f, "type": "numerical"} for f in FEATURES]}
        registry.register_model(ctx, ModelSpec.model_validate(spec))
        registry.set_monitoring(ctx, name, MonitoringConfig(windows=["1h", "1d"], schedule_seconds=30))
        ref = pd.DataFrame(rng.normal(size=(200, 5)), columns=FEATURES)
        ref["prediction"] = ref.sum(axis=1)
        upload_reference(ctx, name, ref.to_csv(index=False).encode(), TableFormat.csv)
        x = rng.normal(size=(200, 5))
        records = [
            {
                "prediction_id": f"{name}-{i}",
                "timestamp": (now - timedelta(seconds=3500 - 17 * i)).isoformat(),
                "features": dict(zip(FEATURES, row, strict=True)),
                "prediction": float(sum(row)),
            }
            for i, row in enumerate(x.tolist())
        ]
        ingestion.ingest_predictions(ctx, records, model=name)
        names.append(name)
    return names


def timed_runs(ctx: ServiceContext, names: list[str], now: datetime) -> tuple[list[float], list[float]]:
    runs, rules = [], []
    for name in names:
        t = time.perf_counter()
        run_model(ctx, name, now)
        runs.append(time.perf_counter() - t)
        t = time.perf_counter()
        evaluate_model(ctx, name)
        rules.append(time.perf_counter() - t)
    return runs, rules


def describe(label: str, values: list[float]) -> str:
    a = np.asarray(values)
    return f"{label}: median {1000 * np.median(a):.1f} ms, p90 {1000 * np.quantile(a, 0.9):.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--profile", type=int, default=15, help="functions of a steady run to list")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=os.environ.get("MONITOR_DATABASE_URL"))
        ctx = open_context(settings, migrate=True)
        now = datetime.now(UTC)
        t = time.perf_counter()
        names = seed(ctx, args.models, now)
        print(f"{args.models} models seeded in {time.perf_counter() - t:.1f} s")
        first, first_rules = timed_runs(ctx, names, now)
        steady, steady_rules = timed_runs(ctx, names, now + timedelta(seconds=30))
        print(describe("first run (rows new)", first), "|", describe("rules", first_rules))
        print(describe("steady run (nothing new)", steady), "|", describe("rules", steady_rules))
        per_model = float(np.median(steady) + np.median(steady_rules))
        print(
            f"one process at a 30 s schedule: about {30 / per_model:,.0f} models; "
            f"at 300 s: about {300 / per_model:,.0f}"
        )
        profile = cProfile.Profile()
        profile.enable()
        timed_runs(ctx, names, now + timedelta(seconds=60))
        profile.disable()
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out).sort_stats("cumulative")
        stats.print_stats(r"/(monitor|alerts)/", args.profile)
        print("\nwhere a steady run's time goes (cumulative, this project's functions):")
        print("\n".join(line for line in out.getvalue().splitlines() if "/" in line or "ncalls" in line))
        ctx.close()


if __name__ == "__main__":
    main()
