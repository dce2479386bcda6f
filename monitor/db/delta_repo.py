"""Summaries of accepted batches (``summary_deltas``). Functions take a connection and never commit.

A delta holds every column's summary of one batch's rows of one minute and group, against one
reference. It is written in the transaction that stores the rows and taken (deleted and returned)
in the transaction that folds it into the hour's summary: counted once, whoever dies when.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, text

from monitor.metrics.log_summary import Parts

COLUMNS, QUALITY = "columns", "quality"  # a batch of predictions' column summaries, of labels' quality


@dataclass(frozen=True)
class Delta:
    version_id: int
    reference_id: int
    minute: datetime
    segment: str  # '' for all rows, 'column=value' for a tracked segment
    n_rows: int  # rows summarised: predictions ('columns'), labelled predictions ('quality')
    parts: dict[str, Parts]
    kind: str = COLUMNS


def encode_parts(parts: dict[str, Parts]) -> bytes:
    return orjson.dumps(
        {c: [st, None if ct is None else base64.b64encode(ct).decode()] for c, (st, ct) in parts.items()},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def decode_parts(blob: bytes) -> dict[str, Parts]:
    return {c: (st, None if ct is None else base64.b64decode(ct)) for c, (st, ct) in orjson.loads(blob).items()}


def write(raw: Any, model_id: int, deltas: Sequence[Delta]) -> None:
    """Append a batch's deltas, in one statement (arrays travel with it: on Citus it runs on the
    model's one shard)."""
    if not deltas:
        return
    raw.execute(
        """
        INSERT INTO summary_deltas (model_id, model_version_id, reference_id, minute, segment, kind, n_rows, parts)
        SELECT %s, d.v, d.r, d.m, d.s, d.k, d.n, d.p
        FROM unnest(%s::int[], %s::int[], %s::timestamptz[], %s::text[], %s::text[], %s::bigint[], %s::bytea[])
             AS d(v, r, m, s, k, n, p)
        """,
        (
            model_id,
            [d.version_id for d in deltas],
            [d.reference_id for d in deltas],
            [d.minute for d in deltas],
            [d.segment for d in deltas],
            [d.kind for d in deltas],
            [d.n_rows for d in deltas],
            [encode_parts(d.parts) for d in deltas],
        ),
        # in binary: a text array of bytea is every byte spelled as two hex digits, dumped by
        # psycopg and parsed by Postgres (a tenth of the API's time on a batch's summaries)
        binary=True,
    )


def take(conn: Connection, model_id: int, version_id: int, limit: int) -> list[Delta]:
    """Delete and return up to ``limit`` of a version's deltas, oldest first. Deltas committed
    after the ids were read are not seen, and stay for the next fold. (Ids first, then the
    delete by id: on Citus both statements go to the model's one shard.)"""
    ids = (
        conn.execute(
            text("SELECT id FROM summary_deltas WHERE model_id = :m AND model_version_id = :v ORDER BY id LIMIT :n"),
            {"m": model_id, "v": version_id, "n": limit},
        )
        .scalars()
        .all()
    )
    if not ids:
        return []
    rows = conn.execute(
        text(
            "DELETE FROM summary_deltas WHERE model_id = :m AND id = ANY(:ids) "
            "RETURNING id, reference_id, minute, segment, kind, n_rows, parts"
        ),
        {"m": model_id, "ids": list(ids)},
    ).all()
    return [
        Delta(version_id, r[1], r[2], r[3], int(r[5]), decode_parts(bytes(r[6])), r[4])
        for r in sorted(rows, key=lambda r: r[0])
    ]


def discard_returning(
    conn: Connection, model_id: int, version_id: int, start: datetime, end: datetime, kind: str
) -> list[Delta]:
    """``discard`` of one kind, returning the deltas dropped: what of them the log does not hold
    (features only summarised) is added to the summaries made from the log instead."""
    rows = conn.execute(
        text(
            "DELETE FROM summary_deltas WHERE model_id = :m AND model_version_id = :v "
            "AND minute >= :start AND minute < :end AND kind = :kind "
            "RETURNING id, reference_id, minute, segment, kind, n_rows, parts"
        ),
        {"m": model_id, "v": version_id, "start": start, "end": end, "kind": kind},
    ).all()
    return [
        Delta(version_id, r[1], r[2], r[3], int(r[5]), decode_parts(bytes(r[6])), r[4])
        for r in sorted(rows, key=lambda r: r[0])
    ]


def discard(
    conn: Connection, model_id: int, version_id: int, start: datetime, end: datetime, kinds: Sequence[str]
) -> int:
    """Drop a version's deltas of ``kinds`` of [start, end) that this transaction sees: what they
    summarise is being summarised from the log in the same (repeatable read) snapshot, which
    holds their rows."""
    return conn.execute(
        text(
            "DELETE FROM summary_deltas WHERE model_id = :m AND model_version_id = :v "
            "AND minute >= :start AND minute < :end AND kind = ANY(:kinds)"
        ),
        {"m": model_id, "v": version_id, "start": start, "end": end, "kinds": list(kinds)},
    ).rowcount
