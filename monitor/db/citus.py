"""The distributed layout on Citus: which tables are spread over the workers, which are copied
to every node, and which stay on the coordinator.

- **Distributed by ``model_id``, co-located** (``DISTRIBUTED``): the prediction log and
  everything computed from it per model. A model's rows of every one of these tables sit in
  the same shard, so the label join, the rollup and the window jobs run on one worker each,
  and models spread over the workers.
- **Reference tables** (``REFERENCE``): the registry (models, versions, reference datasets and
  their summaries), small and read by nearly every query on the distributed tables, so
  joined on each worker without a network hop.
- **Reference rows** are distributed by ``reference_id`` on their own: only ever read a
  dataset at a time.
- **Coordinator tables** (everything else): the control plane (API keys, rules, receivers,
  silences, alerts and their history, the outbox and delivery log, job bookkeeping, dashboard
  sessions, reports). Small, written with row locks and ``SKIP LOCKED`` claims, and read by
  one process at a time: they keep exactly their single-Postgres behaviour on the
  coordinator, where every application connection goes. Advisory locks (leader election,
  migrations, merges) are taken there too: they are per node, and the coordinator is the one
  node every process shares.

Pure SQL over a connection; ``monitor.services.infra.citus`` runs it in one unit of work.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import Connection, text

# Tables distributed by model_id, in co-location order (the first is the group's anchor).
DISTRIBUTED = (
    "predictions",
    "prediction_keys",
    "prediction_blocks",
    "labels",
    "label_revisions",
    "ingest_stats",
    "schema_violations",
    "metric_points",
    "feature_digests",
    "stale_hours",
    "bucket_summaries",
    "error_stream_states",
    "summary_deltas",
)
REFERENCE = ("models", "model_versions", "reference_datasets", "reference_summaries")
BY_REFERENCE = ("reference_rows",)  # distributed by reference_id


# What the coordinator says when a worker it needs is down or unreachable: some of these come
# with an internal-error SQLSTATE, not a connection one, though nothing is wrong but the outage.
_NODE_AWAY = (
    "failure on connection marked as essential",
    "connection to the remote node",
    "could not establish any connections to the node",
    "connection not open",
    "server closed the connection unexpectedly",
)


def is_node_unavailable(exc: BaseException | None) -> bool:
    """A Citus node could not be reached: the same outage as a single Postgres being down, and
    to be answered the same way (503, retry later)."""
    return isinstance(exc, psycopg.Error) and exc.sqlstate == "XX000" and any(m in str(exc) for m in _NODE_AWAY)


def is_citus(conn: Connection) -> bool:
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")).scalar())


def is_distributed(conn: Connection) -> bool:
    """Whether the layout was applied here (the prediction log is distributed)."""
    if not is_citus(conn):
        return False
    sql = "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'predictions'::regclass)"
    return bool(conn.execute(text(sql)).scalar())


def worker_count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM citus_get_active_worker_nodes()")).scalar_one())


def placements(conn: Connection) -> dict[str, str]:
    """What Citus holds of each table: 'distributed', 'reference', or 'local' (a coordinator
    table Citus knows); a plain coordinator table is absent. Partitions go with their parent."""
    rows = conn.execute(
        text(
            "SELECT d.logicalrelid::regclass::text, d.partmethod, d.repmodel FROM pg_dist_partition d "
            "JOIN pg_class c ON c.oid = d.logicalrelid WHERE NOT c.relispartition"
        )
    ).all()

    # hash-distributed; or not distributed and replicated to every node (a reference table) or
    # kept on the coordinator (a table Citus manages there because it references one)
    def kind(method: str, rep: str) -> str:
        return "distributed" if method == "h" else "reference" if rep == "t" else "local"

    return {t: kind(method, rep) for t, method, rep in rows}


def distribute(conn: Connection) -> list[str]:
    """Turn the schema into the distributed layout; what was already in place is left as it is,
    so running it again (after a migration added tables) does only what is new. Returns the
    statements it ran."""
    done = placements(conn)
    ran: list[str] = []

    def run(sql: str) -> None:
        conn.execute(text(sql))
        ran.append(sql)

    for table in REFERENCE:
        if done.get(table) != "reference":
            run(f"SELECT create_reference_table('{table}')")
    for table in DISTRIBUTED:
        if table not in done:
            run(f"SELECT create_distributed_table('{table}', 'model_id', colocate_with => '{_anchor(table)}')")
    for table in BY_REFERENCE:
        if table not in done:
            run(f"SELECT create_distributed_table('{table}', 'reference_id', colocate_with => 'none')")
    return ran


def _anchor(table: str) -> str:
    return "default" if table == DISTRIBUTED[0] else DISTRIBUTED[0]


def model_shards(conn: Connection, model_ids: list[int]) -> dict[int, str]:
    """Which worker (host:port) holds each model's rows of the prediction log."""
    out = {}
    for model_id in model_ids:
        row = conn.execute(
            text(
                "SELECT nodename || ':' || nodeport FROM citus_shards s "
                "WHERE s.table_name = 'predictions'::regclass "
                "AND s.shardid = get_shard_id_for_distribution_column('predictions', :m)"
            ),
            {"m": model_id},
        ).scalar_one()
        out[model_id] = str(row)
    return out
