"""Scheduler scale-out: the fleet's models leased to scheduler processes.

``scheduler_processes``: each running scheduler process, its heartbeat (a process whose
heartbeat is older than its lease is taken for dead), how many models it holds and how far it
runs behind. ``model_leases``: one row per model: the process holding it and until when (a lease
that is not renewed lapses, and another process takes the model over), when the model is next due
(shared, so that a hand-over neither runs a model early nor skips a run), since when a run is in
progress (a run its process died in is due again at once for whoever takes the model over), and its
last run.

Both stay on the coordinator under Citus, with the rest of the control plane.

Down: both tables are dropped; the schedulers fall back to what they ran before.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07
"""

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE scheduler_processes (
            process_id     text PRIMARY KEY,
            host           text NOT NULL,
            pid            integer NOT NULL,
            started_at     timestamptz NOT NULL,
            heartbeat_at   timestamptz NOT NULL,
            lease_seconds  double precision NOT NULL,
            leader         boolean NOT NULL DEFAULT false,
            models_held    integer NOT NULL DEFAULT 0,
            lag_seconds    double precision NOT NULL DEFAULT 0,
            runs           bigint NOT NULL DEFAULT 0
        )
        """
    )
    op.execute(
        """
        CREATE TABLE model_leases (
            model_id          integer PRIMARY KEY,
            owner             text,
            expires_at        timestamptz,
            due_at            timestamptz NOT NULL,
            running_since     timestamptz,
            last_run_at       timestamptz,
            last_run_seconds  double precision,
            last_run_by       text
        )
        """
    )
    op.execute("CREATE INDEX model_leases_owner ON model_leases (owner, due_at)")


def downgrade() -> None:
    op.execute("DROP TABLE model_leases")
    op.execute("DROP TABLE scheduler_processes")
