"""Reference datasets. Functions take a connection and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select, update

from monitor.db.copy import copy_rows, dumps
from monitor.db.tables import model_versions, reference_datasets, reference_summaries
from monitor.domain.deployment import Deployment
from monitor.domain.records import ReferenceRow

REFERENCE_COLUMNS = (
    "reference_id",
    "row_idx",
    "model_id",
    "features",
    "prediction",
    "scores",
    "label",
    "segments",
    "attributions",
)


def replace_active_reference(
    conn: Connection,
    raw: object,
    model_id: int,
    version_id: int,
    name: str,
    source_format: str,
    rows: Sequence[ReferenceRow],
) -> int:
    """Store a new reference for a version and make it the one in use; return its id."""
    conn.execute(
        update(reference_datasets)
        .where(reference_datasets.c.model_version_id == version_id, reference_datasets.c.is_active)
        .values(is_active=False)
    )
    ref_id: int = conn.execute(
        reference_datasets.insert()
        .values(
            model_id=model_id,
            model_version_id=version_id,
            name=name,
            source_format=source_format,
            row_count=len(rows),
            is_active=True,
        )
        .returning(reference_datasets.c.id)
    ).scalar_one()
    copy_rows(
        raw,
        "reference_rows",
        REFERENCE_COLUMNS,
        (
            (
                ref_id,
                i,
                model_id,
                dumps(r.features),
                dumps(r.prediction),
                dumps(r.scores),
                dumps(r.label),
                dumps(r.segments),
                dumps(r.attributions),
            )
            for i, r in enumerate(rows)
        ),
    )
    return ref_id


def insert_summaries(
    conn: Connection, reference_id: int, model_id: int, summaries: dict[str, dict[str, Any]], segment: str = ""
) -> None:
    if summaries:
        conn.execute(
            reference_summaries.insert(),
            [
                {"reference_id": reference_id, "model_id": model_id, "segment": segment, "column_name": c, "summary": s}
                for c, s in summaries.items()
            ],
        )


def active_reference_id(conn: Connection, version_id: int) -> int | None:
    return conn.execute(
        select(reference_datasets.c.id).where(
            reference_datasets.c.model_version_id == version_id, reference_datasets.c.is_active
        )
    ).scalar()


def measured_reference_id(conn: Connection, version_id: int) -> int | None:
    """The reference a version is measured against: its own active one, or for a challenger
    (canary, A/B arm, shadow) without one, its champion's (both versions are then measured
    against one reference, as a comparison wants); None if neither has one."""
    own = active_reference_id(conn, version_id)
    if own is not None:
        return own
    version, champion = model_versions.alias("v"), model_versions.alias("c")
    challengers = [d.value for d in Deployment if d.is_challenger]
    found: int | None = conn.execute(
        select(reference_datasets.c.id)
        .select_from(version)
        .join(
            champion, (champion.c.model_id == version.c.model_id) & (champion.c.deployment == Deployment.champion.value)
        )
        .join(reference_datasets, reference_datasets.c.model_version_id == champion.c.id)
        .where(version.c.id == version_id, version.c.deployment.in_(challengers), reference_datasets.c.is_active)
        .order_by(champion.c.id.desc())
        .limit(1)
    ).scalar()
    return found


def measured_reference_summaries(
    conn: Connection, version_id: int, segment: str = ""
) -> tuple[int, dict[str, dict[str, Any]]] | None:
    """The reference a version is measured against (``measured_reference_id``) and its column
    summaries (of one segment's slice, '' for all rows), or None without one."""
    ref_id = measured_reference_id(conn, version_id)
    if ref_id is None:
        return None
    rows = conn.execute(
        select(reference_summaries.c.column_name, reference_summaries.c.summary).where(
            reference_summaries.c.reference_id == ref_id, reference_summaries.c.segment == segment
        )
    ).all()
    return ref_id, {c: s for c, s in rows}


def all_summaries(conn: Connection, reference_id: int) -> dict[str, dict[str, dict[str, Any]]]:
    """segment ('' for all rows, 'column=value' for each tracked one) -> column -> summary."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for segment, column, summary in conn.execute(
        select(reference_summaries.c.segment, reference_summaries.c.column_name, reference_summaries.c.summary).where(
            reference_summaries.c.reference_id == reference_id
        )
    ):
        out.setdefault(segment, {})[column] = summary
    return out


def one_summary(conn: Connection, reference_id: int, column: str, segment: str = "") -> dict[str, Any] | None:
    """One column's (or extra's) summary of a reference, None if it has none."""
    found: dict[str, Any] | None = conn.execute(
        select(reference_summaries.c.summary).where(
            reference_summaries.c.reference_id == reference_id,
            reference_summaries.c.segment == segment,
            reference_summaries.c.column_name == column,
        )
    ).scalar()
    return found
