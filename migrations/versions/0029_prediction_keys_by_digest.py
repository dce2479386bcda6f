"""The key table holds a 128-bit digest of each prediction id, not the id.

``prediction_keys.key``: the first 16 bytes of the SHA-256 of the id's UTF-8 bytes, as ``uuid``
(``monitor.db.prediction_key``). The id stays with its row in the log. A stored prediction's key
row and index entry shrink from 177 to about 112 bytes.

``labels_model_received`` is dropped: nothing reads labels by their arrival any more (the hours
to recompute are marked in ``stale_hours``), and every label paid for it, a relabel twice.

Existing keys are carried over both ways: up, each key computed from its id in place; down,
each id read back from the log row with that key (keys whose row the retention has dropped
already go with it, as the daily retention would have taken them). Each direction ends with a
rewrite of the table, so the dropped column's bytes do not stay in its rows.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def _key_of(expression: str) -> str:
    # monitor.db.prediction_key.KEY_OF_SQL as of this revision (a test holds them equal)
    bytes_of = rf"CAST(replace({expression}, '\', '\\') AS bytea)"  # its UTF-8 (the database's encoding)
    return f"CAST(encode(substring(sha256({bytes_of}) FROM 1 FOR 16), 'hex') AS uuid)"


def _run(statements: str) -> None:
    # one statement at a time: Citus sends the text of a DDL statement to its workers as it was
    # given, and a worker refuses several commands in one (prepared) statement
    for statement in statements.split(";\n"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(
        f"""
        ALTER TABLE prediction_keys ADD COLUMN key uuid;
        UPDATE prediction_keys SET key = {_key_of("prediction_id")};
        -- a USING that is not the column itself rewrites the table: without the dropped id's bytes
        ALTER TABLE prediction_keys DROP CONSTRAINT prediction_keys_pkey, DROP COLUMN prediction_id,
            ALTER COLUMN key TYPE uuid USING CAST(CAST(key AS text) AS uuid), ALTER COLUMN key SET NOT NULL;
        -- on its own: Citus adds a constraint to a distributed table only in an ALTER of its own
        ALTER TABLE prediction_keys ADD CONSTRAINT prediction_keys_pkey PRIMARY KEY (model_id, key);
        DROP INDEX labels_model_received;
        """
    )


def downgrade() -> None:
    _run(
        f"""
        CREATE INDEX labels_model_received ON labels (model_id, received_at);
        ALTER TABLE prediction_keys ADD COLUMN prediction_id text;
        UPDATE prediction_keys k SET prediction_id = p.prediction_id
        FROM predictions p
        WHERE p.model_id = k.model_id AND p.ts = k.ts AND {_key_of("p.prediction_id")} = k.key;
        DELETE FROM prediction_keys WHERE prediction_id IS NULL;
        ALTER TABLE prediction_keys DROP CONSTRAINT prediction_keys_pkey, DROP COLUMN key,
            ALTER COLUMN prediction_id TYPE text USING prediction_id || '', ALTER COLUMN prediction_id SET NOT NULL;
        ALTER TABLE prediction_keys ADD CONSTRAINT prediction_keys_pkey PRIMARY KEY (model_id, prediction_id);
        """
    )
