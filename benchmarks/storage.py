"""What a stored prediction costs: bytes per prediction in Postgres, one a row as ingestion
writes it and compacted into blocks as the log keeps its hours (``monitor.db.log_blocks``),
against the same rows as Parquet with zstd, in one run.

    python benchmarks/storage.py [--rows 100000] [--widths 20,200]

For each width, a model of that many features (four in five numerical, one in five categorical),
a score, a latency, a segment and 36-character prediction ids, with a reference of 2,000 rows;
``--rows`` predictions over one past day, ingested through the service in batches of 1,000, and
labels for one in five of them.
Then, after VACUUM ANALYZE, the bytes the model added to the prediction log (its day partition
and the blocks: tables, TOAST and every index), to ``prediction_keys`` and to ``labels`` (tables,
TOAST and indexes), per prediction; then the day is compacted and measured again. Beside them
the same predictions and labels written as one Parquet file with zstd (pyarrow's default level).
Ingestion rows/s, compaction rows/s and the rollup's rows/s of the same rows (over rows one a
row, then over blocks) are printed too, so that a smaller row is not bought with speed, and what
the keyed hash a value is stored as (a data subject's) costs per value. The same day goes
through a model that keeps summaries only too (``personal_data.rows``; labels awaited a day, a
sample of 1 % kept whole): its bytes while its predictions wait for labels, and after, when
VACUUM FULL has given back the space the deleted rows left (which a running service reuses for
new rows: the steady state's size).

Starts an embedded Postgres (pgserver) in a temporary directory, unless MONITOR_DATABASE_URL is
set (then its database must be empty of other data: sizes are measured as the tables' growth).
``--citus``: on a Citus coordinator with two workers instead (the build CI uses,
MONITOR_CITUS_HOME), the tables distributed; the sizes are the shards' on the workers.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import Settings
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.bootstrap import open_context
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra import citus
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.compaction import compact_log
from monitor.services.jobs.rollup import rollup

BATCH = 1_000
# the model that keeps summaries only: its predictions wait a day for labels, 1 % are kept whole
WAIT_HOURS = 24
SAMPLE_RATE = 0.01
LABEL_EVERY = 5
CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
# Every relation a prediction's rows live in: the log's partitions, the key table, the labels.
TABLES = ("predictions", "prediction_blocks", "prediction_keys", "labels", "label_revisions")


def spec(width: int, summaries_only: bool = False) -> dict[str, Any]:
    n_cat = width // 5
    kept: dict[str, Any] = {"rows": "summaries_only", "label_wait_hours": WAIT_HOURS, "sample_rate": SAMPLE_RATE}
    return {
        "name": f"storage-{width}" + ("-summaries" if summaries_only else ""),
        "personal_data": kept if summaries_only else {},
        "task": "binary_classification",
        "classes": ["0", "1"],
        "features": [{"name": f"n{i}", "type": "numerical"} for i in range(width - n_cat)]
        + [{"name": f"c{i}", "type": "categorical"} for i in range(n_cat)],
        "segments": ["region"],
    }


def records(width: int, n: int, day: datetime, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    n_cat = width // 5
    num = np.round(rng.normal(50, 15, size=(n, width - n_cat)), 3).tolist()
    cats = rng.choice(CATEGORIES, size=(n, n_cat)).tolist()
    scores = np.round(rng.uniform(size=n), 5).tolist()
    latency = np.round(rng.gamma(2.0, 6.0, n), 2).tolist()
    regions = rng.choice(["eu", "us", "apac"], n).tolist()
    step = 86_400 / n
    out = []
    for i in range(n):
        features: dict[str, Any] = {f"n{j}": v for j, v in enumerate(num[i])}
        features.update({f"c{j}": v for j, v in enumerate(cats[i])})
        out.append(
            {
                "prediction_id": str(uuid.UUID(int=int(rng.integers(2**63)) << 64 | i)),
                "timestamp": (day + timedelta(seconds=i * step)).isoformat(),
                "features": features,
                "prediction": "1" if scores[i] >= 0.5 else "0",
                "scores": scores[i],
                "latency_ms": latency[i],
                "segments": {"region": regions[i]},
            }
        )
    return out


def relation_bytes(ctx: ServiceContext, distributed: bool = False) -> dict[str, int]:
    """Each table's bytes with its TOAST and indexes, a partitioned table's partitions summed (on
    Citus, its shards' on the workers)."""
    size = "citus_total_relation_size" if distributed else "pg_total_relation_size"
    with ctx.engine.connect() as conn:
        return {
            table: int(
                conn.execute(
                    text(
                        f"SELECT CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum({size}(relid)), 0) "
                        f"FROM pg_partition_tree(c.oid) WHERE isleaf) ELSE {size}(c.oid) END "
                        "FROM pg_class c WHERE c.oid = CAST(:t AS regclass)"
                    ),
                    {"t": table},
                ).scalar_one()
            )
            for table in TABLES
        }


def vacuum(ctx: ServiceContext, full: bool = False) -> None:
    """VACUUM ANALYZE; ``full``: the tables written again without the space deleted rows left
    (a running service reuses it for new rows: the size a steady state keeps)."""
    with ctx.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM FULL ANALYZE" if full else "VACUUM ANALYZE")
        )


