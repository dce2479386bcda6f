"""What a midnight costs: the scheduler's first run on a day's partition the planner has no
statistics for yet, as every deployment meets at 00:00 UTC and every fresh database at its start.

    python benchmarks/midnight.py [--rows 30000] [--labelled 0.2]

On a new database (MONITOR_DATABASE_URL's server, else an embedded pgserver), with autovacuum
off for the log's tables (autovacuum that has not reached the new partition yet), three demo
models each log ``--rows`` predictions in the hour before the current one, ``--labelled`` of them
labelled. Timed, in this order, each the model's first run (its hour's summaries, its 1 h and
1 d windows, quality against the labels):

  * without statistics, the window's predictions joined to their labels by an inner join (what
    every run did before ``quality_repo._JOINED`` became a full join: the baseline);
  * without statistics, as the scheduler runs now (a full join: never a nested loop);
  * the scheduler's statistics step (``analyse_new_tables``: the tables holding rows with none);
  * with statistics.

The first run of the day is then the second line plus the third, at most a minute apart.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import Settings
from monitor.db import quality_repo
from monitor.db.embedded import start_embedded
from monitor.services.bootstrap import open_context
from monitor.services.jobs.maintenance import analyse_new_tables, run_maintenance
from monitor.services.jobs.monitoring_run import run_model
from monitor.services.jobs.windows import hour_floor
from tests.integration.demo_model import MODEL, label, register_demo, traffic  # the tests' demo traffic

# The window's join as it was: an inner join, which the planner may make a nested loop.
INNER_JOINED = """
    SELECT g.grp, date_trunc('minute', p.ts) AS minute, p.ts, p.prediction #>> '{{}}' AS yhat,
           l.label #>> '{{}}' AS y, p.scores
    FROM predictions p
    JOIN labels l ON l.model_id = p.model_id AND l.prediction_id = p.prediction_id
         AND l.prediction_ts >= :start AND l.prediction_ts < :end
    {groups}
    WHERE p.model_id = :model_id AND p.model_version_id = :version_id AND p.ts >= :start AND p.ts < :end
          AND g.grp = ANY(CAST(:groups AS text[]))
"""


def database(url: str | None, tmp: Path) -> str:
    """A new database on the server (MONITOR_DATABASE_URL's, else an embedded one)."""
    server = url or start_embedded(tmp / "pg")
    base = make_url(server.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"midnight_{uuid.uuid4().hex[:8]}"
    admin = base.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


def drop(url: str) -> None:
    u = make_url(url)
    admin = u.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{u.database}" WITH (FORCE)')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=30_000)
    p.add_argument("--labelled", type=float, default=0.2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = database(os.environ.get("MONITOR_DATABASE_URL"), Path(tmp))
        ctx = open_context(Settings(data_dir=Path(tmp), database_url=url), migrate=True)
        with ctx.engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
        now = datetime.now(UTC)
        start = hour_floor(now) - timedelta(hours=1)
        models = {"before": f"{MODEL}-before", "now": f"{MODEL}-now", "analysed": f"{MODEL}-analysed"}
        for model in models.values():
            register_demo(ctx, model=model)
        run_maintenance(ctx, now)  # the days' partitions, empty
        with ctx.engine.begin() as conn:
            children = "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'predictions'::regclass"
            for table in [*conn.execute(text(children)).scalars(), "labels", "prediction_keys"]:
                conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = off)"))
        t = time.perf_counter()
        for i, model in enumerate(models.values()):
            frame = traffic(ctx, start, args.rows, f"m{i}-", seed=i, model=model)
            label(ctx, frame.iloc[: int(args.rows * args.labelled)], model=model)
        print(f"Postgres {version}; 3 models x {args.rows:,} predictions, {args.labelled:.0%} labelled, in the hour")
        print(f"logged in {time.perf_counter() - t:.1f} s; autovacuum off for the log's tables\n")

        def timed(name: str, model: str) -> None:
            t = time.perf_counter()
            run_model(ctx, model, now)
            print(f"  {name:<58} {time.perf_counter() - t:8.2f} s", flush=True)

        print("the model's first run of the day                              seconds")
        with _patched(INNER_JOINED):
            timed("no statistics, an inner join (before)", models["before"])
        timed("no statistics, a full join (now)", models["now"])
        t = time.perf_counter()
        tables = analyse_new_tables(ctx, now)
        print(f"  {f'statistics step: ANALYZE of {len(tables)} tables':<58} {time.perf_counter() - t:8.2f} s")
        print(f"    ({', '.join(tables)})")
        timed("with statistics", models["analysed"])
        ctx.close()
        drop(url)


@contextlib.contextmanager
def _patched(joined: str) -> Iterator[None]:
    """The quality summaries' window join replaced by ``joined``."""
    original = quality_repo._JOINED
    quality_repo._JOINED = joined
    try:
        yield
    finally:
        quality_repo._JOINED = original


if __name__ == "__main__":
    main()
