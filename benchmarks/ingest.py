"""Ingestion speed: raw psycopg COPY against the running API over real HTTP, in one run.

    python benchmarks/ingest.py [--rows 200000] [--batch 1000] [--workers 1] [--concurrency 4]

Starts an embedded Postgres (pgserver) in a temporary directory, unless MONITOR_DATABASE_URL is set,
and ``monitor serve`` (uvicorn) in its own process. It prints:
  1. raw COPY rows/s: the same N rows JSON-encoded and COPY'd straight into the prediction log
     by psycopg, one transaction (the floor no service can beat);
  2. API rows/s: the same N rows POSTed as JSON batches over HTTP by concurrent clients, each
     validated, de-duplicated and committed before its 200;
  3. the ratio (target: the API reaches at least 60 % of raw COPY);
  4. single-record latency p50/p99 at a fixed 200 requests/s (after a 2 s warm-up), measured
     from each request's scheduled send time, so a stall is billed to every request it delays
     (target p99 < 25 ms). The load generator runs with its garbage collector paused, so that
     its own pauses are not billed to the server.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import orjson
import psycopg

from monitor.config import Settings
from monitor.db import partitions
from monitor.db.engine import database_url
from monitor.db.log_repo import copy_predictions
from monitor.domain.records import PredictionRow
from monitor.domain.tabular import TableFormat
from monitor.services.bootstrap import open_context
from monitor.services.catalog import keys, registry
from monitor.services.catalog.reference import upload_reference

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import free_port, wait_ready

N_NUM, N_CAT = 15, 5
SPEC = {
    "name": "bench",
    "task": "binary_classification",
    "classes": ["0", "1"],
    "features": [{"name": f"n{i}", "type": "numerical"} for i in range(N_NUM)]
    + [{"name": f"c{i}", "type": "categorical"} for i in range(N_CAT)],
    "segments": ["c0"],
}


def make_records(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, N_NUM)).round(6).tolist()
    cats = rng.choice(["alpha", "beta", "gamma", "delta"], size=(n, N_CAT)).tolist()
    base = datetime.now(UTC) - timedelta(minutes=30)
    out = []
    for i in range(n):
        features = {f"n{j}": num[i][j] for j in range(N_NUM)}
        features.update({f"c{j}": cats[i][j] for j in range(N_CAT)})
        out.append(
            {
                "prediction_id": f"r{seed}-{i}",
                "timestamp": (base + timedelta(microseconds=i)).isoformat(),
                "features": features,
                "prediction": "1" if num[i][0] > 0 else "0",
                "scores": round(abs(num[i][1]) % 1, 4),
                "latency_ms": round(abs(num[i][2]) * 10, 3),
            }
        )
    return out


def raw_copy(url: str, model_id: int, version_id: int, records: list[dict]) -> float:
    """The baseline: the rows COPY'd straight into the prediction log by the same COPY formatting the
    API uses (monitor.db.log_repo.copy_predictions), one transaction, no HTTP, validation or keys."""
    rows = [
        (
            version_id,
            PredictionRow(
                r["prediction_id"],
                datetime.fromisoformat(r["timestamp"]),
                r["features"],
                r["prediction"],
                {"1": r["scores"]},
                r["latency_ms"],
                {"c0": r["features"]["c0"]},
            ),
        )
        for r in records
    ]
    start = time.perf_counter()
    with psycopg.connect(url) as conn:
        copy_predictions(conn, model_id, rows)
        conn.commit()
    return len(records) / (time.perf_counter() - start)


def raw_copy_write_row(url: str, model_id: int, version_id: int, records: list[dict]) -> float:
    """The same through psycopg's Copy.write_row, the textbook way, for reference."""
    start = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY predictions (model_id, model_version_id, prediction_id, ts, features, prediction, "
            "scores, latency_ms, segments) FROM STDIN"
        ) as copy:
            for r in records:
                copy.write_row(
                    (
                        model_id,
                        version_id,
                        r["prediction_id"],
                        r["timestamp"],
                        orjson.dumps(r["features"]).decode(),
                        orjson.dumps(r["prediction"]).decode(),
                        orjson.dumps({"1": r["scores"]}).decode(),
                        r["latency_ms"],
                        orjson.dumps({"c0": r["features"]["c0"]}).decode(),
                    )
                )
        conn.commit()
    return len(records) / (time.perf_counter() - start)


def api_bulk(base: str, key: str, records: list[dict], batch: int, concurrency: int) -> float:
    bodies = [
        orjson.dumps({"model": "bench", "records": records[i : i + batch]}) for i in range(0, len(records), batch)
    ]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    local = threading.local()

    def send(body: bytes) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, headers=headers, timeout=120)
        r = local.client.post("/v1/predictions", content=body)
        r.raise_for_status()
        return int(r.json()["accepted"])

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        accepted = sum(pool.map(send, bodies))
    elapsed = time.perf_counter() - start
    assert accepted == len(records), f"accepted {accepted} of {len(records)}"
    return len(records) / elapsed


