"""The capacity of one box: the whole stack as deployed, under a stepped load, for a fixed time per
step; the highest rate at which ingestion is acknowledged in time *and* the scheduler keeps up.

    python benchmarks/capacity.py [--rates 5000,10000,20000,30000,40000] [--step-seconds 90]
                                  [--batch 1000] [--workers 2] [--schedule 30] [--tick 5]

What runs, each in its own process, on one embedded Postgres (pgserver), unless
MONITOR_DATABASE_URL is set:
  * ``monitor serve --workers N`` (the ingestion API);
  * ``monitor scheduler``: the model's metrics every ``--schedule`` seconds (the hour's summaries,
    its windows ``1h`` and ``1d``), then its alert rules, then the deliveries of what they fire to a
    webhook receiver on loopback (this process); one rule always fires, so deliveries happen;
  * a load generator (this script with ``--generate``), one per step: SDK-style batches of
    ``--batch`` predictions sent open loop at the step's rate (scheduled times, at most
    ``--concurrency`` in flight; a request that waits for a free slot counts its wait as latency),
    and labels for one prediction in five, in batches of the same size.

For each step it prints: predictions and labels per second acknowledged; ingest latency p50 and
p99 from each request's scheduled time; the scheduler's lag (now minus the start of its newest
finished run: every row older than that is summarised and in its windows) at worst during the
step, and its runs' durations, the first of them with whether today's partition of the log had
planner statistics when the step began (on a fresh database, and after midnight until the
scheduler's statistics step, it has none: ``--across-midnight`` puts 00:00 UTC in the middle of
the load); each process's CPU (share of one core); and the database's growth.

The scheduler keeps up in a step when each of its runs finished within the schedule and its lag
stayed under two schedules and a tick (one run waiting, one running); ingestion keeps up when at
least 98 % of the step's target rate was acknowledged with no error. The last line names the
highest step where both held.

Each prediction is summarised once, at ingestion; a run folds what arrived since the run before,
so its cost follows the arrival rate, not the hour's size. The script still fits each run's time
against the rows it reports (now: the rows it folded) and prints the rate that fit allows.

    python benchmarks/capacity.py --run-cost 10000,500000,2000000 [--new-rows 20000]

instead times one run with that many predictions already in the current hour and ``--new-rows``
arrived since the run before, beside what a run cost before predictions were summarised at
ingestion: the hour summarised again from its first row.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import orjson
import psutil
import psycopg

from alerts.signing import new_secret
from monitor.config import Settings
from monitor.db import partitions
from monitor.db.engine import database_url
from monitor.demo_receivers import PrintingReceiver
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.tabular import TableFormat
from monitor.services.alerting import alert_config
from monitor.services.bootstrap import open_context
from monitor.services.catalog import keys, registry
from monitor.services.catalog.reference import upload_reference

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import free_port, wait_ready

sys.path.insert(0, str(Path(__file__).parent))
from ingest import SPEC, make_records, reference_csv  # the ingestion benchmark's model and rows

LABEL_SHARE = 0.2  # labels for one prediction in five
MODEL = SPEC["name"]
# the scheduler's line for each finished run of the model: its duration and rows summarised
RUN_LINE = re.compile(r"metrics for " + re.escape(MODEL) + r" in ([0-9.]+) s: RunReport\(.*?rows_summarised=(\d+)")


# -- the load generator (its own process, one per step) -----------------------------------------


def record_fragments(n: int) -> list[bytes]:
    """Each record's JSON without its id and without the opening brace: an id is put in front per
    request, so the generator spends its CPU on sending, not on encoding."""
    out = []
    for r in make_records(n, seed=5):
        del r["timestamp"], r["prediction_id"]  # the SDK's records: the server's clock, an id of the caller's
        out.append(orjson.dumps(r)[1:])
    return out


async def generate(base: str, key: str, rate: float, seconds: float, batch: int, concurrency: int, tag: str) -> dict:
    pool = record_fragments(20_000)
    # Prediction and label requests interleaved on one schedule, at the step's rates.
    labels_every = round(1 / LABEL_SHARE)  # after every k-th prediction request, a label request
    interval = batch / rate * labels_every / (labels_every + 1)
    latencies: dict[str, list[float]] = {"predictions": [], "labels": []}
    statuses: dict[str, int] = {}
    acked = {"predictions": 0, "labels": 0}
    labellable: deque[str] = deque()
    counter = 0
    in_flight = asyncio.Semaphore(concurrency)

    def prediction_body() -> tuple[bytes, list[str]]:
        nonlocal counter
        ids = [f"{tag}-{counter + j}" for j in range(batch)]
        parts = [b'{"prediction_id":"%s",%s' % (i.encode(), pool[(counter + j) % len(pool)]) for j, i in enumerate(ids)]
        counter += batch
        return b'{"model":"' + MODEL.encode() + b'","records":[' + b",".join(parts) + b"]}", ids

    def label_body() -> tuple[bytes, list[str]]:
        ids = [labellable.popleft() for _ in range(min(batch, len(labellable)))]
        recs = [{"prediction_id": i, "label": "1" if i[-1] in "02468" else "0"} for i in ids]
        return orjson.dumps({"model": MODEL, "records": recs}), ids

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120, limits=limits) as client:
        await asyncio.gather(*(client.get("/healthz") for _ in range(concurrency)))  # open the connections

        async def send(kind: str, body: bytes, ids: list[str], scheduled: float) -> None:
            try:
                r = await client.post(f"/v1/{kind}", content=body)
                status = str(r.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            finally:
                in_flight.release()
            latencies[kind].append((time.perf_counter() - scheduled) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            if status == "200":
                acked[kind] += int(r.json()["accepted"])
                if kind == "predictions":
                    labellable.extend(ids[: int(len(ids) * LABEL_SHARE)])

        gc.collect()
        gc.disable()  # the generator's own pauses must not be billed to the server
        sys.stdout.write("sending\n")  # the step starts now: the parent samples CPU and size
        sys.stdout.flush()
        cpu_at_start = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        tasks = set()
        started = time.perf_counter()
        k = 0
        while (scheduled := started + k * interval) < started + seconds:
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            await in_flight.acquire()  # open loop, bounded: a wait for a slot is billed to latency
            is_labels = k % (labels_every + 1) == labels_every and len(labellable) >= batch
            kind, (body, ids) = ("labels", label_body()) if is_labels else ("predictions", prediction_body())
            task = asyncio.create_task(send(kind, body, ids, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            k += 1
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        gc.enable()
    return {
        "seconds": elapsed,
        "latencies": latencies,
        "statuses": statuses,
        "acked": acked,
        "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu_at_start,
    }


# -- the stack ------------------------------------------------------------------------------------


def set_up(settings: Settings, schedule: int, receiver: PrintingReceiver) -> str:
    """The model (20 features, its reference, its schedule), a rule that fires and its receiver;
    returns an ingest key."""
    ctx = open_context(settings, migrate=True)
    try:
        registry.register_model(ctx, registry.ModelSpec.model_validate(SPEC))
        registry.set_monitoring(ctx, MODEL, MonitoringConfig(schedule_seconds=schedule, windows=["1h", "1d"]))
        upload_reference(ctx, MODEL, reference_csv(), TableFormat.csv)
        alert_config.put_receiver(
            ctx,
            {
                "name": "capacity-oncall",
                "kind": "webhook",
                "url": receiver.url,
                "secret": receiver.secret,
                "group_wait": "5s",
            },
        )
        alert_config.put_rule(
            ctx,
            {
                "name": "capacity-latency",
                "model": MODEL,
                "metric": "latency.p50",
                "window": "1h",
                "match": {"segment": ""},
                "condition": {"op": ">", "threshold": 0},  # always: the deliveries are part of the load
                "severity": "warning",
                "receivers": ["capacity-oncall"],
            },
        )
        key, _ = keys.create_key(ctx, "capacity", [keys.Scope.ingest])
        return key
    finally:
        ctx.close()


@dataclass
class Stack:
    api: subprocess.Popen
    scheduler: subprocess.Popen
    base: str
    scheduler_log: Path
    postmaster_pid: int | None
    log_offset: int = 0

    def processes(self) -> dict[str, psutil.Process]:
        out = {"API": psutil.Process(self.api.pid), "scheduler": psutil.Process(self.scheduler.pid)}
        if self.postmaster_pid is not None:
            out["Postgres"] = psutil.Process(self.postmaster_pid)
        return out

    def new_runs(self) -> list[tuple[float, int]]:
        """(seconds, rows summarised) of each scheduler run logged since the last call."""
        with self.scheduler_log.open("rb") as f:
            f.seek(self.log_offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self.log_offset += end
        return [(float(d), int(n)) for d, n in RUN_LINE.findall(chunk[:end].decode(errors="replace"))]


def start_stack(url: str, data_dir: Path, workers: int, tick: float, log_path: Path) -> Stack:
    port = free_port()
    env = {
        **os.environ,
        "MONITOR_DATABASE_URL": url,
        "MONITOR_DATA_DIR": str(data_dir),  # the secret key file, shared by API and scheduler
        "MONITOR_PORT": str(port),
        "MONITOR_RATE_LIMIT_PER_SECOND": "0",  # one key sending as fast as the server takes it
        "MONITOR_ALLOW_LOOPBACK_RECEIVERS": "true",
    }
    api = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "serve", "--workers", str(workers), "--log-level", "warning"], env=env
    )
    base = f"http://127.0.0.1:{port}"
    log = log_path.open("wb")
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "scheduler", "--tick", str(tick)], env=env, stderr=log, stdout=log
    )
    try:
        wait_ready(base, api)
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            # the backend's parent is the postmaster when Postgres runs on this machine (not when remote)
            parent = psutil.Process(pid).parent() if psutil.pid_exists(pid) else None
    except BaseException:
        for proc in (api, scheduler):
            proc.kill()
        raise
    return Stack(api, scheduler, base, log_path, parent.pid if parent else None)


def cpu_seconds(proc: psutil.Process) -> float:
    """CPU time of a process and of all its descendants, the live and the exited (Postgres starts
    and ends a backend per connection: counting only the live ones loses the others' time)."""
    try:
        t = proc.cpu_times()
        children = proc.children()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system + t.children_user + t.children_system + sum(cpu_seconds(c) for c in children)


def watch_lag(url: str, stop: threading.Event, worst: list[float]) -> None:
    """Every half second: now minus the start of the scheduler's newest finished run of the model."""
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.wait(0.5):
            row = conn.execute(
                "SELECT now() - last_success_at, last_duration_s FROM job_runs WHERE model = %s AND job = 'metrics'",
                (MODEL,),
            ).fetchone()
            if row is not None and row[0] is not None:
                worst[0] = max(worst[0], row[0].total_seconds() + float(row[1]))


def database_bytes(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]


def todays_partition_analysed(url: str) -> bool | None:
    """Whether the planner has statistics for the log's partition of today (UTC): False on a fresh
    database and after midnight until the scheduler's statistics step (or autovacuum) analyses it;
    None when the partition does not exist yet."""
    name = partitions.partition_name(datetime.now(UTC).date())
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT reltuples FROM pg_class WHERE relname = %s", (name,)).fetchone()
    return None if row is None else row[0] >= 0


def run_step(args: argparse.Namespace, stack: Stack, url: str, key: str, rate: float, index: int) -> dict:
    procs = stack.processes()
    stack.new_runs()  # runs finished before the step are the previous step's
    analysed = todays_partition_analysed(url)
    gen = subprocess.Popen(
        [
            *(sys.executable, __file__, "--generate", stack.base, "--key", key, "--tag", f"s{index}"),
            *("--rate", str(rate), "--step-seconds", str(args.step_seconds), "--batch", str(args.batch)),
            *("--concurrency", str(args.concurrency)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert gen.stdout is not None
    if gen.stdout.readline().strip() != "sending":  # its records are built: the step starts
        gen.kill()
        raise RuntimeError("the load generator failed to start")
    t0 = time.perf_counter()
    before = {name: cpu_seconds(p) for name, p in procs.items()}
    size_before = database_bytes(url)
    stop = threading.Event()
    worst_lag = [0.0]
    watcher = threading.Thread(target=watch_lag, args=(url, stop, worst_lag), daemon=True)
    watcher.start()
    out = gen.stdout.read()
    if gen.wait() != 0:
        raise RuntimeError("the load generator failed")
    wall = time.perf_counter() - t0
    after = {name: cpu_seconds(p) for name, p in procs.items()}
    stop.set()
    watcher.join()
    result = orjson.loads(out)
    cpu = {name: (after[name] - before[name]) / wall for name in procs}
    cpu["generator"] = result["cpu_s"] / wall
    return {
        "rate": rate,
        "result": result,
        "cpu": cpu,
        "growth": database_bytes(url) - size_before,
        "wall": wall,
        "lag": worst_lag[0],
        "runs": stack.new_runs(),
        "analysed": analysed,
    }


def report(step: dict, args: argparse.Namespace) -> tuple[bool, bool]:
    """Print a step's figures; returns whether ingestion and the scheduler kept up."""
    r, rate = step["result"], step["rate"]
    secs = r["seconds"]
    preds, labels = r["acked"]["predictions"] / secs, r["acked"]["labels"] / secs
    failed = {s: n for s, n in r["statuses"].items() if s != "200"}
    lat = r["latencies"]["predictions"] + r["latencies"]["labels"]
    p50, p99 = np.percentile(lat, [50, 99]) if lat else (float("nan"), float("nan"))
    runs: list[tuple[float, int]] = step["runs"]
    ingest_ok = not failed and preds >= 0.98 * rate
    sched_ok = bool(runs) and max(d for d, _ in runs) < args.schedule and step["lag"] <= 2 * args.schedule + args.tick
    cpu = ", ".join(f"{name} {share:.0%}" for name, share in step["cpu"].items())
    partition = {
        None: "today's partition of the log did not exist yet",
        False: "today's partition of the log had no planner statistics",
        True: "today's partition of the log had planner statistics",
    }
    first = f"{runs[0][0]:.1f} s for {runs[0][1]:,} rows" if runs else "-"
    print(
        f"target {rate:>7,.0f}/s: {preds:>8,.0f} predictions/s and {labels:>6,.0f} labels/s acknowledged "
        f"(p50 {p50:.0f} ms, p99 {p99:.0f} ms){'; errors ' + str(failed) if failed else ''}\n"
        f"    scheduler: {len(runs)} runs ({', '.join(f'{d:.1f} s for {n:,} rows' for d, n in runs) or '-'}), "
        f"worst lag {step['lag']:.0f} s -> {'keeps up' if sched_ok else 'FALLS BEHIND'}\n"
        f"    first run of the step: {first}; when the step began, {partition[step['analysed']]}\n"
        f"    CPU (share of one core): {cpu}; database +{step['growth'] / 1e6:,.0f} MB "
        f"({step['growth'] / step['wall'] * 3600 / 1e9:,.1f} GB/hour)",
        flush=True,
    )
    return ingest_ok, sched_ok


def whole_hour(runs: list[tuple[float, int]], schedules: list[int]) -> None:
    """A run's time against the rows it folded (what arrived since the run before), over every
    run: the rate the scheduler keeps up with, however full the hour."""
    runs = [(d, n) for d, n in runs if n > 0]
    if len(runs) < 2:
        print("too few scheduler runs to measure their cost per row")
        return
    seconds, rows = np.array([d for d, _ in runs]), np.array([n for _, n in runs], dtype=float)
    per_row = float(np.sum(seconds * rows) / np.sum(rows * rows))  # least squares through the origin
    each = seconds / rows * 1e6
    print(
        f"a scheduler run costs {per_row * 1e6:.1f} µs per row that arrived since the run before (least squares "
        f"over {len(runs)} runs; {each.min():.1f}-{each.max():.1f} µs run by run, windows and rules included); "
        f"a run every {', '.join(map(str, schedules))} s folds what arrived meanwhile, so it keeps up to "
        f"~{1 / per_row:,.0f} predictions/s whatever the hour already holds"
    )


def run_cost(settings: Settings, sizes: list[int], new: int, batch: int) -> None:
    """One scheduler run's cost when ``size`` predictions are already in the current hour and
    ``new`` arrived (a fifth labelled) since the run before; beside it, in the same run, what each
    run cost before predictions were summarised at ingestion: the hour summarised from its first
    row (``rollup`` of the hour, column and quality summaries). One process, no load beside it."""
    from monitor.services.ingest import ingestion
    from monitor.services.jobs.monitoring_run import run_model
    from monitor.services.jobs.rollup import rollup
    from monitor.services.jobs.windows import HOUR, hour_floor

    hour = hour_floor(datetime.now(UTC)) - HOUR  # the "current" hour, the clock pinned inside it
    pinned = hour + timedelta(minutes=58)
    ingestion._now = lambda: pinned  # type: ignore[assignment]
    pool = make_records(20_000, seed=9)
    ctx = open_context(settings, migrate=True)

    def send(model: str, start: int, n: int, minutes: float) -> None:
        for b in range(start, start + n, batch):
            records, labels = [], []
            for i in range(b, min(b + batch, start + n)):
                r = dict(pool[i % len(pool)])
                r["prediction_id"] = f"{model}-{i}"
                r["timestamp"] = (hour + timedelta(seconds=minutes * 60 * (i - start) / n)).isoformat()
                records.append(r)
                if i % 5 == 0:
                    labels.append({"prediction_id": r["prediction_id"], "label": r["prediction"]})
            body = orjson.dumps({"model": model, "records": records})
            assert not ingestion.ingest_prediction_body(ctx, body, "application/json").errors
            assert not ingestion.ingest_labels(ctx, labels, model=model).errors

    print(f"{'in the hour':>12} {'new rows':>9} {'one run now':>12} {'the hour from its first row (before)':>38}")
    try:
        for size in sizes:
            model = f"runcost-{size}"
            registry.register_model(ctx, registry.ModelSpec.model_validate(SPEC | {"name": model}))
            registry.set_monitoring(ctx, model, MonitoringConfig(windows=["1h", "1d"]))
            upload_reference(ctx, model, reference_csv(), TableFormat.csv)
            send(model, 0, size, 50)
            run_model(ctx, model, pinned)  # the first run: everything up to date
            send(model, size, new, 5)
            with ctx.uow() as uow:  # planner statistics, as autovacuum gives them in time (the old
                uow.conn.exec_driver_sql("ANALYZE predictions, labels")  # path's join needs them)
                uow.commit()
            t = time.perf_counter()
            report = run_model(ctx, model, pinned)
            now_s = time.perf_counter() - t
            t = time.perf_counter()
            rollup(ctx, model, None, hour, hour + HOUR)
            before = time.perf_counter() - t
            assert report.rows_summarised == new, report
            print(f"{size:>12,} {new:>9,} {now_s:>10.2f} s {before:>36.2f} s", flush=True)
    finally:
        ctx.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="5000,10000,20000,30000,40000", help="predictions/s per step")
    p.add_argument("--step-seconds", type=float, default=90.0)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight at most")
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--schedule", type=int, default=30, help="seconds between the model's metric runs")
    p.add_argument("--tick", type=float, default=5.0, help="the scheduler's tick")
    p.add_argument(
        "--across-hour",
        action="store_true",
        help="start the load so that its middle falls on the next hour boundary (waits for it)",
    )
    p.add_argument(
        "--across-midnight",
        action="store_true",
        help="start the load so that its middle falls on 00:00 UTC, when the log's new day begins (waits for it)",
    )
    p.add_argument("--drain-seconds", type=float, default=900, help="how long to wait for the scheduler after the load")
    p.add_argument(
        "--run-cost",
        metavar="SIZES",
        help="instead of the stepped load: one run's cost with these many predictions already in the hour",
    )
    p.add_argument("--new-rows", type=int, default=20_000, help="with --run-cost: rows arrived since the last run")
    p.add_argument("--generate", metavar="BASE_URL", help=argparse.SUPPRESS)  # a step's generator process
    p.add_argument("--key", help=argparse.SUPPRESS)
    p.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    p.add_argument("--tag", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.generate:
        out = asyncio.run(
            generate(args.generate, args.key, args.rate, args.step_seconds, args.batch, args.concurrency, args.tag)
        )
        sys.stdout.write(orjson.dumps(out).decode())
        return

    if args.run_cost:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=os.environ.get("MONITOR_DATABASE_URL"))
            settings = settings.model_copy(update={"database_url": database_url(settings)})
            run_cost(settings, [int(n) for n in args.run_cost.split(",")], args.new_rows, args.batch)
        return

    rates = [float(r) for r in args.rates.split(",")]
    received: list[dict] = []  # each signed message once, as the demo's receivers take them
    receiver = PrintingReceiver(new_secret(), received.append)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=os.environ.get("MONITOR_DATABASE_URL"))
        url = database_url(settings)
        settings = settings.model_copy(update={"database_url": url, "allow_loopback_receivers": True})
        key = set_up(settings, args.schedule, receiver)
        psql_url = url.replace("postgresql+psycopg://", "postgresql://")
        where = "embedded pgserver" if not os.environ.get("MONITOR_DATABASE_URL") else "MONITOR_DATABASE_URL"
        print(
            f"Postgres: {where}; {psutil.cpu_count()} cores; {len(SPEC['features'])} features; API with "
            f"{args.workers} workers; scheduler every {args.schedule} s (tick {args.tick:g} s), windows 1h and 1d; "
            f"batches of {args.batch}, {args.step_seconds:g} s a step; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            flush=True,
        )
        stack = start_stack(url, Path(tmp), args.workers, args.tick, Path(tmp) / "scheduler.log")
        best = None
        runs: list[tuple[float, int]] = []
        try:
            time.sleep(args.tick * 2)  # the scheduler's first (empty) run
            if args.across_hour or args.across_midnight:
                every = timedelta(days=1) if args.across_midnight else timedelta(hours=1)
                wait_for_boundary(args.step_seconds * len(rates), every)
            for i, rate in enumerate(rates):
                step = run_step(args, stack, psql_url, key, rate, i)
                runs += step["runs"]
                ingest_ok, sched_ok = report(step, args)
                if ingest_ok and sched_ok:
                    best = rate
            runs += drain(stack, args.drain_seconds)
            print(f"messages received (signature verified) by the webhook receiver: {len(received)}")
            print(
                f"highest step where ingestion and the scheduler kept up: {best:,.0f} predictions/s"
                if best
                else "no step where both kept up"
            )
            whole_hour(runs, sorted({args.schedule, MonitoringConfig().schedule_seconds}))
        finally:
            for proc in (stack.scheduler, stack.api):
                proc.terminate()
            for proc in (stack.scheduler, stack.api):
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:  # a scheduler run in flight finishes first; not here
                    proc.kill()
                    proc.wait()
        where_the_run_goes(settings)


def wait_for_boundary(load_seconds: float, every: timedelta) -> None:
    """Sleep until a load of ``load_seconds`` started now would have its middle on the next
    boundary of ``every`` (an hour, or a day: midnight UTC, when the log's new partition begins):
    the span that fills and the one that begins are both under load."""
    now = datetime.now(UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    boundary = epoch + ((now - epoch) // every + 1) * every
    if boundary - timedelta(seconds=load_seconds / 2) < now:
        boundary += every
    start = boundary - timedelta(seconds=load_seconds / 2)
    print(f"waiting until {start:%Y-%m-%d %H:%M:%S} UTC: the load spans {boundary:%Y-%m-%d %H:%M} UTC", flush=True)
    time.sleep((start - now).total_seconds())


def where_the_run_goes(settings: Settings) -> None:
    """The parts of one hour's summary, timed alone on the idle box (the stack stopped): the rows
    counted per group, the column summaries, the quality summaries of its labelled rows."""
    from monitor.db import summary_repo
    from monitor.domain.schema import schema_from_json
    from monitor.services.jobs import quality_job, summary_plan
    from monitor.services.jobs.windows import HOUR

    ctx = open_context(settings)
    try:
        vrow = registry.resolve_version(ctx, MODEL, None)
        schema = schema_from_json(vrow.schema)
        ref = summary_plan.load_reference(ctx, vrow)
        specs = {seg: summary_plan.column_specs(cols) for seg, cols in ref.columns.items()}
        groups = summary_repo.Groups({seg: summary_plan.parse_segment(seg, schema) for seg in ref.columns})
        edges = {seg: quality_job.residual_edges(ref.extras[seg]) for seg in ref.columns}
        with ctx.uow() as uow:
            hour = uow.conn.exec_driver_sql("SELECT date_trunc('hour', max(ts), 'UTC') FROM predictions").scalar_one()
            window = (uow.conn, vrow.model_id, vrow.version_id, hour, hour + HOUR)
            t = time.perf_counter()
            counts = summary_repo.count_rows(*window, groups)
            counted = time.perf_counter() - t
            summary_repo.summarise_columns(*window, specs, groups, counts)
            columns = time.perf_counter() - t - counted
            layout = summary_plan.score_layout(schema, ref)
            quality_job.summarise_quality(uow.conn, vrow, schema, edges, layout, hour, hour + HOUR, groups, counts)
            quality = time.perf_counter() - t - counted - columns
            uow.rollback()
        n = counts[""]
        print(
            f"one summary of the newest hour ({n:,} predictions, groups {', '.join(k or 'all' for k in groups.keys)}) "
            f"on the idle box: rows counted {counted / n * 1e6:.1f} µs, columns {columns / n * 1e6:.1f} µs, "
            f"quality of the labelled rows {quality / n * 1e6:.1f} µs per prediction"
        )
    finally:
        ctx.close()


def drain(stack: Stack, limit: float) -> list[tuple[float, int]]:
    """After the load: the scheduler's runs until one starts after the load ended and finishes;
    how long it took to catch up."""
    ended = time.perf_counter()
    runs: list[tuple[float, int]] = []
    while time.perf_counter() - ended < limit:
        time.sleep(1)
        new = stack.new_runs()
        runs += new
        caught_up = [d for d, _ in new if time.perf_counter() - d > ended]
        if caught_up:
            print(
                f"after the load: the scheduler finished {len(runs)} more run(s) "
                f"({', '.join(f'{d:.1f} s for {n:,} rows' for d, n in runs)}); "
                f"it had caught up {time.perf_counter() - ended:.0f} s after the load stopped"
            )
            return runs
    print(f"after the load: the scheduler had not caught up after {limit:.0f} s ({len(runs)} run(s) finished)")
    return runs


if __name__ == "__main__":
    main()
