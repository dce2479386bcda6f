"""Samples for reports, and the stored reports. Functions take a connection and never commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

from sqlalchemy import Connection, text

from monitor.db.engine import json_loads
from monitor.db.log_blocks import FeatureTexts
from monitor.db.log_rows import in_window, log_rows
from monitor.db.prediction_key import IN_SAMPLE_SQL


class ReportRow(TypedDict):
    """A stored report: what it covers and how much of it was sampled; its summary (and page)
    where one report is read."""

    id: int
    version: str
    kind: str
    window_start: datetime
    window_end: datetime
    sample_size: int
    window_rows: int
    reference_sample_size: int
    created_at: datetime
    summary: NotRequired[dict[str, Any]]
    html: NotRequired[str]


def _in_sample(threshold: bytes | None) -> str:
    """The condition on ``p`` of the rows kept whole of a model keeping summaries only (its
    sample's ``threshold``); none where every row is (None)."""
    return "" if threshold is None else "AND " + IN_SAMPLE_SQL.format("p.prediction_id", ":sample")


def window_rows(
    conn: Connection, model_id: int, version_id: int, start: datetime, end: datetime, sample: bytes | None = None
) -> int:
    """The window's predictions kept whole (``sample``: the threshold of a model's sample, where it
    keeps summaries only)."""
    return int(
        conn.execute(
            text(
                f"SELECT count(*) FROM {log_rows(':m', *(() if sample is None else ('prediction_id',)))} p "
                f"WHERE p.model_version_id = :v AND {in_window('p', ':s', ':e')} {_in_sample(sample)}"
            ),
            {"m": model_id, "v": version_id, "s": start, "e": end, "sample": sample},
        ).scalar_one()
    )


def sample_window(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    n: int,
    labelled_only: bool,
    sample: bytes | None = None,
) -> list[dict[str, Any]]:
    """A uniform random sample of the window's predictions kept whole (with their labels, when
    known); ``sample`` as in ``window_rows``."""
    join = "JOIN" if labelled_only else "LEFT JOIN"
    rows = conn.execute(
        text(
            f"""
            SELECT p.features::text AS features, p.block_id, p.position, p.prediction, p.scores, p.segments,
                   p.attributions, l.label
            FROM {log_rows(":m", "prediction_id", "features", "prediction", "scores", "segments", "attributions")} p
            {join} labels l ON l.model_id = p.model_id AND l.prediction_id = p.prediction_id
            WHERE p.model_version_id = :v AND {in_window("p", ":s", ":e")} {_in_sample(sample)}
            ORDER BY random() LIMIT :n
            """
        ),
        {"m": model_id, "v": version_id, "s": start, "e": end, "n": n, "sample": sample},
    ).mappings()
    texts = FeatureTexts(conn, model_id)
    sample_rows = []
    for row in rows.all():
        r = dict(row)
        r["features"] = json_loads(texts.fill(r["features"], r.pop("block_id"), r.pop("position")))
        sample_rows.append(r)
    return sample_rows


def sample_reference(conn: Connection, reference_id: int, n: int, labelled_only: bool) -> list[dict[str, Any]]:
    where = "AND label IS NOT NULL" if labelled_only else ""
    rows = conn.execute(
        text(
            f"SELECT features, prediction, scores, label FROM reference_rows WHERE reference_id = :r {where} "
            "ORDER BY random() LIMIT :n"
        ),
        {"r": reference_id, "n": n},
    ).mappings()
    return [dict(r) for r in rows]


def insert_report(conn: Connection, **values: Any) -> int:
    return int(
        conn.execute(
            text(
                """
            INSERT INTO reports (model_id, model_version_id, kind, window_start, window_end, sample_size,
                                 window_rows, reference_sample_size, summary, html)
            VALUES (:model_id, :model_version_id, :kind, :window_start, :window_end, :sample_size, :window_rows,
                    :reference_sample_size, CAST(:summary AS jsonb), :html)
            RETURNING id
            """
            ),
            values,
        ).scalar_one()
    )


def list_reports(conn: Connection, model_id: int) -> list[ReportRow]:
    rows = conn.execute(
        text(
            """
            SELECT r.id, v.version, r.kind, r.window_start, r.window_end, r.sample_size, r.window_rows,
                   r.reference_sample_size, r.created_at
            FROM reports r JOIN model_versions v ON v.id = r.model_version_id
            WHERE r.model_id = :m ORDER BY r.created_at DESC
            """
        ),
        {"m": model_id},
    ).mappings()
    return [cast(ReportRow, dict(r)) for r in rows]


def get_report(conn: Connection, model_id: int, report_id: int, with_html: bool) -> ReportRow | None:
    cols = "summary, html" if with_html else "summary"
    row = (
        conn.execute(
            text(
                f"""
            SELECT r.id, v.version, r.kind, r.window_start, r.window_end, r.sample_size, r.window_rows,
                   r.reference_sample_size, r.created_at, {cols}
            FROM reports r JOIN model_versions v ON v.id = r.model_version_id
            WHERE r.model_id = :m AND r.id = :id
            """
            ),
            {"m": model_id, "id": report_id},
        )
        .mappings()
        .first()
    )
    return cast(ReportRow, dict(row)) if row else None


# Advisory-lock namespace (the first key of pg_try_advisory_lock(int, int)) of report builds.
BUILD_LOCK = 0x7265_7074  # "rept"


def try_lock_builder(conn: Connection, key_id: int) -> bool:
    """Take the session lock that marks a report build for this key; False if another holds it.
    Session-level, held across the build's transactions, released by ``unlock_builder`` or when
    the connection ends (a process that dies mid-build frees it)."""
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:ns, :k)"), {"ns": BUILD_LOCK, "k": key_id}).scalar())


def unlock_builder(conn: Connection, key_id: int) -> None:
    conn.execute(text("SELECT pg_advisory_unlock(:ns, :k)"), {"ns": BUILD_LOCK, "k": key_id})


def delete_older(conn: Connection, cutoff: datetime) -> int:
    """Delete reports built before ``cutoff`` (through the model id that leads their index)."""
    sql = "DELETE FROM reports r USING models m WHERE r.model_id = m.id AND r.created_at < :c"
    return conn.execute(text(sql), {"c": cutoff}).rowcount
