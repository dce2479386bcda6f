"""Export of a million-row window: rows per second and the API server's memory, streamed
Parquet and CSV, against the obvious way (pandas ``read_sql`` of the window, then ``to_parquet``).

    python benchmarks/export.py [--rows 1000000] [--rounds 2]

Setup (not timed): the demo model, ``--rows`` predictions in one hour generated inside Postgres,
labels for 30 % of them. Timed: ``GET /v1/models/{name}/export`` of that hour from a real API
server process (``monitor serve``) over loopback, the client writing the body to a file, for
each format; the server's peak resident memory (VmHWM) before and after; the file's size. The
baseline runs in a process of its own and reports its own peak: ``pandas.read_sql`` of the same
rows (features as JSON, decoded into columns with ``pandas.json_normalize``) and ``to_parquet``.

Uses ``MONITOR_DATABASE_URL`` when set, else an embedded Postgres in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
from sqlalchemy import text

from monitor import demo_data
from monitor.config import Settings
from monitor.domain.schema import ModelSpec
from monitor.services.bootstrap import open_context
from monitor.services.catalog import keys, registry
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.windows import HOUR, hour_floor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import bulk
from tests.servers import free_port, wait_ready

MODEL = demo_data.MODEL_NAME
LABELS_SQL = (
    "INSERT INTO labels (model_id, prediction_id, label, label_ts, received_at, first_received_at, revision, "
    "prediction_ts) SELECT model_id, prediction_id, to_jsonb(CASE WHEN random() < 0.3 THEN 'default' ELSE 'repaid' "
    "END), ts, ts, ts, 1, ts FROM predictions WHERE model_id = :m AND random() < 0.3"
)
BASELINE_SQL = (
    "SELECT p.prediction_id, p.ts, p.features, p.prediction, p.scores, p.latency_ms, p.segments, l.label "
    "FROM predictions p LEFT JOIN labels l ON l.model_id = p.model_id AND l.prediction_id = p.prediction_id "
    "WHERE p.model_id = %(m)s AND p.ts >= %(s)s AND p.ts < %(e)s ORDER BY p.ts, p.prediction_id"
)


def setup(ctx: ServiceContext, rows: int) -> tuple[datetime, datetime]:
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    vrow = registry.resolve_version(ctx, MODEL, None)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    with ctx.uow() as uow:
        for first in range(0, rows, 500_000):
            last = min(first + 500_000, rows) - 1
            bulk.demo_predictions(uow.conn, vrow.model_id, vrow.version_id, start, HOUR / rows, first, last)
        uow.conn.execute(text(LABELS_SQL), {"m": vrow.model_id})
        uow.commit()
        uow.conn.execute(text("ANALYZE"))
        uow.commit()  # statistics are kept only if their transaction commits
    return start, start + timedelta(hours=1)


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def baseline(url: str, start: str, end: str, out: str) -> None:
    """The obvious way, in this process: the window into pandas, then Parquet."""
    import pandas as pd
    import psycopg

    t = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        model_id = conn.execute("SELECT id FROM models WHERE name = %s", (MODEL,)).fetchone()[0]  # type: ignore[index]
        frame = pd.read_sql(BASELINE_SQL, conn, params={"m": model_id, "s": start, "e": end})  # type: ignore[arg-type]
    features = pd.json_normalize(frame.pop("features").tolist())
    frame = pd.concat([frame.drop(columns=["scores", "segments"]), features], axis=1)
    frame["prediction"] = frame["prediction"].astype(str)
    frame["label"] = frame["label"].astype(str)
    frame.to_parquet(out)
    seconds = time.perf_counter() - t
    print(f"{len(frame)} {seconds} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--baseline", nargs=4, help=argparse.SUPPRESS)  # the baseline's own process
    args = p.parse_args()
    if args.baseline:
        baseline(*args.baseline)
        return
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=os.environ.get("MONITOR_DATABASE_URL"))
        ctx = open_context(settings, migrate=True)
        url = ctx.engine.url.render_as_string(hide_password=False)
        t = time.perf_counter()
        start, end = setup(ctx, args.rows)
        print(f"setup: {args.rows:,} predictions in one hour, 30 % labelled ({time.perf_counter() - t:.0f} s)")
        key, _ = keys.create_key(ctx, "bench", [keys.Scope.data])
        port = free_port()
        env = {**os.environ, "MONITOR_DATABASE_URL": url, "MONITOR_DATA_DIR": tmp, "MONITOR_LOG_FORMAT": "text"}
        server = subprocess.Popen(
            [sys.executable, "-m", "dashboards.cli", "serve", "--port", str(port), "--log-level", "warning"], env=env
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, server)
            params = {"start": start.isoformat(), "end": end.isoformat()}
            print(f"{'way':38} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'MB':>6} {'peak memory':>22}")
            for fmt in ("parquet", "csv"):
                for _ in range(args.rounds):
                    before = peak_kib(server.pid)
                    path = Path(tmp) / f"export.{fmt}"
                    t = time.perf_counter()
                    headers = {"Authorization": f"Bearer {key}"}
                    with (
                        httpx.stream(
                            "GET",
                            f"{base}/v1/models/{MODEL}/export",
                            params=params | {"format": fmt},
                            headers=headers,
                            timeout=600,
                        ) as r,
                        path.open("wb") as f,
                    ):
                        r.raise_for_status()
                        for piece in r.iter_bytes():
                            f.write(piece)
                    seconds = time.perf_counter() - t
                    n = pq.read_metadata(path).num_rows if fmt == "parquet" else path.read_bytes().count(b"\n") - 1
                    grew = (peak_kib(server.pid) - before) / 1024
                    mb = path.stat().st_size / 1e6
                    print(
                        f"{'export, ' + fmt + ' (API server)':38} {n:>10,} {seconds:>8.1f} {n / seconds:>9,.0f} "
                        f"{mb:>6.0f} {f'server peak +{grew:.0f} MB':>22}",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait(30)
        out = Path(tmp) / "baseline.parquet"
        done = subprocess.run(
            [sys.executable, __file__, "--baseline", url, start.isoformat(), end.isoformat(), str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        n, seconds, peak = done.stdout.split()
        print(
            f"{'pandas read_sql + to_parquet (baseline)':38} {int(n):>10,} {float(seconds):>8.1f} "
            f"{int(n) / float(seconds):>9,.0f} {out.stat().st_size / 1e6:>6.0f} "
            f"{f'process peak {int(peak) / 1024:.0f} MB':>22}"
        )
        ctx.close()


if __name__ == "__main__":
    main()
