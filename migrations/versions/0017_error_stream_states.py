"""The error-stream detectors' state, per model version, segment, detector and hour.

The concept-drift detector reads the labelled predictions' errors minute by minute and keeps its
state across windows and scheduler runs. The state after each hour is kept, so that a label for
an hour already read replays the stream from that hour only.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE error_stream_states (
            model_id integer NOT NULL REFERENCES models(id),
            model_version_id integer NOT NULL REFERENCES model_versions(id),
            segment text NOT NULL,
            method text NOT NULL,
            hour timestamptz NOT NULL,
            state jsonb NOT NULL,
            detections jsonb NOT NULL,
            rows bigint NOT NULL,
            error_rate double precision NOT NULL,
            PRIMARY KEY (model_version_id, segment, method, hour)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE error_stream_states")
