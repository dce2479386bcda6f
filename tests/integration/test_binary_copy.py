"""The log and its keys are COPY'd in binary format, built by hand (``monitor.db.copy.BinaryRows``):
every value comes back from Postgres exactly as it went in, whatever it holds; and the pool pings
a connection that sat idle before handing it out."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from monitor.db import log_repo, partitions
from monitor.db.prediction_key import KEY_OF_SQL
from monitor.domain.records import PredictionRow
from monitor.services.infra.context import ServiceContext

HOSTILE_TEXT = ["a\tb", "line\nbreak\r", "back\\slash", 'quo"te', "é日本語", "\\N", "x" * 256]
TIMES = [
    datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # before Postgres's epoch: a negative count
    datetime(2000, 1, 1, tzinfo=UTC),
    datetime(2026, 12, 7, 10, 11, 12, 123_456, tzinfo=UTC),
    datetime(2099, 6, 30, 0, 0, 0, 1, tzinfo=UTC),
]


def _rows() -> list[tuple[int, PredictionRow]]:
    rows = []
    for i, (pid, ts) in enumerate(zip(HOSTILE_TEXT, TIMES * 2, strict=False)):
        features: dict[str, Any] = {"n": [0.1, -2.5e10, 5e-324, 12345678901234][i % 4], "c": HOSTILE_TEXT[-1 - i]}
        rows.append(
            (
                7 + i % 2,
                PredictionRow(
                    pid,
                    ts,
                    features,
                    HOSTILE_TEXT[i] if i % 2 else 1.5,
                    None if i % 3 == 0 else {"yes": 0.25, "no\t": 0.75},
                    [None, 0.0, 1.5e9, 3.25][i % 4],
                    None if i % 2 else {"region": HOSTILE_TEXT[i]},
                    None if i % 2 == 0 else HOSTILE_TEXT[i],
                    None if i % 3 else f"subject-{i}",
                ),
            )
        )
    return rows


def test_every_value_comes_back_as_it_was_copied(ctx: ServiceContext) -> None:
    rows = _rows()
    with ctx.uow() as uow:
        partitions.create_partitions(uow.conn, sorted({partitions.day_of(r.ts) for _, r in rows}))
        log_repo.copy_prediction_keys(uow.raw, 3, rows)
        log_repo.copy_predictions(uow.raw, 3, rows, lambda subject: subject.encode()[::-1])
        uow.commit()
    with ctx.engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT model_id, model_version_id, prediction_id, ts, features, prediction, scores, latency_ms, "
                "segments, request_id, subject_hash FROM predictions ORDER BY prediction_id"
            )
        ).all()
        keys = conn.execute(
            text(
                f"SELECT k.model_id, k.ts, p.prediction_id FROM prediction_keys k "
                f"JOIN predictions p ON k.key = {KEY_OF_SQL.format('p.prediction_id')} ORDER BY p.prediction_id"
            )
        ).all()
    expected = sorted(rows, key=lambda vr: vr[1].prediction_id)
    assert len(stored) == len(rows) == len(keys)
    for (vid, r), got, key in zip(expected, stored, keys, strict=True):
        subject = None if r.subject is None else r.subject.encode()[::-1]
        assert tuple(got) == (
            3,
            vid,
            r.prediction_id,
            r.ts,
            r.features,
            r.prediction,
            r.scores,
            r.latency_ms,
            r.segments,
            r.request_id,
            subject,
        )
        assert tuple(key) == (3, r.ts, r.prediction_id)


def test_a_naive_time_is_refused_before_anything_is_sent(ctx: ServiceContext) -> None:
    row = PredictionRow("naive", datetime(2026, 1, 1), {}, 1.0, None, None, None)
    with ctx.uow() as uow, pytest.raises(TypeError):
        log_repo.copy_prediction_keys(uow.raw, 3, [(1, row)])


def test_a_connection_idle_past_the_ping_interval_is_pinged_and_replaced_when_dead(ctx: ServiceContext) -> None:
    with ctx.engine.connect() as other:
        with ctx.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        # back in the pool, it is killed there
        other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    time.sleep(1.1)
    pool: Any = ctx.engine.pool
    for _ in range(pool.checkedin()):  # every pooled connection drawn in turn: each answers
        with ctx.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
