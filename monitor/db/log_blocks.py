"""Compacted hours of the prediction log: blocks of rows, stored as arrays. Functions take a
connection and never commit.

A block holds up to ``BLOCK_ROWS`` rows of one model version within one hour, in (time, id)
order. Each column is an array: Postgres compresses each (pglz) out of line, and the schema's
names are no longer repeated in every row. The features, most of a row's bytes, are their JSON
texts (exactly as ``features::text`` gave them), one a line, compressed together with zstd, which
takes them to about a sixth of their size where pglz reaches a fifth (``benchmarks/storage.py``).
zstd comes with pyarrow, already a dependency.

Blocks of a thousand rows keep a single prediction's look-up (and a label finding its
prediction) to a small block's arrays; larger ones compressed little better (measured: 67.7
against 69.7 bytes of features a row at 10,000 rows and 1,000).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, text

from monitor.domain.row_sample import in_sample

BLOCK_ROWS = 1_000
# zstd's level: compaction runs once a row, off the request path; 9 compresses 0.19M rows/s of
# 20 features on one core here (level 3: 0.88M) to 12 % fewer bytes than 3.
ZSTD_LEVEL = 9
_CODEC = pa.Codec("zstd", compression_level=ZSTD_LEVEL)


def pack_features(texts: Sequence[str]) -> tuple[bytes, int]:
    """The features' JSON texts as one compressed value, and its size uncompressed. A JSON text
    holds no raw newline (jsonb writes one in a string as ``\\n``), so a newline separates them."""
    raw = "\n".join(texts).encode()
    return _CODEC.compress(raw, asbytes=True), len(raw)


def unpack_features(blob: bytes, size: int) -> list[str]:
    raw: bytes = _CODEC.decompress(blob, decompressed_size=size, asbytes=True)
    return raw.decode().split("\n")


class FeatureTexts:
    """The features of block rows, by (block id, position): each block's read and decompressed
    once, the last few kept (rows come block by block, or in time order across the few blocks
    of a moment)."""

    def __init__(self, conn: Connection, model_id: int, keep: int = 8) -> None:
        self._conn = conn
        self._model_id = model_id
        self._keep = keep
        self._blocks: OrderedDict[int, list[str]] = OrderedDict()

    def text(self, block_id: int, position: int) -> str:
        lines = self._blocks.get(block_id)
        if lines is None:
            lines = self._blocks[block_id] = block_features(self._conn, self._model_id, block_id)
            if len(self._blocks) > self._keep:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(block_id)
        return lines[position - 1]

    def fill(self, features: str | None, block_id: int | None, position: int | None) -> str:
        """A row's features text: its own (a row of ``predictions``), or its block's."""
        if features is not None:
            return features
        assert block_id is not None and position is not None, "a log row without features is a block's"
        return self.text(block_id, position)


def block_features(conn: Connection, model_id: int, block_id: int) -> list[str]:
    """A block's features' JSON texts, by position (the first is position 1's)."""
    blob, size = conn.execute(
        text("SELECT features, features_bytes FROM prediction_blocks WHERE model_id = :m AND id = :id"),
        {"m": model_id, "id": block_id},
    ).one()
    return unpack_features(blob, size)


def oldest_uncompacted(conn: Connection, model_id: int, before: datetime) -> datetime | None:
    """The time of the model's oldest row still one a row, if it is before ``before``."""
    oldest: datetime | None = conn.execute(
        text("SELECT min(ts) FROM predictions WHERE model_id = :m AND ts < :before"),
        {"m": model_id, "before": before},
    ).scalar_one()
    return oldest


# The next rows of an hour, taken out of ``predictions`` in one statement (exactly those read:
# a row stored meanwhile stays for the next compaction), in time order from where the last ones
# ended (``after``), so each take reads its rows off the (model_id, ts) index: ordered by version
# first, every take sorted the hour's remaining rows, quadratic in a busy hour. (ts, prediction_id)
# is unique within a model (prediction_keys).
_TAKE = """
WITH taken AS (
    DELETE FROM predictions p
    WHERE p.model_id = :m AND p.ts >= :start AND p.ts < :hour + interval '1 hour'
      AND (p.ts, p.prediction_id) IN (
          SELECT ts, prediction_id FROM predictions
          WHERE model_id = :m AND ts >= :start AND ts < :hour + interval '1 hour' {after}
          ORDER BY ts, prediction_id LIMIT :n)
    RETURNING p.*
)
SELECT model_version_id, prediction_id, ts, received_at, features::text, prediction::text, scores::text,
       latency_ms, segments::text, request_id, subject_hash, attributions::text
FROM taken ORDER BY model_version_id, ts, prediction_id
"""
_AFTER = "AND (ts, prediction_id) > (:after_ts, :after_id)"

_INSERT = """
INSERT INTO prediction_blocks (model_id, model_version_id, first_ts, last_ts, n_rows, prediction_id, ts,
                               received_at, prediction, scores, latency_ms, segments, request_id, subject_hash,
                               features, features_bytes, attributions)
VALUES (:m, :v, :first_ts, :last_ts, :n, :prediction_id, :ts, :received_at, CAST(:prediction AS jsonb[]),
        CAST(:scores AS jsonb[]), :latency_ms, CAST(:segments AS jsonb[]), :request_id, :subject_hash,
        :features, :features_bytes, CAST(:attributions AS jsonb[]))
"""


@dataclass(frozen=True, slots=True)
class Moved:
    rows: int  # taken out of ``predictions``: moved into blocks or dropped
    blocks: int
    last: tuple[datetime, str] | None  # the (time, id) the next take of the hour starts after
    dropped: list[str] = field(default_factory=list)  # ids of the rows taken and not kept


def compact_rows(
    conn: Connection,
    model_id: int,
    hour: datetime,
    n: int = BLOCK_ROWS,
    after: tuple[datetime, str] | None = None,
    samples: Mapping[int, bytes | None] | None = None,
) -> Moved:
    """Move up to ``n`` rows of the model's ``hour`` (those after ``after``, the last take's
    ``last``) from ``predictions`` into blocks, one a version they belong to. Fewer than ``n``
    taken: the hour is done. ``samples``: versions that keep summaries only, with their sample's
    threshold (``monitor.domain.row_sample``): of their rows only the sample is kept, the others'
    ids are returned (``dropped``) for their keys and labels to go with them."""
    params: dict[str, object] = {"m": model_id, "hour": hour, "start": hour, "n": n}
    if after is not None:
        params |= {"start": after[0], "after_ts": after[0], "after_id": after[1]}
    sql = _TAKE.format(after="" if after is None else _AFTER)
    rows = conn.execute(text(sql), params).all()
    blocks = 0
    dropped: list[str] = []
    for version_id, taken in groupby(rows, key=itemgetter(0)):  # rows come by version
        block = list(taken)
        if samples is not None and version_id in samples:
            threshold, kept = samples[version_id], []
            for r in block:  # each id's digest computed once
                if in_sample(r[1], threshold):
                    kept.append(r)
                else:
                    dropped.append(r[1])
            block = kept
        if block:
            _insert_block(conn, model_id, block)
            blocks += 1
    last = max(((r[2], r[1]) for r in rows), default=None)
    return Moved(len(rows), blocks, last, dropped)


def _insert_block(conn: Connection, model_id: int, rows: Sequence[Any]) -> None:
    conn.execute(text(_INSERT), {"m": model_id, "v": rows[0][0], **_block_values(rows)})


def _block_values(rows: Sequence[Any]) -> dict[str, Any]:
    """A block's columns from its rows, as ``_TAKE`` reads them: (version id, id, time, received
    at, features, prediction, scores, latency, segments, request id, subject hash, attributions;
    JSON as text)."""
    features, size = pack_features([r[4] for r in rows])

    def column(i: int) -> list[Any] | None:  # null when no row has a value
        values = [r[i] for r in rows]
        return values if any(v is not None for v in values) else None

    return {
        "first_ts": rows[0][2],
        "last_ts": rows[-1][2],
        "n": len(rows),
        "prediction_id": [r[1] for r in rows],
        "ts": [r[2] for r in rows],
        "received_at": [r[3] for r in rows],
        "prediction": [r[5] for r in rows],
        "scores": column(6),
        "latency_ms": column(7),
        "segments": column(8),
        "request_id": column(9),
        "subject_hash": column(10),
        "features": features,
        "features_bytes": size,
        "attributions": column(11),
    }


@dataclass(frozen=True, slots=True)
class BlockErasure:
    prediction_ids: list[str]
    blocks_rewritten: int


def erase_subject(conn: Connection, model_id: int, hashes: Sequence[bytes]) -> BlockErasure:
    """Take the rows whose subject hash is one of ``hashes`` out of the model's blocks: each block
    holding one is written again without them (or deleted, emptied). Returns the ids taken."""
    blocks = conn.execute(
        text(
            "SELECT id FROM prediction_blocks WHERE model_id = :m AND subject_hash && CAST(:h AS bytea[]) "
            "ORDER BY id FOR UPDATE"
        ),
        {"m": model_id, "h": list(hashes)},
    ).scalars()
    erased: list[str] = []
    rewritten = 0
    for block_id in list(blocks):
        erased.extend(_rewrite_without(conn, model_id, block_id, hashes))
        rewritten += 1
    return BlockErasure(erased, rewritten)


# A block's rows as ``_TAKE`` reads them (``_block_values``), to write it again without some.
_BLOCK_ROWS_SQL = """
SELECT b.model_version_id, r.prediction_id, r.ts, r.received_at, NULL::text, r.prediction::text, r.scores::text,
       r.latency_ms, r.segments::text, r.request_id, r.subject_hash, r.attributions::text
FROM prediction_blocks b
CROSS JOIN LATERAL unnest(b.prediction_id, b.ts, b.received_at, b.prediction, b.scores, b.latency_ms, b.segments,
                          b.request_id, b.subject_hash, b.attributions)
     WITH ORDINALITY AS r(prediction_id, ts, received_at, prediction, scores, latency_ms, segments, request_id,
                          subject_hash, attributions, position)
WHERE b.model_id = :m AND b.id = :id
ORDER BY r.position
"""
_UPDATE = """
UPDATE prediction_blocks
SET first_ts = :first_ts, last_ts = :last_ts, n_rows = :n, prediction_id = :prediction_id, ts = :ts,
    received_at = :received_at, prediction = CAST(:prediction AS jsonb[]), scores = CAST(:scores AS jsonb[]),
    latency_ms = :latency_ms, segments = CAST(:segments AS jsonb[]), request_id = :request_id,
    subject_hash = :subject_hash, features = :features, features_bytes = :features_bytes,
    attributions = CAST(:attributions AS jsonb[])
WHERE model_id = :m AND id = :id
"""


def _rewrite_without(conn: Connection, model_id: int, block_id: int, hashes: Sequence[bytes]) -> list[str]:
    """The block written again without the rows of ``hashes`` (read and written as values: an
    UPDATE from a subquery over the same block crashed the Citus coordinator)."""
    key = {"m": model_id, "id": block_id}
    rows = conn.execute(text(_BLOCK_ROWS_SQL), key).all()
    gone = set(hashes)
    erased = [r[1] for r in rows if r[10] is not None and bytes(r[10]) in gone]
    lines = block_features(conn, model_id, block_id)
    kept = [(*r[:4], lines[i], *r[5:]) for i, r in enumerate(rows) if r[10] is None or bytes(r[10]) not in gone]
    if not kept:
        conn.execute(text("DELETE FROM prediction_blocks WHERE model_id = :m AND id = :id"), key)
    else:
        conn.execute(text(_UPDATE), key | _block_values(kept))
    return erased


def delete_expired(conn: Connection, cutoff: datetime) -> int:
    """Blocks whose rows are all older than ``cutoff`` (the retention, with the log's days)."""
    return conn.execute(text("DELETE FROM prediction_blocks WHERE last_ts < :c"), {"c": cutoff}).rowcount


def database_time(conn: Connection) -> datetime:
    now: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    return now