def parquet_bytes(rows: list[dict[str, Any]], labels: dict[str, str]) -> int:
    """The same predictions, with their labels, as one Parquet file (zstd)."""
    flat = pd.DataFrame([r["features"] for r in rows])
    flat.insert(0, "prediction_id", [r["prediction_id"] for r in rows])
    flat.insert(1, "ts", pd.to_datetime([r["timestamp"] for r in rows], utc=True, format="ISO8601"))
    flat["prediction"] = [r["prediction"] for r in rows]
    flat["score"] = [r["scores"] for r in rows]
    flat["latency_ms"] = [r["latency_ms"] for r in rows]
    flat["region"] = [r["segments"]["region"] for r in rows]
    flat["label"] = [labels.get(r["prediction_id"]) for r in rows]
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(flat, preserve_index=False), buf, compression="zstd")
    return buf.tell()


def _log_day(
    ctx: ServiceContext, width: int, n: int, day: datetime, summaries_only: bool = False
) -> tuple[str, list[dict[str, Any]], dict[str, str], float]:
    """A model registered with its reference, its day's predictions and labels ingested: its
    name, the rows, the labels and the seconds the predictions' ingestion took."""
    s = spec(width, summaries_only)
    model = s["name"]
    registry.register_model(ctx, ModelSpec.model_validate(s))
    # a reference first, as in production: ingestion summarises each batch against its edges
    reference = pd.DataFrame([{**r["features"], "prediction": r["prediction"]} for r in records(width, 2_000, day, 7)])
    upload_reference(ctx, model, reference.to_csv(index=False).encode(), TableFormat.csv)
    rows = records(width, n, day)
    t = time.perf_counter()
    for i in range(0, n, BATCH):
        result = ingestion.ingest_predictions(ctx, rows[i : i + BATCH], model=model)
        assert not result.errors, result.errors[:3]
    t_ingest = time.perf_counter() - t
    labels = {r["prediction_id"]: r["prediction"] for r in rows[::LABEL_EVERY]}
    label_records = [{"prediction_id": pid, "label": label} for pid, label in labels.items()]
    for i in range(0, len(label_records), BATCH):
        result_l = ingestion.ingest_labels(ctx, label_records[i : i + BATCH], model=model)
        assert not result_l.errors, result_l.errors[:3]
    return model, rows, labels, t_ingest


def _bytes(grown: dict[str, float]) -> dict[str, float]:
    return {
        "postgres B": sum(grown.values()),
        "log B": grown["predictions"] + grown["prediction_blocks"],
        "keys B": grown["prediction_keys"],
        "labels B": grown["labels"] + grown["label_revisions"],
    }


def measure_summaries_only(
    ctx: ServiceContext, width: int, n: int, day: datetime, distributed: bool = False
) -> list[dict[str, Any]]:
    """The same day through a model that keeps summaries only: its bytes a prediction while the
    predictions wait for labels, then once their wait is over (the sample, its keys and labels)."""
    vacuum(ctx, full=True)  # what the tables hold before, without the space others' rows left
    before = relation_bytes(ctx, distributed)
    _, rows, labels, t_ingest = _log_day(ctx, width, n, day, summaries_only=True)
    parquet = parquet_bytes(rows, labels) / n
    out = []
    for layout in (
        f"summaries only, in the {WAIT_HOURS} h label wait",
        f"summaries only, after (sample {SAMPLE_RATE:.0%})",
    ):
        speed: dict[str, float] = {"ingest rows/s": n / t_ingest}
        if layout.startswith("summaries only, after"):
            t = time.perf_counter()
            done = compact_log(ctx, now=day + timedelta(days=1, hours=WAIT_HOURS + 1), budget_seconds=3600)
            assert done.done and done.rows == n, done
            speed["compaction rows/s"] = n / (time.perf_counter() - t)
        vacuum(ctx, full=layout.startswith("summaries only, after"))
        after = relation_bytes(ctx, distributed)
        grown = {table: (after[table] - before[table]) / n for table in TABLES}
        out.append({"layout": layout, **_bytes(grown), "parquet B": parquet, **speed})
    return out