def single_record_latency(base: str, key: str, rate: float, seconds: float, seed: int = 99) -> list[float]:
    """Open-loop load: request i is due at t0 + i/rate whatever happened before; its latency counts
    from that due time, so a stall shows up in every request it delays (no coordinated omission)."""
    records = make_records(int(rate * seconds), seed=seed)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = [orjson.dumps({"model": "bench", **r}) for r in records]
    latencies: list[float] = [0.0] * len(bodies)
    threads = 16
    # Made before the clock starts: creating an httpx client costs tens of milliseconds (TLS context).
    client = httpx.Client(
        base_url=base,
        headers=headers,
        timeout=30,
        limits=httpx.Limits(max_connections=threads, max_keepalive_connections=threads),
    )
    # The load generator's own garbage collector must not pause it mid-run and bill the server.
    gc.collect()
    gc.disable()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: client.get("/healthz"), range(threads * 2)))  # open the connections
        t0 = time.perf_counter() + 0.2

        def send(i: int) -> None:
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            r = client.post("/v1/predictions", content=bodies[i])
            latencies[i] = (time.perf_counter() - scheduled) * 1000
            assert r.status_code == 200, r.text

        list(pool.map(send, range(len(bodies))))
    gc.enable()
    client.close()
    return latencies


def reference_csv(n: int = 5000) -> bytes:
    """A reference of the benchmark's model, its predictions as labels."""
    header = [f["name"] for f in SPEC["features"]] + ["prediction", "label"]
    lines = [",".join(header)]
    for r in make_records(n, seed=1):
        lines.append(",".join([*(str(r["features"][c]) for c in header[:-2]), r["prediction"], r["prediction"]]))
    return "\n".join(lines).encode()


def start_api(url: str, workers: int) -> tuple[subprocess.Popen, str]:
    """``monitor serve`` in its own process on a free port, ready; returns it and its base URL."""
    port = free_port()
    # no per-key rate limit: the benchmarks are one key sending as fast as the server takes it
    env = {**os.environ, "MONITOR_DATABASE_URL": url, "MONITOR_PORT": str(port), "MONITOR_RATE_LIMIT_PER_SECOND": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "serve", "--workers", str(workers), "--log-level", "warning"], env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
    except Exception:
        proc.kill()
        raise
    return proc, base


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--concurrency", type=int, default=4, help="concurrent HTTP clients for the bulk run")
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--seconds", type=float, default=15.0)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=os.environ.get("MONITOR_DATABASE_URL"))
        url = database_url(settings)
        settings = settings.model_copy(update={"database_url": url})
        ctx = open_context(settings, migrate=True)
        registry.register_model(ctx, registry.ModelSpec.model_validate(SPEC))
        vrow = registry.resolve_version(ctx, "bench", None)
        key, _ = keys.create_key(ctx, "bench", [keys.Scope.ingest])
        where = "embedded pgserver" if not os.environ.get("MONITOR_DATABASE_URL") else "MONITOR_DATABASE_URL"
        print(f"Postgres: {where}; {args.rows} rows of {N_NUM} numerical + {N_CAT} categorical features")

        records = make_records(args.rows)
        with ctx.uow() as uow:  # the raw COPY has no API to make the day's partition first
            days = {partitions.day_of(datetime.fromisoformat(r["timestamp"])) for r in records}
            partitions.create_partitions(uow.conn, sorted(days))
            uow.commit()
        gc.freeze()  # the big input lists are never garbage; keep the collector from walking them
        psql_url = url.replace("postgresql+psycopg://", "postgresql://")

        def truncate() -> None:
            with psycopg.connect(psql_url, autocommit=True) as conn:
                conn.execute("TRUNCATE predictions, prediction_keys, summary_deltas")
                conn.execute("VACUUM ANALYZE predictions")

        # The baseline is the best of two runs of each COPY method: the conservative comparison.
        rates: dict[str, float] = {}
        for _ in range(2):
            for name, method in (("write_row", raw_copy_write_row), ("preformatted", raw_copy)):
                rates[name] = max(rates.get(name, 0.0), method(psql_url, vrow.model_id, vrow.version_id, records))
                truncate()
        copy_rate = max(rates.values())
        print(
            f"raw COPY            {copy_rate:>10,.0f} rows/s  (best of psycopg write_row "
            f"{rates['write_row']:,.0f} and pre-formatted {rates['preformatted']:,.0f} rows/s, 2 runs each)"
        )

        proc, base = start_api(url, args.workers)
        try:
            api_rate = api_bulk(base, key, records, args.batch, args.concurrency)
            print(
                f"API over HTTP       {api_rate:>10,.0f} rows/s  (batches of {args.batch}, "
                f"{args.concurrency} concurrent clients, {args.workers} uvicorn worker(s))"
            )
            ratio = api_rate / copy_rate
            print(f"API / raw COPY      {ratio:>10.0%}       target >= 60 %  {'MET' if ratio >= 0.6 else 'MISSED'}")
            # the same with a reference: every batch is then summarised at ingestion too
            truncate()
            upload_reference(ctx, "bench", reference_csv(), TableFormat.csv)
            summarised = api_bulk(base, key, records, args.batch, args.concurrency)
            print(
                f"API, summarising   {summarised:>10,.0f} rows/s  (with a reference: each batch summarised "
                f"in its transaction; {summarised / api_rate:.0%} of the rate without, "
                f"{summarised / copy_rate:.0%} of raw COPY)"
            )
            single_record_latency(base, key, args.rate, 2.0, seed=98)  # warm-up: connections, pools, caches
            lat = single_record_latency(base, key, args.rate, args.seconds)
            q = statistics.quantiles(lat, n=100)
            print(
                f"single record at {args.rate:.0f} req/s for {args.seconds:.0f} s ({len(lat)} requests): "
                f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, max {max(lat):.1f} ms   "
                f"target p99 < 25 ms  {'MET' if q[98] < 25 else 'MISSED'}"
            )
        finally:
            proc.terminate()
            proc.wait(30)
            ctx.close()


if __name__ == "__main__":
    main()
