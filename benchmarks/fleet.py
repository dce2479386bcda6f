"""A fleet of small models: what one model's run costs, and how many models scheduler processes keep
on schedule together.

    python benchmarks/fleet.py cost [--models 60] [--profile 15] [--baseline-checkout DIR]
    python benchmarks/fleet.py fleet [--models 100 1000 3000] [--processes 1 2 4] [--seconds 150] [--kill]

Each model has 5 numerical features, a 200-row reference and 200 predictions in the hour before
now; windows 1h and 1d, a 30-second schedule.

``cost``: every model run once with its rows new (the first run: its hours summarised, every window
computed), then four more runs 30 s apart with nothing new (the fixed cost: what a 30-second
schedule repeats for a model that receives nothing; half of them cross into a new minute, whose
sliding windows are computed again), and four runs 30 s apart with a few new rows before each (a
model with traffic), as the scheduler runs them (``run_model``, then ``evaluate_model``).
It prints each kind's median and 90th percentile, and the functions a run with new rows spends its
time in (cProfile, this project's code only). With ``--baseline-checkout`` (a checkout of an
earlier version), that version's ``benchmarks/fleet.py`` runs first on the same database server
and its figures are printed beside.

``fleet``: the models seeded in a database of their own, with traffic (a few predictions per model
every 30 s, stamped now, from this process); then for each count of processes, that many
``monitor scheduler --tick 5`` processes sharing the models (30 s leases). Once every model has
run under them (the warm-up), it counts each model's runs over ``--seconds`` from the processes'
logs: the share of the expected runs done (a model due every 30 s has 5 in 150 s), the share of
models with all of theirs, the processes' lag (sampled from ``scheduler_processes``), and one
model-run's median cost. ``--kill`` (with two processes or more): one process is killed (SIGKILL)
in the middle of a run, and it prints how long until each of its models ran again in another
process, and the windows lost (a model with no window computed since the kill) or duplicated (a
model with two sliding windows of one length standing, or two points of one window).
Uses ``MONITOR_DATABASE_URL`` (a database is created on its server for ``fleet``), or the
embedded Postgres.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import make_url, text

from monitor.config import Settings
from monitor.db.engine import database_url
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
SCHEDULE = 30
TICK = 5
LEASE = 30
RUN_LINE = re.compile(r"^(\S+ \S+) INFO monitor\.scheduler: metrics for (\S+) in ([0-9.]+) s")


def seed(ctx: ServiceContext, n_models: int, now: datetime) -> list[str]:
    rng = np.random.default_rng(0)
    names = []
    for m in range(n_models):
        name = f"fleet-{m:04d}"
        spec = {"name": name, "task": "regression", "features": [{"name": f, "type": "numerical"} for f in FEATURES]}
        registry.register_model(ctx, ModelSpec.model_validate(spec))
        registry.set_monitoring(ctx, name, MonitoringConfig(windows=["1h", "1d"], schedule_seconds=SCHEDULE))
        ref = pd.DataFrame(rng.normal(size=(200, 5)), columns=FEATURES)
        ref["prediction"] = ref.sum(axis=1)
        upload_reference(ctx, name, ref.to_csv(index=False).encode(), TableFormat.csv)
        ingestion.ingest_predictions(ctx, records(name, rng, 200, now - timedelta(seconds=3500), 17.0), model=name)
        names.append(name)
    return names


def records(name: str, rng: np.random.Generator, n: int, start: datetime, step_s: float) -> list[dict[str, object]]:
    x = rng.normal(size=(n, 5))
    tag = uuid.uuid4().hex[:8]
    return [
        {
            "prediction_id": f"{name}-{tag}-{i}",
            "timestamp": (start + timedelta(seconds=step_s * i)).isoformat(),
            "features": dict(zip(FEATURES, row, strict=True)),
            "prediction": float(sum(row)),
        }
        for i, row in enumerate(x.tolist())
    ]


class FreshDatabase:
    """A database of its own on ``MONITOR_DATABASE_URL``'s server (dropped at the end), or the
    embedded Postgres in ``workdir`` where none is set."""

    def __init__(self, workdir: Path) -> None:
        server = os.environ.get("MONITOR_DATABASE_URL")
        self.created: tuple[str, str] | None = None
        if server:
            name = f"fleet_{uuid.uuid4().hex[:8]}"
            plain = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self.created = (plain, name)
            server = make_url(server).set(database=name).render_as_string(hide_password=False)
        self.settings = Settings(data_dir=workdir / "data", database_url=server)
        self.url = database_url(self.settings)

    def drop(self) -> None:
        if self.created:
            plain, name = self.created
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- cost: one model's run ---------------------------------------------------------------------


def timed_runs(ctx: ServiceContext, names: list[str], now: datetime, new_rows: int = 0) -> tuple[list[float], ...]:
    rng = np.random.default_rng(1)
    runs, rules = [], []
    for name in names:
        if new_rows:
            ingestion.ingest_predictions(ctx, records(name, rng, new_rows, now - timedelta(seconds=5), 1.0), model=name)
        t = time.perf_counter()
        run_model(ctx, name, now)
        runs.append(time.perf_counter() - t)
        t = time.perf_counter()
        evaluate_model(ctx, name)
        rules.append(time.perf_counter() - t)
    return runs, rules


def describe(label: str, values: list[float]) -> str:
    a = np.asarray(values)
    return (
        f"{label}: mean {1000 * a.mean():.1f} ms, median {1000 * np.median(a):.1f} ms, "
        f"p90 {1000 * np.quantile(a, 0.9):.1f} ms"
    )


def cost(args: argparse.Namespace) -> None:
    if args.baseline_checkout:
        with tempfile.TemporaryDirectory() as tmp:
            db = FreshDatabase(Path(tmp))
            try:
                baseline(args, db.url)
            finally:
                db.drop()
    with tempfile.TemporaryDirectory() as tmp:
        db = FreshDatabase(Path(tmp))
        ctx = open_context(db.settings, migrate=True)
        # runs at 10 s past a minute: +30 s stays in the minute, +60 s crosses into the next one
        now = datetime.now(UTC).replace(second=10, microsecond=0)
        t = time.perf_counter()
        names = seed(ctx, args.models, now)
        print(f"{args.models} models seeded in {time.perf_counter() - t:.1f} s")
        first, first_rules = timed_runs(ctx, names, now)
        idle: list[float] = []
        idle_rules: list[float] = []
        for k in range(1, 5):
            r, q = timed_runs(ctx, names, now + timedelta(seconds=30 * k))
            idle += r
            idle_rules += q
        busy: list[float] = []
        for k in range(5, 9):
            busy += timed_runs(ctx, names, now + timedelta(seconds=30 * k), new_rows=3)[0]
        print(describe("first run (rows new)", first), "|", describe("rules", first_rules))
        print(describe("fixed cost: a run with nothing new, 30 s apart", idle), "|", describe("rules", idle_rules))
        print(describe("a run with 3 new rows, 30 s apart", busy))
        per_model = float(np.mean(busy) + np.mean(idle_rules))
        print(f"one process, models with traffic: about {SCHEDULE / per_model:,.0f} at a 30 s schedule")
        profile = cProfile.Profile()
        profile.enable()
        timed_runs(ctx, names, now + timedelta(seconds=300), new_rows=3)
        profile.disable()
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out).sort_stats("cumulative")
        stats.print_stats(r"/(monitor|alerts)/", args.profile)
        print("\nwhere a run with new rows spends its time (cumulative, this project's functions):")
        print("\n".join(line for line in out.getvalue().splitlines() if "/" in line or "ncalls" in line))
        ctx.close()
        db.drop()


def baseline(args: argparse.Namespace, url: str) -> None:
    checkout = Path(args.baseline_checkout).resolve()
    env = {**os.environ, "PYTHONPATH": str(checkout), "MONITOR_DATABASE_URL": url}
    cmd = [sys.executable, str(checkout / "benchmarks" / "fleet.py"), "--models", str(args.models), "--profile", "0"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, cwd=checkout)
    head = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%h"], capture_output=True, text=True)
    print(f"baseline ({head.stdout.strip()}, the single-leader scheduler):")
    for line in done.stdout.splitlines():
        if "run" in line or "process" in line:
            print("   ", line)
    if done.returncode:
        print(done.stderr[-2000:])


# -- fleet: scheduler processes sharing the models -----------------------------------------------


class Fleet:
    """A database of its own with the models and their traffic, and scheduler processes on it."""

    def __init__(self, n_models: int, workdir: Path) -> None:
        self.workdir = workdir
        self.db = FreshDatabase(workdir)
        self.settings, self.url = self.db.settings, self.db.url
        self.ctx = open_context(self.settings, migrate=True)
        t = time.perf_counter()
        self.names = seed(self.ctx, n_models, datetime.now(UTC))
        print(f"{n_models} models seeded in {time.perf_counter() - t:.0f} s")
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._traffic, daemon=True)
        self._feeder.start()

    def _traffic(self) -> None:
        """A few predictions per model every schedule, stamped now: every run has new rows."""
        rng = np.random.default_rng(2)
        while not self._stop.is_set():
            started = time.monotonic()
            for name in self.names:
                if self._stop.is_set():
                    return
                batch = records(name, rng, 3, datetime.now(UTC) - timedelta(seconds=2), 0.5)
                ingestion.ingest_predictions(self.ctx, batch, model=name)
            self._stop.wait(max(0.0, SCHEDULE - (time.monotonic() - started)))

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        with self.ctx.engine.begin() as conn:
            result = conn.execute(text(query))
            return [tuple(r) for r in result] if result.returns_rows else []

    def start(self, n: int, tag: str) -> list[tuple[subprocess.Popen[bytes], Path]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")} | {
            "MONITOR_DATABASE_URL": self.url,
            "MONITOR_LOG_FORMAT": "text",
            "MONITOR_SCHEDULER_LEASE_SECONDS": str(LEASE),
            "MONITOR_DATA_DIR": str(self.workdir / "data"),
        }
        procs = []
        for i in range(n):
            log = self.workdir / f"{tag}-{i}.log"
            cmd = [sys.executable, "-m", "dashboards.cli", "scheduler", "--tick", str(TICK)]
            procs.append((subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT), log))
        return procs

    def close(self) -> None:
        self._stop.set()
        self._feeder.join(timeout=120)
        self.ctx.close()
        self.db.drop()


def runs_in(logs: list[Path], start: datetime, end: datetime) -> tuple[Counter[str], list[float]]:
    """Each model's runs in [start, end) and their durations, from the processes' logs."""
    per_model: Counter[str] = Counter()
    took = []
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            m = RUN_LINE.match(line)
            if not m:
                continue
            at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
            if start <= at < end:
                per_model[m.group(2)] += 1
                took.append(float(m.group(3)))
    return per_model, took


def warm_up(fleet: Fleet, since: datetime, timeout: float) -> float:
    """Until every model has run under these processes; returns how long that took."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        rows = fleet.sql(f"SELECT count(*) FROM model_leases WHERE last_run_at >= '{since.isoformat()}'")
        if rows[0][0] == len(fleet.names):
            return time.monotonic() - t
        time.sleep(2)
    return float("nan")