def measure(ctx: ServiceContext, width: int, n: int, day: datetime, distributed: bool = False) -> list[dict[str, Any]]:
    """The model's bytes a prediction and speeds: one a row, then compacted."""
    before = relation_bytes(ctx, distributed)
    model, rows, labels, t_ingest = _log_day(ctx, width, n, day)
    parquet = parquet_bytes(rows, labels) / n
    out = []
    for layout in ("one a row", "compacted"):
        speed: dict[str, float] = {"ingest rows/s": n / t_ingest}
        if layout == "compacted":
            t = time.perf_counter()
            done = compact_log(ctx, now=day + timedelta(days=2), budget_seconds=3600)
            assert done.done and done.rows == n, done
            speed["compaction rows/s"] = n / (time.perf_counter() - t)
        t = time.perf_counter()
        rollup(ctx, model, None, day, day + timedelta(days=1))
        speed["rollup rows/s"] = n / (time.perf_counter() - t)
        vacuum(ctx)
        after = relation_bytes(ctx, distributed)
        grown = {table: (after[table] - before[table]) / n for table in TABLES}
        out.append({"layout": layout, **_bytes(grown), "parquet B": parquet, **speed})
    return out


def keyed_hash_cost(n: int = 200_000) -> float:
    """Microseconds per value of the keyed hash a data subject is stored as (HMAC-SHA256 under a
    derived key, ``monitor.secret_box``): what hashing a value at ingestion costs."""
    from cryptography.fernet import Fernet

    from monitor.secret_box import SecretBox

    box = SecretBox([Fernet.generate_key()])
    values = [f"customer-{i:08d}" for i in range(n)]
    t = time.perf_counter()
    for v in values:
        box.subject_hash(v)
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--widths", default="20,200")
    p.add_argument("--citus", action="store_true", help="on a Citus coordinator with two workers")
    args = p.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    # a whole past day: one partition, closed, as most of a log's 90 days are
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    print(f"{args.rows:,} predictions a model over {day.date()}, labels for one in {LABEL_EVERY}\n")
    print(
        "| features | layout | Postgres B/prediction | log | keys | labels | Parquet zstd B | Postgres / Parquet "
        "| ingest rows/s | compaction rows/s | rollup rows/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cluster = None
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("MONITOR_DATABASE_URL")
        if args.citus:
            from tests.citus.cluster import CitusCluster

            cluster = CitusCluster(workers=2).start()
            url = cluster.create_database("storage")
        try:
            ctx = open_context(Settings(data_dir=Path(tmp), database_url=url), migrate=True)
            if args.citus:
                citus.distribute(ctx)
            for width in widths:
                measured = measure(ctx, width, args.rows, day, args.citus)
                measured += measure_summaries_only(ctx, width, args.rows, day, args.citus)
                for m in measured:
                    compaction = f"{m['compaction rows/s']:,.0f}" if "compaction rows/s" in m else ""
                    rollup_speed = f"{m['rollup rows/s']:,.0f}" if "rollup rows/s" in m else ""
                    print(
                        f"| {width} | {m['layout']} | {m['postgres B']:,.0f} | {m['log B']:,.0f} "
                        f"| {m['keys B']:,.0f} | {m['labels B']:,.0f} | {m['parquet B']:,.0f} "
                        f"| {m['postgres B'] / m['parquet B']:.1f}x | {m['ingest rows/s']:,.0f} | {compaction} "
                        f"| {rollup_speed} |",
                        flush=True,
                    )
            ctx.close()
        finally:
            if cluster is not None:
                cluster.stop()
    print(f"\nkeyed hash of a value (HMAC-SHA256, a data subject's): {keyed_hash_cost():.2f} µs")


if __name__ == "__main__":
    main()
