"""Sustained load on loopback: ``monitor serve`` in one process, a load generator in another,
for a fixed time, then the database checked against what was acknowledged.

    python benchmarks/load.py [--seconds 60] [--batch 100] [--concurrency 8] [--workers 2] [--kserve]

Starts an embedded Postgres (pgserver) in a temporary directory, unless MONITOR_DATABASE_URL is
set, and the API with ``--workers`` uvicorn workers. The generator (this script with
``--generate``, its own process) keeps ``--concurrency`` requests in flight for ``--seconds``
(closed loop): prediction batches of ``--batch`` records, as the SDK sends them, and, for one
request in five, a batch of labels for predictions already acknowledged. With ``--kserve`` it
sends what KServe's payload logger sends instead: for each inference a request CloudEvent
(``--batch`` V1 instances) and then its response; the logger blocks inference when its queue
fills, so these acknowledgements must be fast. It prints:
  1. sustained rates: requests/s, predictions/s and labels/s acknowledged;
  2. latency per request kind: p50, p90, p99 and max, from send to answer;
  3. every status seen (anything but 200 is a failure of the run);
  4. the check: every acknowledged prediction and label is in the database, exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path

import httpx
import numpy as np
import orjson
import psycopg

from monitor.config import Settings
from monitor.db.engine import database_url
from monitor.domain.kserve import REQUEST, RESPONSE
from monitor.services.bootstrap import open_context
from monitor.services.catalog import keys, registry

sys.path.insert(0, str(Path(__file__).parent))
from ingest import SPEC, make_records, start_api  # the ingestion benchmark's model and rows

LABEL_SHARE = 0.2  # one request in five is a label batch


def kserve_halves(pool: list[dict], i: int, batch: int) -> list[tuple[str, dict[str, str], bytes]]:
    """The two CloudEvents (binary mode) of the i-th inference: V1 instances in the schema's order."""
    names = [f["name"] for f in SPEC["features"]]
    rows = [pool[(i * batch + j) % len(pool)] for j in range(batch)]
    common = {
        "Ce-Id": f"ev-{i}",
        "Ce-Source": "http://bench-predictor.default/",
        "Ce-Specversion": "1.0",
        "Ce-Inferenceservicename": "bench",
        "Content-Type": "application/json",
    }
    request = {"instances": [[r["features"][n] for n in names] for r in rows]}
    response = {"predictions": [r["scores"] for r in rows]}
    return [
        ("kserve request", {**common, "Ce-Type": REQUEST}, orjson.dumps(request)),
        ("kserve response", {**common, "Ce-Type": RESPONSE}, orjson.dumps(response)),
    ]


async def generate(base: str, key: str, seconds: float, batch: int, concurrency: int, kserve: bool = False) -> dict:
    pool = make_records(20_000, seed=5)
    for r in pool:  # the SDK's records: no timestamp (the server's clock), an id of the caller's
        del r["timestamp"]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    # the payload logger sends no custom headers: its key goes in the URL
    params = {"api_key": key} if kserve else {}
    latencies: dict[str, list[float]] = (
        {"kserve request": [], "kserve response": []} if kserve else {"predictions": [], "labels": []}
    )
    statuses: Counter[str] = Counter()
    acked = {"predictions": 0, "labels": 0}
    labellable: deque[str] = deque(maxlen=200_000)
    counter = 0
    rng = np.random.default_rng(11)

    def next_request() -> tuple[str, str, bytes, list[str]]:
        nonlocal counter
        if labellable and rng.random() < LABEL_SHARE and len(labellable) >= batch:
            ids = [labellable.popleft() for _ in range(batch)]
            body = {
                "model": "bench",
                "records": [{"prediction_id": i, "label": "1" if i[-1] in "02468" else "0"} for i in ids],
            }
            return "labels", "/v1/labels", orjson.dumps(body), ids
        records = []
        ids = []
        for _ in range(batch):
            rec = dict(pool[counter % len(pool)])
            rec["prediction_id"] = f"load-{counter}"
            ids.append(rec["prediction_id"])
            records.append(rec)
            counter += 1
        return "predictions", "/v1/predictions", orjson.dumps({"model": "bench", "records": records}), ids

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={} if kserve else headers, params=params, timeout=60, limits=limits
    ) as client:
        await asyncio.gather(*(client.get("/healthz") for _ in range(concurrency)))  # open the connections
        gc.collect()
        gc.disable()  # the generator's own pauses must not be billed to the server
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()

        async def kserve_worker() -> None:
            nonlocal counter
            while time.perf_counter() < deadline:
                counter += 1
                for kind, headers, body in kserve_halves(pool, counter, batch):
                    t = time.perf_counter()
                    try:
                        r = await client.post("/v1/kserve", content=body, headers=headers)
                    except httpx.HTTPError as exc:
                        statuses[type(exc).__name__] += 1
                        break
                    latencies[kind].append((time.perf_counter() - t) * 1000)
                    statuses[str(r.status_code)] += 1
                    if r.status_code == 200:  # the second half: the pair stored
                        acked["predictions"] += int(r.json()["accepted"])

        async def worker() -> None:
            if kserve:
                return await kserve_worker()
            while time.perf_counter() < deadline:
                kind, path, body, ids = next_request()
                t = time.perf_counter()
                try:
                    r = await client.post(path, content=body)
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                    continue
                latencies[kind].append((time.perf_counter() - t) * 1000)
                statuses[str(r.status_code)] += 1
                if r.status_code == 200:
                    acked[kind] += int(r.json()["accepted"])
                    if kind == "predictions":
                        labellable.extend(ids)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        gc.enable()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "elapsed": elapsed,
        "latencies": latencies,
        "statuses": dict(statuses),
        "acked": acked,
        "generator_cpu_s": usage.ru_utime + usage.ru_stime,
    }


