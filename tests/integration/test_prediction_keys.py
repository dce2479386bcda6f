"""The key table holds each prediction id's digest: Python's and SQL's digests agree, and the
migration carries stored keys over, up and down."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from alembic import command
from sqlalchemy import text

from monitor.db import partitions
from monitor.db.migrate import alembic_config
from monitor.db.prediction_key import KEY_OF_SQL, key_of
from tests.integration.helpers import scratch_engine

# ids as clients send them: a UUID, an integer's text, accents and an emoji (several UTF-8
# bytes a character), quotes and backslashes, and the longest allowed
IDS = [
    "0b4c9d7e-6a55-4e3b-9d0e-2f1a6c8b7e21",
    "42",
    "été-✓-🙂",
    "a'b\"c\\d",
    "x" * 256,
]


def test_python_and_sql_give_every_id_the_same_key(database_url: str) -> None:
    with scratch_engine(database_url, "keys") as engine, engine.connect() as conn:
        sql = f"SELECT replace(CAST({KEY_OF_SQL.format('i')} AS text), '-', '') FROM unnest(CAST(:ids AS text[])) i"
        assert conn.execute(text(sql), {"ids": IDS}).scalars().all() == [key_of(i) for i in IDS]
    assert len({key_of(i) for i in IDS}) == len(IDS) and all(len(key_of(i)) == 32 for i in IDS)


def test_stored_keys_carry_over_down_and_up(database_url: str) -> None:
    """Down, each key becomes the id of its log row again (a key whose row is gone goes with
    it); up, each id becomes its digest, and a label still finds its prediction by it."""
    day = date(2026, 12, 5)
    ts = datetime(2026, 12, 5, 10, tzinfo=UTC)
    with scratch_engine(database_url, "keymig") as engine, engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        partitions.create_partitions(conn, [day])
        for i, pid in enumerate(IDS):
            at = ts + timedelta(seconds=i)
            conn.execute(
                text(
                    "INSERT INTO predictions (model_id, model_version_id, prediction_id, ts, features, prediction) "
                    "VALUES (1, 1, :p, :t, '{}', '\"a\"')"
                ),
                {"p": pid, "t": at},
            )
            conn.execute(
                text("INSERT INTO prediction_keys (model_id, key, ts) VALUES (1, CAST(:k AS uuid), :t)"),
                {"k": key_of(pid), "t": at},
            )
        # a key whose log row the retention dropped already (the keys follow once a day)
        conn.execute(
            text("INSERT INTO prediction_keys (model_id, key, ts) VALUES (1, CAST(:k AS uuid), :t)"),
            {"k": key_of("expired"), "t": ts - timedelta(days=1)},
        )
        command.downgrade(cfg, "0028")
        down = conn.execute(text("SELECT prediction_id, ts FROM prediction_keys ORDER BY ts")).all()
        assert [pid for pid, _ in down] == IDS
        assert [t for _, t in down] == [ts + timedelta(seconds=i) for i in range(len(IDS))]
        command.upgrade(cfg, "head")
        up = conn.execute(text("SELECT replace(CAST(key AS text), '-', '') FROM prediction_keys ORDER BY ts"))
        assert up.scalars().all() == [key_of(pid) for pid in IDS]
        columns = "SELECT attname FROM pg_attribute WHERE attrelid = 'prediction_keys'::regclass AND attnum > 0 "
        assert conn.execute(text(columns + "AND NOT attisdropped ORDER BY attnum")).scalars().all() == [
            "model_id",
            "ts",
            "key",
        ]
        # the id's bytes left the rows: the table was rewritten after the column was dropped
        assert conn.execute(text("SELECT avg(pg_column_size(k.*)) FROM prediction_keys k")).scalar_one() < 60
