"""Every primary key of a per-model table leads with ``model_id``.

On Citus the per-model tables are distributed by ``model_id``, and a distributed table's
primary key must hold its distribution column. ``model_id`` follows from the columns these keys
already held (a version or a row id), so what is unique does not change, and a single Postgres
uses the new keys as well as the old.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# table -> (old key, new key)
KEYS = {
    "metric_points": ("id", "model_id, id"),
    "stale_hours": ("id", "model_id, id"),
    "bucket_summaries": (
        "model_version_id, reference_id, bucket_hours, bucket_start, column_name, segment",
        "model_id, model_version_id, reference_id, bucket_hours, bucket_start, column_name, segment",
    ),
    "error_stream_states": (
        "model_version_id, segment, method, hour",
        "model_id, model_version_id, segment, method, hour",
    ),
}
# the constraint names Postgres gave them (stale_hours kept the name of the table it was)
NAMES = {"stale_hours": "relabelled_hours_pkey"}


def _rekey(new: bool) -> None:
    for table, (old_key, new_key) in KEYS.items():
        old_name, new_name = NAMES.get(table, f"{table}_pkey"), f"{table}_pkey"
        drop, add, key = (old_name, new_name, new_key) if new else (new_name, old_name, old_key)
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {drop}, ADD CONSTRAINT {add} PRIMARY KEY ({key})")


def upgrade() -> None:
    _rekey(new=True)


def downgrade() -> None:
    _rekey(new=False)