def summarise(result: dict, batch: int, concurrency: int, workers: int) -> None:
    elapsed = result["elapsed"]
    n_requests = sum(len(v) for v in result["latencies"].values())
    print(
        f"{elapsed:.0f} s, {concurrency} requests in flight, batches of {batch}, {workers} API worker(s): "
        f"{n_requests / elapsed:,.0f} requests/s, {result['acked']['predictions'] / elapsed:,.0f} predictions/s, "
        f"{result['acked']['labels'] / elapsed:,.0f} labels/s acknowledged"
    )
    for kind, values in result["latencies"].items():
        if values:
            p50, p90, p99 = np.percentile(values, [50, 90, 99])
            print(
                f"  {kind:<15} {len(values):>7,} requests  p50 {p50:6.1f} ms  p90 {p90:6.1f} ms  "
                f"p99 {p99:6.1f} ms  max {max(values):7.1f} ms"
            )
    print(f"  statuses: {result['statuses']}")
    cpu = result["generator_cpu_s"]
    print(f"  the generator itself used {cpu:.0f} CPU-seconds ({cpu / elapsed:.0%} of a core), on the same machine")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--kserve", action="store_true", help="KServe payload-logger CloudEvents instead of SDK batches")
    p.add_argument("--generate", metavar="BASE_URL", help=argparse.SUPPRESS)  # the generator process
    p.add_argument("--key", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.generate:
        result = asyncio.run(generate(args.generate, args.key, args.seconds, args.batch, args.concurrency, args.kserve))
        sys.stdout.write(orjson.dumps(result).decode())
        return

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=os.environ.get("MONITOR_DATABASE_URL"))
        url = database_url(settings)
        ctx = open_context(settings.model_copy(update={"database_url": url}), migrate=True)
        registry.register_model(ctx, registry.ModelSpec.model_validate(SPEC))
        key, _ = keys.create_key(ctx, "load", [keys.Scope.ingest])
        ctx.close()
        where = "embedded pgserver" if not os.environ.get("MONITOR_DATABASE_URL") else "MONITOR_DATABASE_URL"
        print(f"Postgres: {where}; predictions of {len(SPEC['features'])} features")

        server, base = start_api(url, args.workers)
        try:
            gen = subprocess.run(
                [
                    *(sys.executable, __file__, "--generate", base, "--key", key),
                    *("--seconds", str(args.seconds), "--batch", str(args.batch)),
                    *("--concurrency", str(args.concurrency)),
                    *(["--kserve"] if args.kserve else []),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            server.terminate()
            server.wait(60)
        result = orjson.loads(gen.stdout)
        summarise(result, args.batch, args.concurrency, args.workers)

        psql_url = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(psql_url) as conn:
            predictions, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT prediction_id) FROM predictions"
            ).fetchone()  # type: ignore[misc]
            labels = conn.execute("SELECT count(*) FROM labels").fetchone()[0]  # type: ignore[index]
        ok = predictions == distinct == result["acked"]["predictions"] and labels == result["acked"]["labels"]
        print(
            f"  database: {predictions:,} predictions ({distinct:,} distinct ids), {labels:,} labels: "
            + ("every acknowledged record stored exactly once" if ok else "MISMATCH with what was acknowledged")
        )
        failed = set(result["statuses"]) - {"200", "202"}  # 202: a KServe half waiting for its other
        if not ok or failed:
            sys.exit(1)


if __name__ == "__main__":
    main()