def measure(fleet: Fleet, n_procs: int, seconds: float, kill: bool) -> None:
    fleet.sql("TRUNCATE model_leases, scheduler_processes")
    started = datetime.now(UTC)
    procs = fleet.start(n_procs, f"p{n_procs}")
    try:
        warm = warm_up(fleet, started, timeout=1800)
        t0 = datetime.now(UTC)
        lags: list[float] = []
        while datetime.now(UTC) < t0 + timedelta(seconds=seconds):
            lags += [float(r[0]) for r in fleet.sql("SELECT lag_seconds FROM scheduler_processes")]
            time.sleep(TICK)
        per_model, took = runs_in([log for _, log in procs], t0, t0 + timedelta(seconds=seconds))
        expected = int(seconds // SCHEDULE)
        shares = [min(1.0, per_model.get(n, 0) / expected) for n in fleet.names]
        full = sum(per_model.get(n, 0) >= expected for n in fleet.names) / len(fleet.names)
        print(
            f"{len(fleet.names):>5} models, {n_procs} process{'es' if n_procs > 1 else '  '}: "
            f"{100 * statistics.mean(shares):5.1f} % of expected runs, {100 * full:5.1f} % of models with all "
            f"{expected}, lag median {statistics.median(lags):.1f} s / max {max(lags):.1f} s, one run median "
            f"{1000 * statistics.median(took):.0f} ms (warm-up {warm:.0f} s)"
        )
        if kill and n_procs > 1:
            killed(fleet, procs)
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def killed(fleet: Fleet, procs: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    """One process killed in the middle of a run: how long until its models run elsewhere, and
    the windows lost or duplicated."""
    victim, _ = procs[0]
    prefix = f"/{victim.pid}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # in the middle of a run
        busy = fleet.sql(
            f"SELECT count(*) FROM model_leases WHERE owner LIKE '%{prefix}%' AND running_since IS NOT NULL"
        )
        if busy[0][0]:
            break
        time.sleep(0.01)
    held = [r[0] for r in fleet.sql(f"SELECT model_id FROM model_leases WHERE owner LIKE '%{prefix}%'")]
    victim.kill()
    at = datetime.now(UTC)
    moved: dict[int, float] = {}
    while len(moved) < len(held) and datetime.now(UTC) < at + timedelta(seconds=10 * LEASE):
        rows = fleet.sql(
            "SELECT model_id, last_run_at FROM model_leases WHERE last_run_at > "
            f"'{at.isoformat()}' AND last_run_by NOT LIKE '%{prefix}%'"
        )
        for model_id, last in rows:
            if model_id in held and model_id not in moved:
                moved[int(model_id)] = (last - at).total_seconds()
        time.sleep(0.5)
    after = datetime.now(UTC)
    # every model run since the kill (the survivors' own ones too), then: a window never computed
    # again is lost
    while datetime.now(UTC) < at + timedelta(seconds=20 * LEASE):
        behind = fleet.sql(
            f"SELECT count(*) FROM model_leases WHERE last_run_at IS NULL OR last_run_at < '{at.isoformat()}'"
        )
        if not behind[0][0]:
            break
        time.sleep(1)
    for proc, _ in procs[1:]:  # stopped cleanly first: a run in flight has two sliding windows for a moment
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    # a model's newest window must be its last run's (the window ending at the minute after it)
    lost = fleet.sql(
        "SELECT count(*) FROM models m JOIN model_leases l ON l.model_id = m.id WHERE COALESCE((SELECT "
        "max(p.window_end) FROM metric_points p WHERE p.model_id = m.id AND p.metric = 'dataset_drift'), "
        "'-infinity') < date_trunc('minute', l.last_run_at)"
    )[0][0]
    doubled = fleet.sql(
        "SELECT count(*) FROM (SELECT model_id, window_end - window_start FROM metric_points "
        "WHERE metric = 'dataset_drift' AND labels = '{}'::jsonb AND window_end <> date_trunc('hour', window_end) "
        "GROUP BY 1, 2 HAVING count(*) > 1) d"
    )[0][0]
    times = sorted(moved.values())
    longest, median = (max(times), statistics.median(times)) if times else (float("nan"), float("nan"))
    print(
        f"      killed a process holding {len(held)} models in the middle of a run: all ran again in another "
        f"process within {longest:.1f} s (median {median:.1f} s, "
        f"lease {LEASE} s, tick {TICK} s); {len(held) - len(moved)} not yet after "
        f"{(after - at).total_seconds():.0f} s; windows lost {lost}, sliding windows doubled {doubled}"
    )


def fleet(args: argparse.Namespace) -> None:
    print(f"schedule {SCHEDULE} s, tick {TICK} s, lease {LEASE} s; measured over {args.seconds:.0f} s after a warm-up")
    for n_models in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            f = Fleet(n_models, Path(tmp))
            try:
                for n_procs in args.processes:
                    measure(f, n_procs, args.seconds, args.kill)
            finally:
                f.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode")
    c = sub.add_parser("cost", help="one model's run, in this process")
    c.add_argument("--models", type=int, default=60)
    c.add_argument("--profile", type=int, default=15, help="functions of a run to list")
    c.add_argument("--baseline-checkout", help="a checkout of an earlier version to measure first")
    f = sub.add_parser("fleet", help="scheduler processes sharing the models")
    f.add_argument("--models", type=int, nargs="+", default=[100, 1000, 3000])
    f.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    f.add_argument("--seconds", type=float, default=150.0)
    f.add_argument("--kill", action="store_true", help="kill one process mid-run (with two processes or more)")
    args = ap.parse_args()
    if args.mode == "fleet":
        fleet(args)
    else:
        if args.mode is None:
            args = c.parse_args([])
        cost(args)


if __name__ == "__main__":
    main()
