"""The prediction log's rows, in whichever of its two tables they are kept.

Ingestion writes each prediction as a row of ``predictions`` (partitioned by day). An hour that
ended long enough ago is compacted into ``prediction_blocks`` (``monitor.db.log_blocks``): its
rows become arrays, a block of up to a thousand rows per model version, and their features one
compressed text. Every read of the log goes through ``log_rows``: one subquery over both tables
with the same columns, so the SQL that filters, joins and groups predictions does exactly the
same over blocks; nothing above this module knows where a row is kept.

Each arm is filtered by the model inside it (on Citus each stays on the model's shard); the
conditions a query puts on the subquery (times, versions, ids) are pushed by Postgres into both
arms. ``in_window`` and ``at_time`` add what lets the blocks' index find a block by its time. A
query names the columns it reads: a block's other arrays are not decompressed for it (reading
all of them cost the rollup a fifth more time over blocks than over rows).

Features are the one column not read in SQL from a block: ``features`` is null there, and
``block_id`` and ``position`` say where they are (``log_blocks.FeatureTexts`` reads them).
"""

from __future__ import annotations

# What a row holds, as the block keeps it: an array a column (``ts`` is always read).
COLUMNS = (
    "prediction_id",
    "ts",
    "received_at",
    "prediction",
    "scores",
    "latency_ms",
    "segments",
    "request_id",
    "subject_hash",
    "attributions",
)


def log_rows(model: str, *columns: str) -> str:
    """A subquery (alias it) of one model's rows of the log, both tables; ``model``: the SQL of its
    id, a bind parameter. It has ``model_id``, ``model_version_id``, ``ts``, the block's
    ``first_ts`` and ``last_ts``, and ``columns`` (of ``COLUMNS``, and ``features``): only these
    are read from a block, each array its own compressed value (the rest is never decompressed)."""
    unknown = set(columns) - {*COLUMNS, "features"}
    assert not unknown, f"not a column of the log: {unknown}"
    arrays = ["ts", *(c for c in COLUMNS if c in columns and c != "ts")]
    hot = ["model_id", "model_version_id", *arrays, "ts AS first_ts", "ts AS last_ts"]
    block = ["b.model_id", "b.model_version_id", *(f"r.{c}" for c in arrays), "b.first_ts", "b.last_ts"]
    rows = f"unnest({', '.join(f'b.{c}' for c in arrays)}) AS r({', '.join(arrays)})"
    if "features" in columns:  # a block's are found by its id and the row's position
        hot += ["features", "NULL::bigint AS block_id", "NULL::bigint AS position"]
        block += ["NULL::jsonb", "b.id", "r.position"]
        rows = f"unnest({', '.join(f'b.{c}' for c in arrays)}) WITH ORDINALITY AS r({', '.join(arrays)}, position)"
    return f"""(
    SELECT {", ".join(hot)}
    FROM predictions WHERE model_id = {model}
    UNION ALL
    SELECT {", ".join(block)}
    FROM prediction_blocks b CROSS JOIN LATERAL {rows}
    WHERE b.model_id = {model}
)"""


def in_window(alias: str, start: str, end: str) -> str:
    """Rows of ``alias`` (a ``log_rows``) in [start, end). A block lies within one hour, so one
    that starts more than an hour before ``start`` ends before it: the index reads no older one."""
    return (
        f"{alias}.ts >= {start} AND {alias}.ts < {end} AND {alias}.first_ts < {end} "
        f"AND {alias}.first_ts > {start} - interval '1 hour' AND {alias}.last_ts >= {start}"
    )


def at_time(alias: str, ts: str) -> str:
    """Rows of ``alias`` (a ``log_rows``) at exactly ``ts``, found by the blocks' index."""
    return (
        f"{alias}.ts = {ts} AND {alias}.first_ts <= {ts} "
        f"AND {alias}.first_ts > {ts} - interval '1 hour' AND {alias}.last_ts >= {ts}"
    )
