"""Planner statistics for the log's tables that have none yet.

A day's partition of the log is created empty, days ahead, and begins to fill at midnight. Until
it is analysed the planner knows nothing of its rows (``reltuples`` is -1 and every condition gets
a default selectivity): a window of tens of thousands of predictions is estimated at one row, and
a join on such estimates can be planned as a nested loop that reads one side once per row of the
other. Autovacuum analyses a table only after its naptime and once it has finished with the tables
before it, which on a busy database is minutes after midnight. So the scheduler analyses the log's
tables that hold rows but have no statistics (``unanalysed``), at most once a minute; once they
have some, autovacuum keeps them current (it analyses again as a table grows by a tenth).

The window joins do not wait for this: they are full joins, planned only as hash or merge joins
(``quality_repo._JOINED``); the rest of what reads the log (look-ups, exports, reports, the
dashboard) gets its estimates from here.

On Citus the rows are in the workers' shards: a distributed table's statistics are its shards',
read with ``run_command_on_shards``, and an ``ANALYZE`` of it on the coordinator analyses them.
Functions take a connection and never commit.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Connection, text

from monitor.db import citus, partitions

# The tables the scheduler's windows and the API's look-ups read by prediction: the log's
# partitions (found through the parent) and the tables keyed by prediction id.
_BY_PREDICTION = ("prediction_keys", "labels")

_CANDIDATES = """
    SELECT c.oid::regclass::text FROM pg_class c
    WHERE c.relkind = 'r'
      AND (c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'predictions'::regclass)
           OR c.oid IN (SELECT to_regclass(t) FROM unnest(CAST(:tables AS text[])) AS t))
"""
# A table that holds rows (a page at least) and was never analysed nor vacuumed.
_LOCAL = _CANDIDATES + " AND c.reltuples < 0 AND pg_relation_size(c.oid) > 0 ORDER BY 1"
_SHARD_CHECK = "SELECT reltuples < 0 AND pg_relation_size(oid) > 0 FROM pg_class WHERE oid = '%s'::regclass"


def unanalysed(conn: Connection, today: date) -> list[str]:
    """The log's tables holding rows that the planner has no statistics for. On Citus, of the log's
    partitions only yesterday's and later ones are looked at (older ones began to fill a day ago
    and more: autovacuum had its time, and asking each of their shards is not free)."""
    params = {"tables": list(_BY_PREDICTION)}
    if not citus.is_distributed(conn):
        return list(conn.execute(text(_LOCAL), params).scalars())
    recent = partitions.partition_name(today - timedelta(days=1))
    out = []
    for table in conn.execute(text(_CANDIDATES + " ORDER BY 1"), params).scalars():
        if table.startswith(partitions.PARENT + "_") and table < recent:
            continue
        shards = conn.execute(
            text("SELECT bool_or(result = 't') FROM run_command_on_shards(CAST(:t AS regclass), :cmd)"),
            {"t": table, "cmd": _SHARD_CHECK},
        ).scalar()
        if shards:
            out.append(table)
    return out


def analyse(conn: Connection, tables: list[str]) -> None:
    """``ANALYZE`` each table (names as ``unanalysed`` gives them: quoted where they need it)."""
    for table in tables:
        conn.execute(text(f"ANALYZE {table}"))  # a name from pg_class, not from a client
